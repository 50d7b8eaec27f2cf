"""Runs one operator family on one backend, forward and backward, and registers it as a custom op.

Each family is exposed as a pair of ``torch.library`` custom ops (``seqcore::<family>`` and
``seqcore::<family>_backward``) with fake implementations, so ``torch.compile`` treats a call as one node
instead of tracing Python loops or breaking the graph on data-dependent ``cu_seqlens``. The step-loop and
chunked backends get their gradients by recomputing the forward under autograd inside the backward op
(activation memory stays at the inputs between forward and backward); the Triton backends call their
backward kernels: ``seqcore.ops.<family>.triton_chunk`` or ``.triton_recurrent``, chosen by
:func:`~seqcore.ops.backends.triton_kernel_kind`.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
from dataclasses import dataclass, field
from typing import Callable, Sequence, cast

import torch
from torch import Tensor

from .backends import triton_kernel_kind
from .layout import SequenceLayout


@dataclass(frozen=True)
class Family:
    """How one recurrence family is computed.

    ``inputs`` lists the tensor arguments in call order (``optional`` ones may be ``None``); ``pad_fill``
    gives the value of padding slots that makes them identity steps; ``out_like`` names the input whose
    shape and dtype the output takes; ``state_dims`` maps the inputs to the per-sequence state shape;
    ``chunk_size`` is the chunked backend's chunk length, or a function of the inputs that returns it.
    """

    name: str
    inputs: tuple[str, ...]
    optional: frozenset[str]
    out_like: str
    state_dims: Callable[[dict[str, Tensor]], tuple[int, ...]]
    recurrent: Callable
    chunk: Callable
    chunk_size: int | Callable[[dict[str, Tensor | None]], int]
    uses_scale: bool = True
    pad_fill: dict[str, float] = field(default_factory=dict)
    # The Triton backward takes the forward output (after cu_seqlens), as the scan's does.
    triton_bwd_takes_output: bool = False

    def triton_kernels(self, backend: str, max_len: int) -> tuple[Callable, Callable]:
        """Forward and backward launchers of the Triton kernels ``backend`` runs for a longest sequence ``max_len``."""
        kind = triton_kernel_kind(backend, max_len)
        module = importlib.import_module(f"seqcore.ops.{self.name}.triton_{kind}")
        return getattr(module, f"{self.name}_fwd"), getattr(module, f"{self.name}_bwd")


def compute_dtype(tensors: Sequence[Tensor | None]) -> torch.dtype:
    """float64 if any input is float64, else float32: low precision inputs accumulate in float32."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def _nonempty_backend(backend: str, out_ref: Tensor) -> str:
    """The backend that runs a call whose output is empty (B, H or V = 0; ``scan``: D = 0).

    The step loop: its empty tensor maths needs no launch parameters or chunk reshapes, and it keeps every input
    in the autograd graph, so backward gives empty gradients.
    """
    return "recurrent" if out_ref.numel() == 0 else backend


def _chunk_multiple(family: Family, named: dict[str, Tensor | None], max_len: int) -> int:
    size = family.chunk_size(named) if callable(family.chunk_size) else family.chunk_size
    # Short sequences use a smaller power-of-two chunk rather than padding up to the full chunk size.
    return min(size, 1 << max(max_len - 1, 0).bit_length())


def forward(
    family: Family,
    backend: str,
    tensors: Sequence[Tensor | None],
    initial_state: Tensor | None,
    cu_seqlens: Tensor | None,
    scale: float,
    reverse: bool,
) -> tuple[Tensor, Tensor]:
    """Output ``(B, T, ...)`` in the dtype of ``out_like`` and final state ``(N, *state_dims)``."""
    named = dict(zip(family.inputs, tensors))
    out_ref = cast(Tensor, named[family.out_like])  # out_like is never an optional input
    batch, length = out_ref.shape[:2]
    layout = SequenceLayout(batch, length, cu_seqlens, reverse)
    scale_arg = (scale,) if family.uses_scale else ()
    dtype = compute_dtype([*tensors, initial_state])
    h0 = None if initial_state is None else initial_state.to(dtype)
    backend = _nonempty_backend(backend, out_ref)
    if backend.startswith("triton"):
        # The kernels index with contiguous strides (a transposed initial state would be read transposed).
        h0 = None if h0 is None else h0.contiguous()
        fwd, _ = family.triton_kernels(backend, layout.max_len)
        packed = [None if t is None else layout.to_packed(t) for t in tensors]
        out, final = fwd(*packed, *scale_arg, h0, layout.cu_seqlens(out_ref.device))
        return layout.from_packed(out), final
    run: Callable[..., tuple[Tensor, Tensor]]
    if backend == "chunk":
        multiple = _chunk_multiple(family, named, layout.max_len)
        run = functools.partial(family.chunk, chunk_size=multiple)
    else:
        multiple, run = 1, family.recurrent
    padded = [
        None if t is None else layout.to_padded(t.to(dtype), multiple, family.pad_fill.get(name, 0.0))
        for name, t in named.items()
    ]
    out, final = run(*padded, *scale_arg, h0)
    return layout.from_padded(out).to(out_ref.dtype), final


@contextlib.contextmanager
def _autograd_inside_op():
    """Re-enable autograd inside a custom-op implementation, which the dispatcher runs below autograd."""
    keys = torch._C.DispatchKey
    excluded = torch._C._dispatch_tls_local_exclude_set()
    for key in (keys.AutogradFunctionality, keys.AutogradOther, keys.AutogradNestedTensor, keys.ADInplaceOrView):
        excluded = excluded.remove(key)
    with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), excluded), torch.enable_grad():
        yield


def backward(
    family: Family,
    backend: str,
    tensors: Sequence[Tensor | None],
    initial_state: Tensor | None,
    cu_seqlens: Tensor | None,
    scale: float,
    reverse: bool,
    d_out: Tensor,
    d_final: Tensor | None,
) -> list[Tensor | None]:
    """Gradients for ``tensors`` and ``initial_state`` (``None`` where the input is ``None``)."""
    backend = _nonempty_backend(backend, cast(Tensor, dict(zip(family.inputs, tensors))[family.out_like]))
    if backend.startswith("triton"):
        return _triton_backward(family, backend, tensors, initial_state, cu_seqlens, scale, reverse, d_out, d_final)
    with _autograd_inside_op():
        leaves = [None if t is None else t.detach().requires_grad_() for t in (*tensors, initial_state)]
        out, final = forward(family, backend, leaves[:-1], leaves[-1], cu_seqlens, scale, reverse)
        outputs, grad_outputs = [out], [d_out]
        if d_final is not None:
            outputs.append(final)
            grad_outputs.append(d_final.to(final.dtype))
        present = [leaf for leaf in leaves if leaf is not None]
        grads = iter(torch.autograd.grad(outputs, present, grad_outputs, allow_unused=True))
    result = []
    for leaf in leaves:
        grad = None if leaf is None else next(grads)
        result.append(torch.zeros_like(leaf) if leaf is not None and grad is None else grad)
    return result


def _triton_backward(family, backend, tensors, initial_state, cu_seqlens, scale, reverse, d_out, d_final):
    named = dict(zip(family.inputs, tensors))
    out_ref = named[family.out_like]
    batch, length = out_ref.shape[:2]
    layout = SequenceLayout(batch, length, cu_seqlens, reverse)
    fwd, bwd = family.triton_kernels(backend, layout.max_len)
    # The kernels index with contiguous strides; incoming gradients are often views (a slice or a cat's share of
    # a larger gradient), which they would read as garbage.
    packed = [None if t is None else layout.to_packed(t).contiguous() for t in tensors]
    scale_arg = (scale,) if family.uses_scale else ()
    h0 = None if initial_state is None else initial_state.float().contiguous()
    dht = None if d_final is None else d_final.float().contiguous()
    cu = layout.cu_seqlens(out_ref.device)
    extra: tuple[Tensor, ...] = ()
    if family.triton_bwd_takes_output:
        # Recomputed from float32 inputs so that low-precision inputs do not round the states it reads.
        extra = (fwd(*[None if t is None else t.float() for t in packed], *scale_arg, h0, cu)[0],)
    grads = bwd(*packed, *scale_arg, h0, cu, *extra, layout.to_packed(d_out).contiguous(), dht)
    *d_inputs, d_h0 = grads
    result = [None if g is None else layout.from_packed(g) for g in d_inputs]
    if d_h0 is not None and initial_state is not None:
        d_h0 = d_h0.to(initial_state.dtype)
    return [*result, d_h0]


def _schema_args(family: Family) -> str:
    tensors = ", ".join(f"Tensor{'?' if n in family.optional else ''} {n}" for n in family.inputs)
    return f"{tensors}, Tensor? initial_state, Tensor? cu_seqlens, float scale, bool reverse, str backend"


def _unaliased(outputs: Sequence[Tensor], inputs: Sequence[Tensor | None]) -> list[Tensor]:
    """Custom ops may not return views of their inputs (a one-step scan returns its input unchanged)."""
    seen = {t.untyped_storage().data_ptr() for t in inputs if t is not None and t.numel()}
    fresh = []
    for t in outputs:
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        fresh.append(t.contiguous())
        seen.add(fresh[-1].untyped_storage().data_ptr())
    return fresh


def register(family: Family) -> Callable[..., tuple[Tensor, Tensor]]:
    """Register ``seqcore::<name>`` and its backward; returns the function the public API calls.

    In eager mode the PyTorch backends run directly under autograd, which saves the forward recomputation
    the custom op's backward needs; compiled graphs and the Triton backend go through the custom op.
    """
    n_in = len(family.inputs)

    def fwd_impl(*args):
        tensors, (h0, cu, scale, reverse, backend) = list(args[:n_in]), args[n_in:]
        out, final = forward(family, backend, tensors, h0, cu, scale, reverse)
        return tuple(_unaliased([out, final], [*tensors, h0]))

    fwd_op = torch.library.custom_op(
        f"seqcore::{family.name}", fwd_impl, mutates_args=(), schema=f"({_schema_args(family)}) -> (Tensor, Tensor)"
    )

    def fwd_fake(*args):
        named = dict(zip(family.inputs, args[:n_in]))
        h0, cu = args[n_in], args[n_in + 1]
        out_ref = named[family.out_like]
        n = out_ref.shape[0] if cu is None else cu.shape[0] - 1
        dtype = compute_dtype([*args[:n_in], h0])
        return out_ref.new_empty(out_ref.shape), out_ref.new_empty((n, *family.state_dims(named)), dtype=dtype)

    fwd_op.register_fake(fwd_fake)

    def bwd_impl(*args):
        tensors, (h0, cu, scale, reverse, backend, d_out, d_final) = list(args[:n_in]), args[n_in:]
        grads = backward(family, backend, tensors, h0, cu, scale, reverse, d_out, d_final)
        # Custom ops cannot return None: absent inputs get empty tensors, mapped back to None below.
        return _unaliased([d_out.new_empty(0) if g is None else g for g in grads], [*tensors, h0, d_out, d_final])

    bwd_op = torch.library.custom_op(
        f"seqcore::{family.name}_backward",
        bwd_impl,
        mutates_args=(),
        schema=f"({_schema_args(family)}, Tensor d_out, Tensor? d_final) -> Tensor[]",
    )

    def bwd_fake(*args):
        inputs = [*args[:n_in], args[n_in]]
        d_out = args[-2]
        return [d_out.new_empty(0) if t is None else torch.empty_like(t) for t in inputs]

    bwd_op.register_fake(bwd_fake)

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[: n_in + 2])
        ctx.static = inputs[n_in + 2 :]
        ctx.absent = [t is None for t in inputs[: n_in + 1]]

    def backward_fn(ctx, d_out, d_final):
        saved = ctx.saved_tensors
        grads = bwd_op(*saved, *ctx.static, d_out, d_final)
        grads = [None if absent else g for g, absent in zip(grads, ctx.absent)]
        return (*grads, None, None, None, None)

    fwd_op.register_autograd(backward_fn, setup_context=setup_context)

    def apply(*args):
        backend = args[-1]
        if torch.onnx.is_in_onnx_export():
            # The legacy (TorchScript) exporter has no ONNX symbolic for a custom op, and its own failure names
            # neither the op nor the way that works.
            raise RuntimeError(
                f"seqcore.ops.{family.name} cannot be exported by the TorchScript-based torch.onnx.export: it is the "
                f"custom op seqcore::{family.name}, which has no ONNX symbolic. Use torch.export.export (tested), or "
                "torch.jit.trace for a TorchScript module."
            )
        # A trace records the custom op as one node; tracing the Python path would bake its shape arithmetic in.
        if backend.startswith("triton") or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return fwd_op(*args)
        tensors, (h0, cu, scale, reverse, _) = list(args[:n_in]), args[n_in:]
        return forward(family, backend, tensors, h0, cu, scale, reverse)

    apply.op = fwd_op  # type: ignore[attr-defined]
    return apply
