"""Bad and mismatched inputs to the sequence-parallel operators and mixers on 2 gloo processes, one row per case.

Each row gives what rank 0 and rank 1 pass, and what each must raise (type and a regex on the message) or the
documented result. Ranks that disagree on shapes (except T), dtypes or options all raise the same ValueError
naming the field; an input one rank rejects makes the other raise an error of the same type, so no rank waits
for the group's timeout; an input both reject is each one's own error. All rows run in order in one 2-rank
session: a row that left one rank behind would make the following ones fail or time out.
"""
from __future__ import annotations

import datetime
import json
import re
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from seqcore.distributed import (
    enable_sequence_parallel, gather_sequence, previous_tail, sp_delta_rule, sp_gla, sp_gla_signed, sp_scan,
)
from seqcore.nn import MixerCache, build_mixer

B, H, K, V, D, C = 2, 2, 4, 3, 5, 8
LENGTHS = (5, 4)  # rank 0's and rank 1's slice
TIMEOUT_S = 10  # a row that leaves a rank waiting fails after this, instead of hanging the suite
PEER = r"rank 1 \({kind} in {op}\) raised an error before the collective"
MIXER_PEER = PEER.format(kind="ValueError", op="a mixer's input checks")


@dataclass(frozen=True)
class Raises:
    error: type[Exception]
    rank0: str
    rank1: str | None = None  # None: the same pattern as rank 0

    def pattern(self, rank: int) -> str:
        return self.rank0 if rank == 0 or self.rank1 is None else self.rank1


@dataclass(frozen=True)
class Documented:
    what: str
    check: Callable[[int, object], bool]


def rand(rank: int, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(rank), dtype=dtype)


def length(rank: int, t: int | None = None) -> int:
    return LENGTHS[rank] if t is None else t


def qkv(rank: int, b: int = B, h: int = H, k: int = K, v: int = V, t: int | None = None,
        dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = length(rank, t)
    q, k_ = rand(rank, b, n, h, k, dtype=dtype), rand(rank + 2, b, n, h, k, dtype=dtype)
    return q, k_, rand(rank + 4, b, n, h, v, dtype=dtype)


def gate(rank: int, per_key: bool = False, t: int | None = None, sign: float = -1.0) -> torch.Tensor:
    shape = (B, length(rank, t), H, K) if per_key else (B, length(rank, t), H)
    return sign * rand(rank + 6, *shape).abs()


def scan_inputs(rank: int, d: int = D, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    n = length(rank)
    return rand(rank, B, n, d, dtype=dtype), rand(rank + 1, B, n, d, dtype=dtype).sigmoid()


def beta(rank: int, b: int = B) -> torch.Tensor:
    return rand(rank + 8, b, length(rank), H).sigmoid()


def signed_decay(rank: int, h: int = H, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return rand(rank + 8, B, length(rank), h, dtype=dtype).tanh()


def either(rank: int, first, second):
    return first if rank == 0 else second


def sp_mixer(name: str, rank: int, x: torch.Tensor, **call) -> torch.Tensor:
    """``name`` built alike on every rank (same seed), split over the world group, applied to this rank's ``x``."""
    torch.manual_seed(3)
    mixer = build_mixer(name, C, num_heads=2, **({} if name == "attention" else {"backend": "chunk"}))
    return enable_sequence_parallel(mixer.to(x.dtype), dist.group.WORLD)(x, **call)


def mixer_input(rank: int, b: int = B, t: int | None = None, c: int = C,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return rand(rank, b, length(rank, t), c, dtype=dtype)


def nan_on_rank1(rank: int) -> torch.Tensor:
    x = mixer_input(rank)
    if rank == 1:
        x[0, 1, 2] = float("nan")
    return x


def gathered_shape(expected_offsets: tuple[int, int], total: int) -> Callable[[int, object], bool]:
    def check(rank: int, result: object) -> bool:
        joined, offset = result
        return tuple(joined.shape[:2]) == (B, total) and offset == expected_offsets[rank]
    return check


def disagree(op: str, field: str, rank0: str, rank1: str) -> str:
    return rf"{op}: the ranks disagree on {field} \(rank 0: {rank0}, rank 1: {rank1}\)"


ROWS: list[tuple[str, Callable[[int], object], Raises | Documented]] = [
    ("sp_gla: batch 2 vs 3", lambda r: sp_gla(*qkv(r, b=either(r, 2, 3))),
     Raises(ValueError, disagree("sp_gla", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(3, T, 2, 4\)")
            + r"; k \(.*\); v \(.*Every rank must pass the same shapes")),
    ("sp_gla: key width 4 vs 6", lambda r: sp_gla(*qkv(r, k=either(r, 4, 6))),
     Raises(ValueError, disagree("sp_gla", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(2, T, 2, 6\)"))),
    ("sp_gla: value width 3 vs 5", lambda r: sp_gla(*qkv(r, v=either(r, 3, 5))),
     Raises(ValueError, disagree("sp_gla", "v", r"float64 \(2, T, 2, 3\)", r"float64 \(2, T, 2, 5\)"))),
    ("sp_gla: heads 2 vs 3", lambda r: sp_gla(*qkv(r, h=either(r, 2, 3))),
     Raises(ValueError, disagree("sp_gla", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(2, T, 3, 4\)"))),
    ("sp_gla: float64 vs float32", lambda r: sp_gla(*qkv(r, dtype=either(r, torch.float64, torch.float32))),
     Raises(ValueError, disagree("sp_gla", "q", r"float64 \(2, T, 2, 4\)", r"float32 \(2, T, 2, 4\)"))),
    ("sp_gla: per-head vs per-key gate", lambda r: sp_gla(*qkv(r), gate(r, per_key=r == 1)),
     Raises(ValueError, disagree("sp_gla", "g", r"float64 \(2, T, 2\)", r"float64 \(2, T, 2, 4\)"))),
    ("sp_gla: gate on rank 0 only", lambda r: sp_gla(*qkv(r), either(r, gate(r), None)),
     Raises(ValueError, disagree("sp_gla", "g", r"float64 \(2, T, 2\)", "None"))),
    ("sp_gla: reverse differs", lambda r: sp_gla(*qkv(r), reverse=r == 1),
     Raises(ValueError, disagree("sp_gla", "reverse", "False", "True"))),
    ("sp_gla: initial state on rank 0 only", lambda r: sp_gla(*qkv(r), initial_state=either(r, rand(9, B, H, K, V), None)),
     Raises(ValueError, disagree("sp_gla", "initial_state", r"float64 \(2, 2, 4, 3\)", "None"))),
    ("sp_gla: output_final_state differs", lambda r: sp_gla(*qkv(r), output_final_state=r == 1),
     Raises(ValueError, disagree("sp_gla", "output_final_state", "False", "True"))),
    ("sp_gla: scale differs", lambda r: sp_gla(*qkv(r), scale=either(r, 0.5, None)),
     Raises(ValueError, disagree("sp_gla", "scale", "0.5", "None"))),
    ("sp_gla: cu_seqlens on rank 1 only", lambda r: sp_gla(*qkv(r), cu_seqlens=either(r, None, torch.tensor([0, 4]))),
     Raises(ValueError, disagree("sp_gla", "cu_seqlens given", "False", "True"))),
    ("sp_gla: cu_seqlens on both ranks", lambda r: sp_gla(*qkv(r, b=1), cu_seqlens=torch.tensor([0, length(r)])),
     Raises(ValueError, r"packed cu_seqlens are not supported")),
    ("sp_gla: reverse='no' on both ranks", lambda r: sp_gla(*qkv(r), reverse="no"),
     Raises(TypeError, r"reverse must be a bool \(True or False\), got str 'no'")),
    ("sp_gla: reverse='no' on rank 1 only", lambda r: sp_gla(*qkv(r), reverse=either(r, False, "no")),
     Raises(ValueError, disagree("sp_gla", "reverse", "False", "not a bool"))),
    ("sp_gla: q of rank 3 on rank 1 only", lambda r: sp_gla(either(r, qkv(r)[0], qkv(r)[0].flatten(2)), *qkv(r)[1:]),
     Raises(ValueError, disagree("sp_gla", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(2, T, 8\)"))),
    ("sp_gla: q a list on both ranks", lambda r: sp_gla([1.0], *qkv(r)[1:]),
     Raises(TypeError, r"q must be a torch.Tensor")),
    ("sp_gla: T=0 on rank 1 only", lambda r: sp_gla(*qkv(r, t=either(r, None, 0))),
     Raises(ValueError, PEER.format(kind="ValueError", op="sp_gla"), r"at least one step, got T=0")),
    ("sp_gla: positive log decay on rank 1 only", lambda r: sp_gla(*qkv(r), gate(r, sign=either(r, -1.0, 1.0))),
     Raises(ValueError, PEER.format(kind="ValueError", op="sp_gla"), r"\bg\b")),
    ("sp_gla: initial state of the wrong shape on both ranks", lambda r: sp_gla(*qkv(r), initial_state=rand(9, B, H, V, K)),
     Raises(ValueError, r"initial_state must have shape \(B, H, K, V\)")),
    ("sp_gla on rank 0, sp_scan on rank 1", lambda r: sp_gla(*qkv(r)) if r == 0 else sp_scan(*scan_inputs(r)),
     Raises(ValueError, r"the ranks called different sequence-parallel operators at the same point: rank 0: sp_gla, "
                        r"rank 1: sp_scan")),
    ("sp_scan: width 5 vs 6", lambda r: sp_scan(*scan_inputs(r, d=either(r, 5, 6))),
     Raises(ValueError, disagree("sp_scan", "x", r"float64 \(2, T, 5\)", r"float64 \(2, T, 6\)"))),
    ("sp_scan: float64 vs float32", lambda r: sp_scan(*scan_inputs(r, dtype=either(r, torch.float64, torch.float32))),
     Raises(ValueError, disagree("sp_scan", "x", r"float64 \(2, T, 5\)", r"float32 \(2, T, 5\)"))),
    ("sp_scan: initial state on rank 1 only", lambda r: sp_scan(*scan_inputs(r), initial_state=either(r, None, rand(9, B, D))),
     Raises(ValueError, disagree("sp_scan", "initial_state", "None", r"float64 \(2, 5\)"))),
    ("sp_scan: a of another shape on both ranks", lambda r: sp_scan(scan_inputs(r)[0], scan_inputs(r, d=4)[1]),
     Raises(ValueError, r"a must have shape \(B, T, D\) like x")),
    ("sp_gla_signed: heads 2 vs 3", lambda r: sp_gla_signed(*qkv(r, h=either(r, 2, 3)), signed_decay(r, h=either(r, 2, 3))),
     Raises(ValueError, disagree("sp_gla_signed", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(2, T, 3, 4\)"))),
    ("sp_gla_signed: a float32 on rank 1",
     lambda r: sp_gla_signed(*qkv(r), signed_decay(r, dtype=either(r, torch.float64, torch.float32))),
     Raises(ValueError, disagree("sp_gla_signed", "a", r"float64 \(2, T, 2\)", r"float32 \(2, T, 2\)"))),
    ("sp_delta_rule: key width 4 vs 6", lambda r: sp_delta_rule(*qkv(r, k=either(r, 4, 6)), beta(r)),
     Raises(ValueError, disagree("sp_delta_rule", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(2, T, 2, 6\)"))),
    ("sp_delta_rule: gate on rank 1 only", lambda r: sp_delta_rule(*qkv(r), beta(r), either(r, None, gate(r))),
     Raises(ValueError, disagree("sp_delta_rule", "g", "None", r"float64 \(2, T, 2\)"))),
    ("sp_delta_rule: batch 2 vs 1", lambda r: sp_delta_rule(*qkv(r, b=either(r, 2, 1)), beta(r, b=either(r, 2, 1))),
     Raises(ValueError, disagree("sp_delta_rule", "q", r"float64 \(2, T, 2, 4\)", r"float64 \(1, T, 2, 4\)"))),
    ("previous_tail: rank 1's slice too short", lambda r: previous_tail(rand(r, B, either(r, 5, 2), 4), 3),
     Raises(ValueError, r"each rank's slice must hold at least 3 steps for the short convolution, got slice lengths "
                        r"\[5, 2\]")),
    ("previous_tail: channels 4 vs 5", lambda r: previous_tail(rand(r, B, 5, either(r, 4, 5)), 3),
     Raises(ValueError, disagree("previous_tail", "x", r"float64 \(2, T, 4\)", r"float64 \(2, T, 5\)"))),
    ("previous_tail: n 3 vs 2", lambda r: previous_tail(rand(r, B, 5, 4), either(r, 3, 2)),
     Raises(ValueError, disagree("previous_tail", "n", "3", "2"))),
    ("previous_tail: int64 x on both ranks", lambda r: previous_tail(torch.ones(B, 5, 4, dtype=torch.long), 3),
     Raises(TypeError, r"x must be a floating-point tensor")),
    ("gather_sequence: trailing shape differs", lambda r: gather_sequence(rand(r, B, 5, 2, either(r, 3, 4))),
     Raises(ValueError, disagree("gather_sequence", "x", r"float64 \(2, T, 2, 3\)", r"float64 \(2, T, 2, 4\)"))),
    ("gather_sequence: float64 vs float32",
     lambda r: gather_sequence(rand(r, B, 5, 3, dtype=either(r, torch.float64, torch.float32))),
     Raises(ValueError, disagree("gather_sequence", "x", r"float64 \(2, T, 3\)", r"float32 \(2, T, 3\)"))),
    ("gather_sequence: uneven slices", lambda r: gather_sequence(rand(r, B, length(r), 3)),
     Documented("joined (B, 9, ...), offsets 0 and 5", gathered_shape((0, 5), 9))),
    ("gather_sequence: empty slice on rank 1", lambda r: gather_sequence(rand(r, B, either(r, 5, 0), 3)),
     Documented("joined (B, 5, ...), offsets 0 and 5", gathered_shape((0, 5), 5))),
    ("gla mixer: width 6 on rank 1", lambda r: sp_mixer("gla", r, mixer_input(r, c=either(r, C, 6))),
     Raises(ValueError, MIXER_PEER, r"x must have shape \(B, T, C=8\)")),
    ("gla mixer: NaN in x on rank 1", lambda r: sp_mixer("gla", r, nan_on_rank1(r)),
     Raises(ValueError, MIXER_PEER, r"x must be finite")),
    ("gla mixer: a cache on rank 1", lambda r: sp_mixer("gla", r, mixer_input(r), cache=either(r, None, MixerCache())),
     Raises(ValueError, MIXER_PEER, r"no cache, no cu_seqlens")),
    ("gla mixer: batch 2 vs 3", lambda r: sp_mixer("gla", r, mixer_input(r, b=either(r, 2, 3))),
     Raises(ValueError, r"previous_tail: the ranks disagree on x \(rank 0: float32 \(2, T, 16\), rank 1: float32 "
                        r"\(3, T, 16\)\)")),
    ("gla mixer: rank 1's slice shorter than the convolution", lambda r: sp_mixer("gla", r, mixer_input(r, t=either(r, 5, 2))),
     Raises(ValueError, r"must hold at least 3 steps for the short convolution, got slice lengths \[5, 2\]")),
    ("retnet mixer: batch 2 vs 3", lambda r: sp_mixer("retnet", r, mixer_input(r, b=either(r, 2, 3))),
     Raises(ValueError, disagree("sp_gla", "q", r"float32 \(2, T, 2, 4\)", r"float32 \(3, T, 2, 4\)"))),
    ("hgrn mixer: empty slice on rank 1", lambda r: sp_mixer("hgrn", r, mixer_input(r, t=either(r, 5, 0))),
     Raises(ValueError, PEER.format(kind="ValueError", op="sp_scan"), r"at least one step, got T=0")),
    ("attention: width 6 on rank 1", lambda r: sp_mixer("attention", r, mixer_input(r, c=either(r, C, 6))),
     Raises(ValueError, MIXER_PEER, r"x must have shape \(B, T, C=8\)")),
    ("attention: float32 vs float64",
     lambda r: sp_mixer("attention", r, mixer_input(r, dtype=either(r, torch.float32, torch.float64))),
     Raises(ValueError, disagree("gather_sequence", "x", r"float32 \(2, T, 2, 2, 4\)", r"float64 \(2, T, 2, 2, 4\)"))),
    ("gla mixer: uneven slices agree", lambda r: sp_mixer("gla", r, mixer_input(r)),
     Documented("this rank's (B, T_r, C) slice of the output", lambda r, y: tuple(y.shape) == (B, LENGTHS[r], C))),
]


def table_worker(rank: int, world: int, init_file: str, result_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    torch.set_num_threads(1)
    outcomes = {}
    for entry, run, expect in ROWS:
        try:
            result = run(rank)
            outcomes[entry] = ["returned", bool(expect.check(rank, result)) if isinstance(expect, Documented) else ""]
        except Exception as err:  # noqa: BLE001 -- recorded for the test to judge
            outcomes[entry] = [type(err).__name__, str(err)]
        # After every row: a gloo abort kills the process, and the rows before it must still be reported.
        Path(result_dir, f"rank{rank}.json").write_text(json.dumps(outcomes))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> list[dict[str, list]]:
    folder = tmp_path_factory.mktemp("bad_inputs_distributed")
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=table_worker, args=(rank, 2, str(folder / "init"), str(folder)))
             for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60 + TIMEOUT_S * len(ROWS))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    results = []
    for rank, p in enumerate(procs):
        path = folder / f"rank{rank}.json"
        results.append({**(json.loads(path.read_text()) if path.exists() else {}), "exit code": p.exitcode})
    return results


@pytest.mark.parametrize("entry, expect", [pytest.param(entry, expect, id=entry) for entry, _, expect in ROWS])
def test_bad_input_on_two_ranks(entry: str, expect: Raises | Documented, outcomes):
    for rank in range(2):
        code = outcomes[rank]["exit code"]
        assert entry in outcomes[rank], f"rank {rank} died or hung before this row (exit code {code})"
        kind, detail = outcomes[rank][entry]
        if isinstance(expect, Raises):
            assert kind == expect.error.__name__, f"rank {rank}: {kind}: {detail}"
            assert re.search(expect.pattern(rank), detail), f"rank {rank}: {detail}"
        else:
            assert kind == "returned" and detail is True, f"rank {rank}: {kind}: {detail} ({expect.what})"
