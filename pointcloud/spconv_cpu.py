"""Make spconv 2.3's CPU sparse convolutions trainable and thread-count independent: the one place the project
patches spconv.

Two defects of spconv 2.3.8 on the CPU, each fixed by replacing one name in ``spconv.pytorch.ops`` only (never
spconv's compiled code, never another module), each guarded so that a spconv that restructures this code is
left alone rather than patched blindly. :func:`apply_cpu_backward_patch` and :func:`apply_cpu_thread_patch` are
idempotent; ``pointcloud``'s import calls both, and tests call them explicitly.

1. Backward passes fail without an NVIDIA driver. ``spconv.pytorch.ops`` calls ``get_current_stream()`` (which
   reads ``torch.cuda.current_stream().cuda_stream``) unconditionally in its backward paths, even when every
   tensor is on the CPU. The stream handle is ignored by the CPU kernels, so a stream of 0 is a correct answer
   there: :func:`apply_cpu_backward_patch` replaces ``get_current_stream`` by a wrapper that returns 0 when CUDA
   is unavailable and defers to the original otherwise.

2. Results are wrong with more than one CPU thread. The CPU convolution is a Python loop over the kernel offsets
   (``ops.indice_conv`` forward, ``ops.indice_conv_backward`` for the input gradient): gather the paired input
   rows (``SpconvOps.gather_cpu``), one GEMM, then add the product rows into their outputs
   (``SpconvOps.scatter_add_cpu``). Within one offset every output row appears once, so a parallel scatter has
   no conflicting writes and would give the serial bits. But spconv's ``GatherCPU::scatter_add`` (generated from
   ``spconv/csrc/sparse/gather.py``) declares its row pointers ``buf`` and ``out_ptr`` *outside* the
   ``tv::kernel_1d`` lambda that OpenMP runs on every thread, and the lambda captures them by reference: one
   thread sets them, another overwrites them before the first has added its row, and rows land in the wrong
   outputs (or twice, or not at all). ``gather`` keeps its pointers local and is correct; index building
   (``SparseConvIndicesCPU``) and the pooling kernels are serial or race-free; the GEMMs are torch's. With 2
   threads ``scatter_add_cpu`` alone, on 20k distinct rows, is wrong in most runs; with 1 it is always exact.

   spconv's compiled OpenMP calls bind to the OpenMP runtime torch loads (``LD_DEBUG=bindings`` shows
   ``core_cc``'s ``GOMP_parallel`` and ``omp_get_max_threads`` resolved in ``torch/lib/libgomp.so.1``, not in
   spconv's own copy, whichever is imported first), so ``torch.set_num_threads`` sets its thread count.
   :func:`apply_cpu_thread_patch` therefore runs exactly the racy kernel on one thread (:func:`single_threaded`),
   and everything else, gathers and GEMMs included, keeps every thread:

   - spconv's CPU-only build (``spconv``): ``ops.SpconvOps`` becomes a subclass whose ``scatter_add_cpu`` calls
     the original on one thread. Forward and backward both reach it through that name, so autograd's later
     backward calls are covered without any context at call time.
   - CUDA builds (``spconv-cu12x``): the loop over offsets runs inside compiled code (``ConvGemmOps``) for CPU
     tensors, so the narrowest reachable scope is the whole ``ops.indice_conv`` / ``ops.indice_conv_backward``
     call, run on one thread only when its features are on the CPU; CUDA tensors go straight to the original
     with the thread count untouched.

   The thread count is process-wide: while a scatter runs, torch work on other Python threads of the process
   also sees one thread (slower, never wrong).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, Optional

import torch

__all__ = ["apply_cpu_backward_patch", "apply_cpu_thread_patch", "is_patched", "single_threaded"]

# The original function, kept so the wrapper can defer to it whenever CUDA does become available.
_ORIGINAL: Optional[Callable[[], int]] = None
_MARK = "_seqcore_cpu_stream_patch"
_THREAD_MARK = "_seqcore_cpu_thread_patch"


def _cpu_safe_current_stream() -> int:
    """Return the current CUDA stream handle, or 0 (the null stream, ignored by CPU kernels) without CUDA."""
    if torch.cuda.is_available() and _ORIGINAL is not None:
        return _ORIGINAL()
    return 0


setattr(_cpu_safe_current_stream, _MARK, True)


def is_patched() -> bool:
    """True when ``spconv.pytorch.ops.get_current_stream`` is this module's CPU-safe wrapper."""
    try:
        import spconv.pytorch.ops as ops
    except Exception:  # noqa: BLE001 -- spconv missing or broken: nothing is patched
        return False
    return bool(getattr(getattr(ops, "get_current_stream", None), _MARK, False))


def apply_cpu_backward_patch() -> bool:
    """Patch spconv so its backward passes run without an NVIDIA driver; idempotent.

    The patch is applied only when all of these hold: ``spconv.pytorch.ops`` imports, CUDA is unavailable,
    and the module has an attribute ``get_current_stream`` whose function is named ``get_current_stream``
    (so a future spconv that restructures this code is left alone rather than patched blindly).

    Returns:
        True when the patch is in effect after the call (applied now or earlier), False otherwise.
    """
    global _ORIGINAL
    try:
        import spconv.pytorch.ops as ops
    except Exception:  # noqa: BLE001 -- spconv missing or broken: nothing to patch
        return False
    current = getattr(ops, "get_current_stream", None)
    if current is None:
        return False
    if getattr(current, _MARK, False):
        return True  # already patched: calling twice must not wrap the wrapper
    if torch.cuda.is_available():
        return False  # the real stream exists; spconv works as shipped
    if not callable(current) or getattr(current, "__name__", None) != "get_current_stream":
        return False
    _ORIGINAL = current
    ops.get_current_stream = _cpu_safe_current_stream
    return True


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(1)`` and restore the previous count afterwards, also when the
    body raises."""
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _one_thread_on_cpu(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function(features, ...)`` run on one thread when ``features`` is a CPU tensor, untouched otherwise."""

    @functools.wraps(function)
    def wrapper(features: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if features.device.type != "cpu":
            return function(features, *args, **kwargs)
        with single_threaded():
            return function(features, *args, **kwargs)

    setattr(wrapper, _THREAD_MARK, True)
    return wrapper


def _single_threaded_scatter_ops(base: type) -> type:
    """A subclass of spconv's ``SpconvOps`` whose ``scatter_add_cpu`` runs the original on one thread."""
    racy = base.scatter_add_cpu

    class SpconvOps(base):  # the name spconv's code and tracebacks use
        @staticmethod
        def scatter_add_cpu(out: Any, inp: Any, inds: Any) -> None:
            """``out[inds[k]] += inp[k]`` for every row ``k`` of ``inds`` (spconv's kernel, on one thread)."""
            with single_threaded():
                racy(out, inp, inds)

    setattr(SpconvOps, _THREAD_MARK, True)
    return SpconvOps


def apply_cpu_thread_patch() -> bool:
    """Make spconv's CPU sparse convolutions exact at every thread count (see the module docstring); idempotent.

    Applied only when ``spconv.pytorch.ops`` imports and has the names this relies on: ``SpconvOps`` with a
    ``scatter_add_cpu`` (CPU-only build, ``GEMM_CPP is None``), or callable ``indice_conv`` and
    ``indice_conv_backward`` (CUDA builds).

    Returns:
        True when the patch is in effect after the call (applied now or earlier), False otherwise.
    """
    try:
        import spconv.pytorch.ops as ops
    except Exception:  # noqa: BLE001 -- spconv missing or broken: nothing to patch
        return False
    if not hasattr(ops, "GEMM_CPP"):
        return False
    if ops.GEMM_CPP is None:
        base = getattr(ops, "SpconvOps", None)
        if base is None or not callable(getattr(base, "scatter_add_cpu", None)):
            return False
        if getattr(base, _THREAD_MARK, False):
            return True
        ops.SpconvOps = _single_threaded_scatter_ops(base)
        return True
    names = ("indice_conv", "indice_conv_backward")
    functions = [getattr(ops, name, None) for name in names]
    if all(getattr(f, _THREAD_MARK, False) for f in functions):
        return True
    if not all(callable(f) and getattr(f, "__name__", None) == name for f, name in zip(functions, names)):
        return False
    for name, function in zip(names, functions):
        setattr(ops, name, _one_thread_on_cpu(function))
    return True
