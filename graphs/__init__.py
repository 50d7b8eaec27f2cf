"""GSM++ graph sequence models on torch-geometric, built on ``seqcore.nn`` mixers.

A graph batch (``x: (N, F)``, ``edge_index: (2, E)``, ``batch: (N,)``) is tokenized into packed sequences
(:mod:`graphs.tokenize`: HAC-DFS / HAC-BFS from a Hierarchical Affinity Clustering tree, degree order, random
walks, k-hop tokens), encoded locally by message passing and globally by a sequence model over the tokens:

    from graphs import GSMPlusPlus
    model = GSMPlusPlus(in_channels=F, hidden_channels=64, out_channels=K, task="graph")  # hybrid by default
    logits = model(batch.x, batch.edge_index, batch.batch, num_graphs=batch.num_graphs)   # (G, K)

- :class:`GSMConv`: one layer, ``conv(x, edge_index, batch)`` -> ``(N, C)``.
- :class:`GSMPlusPlus`: the model for node-, edge- and graph-level tasks.
- :class:`TokenizationMixture`: a router choosing the top-k tokenizations per node.
- :class:`GNNBaseline`: GCN, GIN and GPS with the same call convention.
- :mod:`graphs.tasks`: seeded synthetic tasks; :mod:`graphs.datasets`: karate club and local PyG datasets;
  :mod:`graphs.training`: the training loop of the examples.
"""
# Named before any import below fails on a bare module name (docs/install.md).
from seqcore.extras import require_extra

require_extra("graphs")

from .baselines import GNNBaseline
from .conv import GSMConv
from .heads import TaskHead
from .local import LocalEncoder
from .mixture import PlanMixer, TokenizationMixture
from .model import GSMPlusPlus

__all__ = ["GSMConv", "GSMPlusPlus", "GNNBaseline", "LocalEncoder", "PlanMixer", "TaskHead", "TokenizationMixture"]
