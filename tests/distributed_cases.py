"""Workers for the sequence-parallel tests: spawned processes on gloo that compare each sharded op with the
single-process op on the whole sequence (float64), runs where one rank dies or raises and stays alive."""
from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from seqcore import ops
from seqcore.distributed import (
    enable_sequence_parallel, previous_tail, raise_on_every_rank, sp_delta_rule, sp_gla, sp_gla_signed, sp_scan,
)
from seqcore.nn import build_mixer

B, T, H, K, V, D = 2, 37, 2, 4, 3, 5


def split_lengths(total: int, world: int) -> list[int]:
    """Uneven contiguous slices: rank r gets about (r + 1) parts of the sequence."""
    weights = torch.arange(1, world + 1, dtype=torch.float64)
    lengths = torch.floor(weights / weights.sum() * total).long().clamp(min=1)
    lengths[-1] += total - lengths.sum()
    return lengths.tolist()


def make_inputs(family: str, gate: str, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Random float64 inputs of the whole sequence (the same on every rank) and an initial state."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if family == "scan":
        return {"x": rand(B, T, D), "a": torch.rand(B, T, D, generator=gen, dtype=torch.float64) * 2 - 1}, rand(B, D)
    q, k, v = rand(B, T, H, K), rand(B, T, H, K), rand(B, T, H, V)
    inputs = {"q": q, "k": k, "v": v}
    if family == "gla":
        if gate == "key":
            inputs["g"] = -torch.rand(B, T, H, K, generator=gen, dtype=torch.float64)
        elif gate == "head":
            inputs["g"] = -torch.rand(B, T, H, generator=gen, dtype=torch.float64)
    elif family == "gla_signed":
        inputs["a"] = torch.rand(B, T, H, generator=gen, dtype=torch.float64) * 2 - 1
    else:
        inputs["k"] = F.normalize(k, dim=-1)
        inputs["beta"] = torch.rand(B, T, H, generator=gen, dtype=torch.float64) * 2
        if gate == "head":
            inputs["g"] = -torch.rand(B, T, H, generator=gen, dtype=torch.float64)
    return inputs, rand(B, H, K, V)


OPS = {"scan": (ops.scan, sp_scan), "gla": (ops.gla, sp_gla), "gla_signed": (ops.gla_signed, sp_gla_signed),
       "delta_rule": (ops.delta_rule, sp_delta_rule)}
CASES = [("scan", ""), ("gla", "key"), ("gla", "head"), ("gla", "none"), ("gla_signed", ""), ("delta_rule", "none"),
         ("delta_rule", "head")]


def _positional(family: str, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor | None]:
    names = {"scan": ["x", "a"], "gla": ["q", "k", "v", "g"], "gla_signed": ["q", "k", "v", "a"],
             "delta_rule": ["q", "k", "v", "beta", "g"]}[family]
    return [inputs.get(n) for n in names]


def compare(rank: int, world: int, family: str, gate: str, reverse: bool, with_state: bool, backend: str,
            dtype: torch.dtype = torch.float64) -> float:
    """Max abs difference over outputs, final state and every gradient, sharded against whole."""
    full, h0 = make_inputs(family, gate, seed=CASES.index((family, gate)))
    full, h0 = {n: t.to(dtype) for n, t in full.items()}, h0.to(dtype)
    gen = torch.Generator().manual_seed(7)
    lengths = split_lengths(T, world)
    start = sum(lengths[:rank])
    stop = start + lengths[rank]
    reference_op, sharded_op = OPS[family]

    whole = {n: t.clone().requires_grad_() for n, t in full.items()}
    state = h0.clone().requires_grad_() if with_state else None
    out, final = reference_op(*_positional(family, whole), initial_state=state, output_final_state=True,
                              reverse=reverse, backend=backend)
    w_out = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
    w_final = torch.randn(final.shape, generator=gen, dtype=torch.float64).to(final.dtype)
    ((out * w_out).sum() + (final * w_final).sum()).backward()

    part = {n: t[:, start:stop].clone().requires_grad_() for n, t in full.items()}
    state_sp = h0.clone().requires_grad_() if with_state else None
    out_sp, final_sp = sharded_op(*_positional(family, part), initial_state=state_sp, output_final_state=True,
                                  reverse=reverse, backend=backend)
    # The final state is replicated on every rank: count its loss term once, on rank 0.
    loss = (out_sp * w_out[:, start:stop]).sum() + ((final_sp * w_final).sum() if rank == 0 else 0.0)
    loss.backward()
    errors = [(out_sp - out[:, start:stop].detach()).abs().max(), (final_sp - final.detach()).abs().max()]
    for n in full:
        errors.append((part[n].grad - whole[n].grad[:, start:stop]).abs().max())
    if with_state:
        total = state_sp.grad.clone()
        dist.all_reduce(total)  # replicated input: its gradient is the sum of every rank's share
        errors.append((total - state.grad).abs().max())
    return float(torch.stack(errors).max())


def join_group(rank: int, world: int, init_file: str, timeout_s: float) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    torch.set_num_threads(1)


def record_cases(rank: int, world: int, init_file: str, result_dir: str, cases, timeout_s: float = 60) -> None:
    """Join the group, run ``cases`` (``(key, thunk)`` pairs, each returning a max error) and write
    ``{key: error}`` to ``rank<r>.json``, whatever happens."""
    join_group(rank, world, init_file, timeout_s)
    results = {}
    try:
        for key, run in cases:
            results[key] = run()
    finally:
        Path(result_dir, f"rank{rank}.json").write_text(json.dumps(results))
        dist.destroy_process_group()


def worker(rank: int, world: int, init_file: str, result_dir: str) -> None:
    cases = (
        (f"{family}/{gate or '-'}/reverse={reverse}/state={with_state}/{backend}",
         lambda a=(family, gate, reverse, with_state, backend): compare(rank, world, *a))
        for family, gate in CASES for reverse in (False, True) for with_state in (False, True)
        for backend in ("recurrent", "chunk")
    )
    record_cases(rank, world, init_file, result_dir, cases)


TRITON_CASES = [("scan", ""), ("gla", "head"), ("delta_rule", "head")]
TRITON_BACKENDS = ("triton_recurrent", "triton_chunk")


def triton_worker(rank: int, world: int, init_file: str, result_dir: str) -> None:
    """The Triton backends (float32 only; interpreted on a CPU) through the same comparison."""
    cases = (
        (f"{family}/{gate or '-'}/reverse={reverse}/{backend}",
         lambda a=(family, gate, reverse, backend): compare(rank, world, *a[:3], True, a[3], torch.float32))
        for family, gate in TRITON_CASES for reverse in (False, True) for backend in TRITON_BACKENDS
    )
    record_cases(rank, world, init_file, result_dir, cases, timeout_s=120)


def dying_worker(rank: int, world: int, init_file: str, result_dir: str) -> None:
    """Rank 1 dies before the collective; the others must fail with a clear error, not hang."""
    join_group(rank, world, init_file, 20)
    full, _ = make_inputs("gla", "head", 0)
    if rank == 1:
        os._exit(3)
    try:
        sp_gla(*(t[:, :5] for t in _positional("gla", full)))
        message = "no error"
    except RuntimeError as err:
        message = str(err)
    Path(result_dir, f"rank{rank}.txt").write_text(message)


MIXER_CASES = [("gla", {}), ("retnet", {}), ("mamba2", {}), ("mamba2", {"allow_neg_eigval": True}),
               ("deltanet", {}), ("hgrn", {}), ("linear_attn", {}), ("attention", {})]


def compare_mixer(rank: int, world: int, name: str, kwargs: dict, bidirectional: bool) -> float:
    """A mixer on its slice with sequence_parallel_group set, against the same mixer on the whole sequence:
    outputs, input gradients and (summed over ranks) parameter gradients."""
    torch.manual_seed(11)
    if name != "attention":
        kwargs = {**kwargs, "backend": "chunk"}
    mixer = build_mixer(name, 8, num_heads=2, bidirectional=bidirectional, **kwargs).double()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(B, T, 8, generator=gen, dtype=torch.float64)
    w = torch.randn(B, T, 8, generator=gen, dtype=torch.float64)
    lengths = split_lengths(T, world)
    start = sum(lengths[:rank])
    stop = start + lengths[rank]

    whole = x.clone().requires_grad_()
    y = mixer(whole)
    (y * w).sum().backward()
    reference = {n: p.grad.clone() for n, p in mixer.named_parameters()}
    mixer.zero_grad()

    enable_sequence_parallel(mixer, dist.group.WORLD)
    part = x[:, start:stop].clone().requires_grad_()
    y_part = mixer(part)
    (y_part * w[:, start:stop]).sum().backward()
    errors = [(y_part - y[:, start:stop].detach()).abs().max(), (part.grad - whole.grad[:, start:stop]).abs().max()]
    for n, p in mixer.named_parameters():
        total = p.grad.clone()
        dist.all_reduce(total)
        errors.append((total - reference[n]).abs().max())
    return float(torch.stack(errors).max())


def mixer_worker(rank: int, world: int, init_file: str, result_dir: str) -> None:
    cases = (
        (f"{name}{'/neg' if kwargs.get('allow_neg_eigval') else ''}/bidirectional={bidirectional}",
         lambda a=(name, kwargs, bidirectional): compare_mixer(rank, world, *a))
        for name, kwargs in MIXER_CASES for bidirectional in (False, True)
    )
    record_cases(rank, world, init_file, result_dir, cases)


def input_errors_worker(rank: int, world: int, init_file: str, result_dir: str) -> None:
    """Errors every rank raises alike, before any collective, so none is left waiting."""
    join_group(rank, world, init_file, 20)
    full, _ = make_inputs("gla", "head", 0)
    messages = []
    for call in (
        lambda: sp_gla(*(t[:, :6].reshape(1, -1, *t.shape[2:]) for t in _positional("gla", full)),
                       cu_seqlens=torch.tensor([0, 6, 12])),
        lambda: previous_tail(torch.zeros(1, 2, 4), 3),
    ):
        try:
            call()
            messages.append("no error")
        except ValueError as err:
            messages.append(str(err))
    Path(result_dir, f"rank{rank}.json").write_text(json.dumps(messages))
    dist.destroy_process_group()


def raising_worker(rank: int, world: int, init_file: str, result_dir: str, timeout_s: float, announce: bool) -> None:
    """Rank 1 raises before the collective, catches its error and stays alive (``announce``: it tells the others
    through ``raise_on_every_rank`` instead); rank 0 enters ``sp_gla`` and writes what it got and after how long."""
    join_group(rank, world, init_file, timeout_s)
    full, _ = make_inputs("gla", "head", 0)
    if rank == 1:
        try:
            raise ValueError("this rank's data loader failed")
        except ValueError as err:
            if announce:
                try:
                    raise_on_every_rank(err)
                except ValueError:
                    pass
        time.sleep(120)  # alive and silent; the test kills it once rank 0 has reported
        os._exit(0)
    begin = time.monotonic()
    try:
        sp_gla(*(t[:, :5] for t in _positional("gla", full)))
        outcome = ["no error", ""]
    except Exception as err:  # noqa: BLE001 -- the test reads which error it was
        outcome = [type(err).__name__, str(err)]
    Path(result_dir, "rank0.json").write_text(json.dumps([*outcome, time.monotonic() - begin]))
    os._exit(0)  # leaving the group would wait for rank 1
