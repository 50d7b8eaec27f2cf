"""Sequence parallelism on ``torch.distributed`` (LASP-2): one long sequence split across the ranks of a process
group, for every operator family of :mod:`seqcore.ops`.

Each rank holds a contiguous slice ``(B, T_r, H, ...)``; one all-gather of per-rank ``(state, transition)`` pairs,
whose size does not depend on ``T``, gives every rank its true initial state. Works with any backend, with
``reverse=True`` (so with bidirectional mixers), on gloo (CPU) and nccl (GPU).

- :func:`sp_scan`, :func:`sp_gla`, :func:`sp_gla_signed`, :func:`sp_delta_rule`: the ops of :mod:`seqcore.ops`
  with a ``group`` argument.
- :func:`enable_sequence_parallel`: switch every recurrent ``seqcore.nn`` mixer of a model to a process group
  (their short convolutions fetch the previous rank's last inputs).
- Softmax attention (the hybrid layers) gathers every rank's keys and values (:func:`gather_sequence`): its
  traffic grows with ``T``, as in LASP-2's hybrid.
- :func:`all_gather_autograd`, :func:`previous_tail`: the differentiable collectives they share;
  :func:`communicated_bytes` counts what they send.
- Every call first all-gathers a small fingerprint (:data:`FINGERPRINT_BYTES` per rank): ranks that pass
  different shapes (except ``T``), dtypes or options all raise the same ValueError, and an input one rank rejects
  makes every rank raise. :func:`raise_on_every_rank` lets code that fails just before a sequence-parallel call do
  the same.
"""
from .mixers import enable_sequence_parallel
from .sequence_parallel import (
    FINGERPRINT_BYTES, SequenceParallelOps, all_gather_autograd, communicated_bytes, gather_sequence, previous_tail,
    raise_on_every_rank, sp_delta_rule, sp_gla, sp_gla_signed, sp_scan,
)

__all__ = ["FINGERPRINT_BYTES", "SequenceParallelOps", "all_gather_autograd", "communicated_bytes",
           "enable_sequence_parallel", "gather_sequence", "previous_tail", "raise_on_every_rank", "sp_delta_rule",
           "sp_gla", "sp_gla_signed", "sp_scan"]
