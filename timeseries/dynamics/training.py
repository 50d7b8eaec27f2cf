"""Generalized teacher forcing (GTF) training of latent dynamical models.

Follows the Julia reference ``DurstewitzLab/GTF-shPLRNN`` (Hess et al., ICML 2023).

Forward pass (``GTFRecur`` / ``TFRecur`` in ``src/tf_training/tfrecur.jl``,
``force`` in ``forcing.jl``). A batch ``x`` of shape (B, T, N) holds ``T``
observations ``x_1 .. x_T``. The forcing signals ``z_hat_t = obs.invert(x_t)``
are computed outside the gradient (``estimate_forcing_signals`` is called
before ``Flux.gradient`` in ``training.jl``); the initial state
``z_1 = obs.init_state(x_1)`` is inside it. Then, for ``t = 2 .. T``::

    z_t       = F(z~_{t-1}) (+ C s_t)                    prediction, enters the loss
    z~_t      = (1 - alpha) z_t + alpha z_hat_t           GTF
    z~_t      = z_hat_t if (t - 1) % interval == 0 else z_t   sparse TF (STF)
    z~_t      = z_t                                        no forcing (BPTT)

with ``z~_1 = z_1``. With ``partial=True`` only the first ``N`` latents are
forced and the others keep their predicted values. The loss is
``mse(obs(z_{2:T}), x_{2:T})`` (``loss`` in ``training.jl``), i.e. on the
predictions *before* forcing.

Linear scan. If ``F(z) = a * z + b`` elementwise (``model.linear_decay()`` is not
``None``), the GTF recurrence ``z_t = a ((1 - alpha) z_{t-1} + alpha z_hat_{t-1}) + b_t``
is the elementwise linear recurrence with coefficient ``(1 - alpha) a`` and input
``alpha a z_hat_{t-1} + b_t``, run by :func:`seqcore.ops.scan`.

Adaptive alpha (``alpha_estimation.jl``). From the Jacobians ``J_t`` of ``F`` at
the data-inferred states ``z_hat_2 .. z_hat_T`` of each sequence, a norm
``kappa`` is estimated and ``alpha* = max(0, 1 - 1 / kappa)`` (``opt_α``):

* ``product_upper_bound``: ``max_b geomean_t ||J_t||_2`` (the default),
* ``batch_maximum``: ``max_{b,t} ||J_t||_2``,
* ``arithmetic_mean``: ``max_b ||mean_t J_t||_2``,
* ``jacobian_upper_bound``: a parameter bound, e.g. ``max|A| + ||W1||_2 ||W2||_2``
  for the shPLRNN (``norm_upper_bound`` in ``src/models``),
* ``constant``: alpha stays fixed.

The Julia ``explog_approx`` (norm of ``exp(mean_t log J_t)``) is not offered:
Jacobians with negative real eigenvalues have no real matrix logarithm.

Every ``alpha_update_interval``-th batch of an epoch (before its forward pass,
``train_!`` in ``training.jl``): ``alpha <- alpha*`` if ``alpha* > alpha``, else
``alpha <- gamma alpha + (1 - gamma) alpha*``.

Training (``train_!``, ``initialize_optimizer`` in ``src/parsing.jl``,
``sample_batch`` in ``dataset.jl``, ``regularization.jl``): RAdam; per-tensor
gradient norm clipping (Flux ``ClipNorm``) when ``gradient_clip > 0``; the
learning rate is ``lr_start gamma^e`` in epoch ``e = 0, 1, ...`` with
``gamma = (lr_end / lr_start)^(1 / epochs)``, floored at ``lr_end`` (Flux
``ExpDecay`` stepping once per ``batches_per_epoch`` updates; with ``max_time`` the
schedule follows elapsed time where that is further along); batches are
``batch_size`` windows of ``sequence_length + 1`` consecutive samples drawn
uniformly with replacement (``sample_sequence`` draws the start from
``1:T-L-1`` for windows of ``L + 1`` samples and so never picks the last
window; here every window is
possible); the objective is
``mse + lat_reg * model.regularization() + obs_reg * obs.regularization()``
(the Julia ``regularize`` functions multiply the unnormalized penalty by their weight).

The nonlinear step loop runs eagerly. For the shallow PLRNN under GTF (the
paper's model) a hand-written backward pass (:mod:`timeseries.dynamics.fused`)
replaces autograd's per-operation bookkeeping; ``benchmarks/gtf_loop.py``
measures both. ``torch.compile`` did not pay off on a 2-core CPU (one torch
thread, B=16, T=200, clipped shPLRNN, forward + backward): compiling the step
was slower than the eager autograd loop (M=3, H=50: 105 vs 69 ms; M=5, H=250:
180 vs 117 ms) and compiling the unrolled loop did not finish within 170 s, so
no compile option is offered.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from seqcore.checkpoint import load_checkpoint, restore_training_state, save_checkpoint, training_state
from seqcore.ops import scan
from seqcore.ops.validation import check_bool, check_int

from ..series import as_float_array
from .fused import ShallowGTF
from .models import LatentModel, ShallowPLRNN

__all__ = [
    "ALPHA_METHODS",
    "FORCING_MODES",
    "estimate_alpha",
    "forcing_signals",
    "gtf_forward",
    "gtf_loss",
    "gtf_scan",
    "train_gtf",
    "update_alpha",
]

FORCING_MODES = ("gtf", "sparse", "none")
ALPHA_METHODS = (
    "constant",
    "product_upper_bound",
    "batch_maximum",
    "arithmetic_mean",
    "jacobian_upper_bound",
)
# defaults.json: gtf_alpha = 1.0 is the starting value of the annealing protocols
_ADAPTIVE_START = 1.0
# The seqcore.checkpoint kind of the files train_gtf writes every checkpoint_every epochs.
CHECKPOINT_KIND = "timeseries.dynamics.train_gtf"


def _check_forcing(forcing: str, interval: int) -> None:
    if forcing not in FORCING_MODES:
        raise ValueError(f"forcing must be one of {FORCING_MODES}, got {forcing!r}")
    if forcing == "sparse":
        check_int("interval", interval, 1)


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    return alpha


def _alpha_vector(alpha: float, n_forced: int, m: int, like: Tensor) -> Tensor:
    """Per-latent forcing strength: ``alpha`` on the first ``n_forced`` latents, 0 after, shape (M,)."""
    vec = like.new_zeros(m)
    vec[:n_forced] = alpha
    return vec


def forcing_signals(obs: nn.Module, x: Tensor) -> Tensor:
    """Data-inferred latent states ``z_hat = obs.invert(x)``, outside the gradient.

    Parameters
    ----------
    obs : observation model
    x : Tensor, shape (B, T, N)

    Returns
    -------
    Tensor, shape (B, T, M), detached
    """
    with torch.no_grad():
        return obs.invert(x)


def gtf_scan(
    a: Tensor,
    b: Tensor,
    z_hat: Tensor,
    alpha: float | Tensor,
    z0: Tensor,
    *,
    backend: str = "auto",
) -> Tensor:
    """Forced elementwise-linear recurrence as one linear scan.

    ``z_t = a * ((1 - alpha) z_{t-1} + alpha z_hat_t) + b_t`` for ``t = 0 .. T-1``
    with ``z_{-1} = z0``; ``z_hat[:, t]`` is the forcing signal of the state that
    enters step ``t``. This is ``h_t = c h_{t-1} + u_t`` with ``c = (1 - alpha) a``
    and ``u_t = alpha a z_hat_t + b_t``.

    Parameters
    ----------
    a : Tensor, shape (M,)
        Elementwise decay.
    b : Tensor, shape (B, T, M)
        Drive.
    z_hat : Tensor, shape (B, T, M)
        Forcing signals.
    alpha : float or Tensor of shape () or (M,)
        Forcing strength (per latent for partial forcing).
    z0 : Tensor, shape (B, M)
    backend : str, default "auto"
        Passed to :func:`seqcore.ops.scan` (the chunked PyTorch scan on CPU).

    Returns
    -------
    Tensor, shape (B, T, M)
        Differentiable in ``a``, ``b``, ``z_hat``, ``z0`` (and ``alpha``).
    """
    if b.dim() != 3 or a.shape != b.shape[-1:] or z_hat.shape != b.shape or z0.shape != (b.shape[0], b.shape[2]):
        raise ValueError(
            "gtf_scan needs a (M,), b and z_hat (B, T, M), z0 (B, M); got "
            f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(z_hat.shape)}, {tuple(z0.shape)}"
        )
    coef = ((1 - alpha) * a).expand_as(b)
    out, _ = scan(alpha * a * z_hat + b, coef.contiguous(), initial_state=z0, backend=backend)
    return out


def _input_drive(model: LatentModel, s: Tensor | None, batch: int, steps: int) -> Tensor | None:
    """``C s_t`` for the steps producing ``z_2 .. z_T``, shape (B, T-1, M), or None."""
    model._check_inputs(s, (batch, steps + 1, model.input_dim))
    if model.C is None:
        return None
    return s[:, 1:] @ model.C.T


def gtf_forward(
    model: LatentModel,
    obs: nn.Module,
    x: Tensor,
    alpha: float = 0.0,
    s: Tensor | None = None,
    *,
    forcing: str = "gtf",
    interval: int = 16,
    partial: bool = False,
    z_hat: Tensor | None = None,
    scan_backend: str = "auto",
    fused: bool = True,
) -> Tensor:
    """Teacher-forced predictions ``z_2 .. z_T`` (see the module docstring).

    Parameters
    ----------
    model : LatentModel
    obs : observation model with ``invert``, ``init_state`` and ``obs_dim``
    x : Tensor, shape (B, T, N)
        Observed sequences, ``T >= 2``.
    alpha : float, default 0.0
        GTF strength in ``[0, 1]`` (``forcing="gtf"`` only).
    s : Tensor, shape (B, T, K), optional
        External inputs aligned with ``x``; ``s[:, t]`` drives the step that
        predicts ``x[:, t]``.
    forcing : {"gtf", "sparse", "none"}, default "gtf"
    interval : int, default 16
        STF interval ``tau``: the state after the prediction of ``x[:, t]``
        (0-based ``t``) is replaced when ``t % tau == 0``.
    partial : bool, default False
        Force only the first ``N`` latents.
    z_hat : Tensor, shape (B, T, M), optional
        Precomputed :func:`forcing_signals`.
    scan_backend : str, default "auto"
        Backend of the linear-scan path.
    fused : bool, default True
        Run a :class:`ShallowPLRNN` under GTF with the hand-written backward pass of
        :class:`~timeseries.dynamics.fused.ShallowGTF` (same result, fewer operations per step);
        ``False`` records the step loop with autograd.

    Returns
    -------
    Tensor, shape (B, T-1, M)
        Latent predictions before forcing; ``obs`` of it is compared with ``x[:, 1:]``.

    Notes
    -----
    With ``forcing="gtf"`` and ``model.linear_decay()`` not ``None`` the
    recurrence runs as :func:`gtf_scan` instead of a step loop.
    """
    _check_forcing(forcing, interval)
    partial, fused = check_bool("partial", partial), check_bool("fused", fused)
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[1] < 2 or x.shape[2] != obs.obs_dim:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (B, T >= 2, {obs.obs_dim}), got {shape}")
    alpha = _check_alpha(alpha) if forcing == "gtf" else 0.0
    batch, steps, m = x.shape[0], x.shape[1] - 1, model.latent_dim
    z = obs.init_state(x[:, 0])
    if forcing == "none":
        return model(z, steps, s[:, 1:] if s is not None else None)
    drive = _input_drive(model, s, batch, steps)
    if z_hat is None:
        z_hat = forcing_signals(obs, x)
    elif tuple(z_hat.shape) != (batch, steps + 1, m):
        raise ValueError(f"z_hat must have shape {(batch, steps + 1, m)}, got {tuple(z_hat.shape)}")
    n_forced = obs.obs_dim if partial else m
    if forcing == "gtf":
        alpha_vec = _alpha_vector(alpha, n_forced, m, z)
        decay = model.linear_decay()
        if decay is not None:
            b = model._autonomous_step(z.new_zeros(1, m)).expand(batch, steps, m)
            if drive is not None:
                b = b + drive
            # forcing z_1 towards itself is the identity, so the first step stays unforced
            signals = torch.cat([z.unsqueeze(1), z_hat[:, 1:steps]], dim=1)
            return gtf_scan(decay, b, signals, alpha_vec, z, backend=scan_backend)
        if fused and isinstance(model, ShallowPLRNN):
            return ShallowGTF.apply(
                z, z_hat, alpha_vec, drive, model.A, model.W1, model.W2, model.h1, model.h2, model.clipped
            )
        step = _gtf_step(model, alpha_vec)
    else:
        mask = torch.arange(m, device=x.device) < n_forced
        step = _stf_step(model, mask)
    preds = []
    for t in range(steps):
        forced = z_hat[:, t + 1] if forcing == "gtf" or (t + 1) % interval == 0 else None
        z_pred, z = step(z, forced, drive[:, t] if drive is not None else None)
        preds.append(z_pred)
    return torch.stack(preds, dim=1)


def _gtf_step(model: LatentModel, alpha_vec: Tensor) -> Callable[..., tuple[Tensor, Tensor]]:
    def step(z: Tensor, z_hat_t: Tensor, drive_t: Tensor | None) -> tuple[Tensor, Tensor]:
        z_pred = model._autonomous_step(z)
        if drive_t is not None:
            z_pred = z_pred + drive_t
        return z_pred, (1 - alpha_vec) * z_pred + alpha_vec * z_hat_t

    return step


def _stf_step(model: LatentModel, mask: Tensor) -> Callable[..., tuple[Tensor, Tensor]]:
    def step(z: Tensor, z_hat_t: Tensor | None, drive_t: Tensor | None) -> tuple[Tensor, Tensor]:
        z_pred = model._autonomous_step(z)
        if drive_t is not None:
            z_pred = z_pred + drive_t
        # where() gives the exact replacement and zero gradient into the overwritten latents
        return z_pred, z_pred if z_hat_t is None else torch.where(mask, z_hat_t, z_pred)

    return step


def gtf_loss(
    model: LatentModel,
    obs: nn.Module,
    x: Tensor,
    alpha: float = 0.0,
    s: Tensor | None = None,
    **kwargs: Any,
) -> Tensor:
    """``mse(obs(z_{2:T}), x_{2:T})`` of :func:`gtf_forward` (``loss`` in training.jl).

    Parameters
    ----------
    model, obs, x, alpha, s, **kwargs
        As for :func:`gtf_forward`.

    Returns
    -------
    Tensor, shape ()
    """
    z = gtf_forward(model, obs, x, alpha, s, **kwargs)
    return torch.mean((obs(z) - x[:, 1:]) ** 2)


def _norm_upper_bound(model: LatentModel) -> Tensor:
    """Parameter bound on ``||J(z)||_2`` over all ``z`` (``norm_upper_bound`` in src/models)."""
    if isinstance(model, ShallowPLRNN):
        w1 = torch.linalg.matrix_norm(model.W1, ord=2)
        return model.A.abs().max() + w1 * torch.linalg.matrix_norm(model.W2, ord=2)
    decay = model.linear_decay()
    if decay is not None:
        return decay.abs().max()
    raise ValueError(
        f"alpha method 'jacobian_upper_bound' has no parameter bound for {type(model).__name__}; "
        "use 'product_upper_bound'"
    )


@torch.no_grad()
def estimate_alpha(model: LatentModel, z_hat: Tensor, method: str = "product_upper_bound") -> tuple[float, float]:
    """Optimal GTF ``alpha = max(0, 1 - 1 / kappa)`` from a Jacobian norm ``kappa``.

    As ``compute_α`` in ``alpha_estimation.jl`` (spectral norms, max over the batch).

    Parameters
    ----------
    model : LatentModel
    z_hat : Tensor, shape (B, T, M)
        Data-inferred states at which the Jacobians are evaluated (the trainer
        passes ``z_hat_2 .. z_hat_T``).
    method : str, default "product_upper_bound"
        One of :data:`ALPHA_METHODS` except ``"constant"``.

    Returns
    -------
    alpha : float
    kappa : float
    """
    if method not in ALPHA_METHODS or method == "constant":
        raise ValueError(f"method must be one of {ALPHA_METHODS[1:]}, got {method!r}")
    if z_hat.dim() != 3 or z_hat.shape[-1] != model.latent_dim or z_hat.shape[1] == 0:
        raise ValueError(f"z_hat must have shape (B, T, {model.latent_dim}), got {tuple(z_hat.shape)}")
    if method == "jacobian_upper_bound":
        kappa = float(_norm_upper_bound(model))
    else:
        z_hat = z_hat.to(next(model.parameters()).dtype)
        jac = model.jacobian(z_hat.flatten(0, 1)).unflatten(0, z_hat.shape[:2])
        if method == "arithmetic_mean":
            kappa = float(torch.linalg.matrix_norm(jac.mean(1), ord=2).max())
        else:
            norms = torch.linalg.matrix_norm(jac, ord=2)
            if method == "batch_maximum":
                kappa = float(norms.max())
            else:
                kappa = float(torch.log(norms).mean(1).exp().max())
    alpha = max(0.0, 1.0 - 1.0 / kappa) if kappa > 0 else 0.0
    return alpha, kappa


def update_alpha(alpha: float, estimate: float, decay: float) -> float:
    """Annealing rule of ``train_!``: jump up to a larger estimate, else relax towards it.

    Parameters
    ----------
    alpha : float
        Current value.
    estimate : float
        New estimate ``alpha*``.
    decay : float
        ``gamma`` in ``[0, 1]`` (``gtf_alpha_decay``).

    Returns
    -------
    float
        ``estimate`` if ``estimate > alpha`` else ``gamma alpha + (1 - gamma) estimate``.
    """
    if estimate > alpha:
        return estimate
    return decay * alpha + (1.0 - decay) * estimate


def _as_series(data: Any, name: str, width: int | None) -> list[Tensor]:
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    if not items:
        raise ValueError(f"{name} must not be empty")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Tensor):
            # A tensor stays on its device (the model's may be a GPU); only what cannot be real data is refused.
            if item.device.type == "meta":
                raise ValueError(f"{name}[{i}] is a tensor on the meta device, which holds no values")
            if item.is_complex():
                raise TypeError(f"{name}[{i}] must hold real numbers, got a {item.dtype} tensor")
            arr = item if torch.is_floating_point(item) else item.double()
        else:
            arr = torch.from_numpy(as_float_array(item, f"{name}[{i}]"))
        if arr.dim() != 2:
            raise ValueError(f"{name}[{i}] must have shape (T, dim), got {tuple(arr.shape)}")
        if not bool(torch.isfinite(arr).all()):
            raise ValueError(f"{name}[{i}] contains NaN or inf values")
        if width is not None and arr.shape[1] != width:
            raise ValueError(f"{name}[{i}] has {arr.shape[1]} columns, expected {width}")
        out.append(arr)
    return out


def _check_lengths(series: Sequence[Tensor], window: int, name: str) -> None:
    for i, arr in enumerate(series):
        if arr.shape[0] < window:
            raise ValueError(
                f"{name}[{i}] has {arr.shape[0]} samples, fewer than sequence_length + 1 = {window}"
            )


def _sample_windows(
    series: Sequence[Tensor], window: int, batch_size: int, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Series index and start of ``batch_size`` windows, uniform over all valid windows."""
    counts = np.array([arr.shape[0] - window + 1 for arr in series])
    flat = torch.randint(int(counts.sum()), (batch_size,), generator=generator).numpy()
    which = np.searchsorted(np.cumsum(counts), flat, side="right")
    starts = flat - np.concatenate([[0], np.cumsum(counts)[:-1]])[which]
    return which, starts


def _gather(series: Sequence[Tensor], which: np.ndarray, starts: np.ndarray, window: int) -> Tensor:
    return torch.stack([series[i][s : s + window] for i, s in zip(which, starts)])


def _lr(progress: float, lr_start: float, lr_end: float) -> float:
    """``lr_start (lr_end / lr_start)^progress``, floored at ``lr_end``; ``progress`` is ``epoch / epochs``."""
    return max(lr_start * math.exp(math.log(lr_end / lr_start) * min(progress, 1.0)), lr_end)


def _clip_per_tensor(params: Sequence[nn.Parameter], max_norm: float) -> None:
    # Flux's ClipNorm rescales every parameter array separately, not the global norm
    for p in params:
        if p.grad is not None:
            norm = torch.linalg.vector_norm(p.grad)
            if norm > max_norm:
                p.grad.mul_(max_norm / norm)


def train_gtf(
    model: LatentModel,
    obs: nn.Module,
    data: Any,
    *,
    inputs: Any = None,
    epochs: int = 5000,
    batches_per_epoch: int = 50,
    sequence_length: int = 200,
    batch_size: int = 16,
    lr_start: float = 1e-3,
    lr_end: float = 1e-6,
    alpha: float | str = 0.1,
    alpha_method: str | None = None,
    alpha_decay: float = 0.999,
    alpha_update_interval: int = 5,
    forcing: str = "gtf",
    interval: int = 16,
    partial: bool = False,
    lat_reg: float = 0.0,
    obs_reg: float = 0.0,
    gradient_clip: float = 0.0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 25,
    resume_from: str | os.PathLike | None = None,
    callback: Callable[[int, dict[str, list[float]]], None] | None = None,
    max_time: float | None = None,
    progress: bool = True,
    random_state: int | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` and ``obs`` with (generalized) teacher forcing (``train_!`` in training.jl).

    Parameters
    ----------
    model : LatentModel
    obs : observation model
    data : array or Tensor of shape (T, N), or a list of them
        Time series; windows never cross series boundaries.
    inputs : array or Tensor of shape (T, K), or a list of them, optional
        External inputs aligned with ``data`` (required iff ``model.input_dim > 0``).
    epochs, batches_per_epoch, sequence_length, batch_size : int
        A batch holds ``batch_size`` windows of ``sequence_length + 1`` samples.
    lr_start, lr_end : float
        RAdam learning rate, decayed exponentially per epoch.
    alpha : float or "adaptive", default 0.1
        Constant (or initial) GTF strength; ``"adaptive"`` starts at 1.0 as in
        ``defaults.json`` and anneals with ``alpha_method``.
    alpha_method : str, optional
        One of :data:`ALPHA_METHODS`; default ``"constant"`` for a float
        ``alpha``, ``"product_upper_bound"`` for ``"adaptive"``.
    alpha_decay : float, default 0.999
        ``gamma`` of :func:`update_alpha`.
    alpha_update_interval : int, default 5
        Update alpha before every ``k``-th batch of an epoch.
    forcing : {"gtf", "sparse", "none"}, default "gtf"
    interval : int, default 16
        STF interval.
    partial : bool, default False
        Force only the first ``N`` latents.
    lat_reg, obs_reg : float, default 0.0
        Weights of ``model.regularization()`` and ``obs.regularization()``.
    gradient_clip : float, default 0.0
        Per-tensor gradient norm bound; 0 disables it.
    checkpoint_dir : path, optional
        Where ``checkpoint_{epoch:05d}.pt`` is written every
        ``checkpoint_every`` epochs and after the last epoch: a
        :mod:`seqcore.checkpoint` of kind ``"timeseries.dynamics.train_gtf"``
        holding both modules, the optimizer, the batch sampler, alpha and the
        history, with the training settings as its config; written atomically.
    checkpoint_every : int, default 25
    resume_from : path, optional
        Checkpoint to continue from; training resumes at the following epoch
        and ``epochs`` is the total count, including the finished epochs. It
        is loaded safely (``weights_only``) and must have been written with
        the same settings (all but ``epochs``); otherwise
        :class:`seqcore.checkpoint.CheckpointError` (a ``ValueError``) lists
        the differences.
    callback : callable, optional
        ``callback(epoch, history)`` after every epoch (1-based ``epoch``).
    max_time : float, optional
        Wall-clock budget in seconds of this call. Training stops after the first epoch that ends past it,
        and the learning-rate schedule runs over whichever ends first: epoch ``e`` uses progress
        ``max(e / epochs, elapsed / max_time)``, so a run cut short by time still anneals to ``lr_end``
        instead of stopping at the high learning rate of an early epoch.
    progress : bool, default True
        Show a tqdm bar over epochs.
    random_state : int, optional
        Seed of the batch sampler.

    Returns
    -------
    dict
        ``"epoch"``, ``"loss"`` (mean objective of the epoch's batches),
        ``"alpha"`` (value after the epoch) and ``"lr"``, one entry per epoch.

    Raises
    ------
    ValueError
        For malformed data or settings.
    TypeError
        For a setting of the wrong type: a count that is not an int, a flag that is not a bool.
    FloatingPointError
        When the loss or the parameters become NaN or infinite.
    """
    # As ints: the settings go into the checkpoint's config, which a numpy integer would not survive.
    epochs, batches_per_epoch, sequence_length, batch_size, alpha_update_interval, checkpoint_every = (
        check_int(name, value, 1) for name, value in (
            ("epochs", epochs), ("batches_per_epoch", batches_per_epoch), ("sequence_length", sequence_length),
            ("batch_size", batch_size), ("alpha_update_interval", alpha_update_interval),
            ("checkpoint_every", checkpoint_every),
        )
    )
    _check_forcing(forcing, interval)
    partial, progress = check_bool("partial", partial), check_bool("progress", progress)
    if not 0 < lr_end <= lr_start:
        raise ValueError(f"need 0 < lr_end <= lr_start, got lr_start={lr_start}, lr_end={lr_end}")
    for name, value in (("lat_reg", lat_reg), ("obs_reg", obs_reg), ("gradient_clip", gradient_clip)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if max_time is not None and not max_time > 0:
        raise ValueError(f"max_time must be None or positive seconds, got {max_time!r}")
    if not 0.0 <= alpha_decay <= 1.0:
        raise ValueError(f"alpha_decay must lie in [0, 1], got {alpha_decay}")
    if alpha == "adaptive":
        current_alpha, method = _ADAPTIVE_START, alpha_method or "product_upper_bound"
    elif isinstance(alpha, str):
        raise ValueError(f"alpha must be a float in [0, 1] or 'adaptive', got {alpha!r}")
    else:
        current_alpha, method = _check_alpha(alpha), alpha_method or "constant"
    if method not in ALPHA_METHODS:
        raise ValueError(f"alpha_method must be one of {ALPHA_METHODS}, got {method!r}")

    window = sequence_length + 1
    series = _as_series(data, "data", obs.obs_dim)
    _check_lengths(series, window, "data")
    in_series = None
    if inputs is not None:
        in_series = _as_series(inputs, "inputs", model.input_dim)
        if [a.shape[0] for a in in_series] != [a.shape[0] for a in series]:
            raise ValueError("inputs must have the same number of series and samples as data")
    elif model.input_dim > 0:
        raise ValueError(f"model expects external inputs of dimension {model.input_dim}")
    like = next(model.parameters())
    series = [a.to(like) for a in series]
    if in_series is not None:
        in_series = [a.to(like) for a in in_series]

    params = list(model.parameters()) + list(obs.parameters())
    optimizer = torch.optim.RAdam(params, lr=lr_start)
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
    else:
        generator.manual_seed(int(random_state))
    history: dict[str, list[float]] = {"epoch": [], "loss": [], "alpha": [], "lr": []}
    start_epoch = 0
    # The pair is checkpointed as one module so weights, optimizer and sampler travel in one training state.
    modules = nn.ModuleDict({"latent": model, "observation": obs})
    run_config = {
        "model": type(model).__name__, "observation": type(obs).__name__, "batches_per_epoch": batches_per_epoch,
        "sequence_length": sequence_length, "batch_size": batch_size, "lr_start": lr_start, "lr_end": lr_end,
        "alpha": alpha, "alpha_method": method, "alpha_decay": alpha_decay,
        "alpha_update_interval": alpha_update_interval, "forcing": forcing, "interval": interval,
        "partial": partial, "lat_reg": lat_reg, "obs_reg": obs_reg, "gradient_clip": gradient_clip,
    }
    if resume_from is not None:
        saved = load_checkpoint(resume_from, kind=CHECKPOINT_KIND, config=run_config)
        start_epoch = restore_training_state(saved.state, modules, optimizer, generators={"batches": generator})
        current_alpha = float(saved.state["alpha"])
        history = {k: list(v) for k, v in saved.state["history"].items()}
        if start_epoch >= epochs:
            raise ValueError(f"checkpoint is at epoch {start_epoch}, nothing left of epochs={epochs}")

    def save(epoch: int) -> None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        state = training_state(modules, optimizer, step=epoch, generators={"batches": generator},
                               alpha=current_alpha, history=history)
        save_checkpoint(os.path.join(checkpoint_dir, f"checkpoint_{epoch:05d}.pt"), state, kind=CHECKPOINT_KIND,
                        config=run_config)

    bar = tqdm(range(start_epoch, epochs), disable=not progress, desc="GTF", unit="epoch")
    begin = time.perf_counter()
    for epoch in bar:
        elapsed = time.perf_counter() - begin
        lr = _lr(max(epoch / epochs, 0.0 if max_time is None else elapsed / max_time), lr_start, lr_end)
        for group in optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for b in range(batches_per_epoch):
            which, starts = _sample_windows(series, window, batch_size, generator)
            x = _gather(series, which, starts, window)
            s = _gather(in_series, which, starts, window) if in_series is not None else None
            z_hat = forcing_signals(obs, x)
            if forcing == "gtf" and method != "constant" and (b + 1) % alpha_update_interval == 0:
                estimate, _ = estimate_alpha(model, z_hat[:, 1:], method)
                current_alpha = update_alpha(current_alpha, estimate, alpha_decay)
            loss = gtf_loss(
                model, obs, x, current_alpha, s,
                forcing=forcing, interval=interval, partial=partial, z_hat=z_hat,
            )
            if lat_reg > 0:
                loss = loss + lat_reg * model.regularization()
            if obs_reg > 0:
                loss = loss + obs_reg * obs.regularization()
            if not bool(torch.isfinite(loss)):
                raise FloatingPointError(_diverged(f"loss is {float(loss.detach())}", epoch + 1, b + 1, forcing))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if gradient_clip > 0:
                _clip_per_tensor(params, gradient_clip)
            optimizer.step()
            if not all(bool(torch.isfinite(p).all()) for p in params):
                raise FloatingPointError(_diverged("parameters became NaN/inf", epoch + 1, b + 1, forcing))
            total += float(loss.detach())
        history["epoch"].append(epoch + 1)
        history["loss"].append(total / batches_per_epoch)
        history["alpha"].append(current_alpha)
        history["lr"].append(lr)
        bar.set_postfix(loss=f"{history['loss'][-1]:.4g}", alpha=f"{current_alpha:.3f}")
        if callback is not None:
            callback(epoch + 1, history)
        out_of_time = max_time is not None and time.perf_counter() - begin > max_time
        if checkpoint_dir is not None and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs or out_of_time):
            save(epoch + 1)
        if out_of_time:
            break
    bar.close()
    return history


def _diverged(what: str, epoch: int, batch: int, forcing: str) -> str:
    hint = "a larger alpha (or alpha='adaptive')" if forcing == "gtf" else "forcing='gtf' or a shorter interval"
    return (
        f"training diverged in epoch {epoch}, batch {batch}: {what}. This usually means exploding "
        f"gradients; try a lower lr_start, gradient_clip > 0 or {hint}."
    )
