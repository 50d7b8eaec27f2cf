"""LightNet's token mixer: linear attention whose keys form a running softmax (an additive recurrence).

"You Only Scan Once" (Qin et al. 2024) replaces a multiplicative decay with an additive one: the keys are
normalized by a running log-sum-exp, ``z_t = log sum_{s<=t} exp(k_s)``, so that

    S_t = sum_{s<=t} exp(k_s - z_t) v_s^T = exp(z_{t-1} - z_t) S_{t-1} + exp(k_t - z_t) v_t^T,

a gated linear attention whose per-key log decay ``z_{t-1} - z_t <= 0`` comes from the keys themselves. The
final state is the softmax over all tokens of ``K`` times ``V`` whatever order the tokens came in, so a
non-causal model needs one product ``softmax_T(K)^T V`` and no scan at all; the causal form (streaming, step
by step decoding) runs :func:`seqcore.ops.gla` with that key gate.

Relative positions enter through LRPE: queries and keys are rotated per channel by the token's angles,
``x -> [x cos(theta), x sin(theta)]`` (twice the channels), so ``q'.k'`` sums ``q_d k_d cos(theta_q,d -
theta_k,d)`` and depends only on the offsets. The angles are the caller's (``angles``), so one mixer serves
sequences, images and volumes (see ``vision.position``).
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ops
from ..ops import validation as V
from .base import check_mixer_call, empty_output
from .cache import MixerCache, cache_signature
from .linear_attn import head_dims
from .registry import register_mixer
from .validation import check_fraction, check_positive_float
from ..ops.validation import check_int


def rotate(x: Tensor, angles: Tensor | None) -> Tensor:
    """LRPE: ``x (B, T, H, D)`` and angles ``(T, D)`` or ``(B, T, D)`` -> ``[x cos, x sin]`` ``(B, T, H, 2D)``."""
    if angles is None:
        return x
    theta = angles.to(x.dtype)
    theta = theta[None, :, None, :] if theta.dim() == 2 else theta[:, :, None, :]
    return torch.cat([x * theta.cos(), x * theta.sin()], dim=-1)


def _at_least_float32(x: Tensor) -> Tensor:
    """Softmax normalizers in float32 at least: half-precision log-sum-exps lose the small keys."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _segments(cu_seqlens: Tensor | None, length: int) -> list[tuple[int, int]]:
    if cu_seqlens is None:
        return [(0, length)]
    bounds = cu_seqlens.tolist()
    return list(zip(bounds[:-1], bounds[1:]))


@register_mixer("lightnet")
class LightNetAttention(nn.Module):
    """LightNet's additive-recurrence mixer: ``(B, T, C) -> (B, T, C)``.

    ``q = silu(W_q x)``, keys ``k = W_k x`` normalized by the running (causal) or global (``bidirectional``)
    softmax over tokens, ``v = W_v x``; per-head RMS norm of the attention output times a low-rank output gate
    ``sigmoid(W_b W_a x)``, then the output projection.

    Args:
        dim: width C.
        num_heads: heads H, each with ``C * expand_k / H`` key and ``C / H`` value channels.
        bidirectional: non-causal: every token reads the global state ``softmax_T(K)^T V`` (one product, no
            scan). Otherwise causal, through :func:`seqcore.ops.gla`, and able to decode with a cache.
        expand_k: key channels relative to C.
        gate_low_rank: rank of the output gate.
        dropout: dropout on the output.
        backend: ``seqcore.ops`` backend of the causal path.

    ``forward(x, cu_seqlens=None, cache=None, angles=None)``: ``angles`` ``(T, K)`` or ``(B, T, K)`` with ``K``
    the key channels per head turns on LRPE (queries and keys rotated, doubling the key channels).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        bidirectional: bool = False,
        expand_k: float = 1.0,
        gate_low_rank: int = 16,
        dropout: float = 0.0,
        norm_eps: float = 1e-5,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        gate_low_rank = check_int("gate_low_rank", gate_low_rank, 1)
        self.key_dim = head_dims(dim, num_heads, expand_k, "key", "expand_k")
        self.value_dim = head_dims(dim, num_heads, 1.0, "value", "dim")
        self.dim, self.num_heads = dim, num_heads
        self.head_k = self.key_dim // num_heads
        if backend not in ops.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(ops.BACKENDS)}, got {backend!r}")
        self.bidirectional, self.backend = V.check_bool("bidirectional", bidirectional), backend
        self.q_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.value_dim, bias=False)
        self.out_norm = nn.RMSNorm(self.value_dim // num_heads, eps=check_positive_float("norm_eps", norm_eps))
        self.gate_down = nn.Linear(dim, gate_low_rank, bias=False)
        self.gate_up = nn.Linear(gate_low_rank, self.value_dim, bias=True)
        self.out_proj = nn.Linear(self.value_dim, dim, bias=False)
        self.dropout = nn.Dropout(check_fraction("dropout", dropout))
        self.scale = self.head_k**-0.5

    @property
    def cache_signature(self) -> str:
        """Class and state layout: what a :class:`MixerCache` it writes records (see ``RecurrentMixer``)."""
        return cache_signature(self, "dim", "num_heads", "key_dim", "value_dim")

    def forward(
        self,
        x: Tensor,
        cu_seqlens: Tensor | None = None,
        cache: MixerCache | None = None,
        angles: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, MixerCache]:
        """Mix ``x: (B, T, C)``; with ``cache`` (empty :class:`MixerCache` to start) also return the new cache."""
        check_mixer_call(self, x, cu_seqlens, cache)
        b, t = x.shape[:2]
        if angles is not None:
            if not isinstance(angles, Tensor) or not angles.is_floating_point():
                raise TypeError(f"angles must be a floating-point tensor (T, K) or (B, T, K), got "
                                f"{getattr(angles, 'dtype', type(angles).__name__)}")
            if (angles.dim() not in (2, 3) or tuple(angles.shape[-2:]) != (t, self.head_k)
                    or (angles.dim() == 3 and angles.shape[0] not in (1, b))):
                raise ValueError(f"angles must have shape (T, K) = {(t, self.head_k)} or (B, T, K), got "
                                 f"{tuple(angles.shape)}")
            if V._values_checkable() and angles.device.type != "meta" and not bool(torch.isfinite(angles).all()):
                raise ValueError("angles must be finite (no NaN or inf)")
        if x.numel() == 0:
            return empty_output(self, x, cache)
        heads = lambda z: z.unflatten(-1, (self.num_heads, -1))  # noqa: E731
        q = F.silu(heads(self.q_proj(x)))
        k, v = heads(self.k_proj(x)), heads(self.v_proj(x))
        if self.bidirectional:
            o = self._global(q, k, v, angles, cu_seqlens)
        else:
            o, state, lse = self._causal(q, k, v, angles, cu_seqlens, cache)
        o = self.out_norm(o).flatten(-2) * torch.sigmoid(self.gate_up(self.gate_down(x)))
        y = self.dropout(self.out_proj(o))
        return y if cache is None else (y, cache.advance(self.cache_signature, x, state, aux={"lse": lse}))

    def _global(self, q: Tensor, k: Tensor, v: Tensor, angles: Tensor | None, cu_seqlens: Tensor | None) -> Tensor:
        """Every token reads ``softmax_T(K)^T V`` of its own sequence (segment, when packed)."""
        outs = []
        for start, end in _segments(cu_seqlens, q.shape[1]):
            part = slice(start, end)
            theta = None if angles is None else angles[..., part, :]
            keys = rotate(torch.softmax(_at_least_float32(k[:, part]), dim=1).to(v.dtype), theta)
            state = torch.einsum("bthk,bthv->bhkv", keys, v[:, part])
            outs.append(self.scale * torch.einsum("bthk,bhkv->bthv", rotate(q[:, part], theta), state))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def _causal(
        self, q: Tensor, k: Tensor, v: Tensor, angles: Tensor | None, cu_seqlens: Tensor | None,
        cache: MixerCache | None,
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """The running softmax as a key-gated GLA: output, final state (with a cache) and the running ``z`` after
        the last token (what the cache carries)."""
        kf = _at_least_float32(k)
        previous = None if cache is None else cache.aux.get("lse")
        keys, gates, last = [], [], None
        for start, end in _segments(cu_seqlens, q.shape[1]):
            z = torch.logcumsumexp(kf[:, start:end], dim=1)
            if previous is not None:
                z = torch.logaddexp(z, previous[:, None])
            # Step 1 decays the initial state, which is zero unless decoding goes on from a cache.
            before = torch.cat([z[:, :1] if previous is None else previous[:, None], z[:, :-1]], dim=1)
            keys.append(torch.exp(kf[:, start:end] - z))
            gates.append(before - z)
            last = z[:, -1]
        # z is non-decreasing in exact arithmetic; rounding in logcumsumexp can leave a decay of +1e-7.
        key, g = torch.cat(keys, dim=1).to(q.dtype), torch.cat(gates, dim=1).clamp_max(0.0)
        if angles is not None:
            g = torch.cat([g, g], dim=-1)
        o, state = ops.gla(
            rotate(q, angles), rotate(key, angles), v, g.to(q.dtype), scale=self.scale,
            initial_state=None if cache is None else cache.state, output_final_state=cache is not None,
            cu_seqlens=cu_seqlens, backend=self.backend,
        )
        return o, state, cast(Tensor, last)  # x is not empty: at least one segment

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, bidirectional={self.bidirectional}"
