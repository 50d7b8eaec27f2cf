"""DeltaNet and Gated DeltaNet: the delta rule with an optional per-head decay."""
from ..dispatch import Family, register
from .chunk import delta_rule_chunk
from .reference import delta_rule_recurrent

DELTA_RULE = Family(
    name="delta_rule",
    inputs=("q", "k", "v", "beta", "g"),
    optional=frozenset({"g"}),
    out_like="v",
    state_dims=lambda t: (t["q"].shape[2], t["q"].shape[3], t["v"].shape[3]),
    recurrent=delta_rule_recurrent,
    chunk=delta_rule_chunk,
    chunk_size=64,
)
delta_rule_op = register(DELTA_RULE)
