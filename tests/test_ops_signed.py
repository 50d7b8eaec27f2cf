"""gla_signed: linear attention with per-head decays in [-1, 1], against a float64 step loop."""
from __future__ import annotations

import pytest
import torch

import seqcore.ops as ops
from opcases import new_seed, rel_err


def signed_ref(q, k, v, a, initial_state, cu_seqlens, reverse):
    scale = q.shape[-1] ** -0.5
    outs, finals = [], []
    bounds = cu_seqlens.tolist()
    for n, (s, e) in enumerate(zip(bounds, bounds[1:])):
        steps = range(e - 1, s - 1, -1) if reverse else range(s, e)
        state = initial_state[n].clone()
        out = torch.zeros(e - s, *v.shape[2:], dtype=q.dtype)
        for t in steps:
            state = a[0, t, :, None, None] * state + torch.einsum("hk,hv->hkv", k[0, t], v[0, t])
            out[t - s] = scale * torch.einsum("hk,hkv->hv", q[0, t], state)
        outs.append(out)
        finals.append(state)
    return torch.cat(outs)[None], torch.stack(finals)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("backend", ["recurrent", "chunk"])
def test_gla_signed_matches_reference(reverse: bool, backend: str):
    seed = new_seed()
    gen = torch.Generator().manual_seed(seed)
    lens, h, dk, dv = [1, 50, 7], 2, 5, 6
    t = sum(lens)
    cu = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
    q, k, v = (torch.randn(1, t, h, d, generator=gen, dtype=torch.float64) for d in (dk, dk, dv))
    a = torch.rand(1, t, h, generator=gen, dtype=torch.float64) * 2 - 1
    a[0, 3, 0] = 0.0  # an exact zero must stay finite
    h0 = torch.randn(3, h, dk, dv, generator=gen, dtype=torch.float64)
    ref_out, ref_final = signed_ref(q, k, v, a, h0, cu, reverse)
    leaves = [x.float().requires_grad_() for x in (q, k, v, a, h0)]
    out, final = ops.gla_signed(
        *leaves[:4], initial_state=leaves[4], cu_seqlens=cu, reverse=reverse, output_final_state=True, backend=backend
    )
    assert rel_err(out.detach(), ref_out) < 2e-5, seed
    assert rel_err(final.detach(), ref_final) < 2e-5, seed
    (out.sum() + final.sum()).backward()
    assert all(torch.isfinite(x.grad).all() for x in leaves)


def test_gla_signed_dense_batch_and_range_check():
    q, k, v = torch.randn(2, 9, 1, 3), torch.randn(2, 9, 1, 3), torch.randn(2, 9, 1, 4)
    a = -torch.ones(2, 9, 1)
    out, final = ops.gla_signed(q, k, v, a, output_final_state=True)
    ref_out, ref_final = signed_ref(
        q.reshape(1, 18, 1, 3).double(), k.reshape(1, 18, 1, 3).double(), v.reshape(1, 18, 1, 4).double(),
        a.reshape(1, 18, 1).double(), torch.zeros(2, 1, 3, 4, dtype=torch.float64), torch.tensor([0, 9, 18]), False,
    )
    assert rel_err(out.reshape(1, 18, 1, 4), ref_out) < 2e-5
    assert rel_err(final, ref_final) < 2e-5
    with pytest.raises(ValueError, match=r"a must lie in \[-1.0, 1.0\]"):
        ops.gla_signed(q, k, v, a * 1.5)
