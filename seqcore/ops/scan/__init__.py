"""Elementwise first-order linear scan ``h_t = a_t * h_{t-1} + x_t`` (HGRN, LRU, Mamba-1 style)."""
from ..dispatch import Family, register
from .chunk import scan_chunk
from .reference import scan_recurrent

SCAN = Family(
    name="scan",
    inputs=("x", "a"),
    optional=frozenset(),
    out_like="x",
    state_dims=lambda t: (t["x"].shape[-1],),
    recurrent=scan_recurrent,
    chunk=scan_chunk,
    chunk_size=32,
    uses_scale=False,
    # A unit coefficient with zero input carries the state through padding unchanged.
    pad_fill={"a": 1.0},
    triton_bwd_takes_output=True,
)
scan_op = register(SCAN)
