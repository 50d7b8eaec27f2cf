"""Chunkwise-parallel gated linear attention in PyTorch.

Per chunk of ``C`` steps with in-chunk cumulative log decay ``b`` (``b_t = sum_{s<=t} g_s``):

    O  = scale * (Q * e^b) S + scale * ((Q K^T) * Gamma) V,      Gamma_ij = e^{b_i - b_j}, j <= i
    S' = e^{b_C} S + (K * e^{b_C - b})^T V

Only one state per chunk is kept. Every exponent evaluated is <= 0, so strong decays underflow to zero
instead of overflowing. Per-key gates make ``Gamma`` depend on the key channel; it is then built from
sub-chunks: between sub-chunks through a reference point at the start of the later one, inside a sub-chunk
pairwise in log space. Sub-chunks of 4 inside chunks of 16 measured fastest on the CPU (the pairwise tensors
are 4x the size of ``k``).

A log decay of ``-inf`` resets the state. Per-key prefix sums would turn it into ``-inf - (-inf) = NaN``, so
when a gate holds one (checked once per call) ``b`` is the prefix sum of the finite decays only, ``r`` counts the
resets up to each step, and a decay from step ``j`` to step ``i`` is ``e^{b_i - b_j}`` if ``r_i == r_j`` and 0
otherwise. The finite path keeps exactly the prefix sums it had, so nothing of its float32 precision is lost.
Per-head gates sum each segment directly (:func:`~seqcore.ops.chunk_common.segment_sums`), where ``-inf`` only
ever adds, and need no such care.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..chunk_common import causal_mask, from_chunks, pairwise_decay, segment_sums, to_chunks

SUB_CHUNK = 4


def _span(b_late: Tensor, b_early: Tensor, r_late: Tensor | None, r_early: Tensor | None) -> Tensor:
    """Log decay ``b_late - b_early`` from an earlier step to a later one; ``-inf`` if a reset lies between.

    ``r`` counts the resets up to each step (``None``: the gate holds none). Broadcasts like the subtraction.
    """
    diff = b_late - b_early
    return diff if r_late is None or r_early is None else diff.masked_fill(r_late != r_early, -float("inf"))


def _from_start(b: Tensor, r: Tensor | None) -> Tensor:
    """Log decay from the start of the chunk to each step: ``b``, or ``-inf`` once a reset has passed."""
    return b if r is None else b.masked_fill(r > 0, -float("inf"))


def _intra_scores_per_key(q: Tensor, k: Tensor, b: Tensor, r: Tensor | None) -> Tensor:
    """``sum_k q_ik k_jk e^{b_ik - b_jk}`` for ``j <= i``; q, k, b, r: ``(..., C, K)`` -> ``(..., C, C)``."""
    c, dk = q.shape[-2:]
    sub = min(SUB_CHUNK, c)
    ns = c // sub
    lead = q.shape[:-2]
    qs, ks, bs = (x.reshape(*lead, ns, sub, dk) for x in (q, k, b))
    # Log decay just before each sub-chunk starts: 0 for the first, b at the previous position otherwise.
    ref = torch.cat([torch.zeros_like(bs[..., :1, 0, :]), bs[..., :-1, -1, :]], dim=-2)
    rs = r_ref = None
    if r is not None:
        rs = r.reshape(*lead, ns, sub, dk)
        r_ref = torch.cat([torch.zeros_like(rs[..., :1, 0, :]), rs[..., :-1, -1, :]], dim=-2)
    q_ref = qs * _span(bs, ref[..., None, :], rs, _index(r_ref, (..., None, slice(None)))).exp()
    # Keys from earlier sub-chunks, decayed up to the reference point of sub-chunk i.
    earlier = torch.arange(c, device=q.device)[None, :] < (torch.arange(ns, device=q.device) * sub)[:, None]
    row, col = (..., slice(None), None, slice(None)), (..., None, slice(None), slice(None))
    exponent = _span(ref[row], b[col], _index(r_ref, row), _index(r, col))
    k_ref = k[..., None, :, :] * exponent.masked_fill(~earlier[..., None], -float("inf")).exp()
    scores = (q_ref @ k_ref.transpose(-1, -2)).reshape(*lead, c, c)
    # Inside a sub-chunk: pairwise decays, masked to j <= i before exponentiating.
    pair = _span(bs[row], bs[col], _index(rs, row), _index(rs, col))
    pair = pair.masked_fill(~causal_mask(sub, q.device)[..., None], -float("inf"))
    diag = (qs[..., :, None, :] * ks[..., None, :, :] * pair.exp()).sum(-1)
    return scores + _place_diagonal_blocks(diag, c)


def _index(r: Tensor | None, index: tuple) -> Tensor | None:
    return None if r is None else r[index]


def _place_diagonal_blocks(blocks: Tensor, c: int) -> Tensor:
    """``(..., ns, sub, sub)`` -> block-diagonal ``(..., C, C)``."""
    ns = blocks.shape[-3]
    eye = torch.eye(ns, dtype=blocks.dtype, device=blocks.device)
    full = blocks[..., :, :, None, :] * eye[:, None, :, None]
    return full.reshape(*blocks.shape[:-3], c, c)


def gla_chunk(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    g: Tensor | None,
    scale: float,
    initial_state: Tensor | None,
    chunk_size: int,
) -> tuple[Tensor, Tensor]:
    """Chunked form of :func:`seqcore.ops.gla.reference.gla_recurrent`.

    Args:
        q, k: ``(N, L, H, K)``; v: ``(N, L, H, V)`` with ``L`` a multiple of ``chunk_size``.
        g: ``(N, L, H, K)``, ``(N, L, H)`` or ``None``.
        initial_state: ``(N, H, K, V)`` or ``None``.
    Returns:
        ``o: (N, L, H, V)`` and the last state ``(N, H, K, V)``.
    """
    n, length, h, dk = q.shape
    dv = v.shape[-1]
    c = chunk_size
    qc, kc, vc = (to_chunks(x, c) for x in (q, k, v))
    per_key = g is not None and g.dim() == 4
    if g is None:
        scores = (qc @ kc.transpose(-1, -2)).masked_fill(~causal_mask(c, q.device), 0.0)
        q_dec, k_dec = qc, kc
        chunk_decay = None
    else:
        gc = to_chunks(g, c)
        if per_key:
            # One host decision per call: the finite path pays nothing for the reset bookkeeping.
            if gc.amin().item() == -float("inf"):
                resets = torch.isneginf(gc)
                r, b = resets.cumsum(dim=3), gc.masked_fill(resets, 0.0).cumsum(dim=3)
            else:
                r, b = None, gc.cumsum(dim=3)
            last_b, last_r = b[..., -1:, :], _index(r, (..., slice(-1, None), slice(None)))
            scores = _intra_scores_per_key(qc, kc, b, r)
            q_dec = qc * _from_start(b, r).exp()
            k_dec = kc * _span(last_b, b, last_r, r).exp()
            chunk_decay = _from_start(last_b, last_r)[..., 0, :, None].exp()
        else:
            b = gc.cumsum(dim=3)
            segments = segment_sums(gc)
            scores = (qc @ kc.transpose(-1, -2)) * pairwise_decay(segments, strict=False)
            q_dec = qc * b.exp()[..., None]
            k_dec = kc * segments[..., -1, :].exp()[..., None]
            chunk_decay = b[..., -1, None, None].exp()
    chunk_kv = k_dec.transpose(-1, -2) @ vc
    state = q.new_zeros(n, h, dk, dv) if initial_state is None else initial_state
    states = []
    # unbind once: indexing inside the loop would make autograd build a full-size gradient per chunk.
    decays = [None] * (length // c) if chunk_decay is None else chunk_decay.unbind(2)
    for kv, decay in zip(chunk_kv.unbind(2), decays):
        states.append(state)
        state = state + kv if decay is None else decay * state + kv
    o = scale * (scores @ vc + q_dec @ torch.stack(states, dim=2))
    return from_chunks(o), state
