"""Bad inputs to seqcore.nn, one row per case: every registered mixer (softmax attention and LightNet's included),
the decoding cache, the short convolution and the blocks. Each row names the entry point and the input, and
expects a named error (type and a regex on its message) or a documented result.

Decisions these rows pin down (docs/nn.md): NaN or inf in ``x`` is a ValueError in every mixer (the operators
reject a NaN gate anyway, naming the gate instead of ``x``); an empty ``x`` (``B == 0`` or ``T == 0``) gives an
empty output; a cache may be continued by any mixer of the same class and state layout (a copy or a reloaded
instance of the same layer), not by another kind of mixer, batch, dtype or device.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from bad_inputs import Documented, Raises, expect
from seqcore.distributed import enable_sequence_parallel
from seqcore.nn import (
    GLU, MIXERS, MLP, DropPath, MixerCache, SeqBlock, SeqEncoder, SeqLM, ShortConvolution, build_mixer,
)
from seqcore.nn.registry import mixer_options

DIM, HEADS = 16, 2
NAMES = sorted(MIXERS)
FLAGS = ("bidirectional", "use_short_conv", "use_output_gate", "use_output_norm", "allow_neg_eigval", "qkv_bias")
# A mixer whose cache has the same shapes, where there is one (only the writer's record can refuse its cache),
# else another kind.
OTHER = {"deltanet": "gated_deltanet", "gated_deltanet": "deltanet", "retnet": "linear_attn",
         "linear_attn": "retnet", "gla": "retnet", "mamba2": "gla", "hgrn": "mamba2", "attention": "gla",
         "lightnet": "gla"}


def mixer(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_mixer(name, DIM, num_heads=HEADS, **kwargs).eval()


def x(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=dtype)


def with_value(value: float) -> torch.Tensor:
    bad = x(2, 6, DIM)
    bad[1, 3, 5] = value
    return bad


def decode(module: torch.nn.Module, cache: MixerCache, inputs: torch.Tensor):
    return module(inputs, cache=cache)


def prefilled(name: str, batch: int = 2, **kwargs) -> tuple[torch.nn.Module, MixerCache]:
    """A mixer and its cache after 3 tokens."""
    module = mixer(name, **kwargs)
    _, cache = module(x(batch, 3, DIM), cache=MixerCache())
    return module, cache


def continued_by_a_copy(name: str) -> bool:
    """A deep copy of the mixer (as after a reload) continues the cache exactly as the original does."""
    module, cache = prefilled(name)
    step = x(2, 1, DIM)
    y, after = module(step, cache=cache)
    y_copy, after_copy = copy.deepcopy(module)(step, cache=cache)
    return torch.equal(y, y_copy) and after.seen == after_copy.seen == 4


def empty(shape: tuple[int, ...]) -> Callable[[object], bool]:
    return lambda y: isinstance(y, torch.Tensor) and tuple(y.shape) == shape


def empty_with_cache(result: object) -> bool:
    y, cache = result
    return tuple(y.shape) == (2, 0, DIM) and cache.seen == 3 and cache.batch_size == 2


def mixer_rows(name: str) -> list:
    options = mixer_options(MIXERS[name])
    cls = MIXERS[name].__name__
    other = MIXERS[OTHER.get(name, next(n for n in NAMES if n != name))].__name__
    rows = [(f"build_mixer({name!r}, {flag}='no')", lambda f=flag: mixer(name, **{f: "no"}),
             Raises(TypeError, rf"{flag} must be a bool \(True or False\), got str 'no'"))
            for flag in FLAGS if flag in options]
    rows += [
        (f"build_mixer({name!r}, {flag}=1)", lambda f=flag: mixer(name, **{f: 1}), Raises(TypeError, rf"{flag} must be a bool"))
        for flag in FLAGS[:1]
    ]
    rows += [
        (f"build_mixer({name!r}) dim=0", lambda: build_mixer(name, 0, num_heads=HEADS),
         Raises(ValueError, r"dim must be >= 1")),
        (f"build_mixer({name!r}) dim=16.0", lambda: build_mixer(name, 16.0, num_heads=HEADS),
         Raises(TypeError, r"dim must be an int >= 1, got float 16.0")),
        (f"build_mixer({name!r}) num_heads=0", lambda: build_mixer(name, DIM, num_heads=0),
         Raises(ValueError, r"num_heads must be >= 1")),
        (f"build_mixer({name!r}) dim=18 num_heads=5 (not dividing)", lambda: build_mixer(name, 18, num_heads=5),
         Raises(ValueError, r"multiple of num_heads|divisible by num_heads")),
        (f"build_mixer({name!r}) dropout=1.0", lambda: mixer(name, dropout=1.0),
         Raises(ValueError, r"dropout must lie in \[0, 1\), got 1.0")),
        (f"build_mixer({name!r}) dropout=-0.1", lambda: mixer(name, dropout=-0.1),
         Raises(ValueError, r"dropout must lie in \[0, 1\)")),
        (f"build_mixer({name!r}) dropout=nan", lambda: mixer(name, dropout=float("nan")),
         Raises(ValueError, r"dropout must lie in \[0, 1\), got nan")),
        (f"build_mixer({name!r}) unknown option", lambda: mixer(name, nope=1),
         Raises(TypeError, rf"mixer '{name}' \({cls}\) takes no option 'nope'; its options: .*dropout")),
        (f"{name}: x (T, C) rank 2", lambda: mixer(name)(x(6, DIM)), Raises(ValueError, r"x must have shape \(B, T, C=16\)")),
        (f"{name}: x rank 4", lambda: mixer(name)(x(1, 2, 6, DIM)), Raises(ValueError, r"x must have shape \(B, T, C=16\)")),
        (f"{name}: x width 8", lambda: mixer(name)(x(2, 6, 8)), Raises(ValueError, r"x must have shape \(B, T, C=16\), got \(2, 6, 8\)")),
        (f"{name}: x int64", lambda: mixer(name)(torch.ones(2, 6, DIM, dtype=torch.long)),
         Raises(TypeError, r"x must be a floating-point tensor")),
        (f"{name}: x a list", lambda: mixer(name)([[0.0] * DIM]), Raises(TypeError, r"x must be a torch.Tensor")),
        (f"{name}: x float64, parameters float32", lambda: mixer(name)(x(2, 6, DIM, dtype=torch.float64)),
         Raises(TypeError, r"x is torch.float64 but the mixer's parameters are torch.float32")),
        (f"{name}: x on another device (meta)", lambda: mixer(name)(x(2, 6, DIM).to("meta")),
         Raises(ValueError, r"x is on meta but the mixer's parameters are on cpu")),
        (f"{name}: NaN in x", lambda: mixer(name)(with_value(float("nan"))),
         Raises(ValueError, r"x must be finite, got 1 NaN or infinite values of 192")),
        (f"{name}: inf in x", lambda: mixer(name)(with_value(float("inf"))), Raises(ValueError, r"x must be finite")),
        (f"{name}: -inf in x", lambda: mixer(name)(with_value(-float("inf"))), Raises(ValueError, r"x must be finite")),
        (f"{name}: T=0", lambda: mixer(name)(x(2, 0, DIM)), Documented(empty((2, 0, DIM)), "empty (B, 0, C) output")),
        (f"{name}: B=0", lambda: mixer(name)(x(0, 5, DIM)), Documented(empty((0, 5, DIM)), "empty (0, T, C) output")),
        (f"{name}: T=0 bidirectional", lambda: mixer(name, bidirectional=True)(x(2, 0, DIM)),
         Documented(empty((2, 0, DIM)), "empty (B, 0, C) output")),
        (f"{name}: cu_seqlens a list", lambda: mixer(name)(x(1, 10, DIM), cu_seqlens=[0, 4, 10]),
         Raises(TypeError, r"cu_seqlens must be an int32 or int64 tensor")),
        (f"{name}: cu_seqlens float", lambda: mixer(name)(x(1, 10, DIM), cu_seqlens=torch.tensor([0.0, 4.0, 10.0])),
         Raises(TypeError, r"cu_seqlens must be an int32 or int64 tensor")),
        (f"{name}: cu_seqlens 2-D", lambda: mixer(name)(x(1, 10, DIM), cu_seqlens=torch.tensor([[0, 4, 10]])),
         Raises(ValueError, r"cu_seqlens must be 1-D")),
        (f"{name}: cu_seqlens with B=2", lambda: mixer(name)(x(2, 10, DIM), cu_seqlens=torch.tensor([0, 4, 10])),
         Raises(ValueError, r"batch size must be 1, got B=2")),
        (f"{name}: cu_seqlens not ending at T", lambda: mixer(name)(x(1, 10, DIM), cu_seqlens=torch.tensor([0, 4, 9])),
         Raises(ValueError, r"cu_seqlens must end at T=10")),
        (f"{name}: cu_seqlens not increasing", lambda: mixer(name)(x(1, 10, DIM), cu_seqlens=torch.tensor([0, 6, 4, 10])),
         Raises(ValueError, r"cu_seqlens must be strictly increasing")),
        (f"{name}: packed T=0", lambda: mixer(name)(x(1, 0, DIM), cu_seqlens=torch.tensor([0])),
         Raises(ValueError, r"cu_seqlens must be 1-D with at least 2 entries")),
        (f"{name}: cache on a bidirectional mixer", lambda: mixer(name, bidirectional=True)(x(1, 3, DIM), cache=MixerCache()),
         Raises(ValueError, r"cannot decode step by step")),
        (f"{name}: cache with cu_seqlens",
         lambda: mixer(name)(x(1, 3, DIM), cu_seqlens=torch.tensor([0, 3]), cache=MixerCache()),
         Raises(ValueError, r"not packed cu_seqlens")),
        (f"{name}: cache a dict", lambda: mixer(name)(x(1, 3, DIM), cache={}), Raises(TypeError, r"cache must be a MixerCache")),
        (f"{name}: cache written by {OTHER.get(name)}",
         lambda: decode(mixer(name), prefilled(OTHER.get(name, "gla"))[1], x(2, 1, DIM)),
         Raises(ValueError, rf"the cache was written by {other}\(.*not by this mixer \({cls}\(")),
        (f"{name}: cache reused with batch 3", lambda: decode(*prefilled(name), x(3, 1, DIM)),
         Raises(ValueError, r"the cache was written for batch size 2, got x with B=3")),
        (f"{name}: cache reused in float64",
         lambda: decode(prefilled(name)[0].double(), prefilled(name)[1], x(2, 1, DIM, dtype=torch.float64)),
         Raises(ValueError, r"the cache was written for torch.float32 inputs, got x of torch.float64")),
        (f"{name}: cache reused on another device (meta)",
         lambda: decode(prefilled(name)[0].to("meta"), prefilled(name)[1], x(2, 1, DIM).to("meta")),
         Raises(ValueError, r"the cache was written for inputs on cpu, got x on meta")),
        (f"{name}: hand-made cache with a state",
         lambda: mixer(name)(x(2, 1, DIM), cache=MixerCache(state=torch.zeros(2, 2, 8, 8))),
         Raises(ValueError, r"no record of the mixer that wrote it")),
        (f"{name}: cache.seen=-1", lambda: mixer(name)(x(2, 1, DIM), cache=MixerCache(seen=-1)),
         Raises(ValueError, r"cache.seen must be >= 0, got -1")),
        (f"{name}: T=0 with a cache", lambda: decode(*prefilled(name), x(2, 0, DIM)),
         Documented(empty_with_cache, "empty output, cache unchanged")),
        (f"{name}: cache continued by a copy of the mixer", lambda: continued_by_a_copy(name),
         Documented(lambda ok: ok is True, "accepted: same class and state layout")),
    ]
    if "backend" in options:
        rows.append((f"build_mixer({name!r}) backend='fast'", lambda: mixer(name, backend="fast"),
                     Raises(ValueError, r"backend must be one of auto, recurrent, chunk, triton, triton_chunk, triton_recurrent, got 'fast'")))
    if "conv_size" in options:
        rows.append((f"build_mixer({name!r}) conv_size=0", lambda: mixer(name, conv_size=0),
                     Raises(ValueError, r"conv_size must be >= 1")))
    if "norm_eps" in options:
        rows.append((f"build_mixer({name!r}) norm_eps=0", lambda: mixer(name, norm_eps=0.0),
                     Raises(ValueError, r"norm_eps must be a finite number > 0")))
    return rows


def angles(*shape: int, dtype: torch.dtype = torch.float32, fill: float | None = None) -> torch.Tensor:
    theta = torch.rand(*shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    if fill is not None:
        theta[0, 0] = fill
    return theta


def encoder_with_swapped_caches() -> bool:
    """Two blocks of the same kind: their caches are interchangeable by class and layout (not detected)."""
    encoder = SeqEncoder(DIM, 2, "gla", HEADS).eval()
    _, caches = encoder(x(1, 3, DIM), caches=encoder.init_caches())
    y, _ = encoder(x(1, 1, DIM), caches=caches[::-1])
    return y.shape == (1, 1, DIM)


OTHER_ROWS = [
    ("build_mixer name 'nope'", lambda: build_mixer("nope", DIM),
     Raises(ValueError, r"unknown mixer 'nope'; known mixers: attention, deltanet, gated_deltanet, gla")),
    ("build_mixer name 3", lambda: build_mixer(3, DIM), Raises(TypeError, r"mixer name must be a str \(one of attention")),
    ("build_mixer('gla') expand_k=nan", lambda: mixer("gla", expand_k=float("nan")),
     Raises(ValueError, r"expand_k must be a finite number > 0")),
    ("build_mixer('gla') gate_low_rank=0", lambda: mixer("gla", gate_low_rank=0), Raises(ValueError, r"gate_low_rank must be >= 1")),
    ("build_mixer('gla') gate_logit_normalizer=nan", lambda: mixer("gla", gate_logit_normalizer=float("nan")),
     Raises(ValueError, r"gate_logit_normalizer must be a finite number > 0")),
    ("build_mixer('hgrn') lower_bound=1.0", lambda: mixer("hgrn", lower_bound=1.0), Raises(ValueError, r"lower_bound must lie in \[0, 1\)")),
    ("build_mixer('hgrn') expand=0", lambda: mixer("hgrn", expand=0), Raises(ValueError, r"expand must be a finite number > 0")),
    ("build_mixer('mamba2') state_size=0", lambda: mixer("mamba2", state_size=0), Raises(ValueError, r"state_size must be >= 1")),
    ("build_mixer('linear_attn') feature_map='softmax'", lambda: mixer("linear_attn", feature_map="softmax"),
     Raises(ValueError, r"feature_map must be one of \['elu\+1', 'identity', 'relu', 'silu'\]")),
    ("build_mixer('lightnet') gate_low_rank=0", lambda: mixer("lightnet", gate_low_rank=0), Raises(ValueError, r"gate_low_rank must be >= 1")),
    ("lightnet: angles of the wrong shape", lambda: mixer("lightnet")(x(2, 6, DIM), angles=angles(5, 8)),
     Raises(ValueError, r"angles must have shape \(T, K\) = \(6, 8\) or \(B, T, K\), got \(5, 8\)")),
    ("lightnet: angles int64", lambda: mixer("lightnet")(x(2, 6, DIM), angles=angles(6, 8, dtype=torch.long)),
     Raises(TypeError, r"angles must be a floating-point tensor")),
    ("lightnet: NaN angle", lambda: mixer("lightnet")(x(2, 6, DIM), angles=angles(6, 8, fill=float("nan"))),
     Raises(ValueError, r"angles must be finite")),
    ("ShortConvolution channels=0", lambda: ShortConvolution(0), Raises(ValueError, r"channels must be >= 1")),
    ("ShortConvolution kernel_size=0", lambda: ShortConvolution(4, kernel_size=0), Raises(ValueError, r"kernel_size must be >= 1")),
    ("ShortConvolution activation='relu'", lambda: ShortConvolution(4, activation="relu"),
     Raises(ValueError, r"activation must be 'silu' or None, got 'relu'")),
    ("ShortConvolution x width 3", lambda: ShortConvolution(4)(x(1, 5, 3)), Raises(ValueError, r"x must have shape \(B, T, C=4\)")),
    ("ShortConvolution x int64", lambda: ShortConvolution(4)(torch.ones(1, 5, 4, dtype=torch.long)),
     Raises(TypeError, r"x must be a floating-point tensor")),
    ("ShortConvolution cache of the wrong shape", lambda: ShortConvolution(4)(x(1, 5, 4), cache=x(1, 2, 4)),
     Raises(ValueError, r"cache must have shape \(B, kernel_size - 1, C\) = \(1, 3, 4\), got \(1, 2, 4\)")),
    ("ShortConvolution cu_seqlens a list", lambda: ShortConvolution(4)(x(1, 5, 4), cu_seqlens=[0, 5]),
     Raises(TypeError, r"cu_seqlens must be an int32 or int64 tensor")),
    ("SeqBlock ffn='moe'", lambda: SeqBlock(DIM, ffn="moe", num_heads=HEADS), Raises(ValueError, r"ffn must be 'glu', 'mlp' or None")),
    ("SeqBlock ffn_ratio=0", lambda: SeqBlock(DIM, num_heads=HEADS, ffn_ratio=0), Raises(ValueError, r"ffn_ratio must be a finite number > 0")),
    ("SeqBlock drop_path=1.0", lambda: SeqBlock(DIM, num_heads=HEADS, drop_path=1.0),
     Raises(ValueError, r"drop path probability\) must lie in \[0, 1\)")),
    ("SeqBlock dropout=1.5", lambda: SeqBlock(DIM, num_heads=HEADS, dropout=1.5), Raises(ValueError, r"dropout must lie in \[0, 1\)")),
    ("SeqBlock norm_eps=-1", lambda: SeqBlock(DIM, num_heads=HEADS, norm_eps=-1.0), Raises(ValueError, r"norm_eps must be a finite number > 0")),
    ("SeqBlock mixer_kwargs a list", lambda: SeqBlock(DIM, num_heads=HEADS, mixer_kwargs=["bidirectional"]),
     Raises(TypeError, r"mixer_kwargs must be a dict of mixer options or None, got list")),
    ("SeqBlock mixer_kwargs with an unknown option",
     lambda: SeqBlock(DIM, "retnet", HEADS, mixer_kwargs={"allow_neg_eigval": True}),
     Raises(TypeError, r"mixer 'retnet' \(RetNet\) takes no option 'allow_neg_eigval'")),
    ("SeqBlock mixer_kwargs bidirectional='no'", lambda: SeqBlock(DIM, "gla", HEADS, mixer_kwargs={"bidirectional": "no"}),
     Raises(TypeError, r"bidirectional must be a bool")),
    ("SeqBlock mixer 'nope'", lambda: SeqBlock(DIM, "nope", HEADS), Raises(ValueError, r"unknown mixer 'nope'; known mixers")),
    ("SeqBlock dim=0", lambda: SeqBlock(0, num_heads=HEADS), Raises(ValueError, r"dim must be >= 1")),
    ("SeqBlock: x width 8", lambda: SeqBlock(DIM, num_heads=HEADS)(x(2, 5, 8)), Raises(ValueError, r"x must have shape \(B, T, C=16\)")),
    ("SeqBlock: x int64", lambda: SeqBlock(DIM, num_heads=HEADS)(torch.ones(2, 5, DIM, dtype=torch.long)),
     Raises(TypeError, r"x must be a floating-point tensor")),
    ("SeqBlock: NaN in x", lambda: SeqBlock(DIM, num_heads=HEADS)(with_value(float("nan"))), Raises(ValueError, r"x must be finite")),
    ("SeqBlock: T=0", lambda: SeqBlock(DIM, num_heads=HEADS)(x(2, 0, DIM)), Documented(empty((2, 0, DIM)), "empty output")),
    ("SeqEncoder depth=0", lambda: SeqEncoder(DIM, 0), Raises(ValueError, r"depth must be >= 1")),
    ("SeqEncoder depth=2.0", lambda: SeqEncoder(DIM, 2.0), Raises(TypeError, r"depth must be an int >= 1, got float")),
    ("SeqEncoder drop_path=1.0", lambda: SeqEncoder(DIM, 2, drop_path=1.0), Raises(ValueError, r"drop_path must lie in \[0, 1\)")),
    ("SeqEncoder final_norm='yes'", lambda: SeqEncoder(DIM, 2, final_norm="yes"), Raises(TypeError, r"final_norm must be a bool")),
    ("SeqEncoder unknown block option", lambda: SeqEncoder(DIM, 2, nope=1), Raises(TypeError, r"unexpected keyword argument 'nope'")),
    ("SeqEncoder: caches [] for 2 blocks", lambda: SeqEncoder(DIM, 2, num_heads=HEADS)(x(1, 3, DIM), caches=[]),
     Raises(ValueError, r"expected 2 caches \(one per block\), got 0")),
    ("SeqEncoder: caches a MixerCache", lambda: SeqEncoder(DIM, 2, num_heads=HEADS)(x(1, 3, DIM), caches=MixerCache()),
     Raises(TypeError, r"caches must be a list of MixerCache")),
    ("SeqEncoder: the two blocks' caches swapped", encoder_with_swapped_caches,
     Documented(lambda ok: ok is True, "accepted: blocks of one kind and layout share a cache format")),
    ("SeqEncoder: NaN in x", lambda: SeqEncoder(DIM, 2, num_heads=HEADS)(with_value(float("nan"))), Raises(ValueError, r"x must be finite")),
    ("SeqEncoder: B=0", lambda: SeqEncoder(DIM, 2, num_heads=HEADS)(x(0, 4, DIM)), Documented(empty((0, 4, DIM)), "empty output")),
    ("SeqLM vocab_size=0", lambda: SeqLM(0, DIM, 1, num_heads=HEADS), Raises(ValueError, r"vocab_size must be >= 1")),
    ("SeqLM tie_weights='no'", lambda: SeqLM(11, DIM, 1, num_heads=HEADS, tie_weights="no"), Raises(TypeError, r"tie_weights must be a bool")),
    ("SeqLM: float tokens", lambda: SeqLM(11, DIM, 1, num_heads=HEADS)(x(2, 4)), Raises(ValueError, r"tokens must be an integer tensor \(B, T\)")),
    ("SeqLM: tokens (T,)", lambda: SeqLM(11, DIM, 1, num_heads=HEADS)(torch.zeros(4, dtype=torch.long)),
     Raises(ValueError, r"tokens must be an integer tensor \(B, T\), got \(4,\)")),
    ("SeqLM: token id == vocab_size", lambda: SeqLM(11, DIM, 1, num_heads=HEADS)(torch.tensor([[1, 11]])),
     Raises(ValueError, r"tokens must lie in \[0, vocab_size=11\), got values in \[1, 11\]")),
    ("SeqLM: negative token id", lambda: SeqLM(11, DIM, 1, num_heads=HEADS)(torch.tensor([[-1, 2]])),
     Raises(ValueError, r"tokens must lie in \[0, vocab_size=11\)")),
    ("SeqLM: T=0", lambda: SeqLM(11, DIM, 1, num_heads=HEADS)(torch.zeros(2, 0, dtype=torch.long)),
     Documented(empty((2, 0, 11)), "empty (B, 0, vocab) logits")),
    ("DropPath p=nan", lambda: DropPath(float("nan")), Raises(ValueError, r"drop path probability\) must lie in \[0, 1\)")),
    ("DropPath p='0.1'", lambda: DropPath("0.1"), Raises(TypeError, r"must be a number in \[0, 1\), got str")),
    ("MLP hidden=0", lambda: MLP(DIM, 0), Raises(ValueError, r"hidden must be >= 1")),
    ("GLU dropout=1.0", lambda: GLU(DIM, 8, dropout=1.0), Raises(ValueError, r"dropout must lie in \[0, 1\)")),
    ("enable_sequence_parallel model a str", lambda: enable_sequence_parallel("model", None),
     Raises(TypeError, r"model must be a torch.nn.Module, got str")),
]

ROWS = [row for name in NAMES for row in mixer_rows(name)] + OTHER_ROWS


@pytest.mark.parametrize("run, expected", [pytest.param(run, expected, id=entry) for entry, run, expected in ROWS])
def test_bad_input(run: Callable[[], object], expected: Raises | Documented):
    expect(run, expected)


def test_every_registered_mixer_has_rows():
    covered = {entry.split(":")[0] for entry, _, _ in ROWS}
    assert set(NAMES) <= covered and {"SeqBlock", "SeqEncoder", "SeqLM"} <= covered
