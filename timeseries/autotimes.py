"""AutoTimes (Liu, Qin, Huang, Wang, Long, NeurIPS 2024, "AutoTimes: Autoregressive Time Series Forecasters via
Large Language Models", arXiv:2402.02370) with a seqcore linear-recurrence backbone trained from scratch.

The paper's recipe, kept here:

* each channel is its own univariate sequence (channel independence, one set of weights for all channels);
* a lookback window of ``context_len`` steps is normalized by its own mean and standard deviation (undone on
  the outputs) and cut into ``context_len // token_len`` non-overlapping segment tokens;
* a tokenizer (MLP or linear) embeds each segment, a causal backbone mixes the tokens and a detokenizer maps each
  position back to ``token_len`` values: the next segment. The loss is the next-segment MSE at every position
  (token ``i`` predicts segment ``i + 1``), so one model serves every horizon;
* timestamps of each segment's start are embedded and *added* to the token embeddings. The paper embeds a
  textual timestamp with the LLM; here sin/cos calendar features (or any user function of the index) pass
  through a linear projection;
* forecasts roll out autoregressively: predict the next segment, append it, repeat;
* in-context forecasting (paper, section 4.3): segments of other series (the prompt) are placed before the
  context tokens, see :meth:`AutoTimesForecaster.predict_in_context`;
* the paper freezes a pre-trained LLM and trains only the tokenizer and detokenizer; ``pretrained=`` reuses and
  freezes the backbone of a model fitted on other series the same way.

Differences from the paper: the backbone is a :class:`seqcore.nn.SeqEncoder` (default gated linear attention)
trained from scratch by default, not an LLM (a local Hugging Face model can be plugged in frozen, see
``pretrained``); because it is a recurrence, the
default ``rollout="recurrent"`` encodes the context once and then spends O(1) per new segment, instead of the
paper's re-encoding of a sliding window (available as ``rollout="sliding"``); the loss is taken on the
normalized scale, so windows of series at different scales weigh the same in a global model.

Scale: windows are normalized in float64 before the cast to the network's float32, and the paper's absolute
``1e-5`` added to each window's variance is relative here (``1e-5`` times the variance of the series the window
is cut from: the training part when fitting, the given context when forecasting). So a model fitted on
``a * y + b`` forecasts ``a * forecast(y) + b`` (same ``random_state``) at any scale float64 holds, and a
constant context (or channel) is forecast as that constant, exactly. Values whose mean or spread overflows
float64 (around 1e308) are refused with a ``ValueError``.
"""
from __future__ import annotations

import copy
import numbers
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn
from tqdm.auto import tqdm

from seqcore.nn import SeqEncoder
from seqcore.ops.validation import check_bool, check_int

from .base import Forecaster
from .series import Series, check_number, location_scale, to_series_list

# The paper's code adds an absolute 1e-5 to each window's variance so a flat window stays finite. Here the
# epsilon is relative to the variance of the series the window comes from, so normalizing a * y + b gives
# exactly what normalizing y gives, at any scale (see _normalize).
_NORM_EPS = 1e-5


def _channel_std(values: np.ndarray, what: str) -> np.ndarray:
    """Std of each channel of ``values: (T, C)`` -> ``(C,)``; refuses values whose mean or spread float64
    cannot hold (a sum of +-1e308 overflows), which would otherwise turn every window into NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = location_scale(values)
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError(
            f"{what} reaches {np.abs(values).max():.3g}: its mean or spread overflows float64; rescale it"
        )
    return std


def _normalize(
    windows: np.ndarray, n_stats: int, reference_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows normalized by the mean and std of their first ``n_stats`` steps, in float64.

    ``windows: (B, n)`` float64 and ``reference_std: (B,)``, the std of the series each window is cut from ->
    ``normalized: (B, n)``, ``mean, std: (B,)``. ``std = sqrt(var_window + _NORM_EPS * reference_std^2)``:
    affine-equivariant and positive unless the whole series is constant; a window with ``std == 0`` normalizes
    to zeros and is forecast as its constant (``prediction * 0 + mean``).
    """
    mean, window_std = location_scale(windows[:, :n_stats], axis=1)
    std = np.hypot(window_std, np.sqrt(_NORM_EPS) * reference_std)
    normalized = np.divide(
        windows - mean[:, None], std[:, None], out=np.zeros_like(windows), where=std[:, None] > 0
    )
    return normalized, mean, std


def calendar_features(index: pd.DatetimeIndex) -> np.ndarray:
    """Sin/cos of four calendar phases of each timestamp: time of day, day of week, day of month, day of year.

    ``index: (n,)`` -> ``(n, 8)`` float64 (the four sines, then the four cosines).
    """
    seconds = index.hour * 3600 + index.minute * 60 + index.second
    phases = np.stack(
        [
            np.asarray(seconds, dtype=float) / 86400.0,
            np.asarray(index.dayofweek, dtype=float) / 7.0,
            (np.asarray(index.day, dtype=float) - 1.0) / np.asarray(index.days_in_month, dtype=float),
            (np.asarray(index.dayofyear, dtype=float) - 1.0) / (365.0 + np.asarray(index.is_leap_year, dtype=float)),
        ],
        axis=1,
    )
    angles = 2.0 * np.pi * phases
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def _token_map(n_in: int, n_out: int, kind: str, hidden: int) -> nn.Module:
    """``(..., n_in) -> (..., n_out)``: the paper's MLP (one GELU hidden layer) or a single linear layer."""
    if kind == "linear":
        return nn.Linear(n_in, n_out)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, n_out))


class HuggingFaceBackbone(nn.Module):
    """A local Hugging Face causal model as a frozen backbone: ``(B, N, D) -> (B, N, D)`` via ``inputs_embeds``.

    ``path`` is a directory written by ``save_pretrained`` (nothing is downloaded); the width ``D`` is read from
    its config. It has no recurrent state, so forecasts with it use ``rollout="sliding"``.

    Loading runs no code from the directory, whatever transformers' defaults: ``*.safetensors`` weights are
    used when present, a PyTorch pickle (``pytorch_model.bin``) only through ``torch.load(weights_only=True)``,
    which refuses anything but tensors and plain containers (a crafted pickle raises ``ValueError``), and
    custom model code (``auto_map`` in ``config.json``) is never imported (``trust_remote_code=False``: a
    ``ValueError`` from transformers). Corrupt weight files raise ``ValueError``; a missing or malformed
    ``config.json`` or missing weights raise transformers' ``OSError`` / ``ValueError``, naming the file.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        try:
            from transformers import AutoModel
        except ImportError as err:
            raise ImportError("a Hugging Face backbone needs transformers: pip install transformers") from err
        directory = Path(path)
        if not directory.is_dir():
            raise FileNotFoundError(f"no Hugging Face model directory at {path}")
        from safetensors import SafetensorError

        try:
            self.model = AutoModel.from_pretrained(
                str(directory), local_files_only=True, trust_remote_code=False,
                use_safetensors=any(directory.glob("*.safetensors")), weights_only=True,
            )
        except pickle.UnpicklingError as err:
            # torch's message suggests weights_only=False, which is exactly what must not happen here; keep its
            # diagnosis only (e.g. "Trying to load unsupported GLOBAL posix.system ...").
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[-1] if lines else "")
            raise ValueError(
                f"refusing to load the weights in {directory}: the PyTorch pickle is not plain tensors and containers, "
                "the only content torch.load(weights_only=True) accepts, and unpickling it otherwise could run code "
                f"({detail}). Re-save the model with save_pretrained(safe_serialization=True) from a trusted copy."
            ) from err
        except SafetensorError as err:
            raise ValueError(f"cannot read the safetensors weights in {directory}: {err}") from err
        self.dim = int(self.model.config.hidden_size)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.model(inputs_embeds=tokens).last_hidden_state


def _backbone_width(backbone: nn.Module) -> int:
    return backbone.dim if isinstance(backbone, HuggingFaceBackbone) else backbone.blocks[0].mixer.dim


class AutoTimesNet(nn.Module):
    """Tokenizer, optional timestamp projection, causal backbone and detokenizer.

    ``segments: (B, N, L)`` normalized segments and ``times: (B, N, F)`` timestamp features (or ``None``) ->
    ``(B, N, L)``, position ``i`` being the prediction of segment ``i + 1``. With ``caches`` (from
    :meth:`init_caches`) the backbone carries its state between calls and the updated caches are returned too.
    """

    def __init__(
        self,
        token_len: int,
        backbone: nn.Module,
        tokenizer: str,
        mlp_hidden: int,
        n_time_features: int | None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        d_model = _backbone_width(backbone)
        self.tokenizer = _token_map(token_len, d_model, tokenizer, mlp_hidden)
        self.time_proj = None if n_time_features is None else nn.Linear(n_time_features, d_model)
        self.backbone = backbone
        self.detokenizer = _token_map(d_model, token_len, tokenizer, mlp_hidden)
        self.dropout = nn.Dropout(dropout)

    def init_caches(self) -> list:
        return self.backbone.init_caches()

    def forward(
        self, segments: Tensor, times: Tensor | None = None, caches: list | None = None
    ) -> Tensor | tuple[Tensor, list]:
        tokens = self.tokenizer(segments)
        if self.time_proj is not None:
            if times is None:
                raise ValueError("this network embeds timestamps: pass times (B, N, F)")
            tokens = tokens + self.time_proj(times)
        tokens = self.dropout(tokens)
        if caches is None:
            return self.detokenizer(self.dropout(self.backbone(tokens)))
        hidden, caches = self.backbone(tokens, caches=caches)
        return self.detokenizer(self.dropout(hidden)), caches


class _WindowTable:
    """Numbering of training windows ``(series i, channel c, start s)``: series by series, channel by channel,
    start by start, with starts ``firsts[i] .. lasts[i]`` in series ``i`` (none where ``lasts[i] < firsts[i]``)."""

    def __init__(self, firsts: list[int], lasts: list[int], channels: list[int]) -> None:
        self.firsts = np.array(firsts)
        self.per_channel = np.maximum(np.array(lasts) - self.firsts + 1, 0)
        counts = self.per_channel * np.array(channels)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.total = int(self.offsets[-1])

    def decode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window numbers ``(B,)`` -> series, channel and start ``(B,)`` each."""
        which = np.searchsorted(self.offsets, ids, side="right") - 1
        local = ids - self.offsets[which]
        per_channel = self.per_channel[which]
        return which, local // per_channel, self.firsts[which] + local % per_channel


class AutoTimesForecaster(Forecaster):
    """AutoTimes: a global autoregressive segment-token forecaster (see the module docstring).

    Parameters
    ----------
    token_len : steps per segment token (paper: 96).
    context_len : lookback window in steps, a multiple of ``token_len`` (paper: 672, i.e. 7 tokens). Training
        windows hold ``context_len + token_len`` steps; forecasts use the last ``context_len // token_len``
        whole segments of the context (fewer when the context is shorter, at least one).
    d_model, depth, mixer, num_heads : the :class:`seqcore.nn.SeqEncoder` backbone (causal ``mixer``).
    tokenizer : ``"mlp"`` (paper) or ``"linear"``, for both the tokenizer and the detokenizer.
    mlp_hidden : hidden width of the MLP tokenizer and detokenizer.
    dropout : dropout rate on the token embeddings and on the backbone's outputs (training only).
    timestamp_features : ``None``; ``"calendar"`` (:func:`calendar_features`); or a function
        ``DatetimeIndex (n,) -> (n, F)`` array. Applied to the start time of each segment; needs series with a
        ``DatetimeIndex`` (a regular frequency too, to time the forecast segments).
    rollout : ``"recurrent"`` (encode the context once, then one token per step with the backbone's state) or
        ``"sliding"`` (the paper's protocol: re-encode the last ``context_len // token_len`` tokens each step).
        Both agree while context plus generated tokens fit into the window; afterwards the recurrent rollout
        keeps seeing the whole history and the sliding one forgets its start.
    pretrained : ``None``, a fitted :class:`AutoTimesForecaster`, a :class:`seqcore.nn.SeqEncoder`, or the path
        of a local Hugging Face causal model directory (loaded with ``transformers``, fed ``inputs_embeds``; needs
        ``rollout="sliding"``): reuse a copy of that backbone, frozen, and train only the tokenizer,
        detokenizer and timestamp projection (the paper's frozen-LLM setting). ``d_model``, ``depth``,
        ``mixer`` and ``num_heads`` are then the pretrained ones. ``sklearn.base.clone`` replaces an estimator parameter by an unfitted copy, so pass
        ``fitted.net_.backbone`` where the model will be cloned (grid search, pipelines).
    epochs, batch_size, lr, weight_decay : AdamW training.
    lr_schedule : ``"cosine"`` (decay to zero over ``epochs``, as in the paper's training script) or ``"constant"``.
    max_windows_per_epoch : training windows drawn per epoch (all of them, shuffled, when there are fewer).
    validation_fraction : ``None`` or the fraction of each series' *end* held out for early stopping: training
        windows lie entirely before the cut, validation windows are those whose next segment (the one after a
        full lookback) starts at or after it, their lookback reaching back across the cut (the ETT / Informer
        split). After each epoch the mean next-segment MSE of all validation windows (normalized scale) is
        measured, in units of each channel's standard deviation over the training part (windows at any scale
        count by their error in the series' own units, not relative to their own spread); training stops after ``n_iter_no_change`` epochs without improvement and the best epoch's
        weights are kept.
    n_iter_no_change : patience of the early stopping, in epochs.
    verbose : show a tqdm progress bar with the epoch loss (a bool).
    missing : ``"raise"`` or ``"interpolate"`` NaNs in the input.
    random_state : seeds the initialization and the window sampling; forecasts are deterministic.

    A training or validation loss that is not finite stops training with a ``FloatingPointError`` naming the
    epoch (it cannot come from the data's scale, see the module docstring).

    Fitted: ``net_`` (:class:`AutoTimesNet`), ``n_params_`` (all parameters), ``n_trainable_params_``,
    ``history_`` (mean training loss per epoch), ``n_time_features_`` (``None`` without timestamps); with
    ``validation_fraction``, ``validation_history_`` (validation MSE per epoch) and ``best_epoch_`` (0-based).
    Exogenous ``X`` is not supported.
    """

    def __init__(
        self,
        token_len: int = 96,
        context_len: int = 672,
        d_model: int = 128,
        depth: int = 2,
        mixer: str = "gla",
        num_heads: int = 4,
        tokenizer: str = "mlp",
        mlp_hidden: int = 256,
        dropout: float = 0.0,
        timestamp_features: str | Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
        rollout: str = "recurrent",
        pretrained: Any = None,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        lr_schedule: str = "cosine",
        max_windows_per_epoch: int = 1024,
        validation_fraction: float | None = None,
        n_iter_no_change: int = 3,
        verbose: bool = False,
        missing: str = "raise",
        random_state: Any = None,
    ) -> None:
        self.token_len = token_len
        self.context_len = context_len
        self.d_model = d_model
        self.depth = depth
        self.mixer = mixer
        self.num_heads = num_heads
        self.tokenizer = tokenizer
        self.mlp_hidden = mlp_hidden
        self.dropout = dropout
        self.timestamp_features = timestamp_features
        self.rollout = rollout
        self.pretrained = pretrained
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.max_windows_per_epoch = max_windows_per_epoch
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.verbose = verbose
        self.missing = missing
        self.random_state = random_state

    def min_length(self) -> int:
        """Shortest series to fit on: ``context_len + token_len`` (one lookback window and its next segment),
        plus the held-out part with ``validation_fraction``."""
        window = int(self.context_len) + int(self.token_len)
        fraction = self.validation_fraction
        if fraction is None or not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
            return window  # an invalid fraction is reported by _check_params
        # The smallest n with n - held_out(n) >= window and held_out(n) >= token_len.
        n = window
        while n - self._held_out(n) < window or self._held_out(n) < int(self.token_len):
            n += 1
        return n

    def _held_out(self, n: int) -> int:
        """Steps at the end of a length-``n`` series held out for validation."""
        return 0 if self.validation_fraction is None else int(round(float(self.validation_fraction) * n))

    def min_context_length(self) -> int:
        """Shortest context to forecast from: one segment, ``token_len`` steps."""
        return int(self.token_len)

    def _check_params(self) -> None:
        for name in ("token_len", "context_len", "d_model", "depth", "num_heads", "mlp_hidden", "epochs",
                     "batch_size", "max_windows_per_epoch", "n_iter_no_change"):
            check_int(name, getattr(self, name), 1)
        check_bool("verbose", self.verbose)
        if int(self.context_len) < int(self.token_len):
            raise ValueError(
                f"need token_len >= 1 and context_len >= token_len, got {self.token_len} and {self.context_len}"
            )
        if int(self.context_len) % int(self.token_len):
            raise ValueError(f"context_len ({self.context_len}) must be a multiple of token_len ({self.token_len})")
        if self.tokenizer not in ("mlp", "linear"):
            raise ValueError(f"tokenizer must be 'mlp' or 'linear', got {self.tokenizer!r}")
        if self.rollout not in ("recurrent", "sliding"):
            raise ValueError(f"rollout must be 'recurrent' or 'sliding', got {self.rollout!r}")
        features = self.timestamp_features
        if not (features is None or features == "calendar" or callable(features)):
            raise ValueError(f"timestamp_features must be None, 'calendar' or a function of a DatetimeIndex, got {features!r}")
        check_number("lr", self.lr, 0.0, strict=True)
        check_number("weight_decay", self.weight_decay, 0.0)
        if not (isinstance(self.dropout, numbers.Real) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        fraction = self.validation_fraction
        if fraction is not None and not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
            raise ValueError(f"validation_fraction must be None or in (0, 1), got {fraction!r}")

    def _pretrained_backbone(self) -> nn.Module | None:
        if self.pretrained is None:
            return None
        if isinstance(self.pretrained, (str, Path)):
            if self.rollout != "sliding":
                raise ValueError("a Hugging Face backbone has no recurrent state: use rollout='sliding'")
            return HuggingFaceBackbone(self.pretrained)
        if isinstance(self.pretrained, AutoTimesForecaster):
            check_is_fitted(self.pretrained)
            return self.pretrained.net_.backbone
        if isinstance(self.pretrained, SeqEncoder):
            return self.pretrained
        raise TypeError(
            "pretrained must be None, a fitted AutoTimesForecaster, a SeqEncoder or the path of a local Hugging Face "
            f"model directory, got {type(self.pretrained).__name__}"
        )

    def _time_features(self, index: pd.Index | None, what: str) -> np.ndarray:
        """Timestamp features of ``index: (n,)`` -> ``(n, F)`` float64."""
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError(f"timestamp_features needs {what} to have a pandas DatetimeIndex")
        if self.timestamp_features == "calendar":
            return calendar_features(index)
        features = np.asarray(self.timestamp_features(index), dtype=float)
        if features.ndim != 2 or features.shape[0] != len(index):
            raise ValueError(
                f"timestamp_features must return an (n, F) array for n = {len(index)} stamps, got shape {features.shape}"
            )
        return features

    def _fit(self, series: list[Series], exog: list[np.ndarray] | None) -> None:
        if exog is not None:
            raise ValueError("AutoTimesForecaster does not use exogenous X; fit it without X")
        token_len, n_tokens = int(self.token_len), int(self.context_len) // int(self.token_len)
        window = int(self.context_len) + token_len
        times = None
        if self.timestamp_features is not None:
            times = [self._time_features(item.index, "y") for item in series]
            if len({t.shape[1] for t in times}) > 1:
                widths = [t.shape[1] for t in times]
                raise ValueError(f"timestamp_features gave different widths for the series: {widths}")
        self.n_time_features_ = None if times is None else times[0].shape[1]
        backbone = self._pretrained_backbone()

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        # fork_rng: seeding torch's global generator (used by the layer initializers) must not leak to the caller.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if backbone is None:
                backbone = SeqEncoder(int(self.d_model), int(self.depth), self.mixer, int(self.num_heads))
            else:
                backbone = copy.deepcopy(backbone).requires_grad_(False)
            self.net_ = AutoTimesNet(
                token_len, backbone, self.tokenizer, int(self.mlp_hidden), self.n_time_features_, float(self.dropout)
            )
            generator = torch.Generator().manual_seed(seed)
            self._train([item.values for item in series], times, window, n_tokens, generator)
        self.net_.eval()
        self.n_params_ = sum(p.numel() for p in self.net_.parameters())
        self.n_trainable_params_ = sum(p.numel() for p in self.net_.parameters() if p.requires_grad)

    def _train(
        self,
        series: list[np.ndarray],
        times: list[np.ndarray] | None,
        window: int,
        n_tokens: int,
        generator: torch.Generator,
    ) -> None:
        """AdamW on the next-segment MSE at every position of sampled windows, with optional early stopping.

        Sets ``history_`` (mean training loss per epoch) and, with a validation split, ``validation_history_``
        and ``best_epoch_``, leaving the best epoch's weights in ``net_``.
        """
        token_len, context_len = int(self.token_len), int(self.context_len)
        # Windows are normalized in float64 and only then cast: float32 cannot even hold a series at 1e7 + 1e-4 y.
        values = [np.asarray(v, dtype=np.float64) for v in series]
        stamps = None if times is None else [torch.from_numpy(np.array(t, dtype=np.float32)) for t in times]
        cuts = [len(v) - self._held_out(len(v)) for v in series]
        train_windows = _WindowTable([0] * len(series), [c - window for c in cuts], [v.shape[1] for v in series])
        validation = None
        if self.validation_fraction is not None:
            firsts = [c - context_len for c in cuts]
            validation = _WindowTable(firsts, [len(v) - window for v in series], [v.shape[1] for v in series])
        # Each channel's std over the training part: the reference of the relative epsilon, and the unit of the
        # validation error.
        series_std = np.zeros((len(values), max(v.shape[1] for v in values)))
        for i, (v, cut) in enumerate(zip(values, cuts)):
            _channel_std(v, "y" if len(values) == 1 else f"y[{i}]")  # the check covers the held-out part too
            series_std[i, : v.shape[1]] = location_scale(v[:cut])[1]

        def batch_of(table: "_WindowTable", ids: np.ndarray) -> tuple[Tensor, Tensor | None, np.ndarray]:
            """Normalized segments ``(B, N + 1, L)`` of windows ``ids``, their token times ``(B, N, F)`` and the
            ratio ``(B,)`` of each window's std to its channel's std over the training part (see
            ``validation_fraction``)."""
            which, channel, begin = table.decode(ids)
            windows = np.stack([values[i][b:b + window, c] for i, c, b in zip(which, channel, begin)])
            reference = series_std[which, channel]
            normalized, _, std = _normalize(windows, context_len, reference)
            segments = torch.from_numpy(normalized.astype(np.float32)).unflatten(1, (n_tokens + 1, token_len))
            token_times = None
            if stamps is not None:
                token_times = torch.stack([stamps[i][b:b + context_len:token_len] for i, b in zip(which, begin)])
            # A channel constant over the training part is forecast exactly while its windows stay flat (ratio 0);
            # a window that varies there is measured on its own scale (ratio 1).
            ratio = np.divide(std, reference, out=(std > 0).astype(np.float64), where=reference > 0)
            return segments, token_times, ratio

        n_draw = min(train_windows.total, int(self.max_windows_per_epoch))
        batch_size = int(self.batch_size)
        optimizer = torch.optim.AdamW(
            [p for p in self.net_.parameters() if p.requires_grad], lr=self.lr, weight_decay=self.weight_decay
        )
        steps_per_epoch = -(-n_draw // batch_size)
        scheduler = None
        if self.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(self.epochs) * steps_per_epoch)
        self.history_, validation_history = [], []
        best_state, best_loss, stale = None, np.inf, 0
        bar = tqdm(range(int(self.epochs)), desc="AutoTimes", disable=not self.verbose)
        for epoch in bar:
            self.net_.train()
            if self.pretrained is not None:
                # A frozen backbone should also be a fixed function: no dropout or stochastic depth in it.
                self.net_.backbone.eval()
            # Sampling with replacement avoids a permutation of every window when there are many.
            if train_windows.total <= n_draw:
                ids = torch.randperm(train_windows.total, generator=generator).numpy()
            else:
                ids = torch.randint(train_windows.total, (n_draw,), generator=generator).numpy()
            losses = []
            for first in range(0, n_draw, batch_size):
                segments, token_times, _ = batch_of(train_windows, ids[first:first + batch_size])
                pred = self.net_(segments[:, :-1], token_times)
                loss = torch.mean((pred - segments[:, 1:]) ** 2)
                if not bool(torch.isfinite(loss)):
                    raise FloatingPointError(
                        f"AutoTimes training diverged in epoch {epoch + 1}: the loss is {loss.item()}; "
                        "try a lower lr or gradient-friendlier settings (smaller d_model, depth)"
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                losses.append(loss.item() * len(segments))
            self.history_.append(float(np.sum(losses) / n_draw))
            if validation is None:
                bar.set_postfix(loss=f"{self.history_[-1]:.4f}")
                continue
            validation_history.append(self._validation_loss(validation, batch_of, batch_size))
            if not np.isfinite(validation_history[-1]):
                raise FloatingPointError(
                    f"AutoTimes validation loss is {validation_history[-1]} after epoch {epoch + 1}; try a lower lr"
                )
            bar.set_postfix(loss=f"{self.history_[-1]:.4f}", val=f"{validation_history[-1]:.4f}")
            if validation_history[-1] < best_loss:
                best_loss, stale = validation_history[-1], 0
                best_state = copy.deepcopy(self.net_.state_dict())
                self.best_epoch_ = len(validation_history) - 1
            else:
                stale += 1
                if stale >= int(self.n_iter_no_change):
                    break
        if validation is not None:
            self.net_.load_state_dict(best_state)
            self.validation_history_ = validation_history

    def _validation_loss(self, table: "_WindowTable", batch_of: Callable, batch_size: int) -> float:
        """Mean MSE of the next segment after each validation window's full lookback, on each channel's scale
        divided by that channel's std over the training part (the usual "MSE on standardized data")."""
        self.net_.eval()
        total = 0.0
        with torch.no_grad():
            for first in range(0, table.total, 4 * batch_size):
                ids = np.arange(first, min(first + 4 * batch_size, table.total))
                segments, token_times, ratio = batch_of(table, ids)
                pred = self.net_(segments[:, :-1], token_times)[:, -1]
                # Errors on the window-normalized scale times std_window / std_channel: per-window normalization
                # alone would let flat windows, whose normalized errors are huge, dominate the criterion.
                error = (pred - segments[:, -1]) * torch.from_numpy(ratio).float()[:, None]
                total += float(torch.sum(torch.mean(error**2, dim=1)))
        return total / table.total

    # --------------------------------------------------------------- forecasting

    def predict_in_context(self, prompt: Any, fh: Any = None, X: Any = None, y: Any = None) -> Any:
        """In-context forecasting: forecast like :meth:`predict`, with ``prompt`` segments placed first.

        ``prompt`` is one series or a list of series (e.g. other series, or earlier stretches of this one),
        with the model's number of channels; each needs at least ``token_len`` steps. All whole segments of
        each prompt (its most recent ones when its length is not a multiple of ``token_len``) are normalized
        by that prompt's own mean and std, so a demonstration at another scale still shows its shape, and go
        in order before the context tokens (channel ``c`` of each prompt before channel ``c`` of the context).
        With ``rollout="sliding"`` the prompt stays in front of every re-encoded window. With timestamp
        features, prompts need a ``DatetimeIndex`` too.
        """
        prompts, _ = to_series_list(prompt, what="prompt", missing=self.missing)
        check_is_fitted(self)
        for i, p in enumerate(prompts):
            if p.values.shape[0] < int(self.token_len) or p.n_channels != self.n_channels_:
                raise ValueError(
                    f"prompt[{i}] must have >= {self.token_len} steps and {self.n_channels_} channels, "
                    f"got shape {p.values.shape}"
                )
        return self._predict(fh, X, y, prompts=prompts)

    def _forecast(
        self, context: Series, horizon: int, exog_future: np.ndarray | None, prompts: list[Series] = ()
    ) -> np.ndarray:
        """``context.values: (T, C)`` -> ``(horizon, C)``, with ``prompts`` first for in-context forecasting."""
        return self._rollout(context, horizon, list(prompts))

    def _tokens(self, s: Series, n_segments: int, what: str) -> tuple[Tensor, np.ndarray, np.ndarray, Tensor | None]:
        """The last ``n_segments`` whole segments of ``s``, normalized per channel (in float64, then cast).

        Returns ``tokens: (C, n, L)`` float32, ``mean, std: (C,)`` float64 (the relative epsilon refers to each
        channel's std over all of ``s``) and the start-time features ``(n, F)`` or ``None``.
        """
        token_len = int(self.token_len)
        first = s.values.shape[0] - n_segments * token_len
        crop = np.ascontiguousarray(s.values[first:].T)  # (C, n L)
        normalized, mean, std = _normalize(crop, crop.shape[1], _channel_std(s.values, what))
        tokens = torch.from_numpy(normalized.astype(np.float32)).unflatten(1, (n_segments, token_len))
        times = None
        if self.n_time_features_ is not None:
            index = s.index[first::token_len] if isinstance(s.index, pd.DatetimeIndex) else None
            features = self._time_features(index, what)
            if features.shape[1] != self.n_time_features_:
                raise ValueError(
                    f"timestamp_features gave {features.shape[1]} features for {what}, "
                    f"the model was fitted with {self.n_time_features_}"
                )
            times = torch.as_tensor(features, dtype=torch.float32)
        return tokens, mean, std, times

    def _rollout(self, s: Series, horizon: int, prompts: list[Series]) -> np.ndarray:
        """Autoregressive forecast of ``horizon`` steps after ``s``: ``(horizon, C)`` float64."""
        token_len, n_window = int(self.token_len), int(self.context_len) // int(self.token_len)
        n_context = min(s.values.shape[0] // token_len, n_window)
        n_steps = -(-horizon // token_len)
        tokens, mean, std, times = self._tokens(s, n_context, "y")
        channels = tokens.shape[0]
        prompt_parts = [self._tokens(p, p.values.shape[0] // token_len, "prompt") for p in prompts]
        prompt_tokens = torch.cat([part[0] for part in prompt_parts] + [tokens[:, :0]], dim=1)  # (C, P, L)
        prompt_times = None
        if times is not None:
            prompt_times = torch.cat([part[3] for part in prompt_parts] + [times[:0]])
            # Start steps (1-based, relative to the end of s) of the generated segments that are fed back.
            starts = 1 + token_len * np.arange(n_steps - 1)
            if len(starts):
                future = self._time_features(s.future_index(starts), "y")
                times = torch.cat([times, torch.as_tensor(future, dtype=torch.float32)])  # (n_context + n_steps - 1, F)

        def times_of(rows: slice, with_prompt: bool) -> Tensor | None:
            """Features of the (context + generated) tokens ``rows``, optionally after the prompt's: (C, n, F)."""
            if times is None:
                return None
            picked = torch.cat([prompt_times, times[rows]]) if with_prompt else times[rows]
            return picked.expand(channels, -1, -1)

        predictions = []
        with torch.no_grad():
            if self.rollout == "recurrent":
                prefix = torch.cat([prompt_tokens, tokens], dim=1)
                out, caches = self.net_(prefix, times_of(slice(0, n_context), True), self.net_.init_caches())
                predictions.append(out[:, -1:])
                for k in range(1, n_steps):
                    row = slice(n_context + k - 1, n_context + k)
                    out, caches = self.net_(predictions[-1], times_of(row, False), caches)
                    predictions.append(out)
            else:
                history = tokens
                for _ in range(n_steps):
                    n_seen = history.shape[1]
                    rows = slice(max(0, n_seen - n_window), n_seen)
                    window = torch.cat([prompt_tokens, history[:, rows]], dim=1)
                    out = self.net_(window, times_of(rows, True))[:, -1:]
                    predictions.append(out)
                    history = torch.cat([history, out], dim=1)
        predicted = torch.cat(predictions, dim=1).flatten(1).double().numpy()  # (C, n_steps L)
        with np.errstate(over="ignore", invalid="ignore"):
            forecast = predicted * std[:, None] + mean[:, None]
        if not np.isfinite(forecast).all():
            raise ValueError(
                f"the forecast overflows float64: y reaches {np.abs(s.values).max():.3g}, too close to float64's "
                "limit of 1.8e308 for the model's outputs; rescale it"
            )
        return forecast.T[:horizon]
