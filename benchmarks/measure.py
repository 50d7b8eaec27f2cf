"""The benchmarks' one way to measure: time and peak memory of a step. No other benchmark reads a clock itself.

Time:

    from benchmarks.measure import Stopwatch, time_calls

    timing = time_calls(step, warmup=1, repeats=3, clock="cpu")   # Timing: seconds of each timed call
    timing.median                                                   # what every table reports
    watch = Stopwatch()                                             # a section's duration (totals, progress)
    ...
    print(f"Wall time: {watch.seconds():.0f} s")

Clocks: ``"wall"`` (``time.perf_counter``), ``"cpu"`` (``time.process_time``: this process's CPU time, summed
over its threads; with one thread it leaves out the time other processes hold the core on a shared machine) and
``"cuda"`` (CUDA events recorded around the call on the current stream: the GPU's time for the work it queued).
With ``device`` a CUDA device, the wall and CPU clocks synchronize it when they start and when they are read, so
the time includes the GPU's work.

Peak resident memory of one configuration, each in a freshly forked child (Linux):

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

Both at once: :func:`time_and_peak` (CPU: resident set; CUDA: ``max_memory_allocated``). Peak bytes of live torch
tensors only: :func:`torch_allocation_peak`.
"""
from __future__ import annotations

import os
import pickle
import signal
import statistics
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch

T = TypeVar("T")

CLOCKS = ("wall", "cpu", "cuda")


class Stopwatch:
    """Seconds since it was made, on one of :data:`CLOCKS`; :meth:`seconds` may be read any number of times.

    ``device``: a CUDA device (``torch.device`` or its name) is synchronized at the start and at each reading by
    the wall and CPU clocks; any other device, or None, is not.
    """

    def __init__(self, clock: str = "wall", device: torch.device | str | None = None) -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
        if device is not None and not isinstance(device, (torch.device, str)):
            raise TypeError(f"device must be a torch.device, a device name or None, got {type(device).__name__}")
        self._device = torch.device(device) if device is not None else None
        self._clock = clock
        if clock == "cuda":
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._now = time.perf_counter if clock == "wall" else time.process_time
            self._sync()
            self._start = self._now()

    def _sync(self) -> None:
        if self._device is not None and self._device.type == "cuda":
            torch.cuda.synchronize(self._device)

    def seconds(self) -> float:
        """Seconds elapsed since the stopwatch was made."""
        if self._clock == "cuda":
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return self._start.elapsed_time(end) / 1e3
        self._sync()
        return self._now() - self._start


@dataclass(frozen=True)
class Timing:
    """What :func:`time_calls` measured: ``seconds`` of each timed call in order, on its clock, and the process's
    kernel (system) CPU seconds during each (``os.times().system``: mostly page faults for large steps)."""

    seconds: tuple[float, ...]
    system_seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median of :attr:`seconds`: the statistic every benchmark table reports."""
        return statistics.median(self.seconds)

    @property
    def system_median(self) -> float:
        """Median of :attr:`system_seconds`."""
        return statistics.median(self.system_seconds)


def _check_count(value: Any, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name} must be >= {least}, got {value}")


def time_calls(step: Callable[[], Any], *, repeats: int, warmup: int = 1, clock: str = "wall",
               device: torch.device | str | None = None, budget_s: float | None = None) -> Timing:
    """``warmup`` untimed calls of ``step()``, then ``repeats`` calls, each timed by a :class:`Stopwatch` on
    ``clock`` (and ``device``).

    ``budget_s``: stop after the timed call that brings their total to ``budget_s`` seconds or more (at least
    one call is timed); None times all ``repeats``.
    """
    _check_count(repeats, "repeats", 1)
    _check_count(warmup, "warmup", 0)
    if budget_s is not None:
        if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)):
            raise TypeError(f"budget_s must be a number of seconds or None, got {type(budget_s).__name__}")
        if not budget_s >= 0:
            raise ValueError(f"budget_s must be >= 0, got {budget_s}")
    for _ in range(warmup):
        step()
    seconds: list[float] = []
    system: list[float] = []
    while len(seconds) < repeats:
        kernel_start = os.times().system
        watch = Stopwatch(clock, device)
        step()
        seconds.append(watch.seconds())
        system.append(os.times().system - kernel_start)
        if budget_s is not None and sum(seconds) >= budget_s:
            break
    return Timing(tuple(seconds), tuple(system))


def time_and_peak(step: Callable[[], Any], device: torch.device, *, repeats: int,
                  budget_s: float | None = None) -> tuple[Timing, int]:
    """Timed calls of ``step`` after one untimed call, and the peak bytes it allocates above what it held before.

    Up to ``repeats`` timed calls (``budget_s`` as in :func:`time_calls`): on the wall clock on the CPU, by CUDA
    events on CUDA. The peak: on the CPU, that of the untimed first call (the rise of the resident set,
    :func:`reset_peak`; later calls reuse the blocks it left cached in the heap, so only the first shows them); on
    CUDA, where the first call compiles and autotunes, ``torch.cuda.max_memory_allocated`` during the timed calls
    above ``memory_allocated`` before them.
    """
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, got {type(device).__name__}")
    if device.type == "cuda":
        step()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        timing = time_calls(step, warmup=0, repeats=repeats, clock="cuda", budget_s=budget_s)
        return timing, torch.cuda.max_memory_allocated(device) - base
    base = reset_peak()
    step()
    peak = peak_bytes(base)
    return time_calls(step, warmup=0, repeats=repeats, clock="wall", budget_s=budget_s), peak


def proc_status_kb(field: str) -> int:
    """A ``/proc/self/status`` memory field (``"VmRSS:"``, ``"VmHWM:"``, ``"VmData:"``) in KiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


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
