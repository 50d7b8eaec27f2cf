"""LASP-2 sequence parallelism on 2 and 4 gloo processes equals the single-process ops (float64), for every
family, forward and backward, with initial states, reverse and uneven slices; a dead rank fails fast."""
from __future__ import annotations

import json
import multiprocessing
import time

import pytest
import torch.multiprocessing as mp

import torch

from distributed_cases import (
    CASES, MIXER_CASES, TRITON_BACKENDS, TRITON_CASES, dying_worker, input_errors_worker, mixer_worker, triton_worker, worker,
)
from seqcore.distributed import enable_sequence_parallel, sp_delta_rule, sp_gla, sp_scan
from seqcore.nn import SeqEncoder, build_mixer

TOLERANCE = 1e-10
# Mamba-2 computes dt and its decay in float32 by design (even in a float64 model), so sharded and whole runs
# agree to float32 rounding there; a wrong fold or halo shows up at 1e-2 and above.
MIXER_TOLERANCE = {"mamba2": 1e-7}


def check_workers(worker, world: int, tmp_path, num_cases: int, tolerance) -> None:
    """Run ``worker`` on ``world`` forked gloo processes; every rank reports ``num_cases`` errors, each below
    ``tolerance(case)``."""
    mp.start_processes(worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world,
                       start_method="fork", join=True)
    for rank in range(world):
        errors = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert len(errors) == num_cases
        bad = {case: err for case, err in errors.items() if not err < tolerance(case)}
        assert not bad, f"rank {rank}: {bad}"


@pytest.mark.parametrize("world", [2, 4])
def test_sharded_ops_equal_the_whole_sequence(world, tmp_path):
    check_workers(worker, world, tmp_path, len(CASES) * 8, lambda case: TOLERANCE)


def test_sharded_ops_on_the_triton_backend(tmp_path):
    """float32 (Triton's dtypes): a wrong fold is off by O(1), float32 rounding by about 1e-5 here."""
    check_workers(triton_worker, 2, tmp_path, len(TRITON_CASES) * 2 * len(TRITON_BACKENDS), lambda case: 1e-4)


@pytest.mark.parametrize("world", [2, 4])
def test_sequence_parallel_mixers_equal_the_whole_sequence(world, tmp_path):
    check_workers(mixer_worker, world, tmp_path, len(MIXER_CASES) * 2,
                  lambda case: MIXER_TOLERANCE.get(case.split("/")[0], TOLERANCE))


def test_a_dead_rank_makes_the_others_fail_with_a_clear_error(tmp_path):
    # Plain processes: torch's spawn helper would terminate the survivors as soon as rank 1 dies.
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=dying_worker, args=(rank, 3, str(tmp_path / "init"), str(tmp_path)))
             for rank in range(3)]
    for p in procs:
        p.start()
    begin = time.monotonic()
    for p in procs:
        p.join(timeout=90)
    hung = [rank for rank, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not hung, f"ranks {hung} still waiting after {time.monotonic() - begin:.0f} s"
    assert procs[1].exitcode == 3
    for rank in (0, 2):
        message = (tmp_path / f"rank{rank}.txt").read_text()
        assert "sequence-parallel all-gather failed on rank" in message, message


def test_bad_calls_raise_clear_errors_on_every_rank(tmp_path):
    mp.start_processes(input_errors_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       start_method="fork", join=True)
    for rank in range(2):
        packed, short = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert "packed cu_seqlens are not supported" in packed
        assert "must hold at least 3 steps for the short convolution" in short


def test_sequence_parallel_needs_an_initialized_group():
    x = torch.randn(1, 4, 3)
    q = torch.randn(1, 4, 2, 4)
    for call in (lambda: sp_scan(x, torch.rand(1, 4, 3)), lambda: sp_gla(q, q, q),
                 lambda: sp_delta_rule(q, q, q, torch.rand(1, 4, 2))):
        with pytest.raises(RuntimeError, match="needs torch.distributed initialized"):
            call()


def test_enable_sequence_parallel_refuses_what_it_cannot_split():
    group = object()  # only stored here; no collective runs in these calls
    with pytest.raises(ValueError, match=r"no sequence-parallel form for \['LightNetAttention'\]"):
        enable_sequence_parallel(build_mixer("lightnet", 8, num_heads=2), group)
    with pytest.raises(ValueError, match="no seqcore.nn mixer"):
        enable_sequence_parallel(torch.nn.Linear(3, 3), group)
    encoder = enable_sequence_parallel(SeqEncoder(8, 2, "gla", 2), group)
    mixers = [m for m in encoder.modules() if hasattr(m, "sequence_parallel_group")]
    assert len(mixers) == 2 and all(m.sequence_parallel_group is group for m in mixers)
    with pytest.raises(ValueError, match="no cache, no cu_seqlens"):
        mixers[0](torch.randn(1, 6, 8), cu_seqlens=torch.tensor([0, 3, 6]))
    assert enable_sequence_parallel(encoder, None) is encoder and mixers[0].sequence_parallel_group is None
