"""Float64 step-by-step references written independently of seqcore's backends.

Each sequence is sliced out and looped over on its own, ``reverse`` is an explicit flip, and the transitions
are formed as explicit matrices, so the references share no code path with the library.
"""
from __future__ import annotations

import torch


def _sequences(batch, length, cu_seqlens):
    if cu_seqlens is None:
        return [(b, 0, length) for b in range(batch)]
    cu = cu_seqlens.tolist()
    return [(0, s, e) for s, e in zip(cu, cu[1:])]


def _assemble(pieces, batch, cu_seqlens):
    if cu_seqlens is None:
        return torch.stack(pieces)
    return torch.cat(pieces).unsqueeze(0)


def _run(step, inputs, initial_state, cu_seqlens, reverse, zero_state):
    first = next(iter(inputs.values()))
    batch, length = first.shape[:2]
    outs, finals = [], []
    for n, (b, s, e) in enumerate(_sequences(batch, length, cu_seqlens)):
        seq = {name: None if t is None else t[b, s:e] for name, t in inputs.items()}
        if reverse:
            seq = {name: None if t is None else t.flip(0) for name, t in seq.items()}
        state = zero_state() if initial_state is None else initial_state[n]
        ys = []
        for t in range(e - s):
            state, y = step(state, {name: None if x is None else x[t] for name, x in seq.items()})
            ys.append(y)
        y = torch.stack(ys)
        outs.append(y.flip(0) if reverse else y)
        finals.append(state)
    return _assemble(outs, batch, cu_seqlens), torch.stack(finals)


def scan_ref(x, a, initial_state=None, cu_seqlens=None, reverse=False):
    def step(h, z):
        h = z["a"] * h + z["x"]
        return h, h

    return _run(step, {"x": x, "a": a}, initial_state, cu_seqlens, reverse, lambda: x.new_zeros(x.shape[-1]))


def gla_ref(q, k, v, g=None, scale=None, initial_state=None, cu_seqlens=None, reverse=False):
    h, dk, dv = q.shape[2], q.shape[3], v.shape[3]
    scale = dk**-0.5 if scale is None else scale

    def step(state, z):
        if z["g"] is not None:
            decay = z["g"].exp()
            decay = decay if decay.dim() == 2 else decay[:, None].expand(h, dk)
            state = torch.diag_embed(decay) @ state
        state = state + torch.einsum("hk,hv->hkv", z["k"], z["v"])
        return state, scale * (state.transpose(1, 2) @ z["q"][..., None])[..., 0]

    return _run(step, {"q": q, "k": k, "v": v, "g": g}, initial_state, cu_seqlens, reverse, lambda: q.new_zeros(h, dk, dv))


def delta_rule_ref(q, k, v, beta, g=None, scale=None, initial_state=None, cu_seqlens=None, reverse=False):
    h, dk, dv = q.shape[2], q.shape[3], v.shape[3]
    scale = dk**-0.5 if scale is None else scale
    eye = torch.eye(dk, dtype=q.dtype)

    def step(state, z):
        kk = z["k"][:, :, None] * z["k"][:, None, :]
        transition = eye - z["beta"][:, None, None] * kk
        if z["g"] is not None:
            transition = z["g"].exp()[:, None, None] * transition
        state = transition @ state + z["beta"][:, None, None] * torch.einsum("hk,hv->hkv", z["k"], z["v"])
        return state, scale * (state.transpose(1, 2) @ z["q"][..., None])[..., 0]

    inputs = {"q": q, "k": k, "v": v, "beta": beta, "g": g}
    return _run(step, inputs, initial_state, cu_seqlens, reverse, lambda: q.new_zeros(h, dk, dv))
