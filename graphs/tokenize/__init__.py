"""Graph tokenization for GSM++: a batch of graphs becomes packed token sequences for a sequence model.

- :func:`hac` builds a Hierarchical Affinity Clustering tree of every graph (:class:`HACTree`).
- The tokenizers (:data:`TOKENIZERS`, :func:`build_plan`, or the ``*_plan`` builders) return a
  :class:`TokenPlan`: which nodes form each token, how tokens are packed into sequences (``cu_seqlens``) and how
  token outputs return to nodes.
- :func:`hierarchical_pe` encodes each node's position in its HAC tree.

    from graphs.tokenize import build_plan
    from seqcore.nn import build_mixer

    plan = build_plan("hac_dfs", data.x, data.edge_index, data.batch)   # once per batch
    mixer = build_mixer("mamba2", dim=C, num_heads=4)
    tokens = plan.gather(h)                                             # (N, C) node features -> (L, C)
    h = plan.scatter(mixer(tokens[None], cu_seqlens=plan.cu_seqlens)[0])  # (L, C) -> (N, C)
"""
from graphs.tokenize.clustering import HACTree, hac
from graphs.tokenize.orders import (
    HAC_TOKENIZERS,
    TOKENIZERS,
    build_plan,
    degree_plan,
    hac_bfs_plan,
    hac_dfs_plan,
    khop_plan,
    node_id_plan,
    random_walk_plan,
)
from graphs.tokenize.plan import TokenPlan
from graphs.tokenize.positional import hierarchical_pe

__all__ = [
    "HAC_TOKENIZERS",
    "HACTree",
    "TOKENIZERS",
    "TokenPlan",
    "build_plan",
    "degree_plan",
    "hac",
    "hac_bfs_plan",
    "hac_dfs_plan",
    "hierarchical_pe",
    "khop_plan",
    "node_id_plan",
    "random_walk_plan",
]
