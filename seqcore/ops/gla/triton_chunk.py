"""Chunked Triton kernels for gated linear attention: the launchers the dispatcher calls.

A per-head gate ``(1, T, H)`` or none runs :mod:`.triton_chunk_head` (RetNet, Mamba-2's SSD, Lightning
Attention, plain linear attention); a per-key gate ``(1, T, H, K)`` runs :mod:`.triton_chunk_key` (GLA), whose
intra-chunk decays differ per key channel and need sub-chunks in log space. Signatures and returns are those
of :func:`seqcore.ops.gla.triton_recurrent.gla_fwd` / ``gla_bwd``.
"""
from __future__ import annotations

from torch import Tensor


def gla_fwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None, cu_seqlens: Tensor
) -> tuple[Tensor, Tensor]:
    """Packed chunked GLA forward: ``o: (1, T, H, V)`` in ``v.dtype`` and the final state ``(N, H, K, V)`` float32."""
    if g is not None and g.dim() == 4:
        from .triton_chunk_key import gla_key_fwd
        return gla_key_fwd(q, k, v, g, scale, initial_state, cu_seqlens)
    from .triton_chunk_head import gla_head_fwd
    return gla_head_fwd(q, k, v, g, scale, initial_state, cu_seqlens)


def gla_bwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None,
    cu_seqlens: Tensor, do: Tensor, dht: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Packed chunked GLA backward: ``(dq, dk, dv, dg, dh0)``, each in its input's dtype."""
    if g is not None and g.dim() == 4:
        from .triton_chunk_key import gla_key_bwd
        return gla_key_bwd(q, k, v, g, scale, initial_state, cu_seqlens, do, dht)
    from .triton_chunk_head import gla_head_bwd
    return gla_head_bwd(q, k, v, g, scale, initial_state, cu_seqlens, do, dht)
