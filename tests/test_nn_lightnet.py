"""LightNet's additive-recurrence mixer against a float64 softmax reference, and the properties it rests on."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqcore.nn import GatedLinearAttention, LightNetAttention, MixerCache, rotate


def make(bidirectional: bool, seed: int = 0, **kwargs) -> LightNetAttention:
    torch.manual_seed(seed)
    return LightNetAttention(24, num_heads=3, bidirectional=bidirectional, gate_low_rank=4, **kwargs)


def reference(mixer: LightNetAttention, x: torch.Tensor, angles: torch.Tensor | None) -> torch.Tensor:
    """Step by step in float64: token t reads ``sum_{s<=t} softmax_{s<=t}(k)_s v_s`` (all s when bidirectional)."""
    m = mixer.double()
    x = x.double()
    b, t, _ = x.shape
    heads = lambda z: z.unflatten(-1, (m.num_heads, -1))  # noqa: E731
    q, k, v = F.silu(heads(m.q_proj(x))), heads(m.k_proj(x)), heads(m.v_proj(x))
    theta = None if angles is None else angles.double()
    qr = rotate(q, theta)
    out = torch.zeros(b, t, m.num_heads, v.shape[-1], dtype=torch.float64)
    for i in range(t):
        seen = t if m.bidirectional else i + 1
        weights = torch.softmax(k[:, :seen], dim=1)
        keys = rotate(weights, None if theta is None else theta[:seen])
        state = torch.einsum("bshk,bshv->bhkv", keys, v[:, :seen])
        out[:, i] = m.scale * torch.einsum("bhk,bhkv->bhv", qr[:, i], state)
    o = m.out_norm(out).flatten(-2) * torch.sigmoid(m.gate_up(m.gate_down(x)))
    return m.out_proj(o)


def grid_angles(t: int, k: int) -> torch.Tensor:
    return torch.arange(t, dtype=torch.float64)[:, None] * torch.logspace(0, -2, k, dtype=torch.float64)[None]


@pytest.mark.parametrize("lrpe", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_the_float64_step_reference(bidirectional: bool, lrpe: bool) -> None:
    mixer = make(bidirectional)
    x = 2.0 * torch.randn(2, 37, 24)
    angles = grid_angles(37, mixer.head_k) if lrpe else None
    out32 = mixer(x, angles=None if angles is None else angles.float())
    ref = reference(mixer, x, angles)  # turns the mixer into float64
    out64 = mixer(x.double(), angles=angles)
    torch.testing.assert_close(out64, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out32.double(), ref, rtol=2e-4, atol=2e-5)


def test_global_state_equals_the_causal_final_state() -> None:
    """The additive recurrence ends where the non-causal product starts: the last token reads the same state."""
    causal, glob = make(False), make(True)
    x = torch.randn(2, 29, 24)
    angles = grid_angles(29, causal.head_k).float()
    torch.testing.assert_close(causal(x, angles=angles)[:, -1], glob(x, angles=angles)[:, -1], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(causal(x)[:, 0], glob(x)[:, 0], atol=1e-3)


def test_token_order_does_not_change_the_global_state() -> None:
    """Shuffle the tokens (angles travel with them): LightNet's outputs are shuffled alike; a multiplicative decay's
    are not, which is why decay models need several scan orders over an image."""
    x = torch.randn(1, 40, 24)
    angles = grid_angles(40, 8).float()
    perm = torch.randperm(40)
    light = make(True)
    torch.testing.assert_close(light(x[:, perm], angles=angles[perm]), light(x, angles=angles)[:, perm],
                               rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    gla = GatedLinearAttention(24, num_heads=3, bidirectional=True)
    assert not torch.allclose(gla(x[:, perm]), gla(x)[:, perm], atol=1e-3)


def test_lrpe_scores_depend_only_on_offsets() -> None:
    q, k = torch.randn(1, 6, 1, 5), torch.randn(1, 6, 1, 5)
    theta = torch.rand(6, 5) * 6
    shift = torch.rand(1, 5) * 10
    scores = torch.einsum("bihd,bjhd->bij", rotate(q, theta), rotate(k, theta))
    shifted = torch.einsum("bihd,bjhd->bij", rotate(q, theta + shift), rotate(k, theta + shift))
    torch.testing.assert_close(scores, shifted, rtol=1e-4, atol=1e-4)
    assert rotate(q, None) is q


def test_decoding_with_angles_equals_the_full_forward() -> None:
    mixer = make(False)
    x = torch.randn(2, 13, 24)
    angles = grid_angles(13, mixer.head_k).float()
    full = mixer(x, angles=angles)
    cache, parts = MixerCache(), []
    for start, end in ((0, 5), (5, 6), (6, 13)):
        y, cache = mixer(x[:, start:end], cache=cache, angles=angles[start:end])
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.seen == 13 and cache.aux["lse"].shape == (2, 3, 8)


def test_gradients_reach_every_parameter() -> None:
    for bidirectional in (False, True):
        mixer = make(bidirectional)
        x = torch.randn(2, 9, 24, requires_grad=True)
        mixer(x, angles=grid_angles(9, 8).float()).square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mixer.parameters())


def test_bad_inputs() -> None:
    mixer = make(False)
    with pytest.raises(ValueError, match="angles must have shape"):
        mixer(torch.randn(1, 5, 24), angles=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="x must have shape"):
        mixer(torch.randn(1, 5, 23))
    with pytest.raises(ValueError, match="cannot decode"):
        make(True)(torch.randn(1, 5, 24), cache=MixerCache())
    with pytest.raises(ValueError, match="gate_low_rank"):
        LightNetAttention(24, 3, gate_low_rank=0)
