"""Peak resident memory of one benchmark configuration, each in a freshly forked child (Linux).

    from benchmarks.measure import in_child, peak_bytes, reset_peak

    def run(size: int) -> dict:            # runs in the child
        model, batch = build(size)         # not counted: weights and inputs
        base = reset_peak()
        step(model, batch)
        return {"peak_bytes": peak_bytes(base)}

    row = in_child(run, 1024, threads=1)   # the child's return value, or ChildError

Why a child per configuration: the kernel's peak resident set (``VmHWM``) only grows, and freed blocks stay
cached in the process heap, so a second configuration measured in the same process would reuse them and show a
smaller peak. A child forked from a parent that has only imported its modules (no tensor work: no warm heap or
thread pool is inherited) starts clean. Forking is also ~10x faster than a new interpreter importing torch.
"""
from __future__ import annotations

import os
import pickle
import signal
import traceback
from typing import Any, Callable, TypeVar

import torch

from benchmarks.ops import proc_status_kb

T = TypeVar("T")


class ChildError(RuntimeError):
    """The child raised (``traceback`` holds its traceback) or died without a result (``killed_by`` its signal)."""

    def __init__(self, message: str, traceback: str = "", killed_by: int | None = None) -> None:
        super().__init__(message)
        self.traceback, self.killed_by = traceback, killed_by


def reset_peak() -> int:
    """Resets the peak resident set (``VmHWM``) to the current one; returns that baseline in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return proc_status_kb("VmRSS:") * 1024


def peak_bytes(base: int) -> int:
    """Peak resident set since :func:`reset_peak` returned ``base``, above it, in bytes."""
    return proc_status_kb("VmHWM:") * 1024 - base


def in_child(fn: Callable[..., T], *args: Any, threads: int, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a forked child with ``threads`` torch intra-op threads; returns its (picklable)
    result, or raises :class:`ChildError` if it raised or died (for example killed for memory)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns, so the parent's code after the fork never runs twice
        os.close(read)
        try:
            torch.set_num_threads(threads)
            payload: Any = ("ok", fn(*args, **kwargs))
        except BaseException:  # noqa: BLE001  (re-raised in the parent)
            payload = ("error", traceback.format_exc())
        try:
            with os.fdopen(write, "wb") as pipe:
                pipe.write(pickle.dumps(payload))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        how = f"killed by {signal.Signals(killed).name}" if killed else f"exit status {os.waitstatus_to_exitcode(status)}"
        raise ChildError(f"benchmark child died without a result ({how}; out of memory?)", killed_by=killed)
    kind, value = pickle.loads(data)
    if kind == "error":
        raise ChildError(f"benchmark child failed:\n{value}", traceback=value)
    return value


def torch_allocation_peak(step: Callable[[], Any]) -> int:
    """Peak bytes of live torch tensors allocated while ``step()`` runs (inputs allocated before it not counted).

    Read from the profiler's allocation events, so it counts what torch allocates and nothing else: under
    ``TRITON_INTERPRET=1`` the interpreter's numpy copies of each program's tiles are left out, which a compiled
    kernel does not make, and the peak is comparable to ``torch.cuda.max_memory_allocated`` on a GPU.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e for e in prof.events() if e.cpu_memory_usage), key=lambda e: e.time_range.start)
    live = peak = 0
    for event in events:
        live += event.cpu_memory_usage
        peak = max(peak, live)
    return peak
