"""Token mixers: shapes, causality, both directions, packed sequences, decoding, training, registry."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from seqcore.nn import MIXERS, MixerCache, ShortConvolution, build_mixer, register_mixer
from seqcore.nn.base import RecurrentMixer

NAMES = sorted(MIXERS)
DIM, HEADS = 32, 4


def make(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return build_mixer(name, DIM, num_heads=HEADS, **kwargs).eval()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shape_and_dtype(name: str, dtype: torch.dtype):
    mixer = make(name).to(dtype)
    x = torch.randn(2, 23, DIM, dtype=dtype)
    y = mixer(x)
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_causal(name: str):
    mixer = make(name)
    x = torch.randn(2, 30, DIM)
    changed = x.clone()
    changed[:, 17:] = torch.randn(2, 13, DIM)
    y, y_changed = mixer(x), mixer(changed)
    assert torch.allclose(y[:, :17], y_changed[:, :17], atol=1e-6)
    assert not torch.allclose(y[:, 17:], y_changed[:, 17:], atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_sees_both_directions(name: str):
    mixer = make(name, bidirectional=True)
    x = torch.randn(1, 30, DIM)
    changed = x.clone()
    changed[:, 15] += 1.0
    moved = (mixer(changed) - mixer(x)).abs().amax(dim=-1)[0]
    # Decays may be fast (HGRN's gates start near 0.5), so look at the neighbours on either side.
    assert moved[12:15].min() > 1e-4 and moved[16:19].min() > 1e-4


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_packed_equals_separate(name: str, bidirectional: bool):
    mixer = make(name, bidirectional=bidirectional)
    lengths = [1, 9, 30, 4]
    seqs = [torch.randn(1, n, DIM) for n in lengths]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    packed = mixer(torch.cat(seqs, dim=1), cu_seqlens=cu)
    separate = torch.cat([mixer(s) for s in seqs], dim=1)
    assert torch.allclose(packed, separate, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_decoding_equals_full_forward(name: str):
    mixer = make(name)
    x = torch.randn(2, 21, DIM)
    full = mixer(x)
    # A prefill of 6 tokens, then one token at a time: convolution and recurrence state both carry over.
    out, cache = mixer(x[:, :6], cache=MixerCache())
    outs = [out]
    for t in range(6, 21):
        out, cache = mixer(x[:, t : t + 1], cache=cache)
        outs.append(out)
    assert cache.seen == 21
    assert torch.allclose(torch.cat(outs, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_trains_without_nan(name: str, dtype: torch.dtype):
    mixer = make(name).train().to(dtype)
    opt = torch.optim.AdamW(mixer.parameters(), lr=1e-2)
    x, target = torch.randn(4, 40, DIM, dtype=dtype), torch.randn(4, 40, DIM, dtype=dtype)
    losses = []
    for _ in range(5):
        loss = (mixer(x) - target).float().square().mean()
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in mixer.parameters() if p.grad is not None)
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_registry_errors_and_third_party_mixers():
    with pytest.raises(ValueError, match="unknown mixer 'nope'; known mixers: attention, deltanet, gated_deltanet, gla"):
        build_mixer("nope", DIM)
    with pytest.raises(ValueError, match="already registered"):
        register_mixer("gla")(type("Other", (nn.Module,), {}))

    @register_mixer("test_identity")
    class Identity(nn.Module):
        def __init__(self, dim: int, num_heads: int = 1) -> None:
            super().__init__()

        def forward(self, x, cu_seqlens=None, cache=None):
            return x

    try:
        assert isinstance(build_mixer("test_identity", DIM), Identity)
    finally:
        del MIXERS["test_identity"]


def test_mixer_input_errors():
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, C=32\)"):
        make("gla")(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="cannot decode step by step"):
        make("gla", bidirectional=True)(torch.randn(1, 3, DIM), cache=MixerCache())
    with pytest.raises(ValueError, match="not packed cu_seqlens"):
        make("gla")(torch.randn(1, 3, DIM), cu_seqlens=torch.tensor([0, 3]), cache=MixerCache())
    with pytest.raises(ValueError, match="feature_map must be one of"):
        build_mixer("linear_attn", DIM, feature_map="softmax")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        build_mixer("gla", 30, num_heads=4)


def test_short_convolution_packed_and_cached():
    torch.manual_seed(0)
    conv = ShortConvolution(6, kernel_size=4)
    a, b = torch.randn(1, 5, 6), torch.randn(1, 2, 6)
    packed, _ = conv(torch.cat([a, b], dim=1), cu_seqlens=torch.tensor([0, 5, 7]))
    assert torch.allclose(packed, torch.cat([conv(a)[0], conv(b)[0]], dim=1), atol=1e-6)
    first, cache = conv(a[:, :3])
    rest, _ = conv(a[:, 3:], cache=cache)
    assert torch.allclose(torch.cat([first, rest], dim=1), conv(a)[0], atol=1e-6)


def test_negative_eigenvalue_options_change_the_transition():
    x = torch.randn(1, 12, DIM)
    for name in ("hgrn", "mamba2", "deltanet", "gated_deltanet"):
        plain, signed = make(name), make(name, allow_neg_eigval=True)
        assert isinstance(signed, RecurrentMixer) and signed.allow_neg_eigval
        assert not torch.allclose(plain(x), signed(x))


RECURRENT_NAMES = [n for n in NAMES if issubclass(MIXERS[n], RecurrentMixer)]


@pytest.mark.triton
@pytest.mark.parametrize("name", RECURRENT_NAMES)
def test_chunked_triton_kernels_run_every_mixer(name: str):
    """Every recurrent mixer runs on the chunked Triton kernels through the same API (70 steps: two chunks),
    forward and backward, and matches the PyTorch chunk backend."""
    x = torch.randn(2, 70, DIM, generator=torch.Generator().manual_seed(1))
    results = []
    for backend in ("chunk", "triton_chunk"):
        mixer = make(name, backend=backend)
        inputs = x.clone().requires_grad_()
        out = mixer(inputs)
        out.square().sum().backward()
        results.append((out.detach(), inputs.grad))
    (out_chunk, grad_chunk), (out_triton, grad_triton) = results
    torch.testing.assert_close(out_triton, out_chunk, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad_triton, grad_chunk, rtol=1e-4, atol=1e-5)
