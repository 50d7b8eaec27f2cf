"""Gated linear attention: per-key (GLA), per-head (RetNet, Mamba-2) or no decay (linear attention)."""
from ..dispatch import Family, register
from .chunk import gla_chunk
from .reference import gla_recurrent

GLA = Family(
    name="gla",
    inputs=("q", "k", "v", "g"),
    optional=frozenset({"g"}),
    out_like="v",
    state_dims=lambda t: (t["q"].shape[2], t["q"].shape[3], t["v"].shape[3]),
    recurrent=gla_recurrent,
    chunk=gla_chunk,
    # Per-key gates need pairwise decays inside sub-chunks; short chunks keep those tensors small.
    chunk_size=lambda t: 16 if t["g"] is not None and t["g"].dim() == 4 else 64,
)
gla_op = register(GLA)
