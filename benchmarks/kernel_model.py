"""A roofline model of every Triton kernel of seqcore.ops: FLOPs, HBM bytes, intensity, expected H100/H200 time.

    python benchmarks/kernel_model.py                                # B8 T4096 H16 K=V=128 and B1 T4096 H4 K=V=64
    python benchmarks/kernel_model.py --aot-json aot.json            # occupancy from triton_aot.py --json
    python benchmarks/kernel_model.py --shapes 8x4096x16x128 --gpus H200

What is counted, per kernel launch of one forward+backward (bfloat16 inputs, float32 states), from the shapes and
the kernel decomposition of each module (``seqcore/ops/<family>/triton_chunk*.py``, ``triton_recurrent.py``):

- tensor-core FLOPs: ``2 m n k`` per ``tl.dot`` tile product, times the programs that compute it (a product that
  every value-block program recomputes is counted once per value block);
- CUDA-core FLOPs: exponentials, masks, decays and the elementwise work of the recurrent kernels (fp32);
- HBM bytes: every tile a program loads or stores (a tile that several programs load counts once per program:
  the model assumes no L2 reuse, an upper bound), 2 bytes per input element, 4 per float32 state or partial.

Time of one launch: ``max(compute, memory) / efficiency`` against the sequential critical path, whichever is
longer, plus 3 us of launch overhead:

- compute ``= tc_flops / (peak_tc * TC_EFF) + cuda_flops / (peak_fp32 * FP32_EFF)``,
  memory ``= bytes / (bandwidth * BW_EFF)``;
- efficiency ``= min(1, grid / SMs) * (wave tail)``: a grid smaller than the SMs leaves SMs idle, and a grid of
  ``w`` waves of ``CTAs/SM * SMs`` programs runs its last wave part-full. CTAs/SM comes from the compiled
  kernel (``--aot-json``: registers, shared memory and warps give the theoretical occupancy); without it 2 is
  assumed (marked ``*``);
- critical path ``= waves * serial steps * step latency``: kernels that walk chunks (or steps) in order pay one
  dependent HBM round trip per step (``LATENCY_US``; halved where the AOT row says the loop is pipelined) plus
  that step's work on one SM.

Assumed peaks (vendor datasheets, dense, no sparsity): H100 SXM bf16 tensor 989 TFLOP/s, fp32 CUDA cores
67 TFLOP/s, HBM3 3.35 TB/s, 132 SMs; H200 the same chip with HBM3e at 4.8 TB/s. Sustained fractions assumed:
tensor cores 0.5 (Triton ``tl.dot`` on 64x64 tiles), fp32 0.5, HBM 0.8; 0.8 us per dependent HBM step (an
unpipelined load's round trip), 0.05 us per step of an in-register loop (the delta rule's forward substitution).
Kernels that are not in the tree yet are modelled on the standard chunked decomposition and marked
``(modelled)``. This is a model for planning, not a measurement: ``benchmarks/ops.py --device cuda`` measures.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
C, BC = 64, 16  # chunk and per-key GLA sub-chunk lengths
IN_BYTES, F32 = 2, 4
TC_EFF, FP32_EFF, BW_EFF = 0.5, 0.5, 0.8
LATENCY_US, LAUNCH_US = 0.8, 3.0
SMEM_STEP_US = 0.05  # one row of a forward substitution in registers / shared memory, with its barrier
DEFAULT_CTAS = 2


@dataclass(frozen=True)
class Gpu:
    name: str
    tc_tflops: float
    fp32_tflops: float
    tb_s: float
    sms: int


GPUS = {"H100": Gpu("H100 SXM", 989.0, 67.0, 3.35, 132), "H200": Gpu("H200", 989.0, 67.0, 4.8, 132)}


@dataclass(frozen=True)
class Dims:
    """One problem: ``B`` equal-length sequences of ``T`` steps, ``H`` heads, key / value dims ``K`` / ``V``."""

    B: int
    T: int
    H: int
    K: int
    V: int

    @property
    def NT(self) -> int:  # chunks over all sequences
        return self.B * math.ceil(self.T / C)

    @property
    def tokens(self) -> int:  # (step, head) pairs
        return self.B * self.T * self.H

    def __str__(self) -> str:
        return f"B{self.B} T{self.T} H{self.H} K{self.K} V{self.V}"


@dataclass(frozen=True)
class Kernel:
    """One launch: its grid, work and sequential steps per program, as functions of the problem."""

    module: str  # e.g. "gla.triton_chunk_head"
    name: str
    grid: Callable[[Dims], int]
    tc: Callable[[Dims], float]
    cuda: Callable[[Dims], float]
    bytes: Callable[[Dims], float]
    serial: Callable[[Dims], int] = lambda d: 1  # dependent steps one program walks in order
    num_warps: int = 4
    step_us: float | None = None  # latency of one dependent step; None: an HBM round trip (LATENCY_US)


def _pow2(x: int) -> int:
    return 1 << max(0, x - 1).bit_length()


def _blk64(x: int) -> tuple[int, int]:
    """Block of at most 64 (at least 16) and the count of blocks: the chunked GLA kernels' BK/NK, BV/NV."""
    b = min(64, max(16, _pow2(x)))
    return b, math.ceil(x / b)


def _nk(d: Dims) -> int:
    return _blk64(d.K)[1]


def _nv(d: Dims) -> int:
    return _blk64(d.V)[1]


def _kv_states(d: Dims) -> float:
    """Bytes of one float32 state per chunk and head: ``(NT, H, K, V)``."""
    return d.NT * d.H * d.K * d.V * F32


def _qk(d: Dims) -> float:
    return d.tokens * d.K * IN_BYTES


def _vb(d: Dims) -> float:
    return d.tokens * d.V * IN_BYTES


def _gla_head() -> dict[str, list[Kernel]]:
    m = "gla.triton_chunk_head"
    states = Kernel(m, "_states_kernel", lambda d: _nk(d) * _nv(d) * d.B * d.H,
                    tc=lambda d: 2 * d.tokens * d.K * d.V,
                    cuda=lambda d: 2 * d.tokens * d.K * _nv(d) + 2 * d.NT * d.H * d.K * d.V,
                    bytes=lambda d: _qk(d) * _nv(d) + _vb(d) * _nk(d) + _kv_states(d),
                    serial=lambda d: math.ceil(d.T / C))
    fwd_o = Kernel(m, "_fwd_o_kernel", lambda d: d.NT * d.H * _nv(d),
                   tc=lambda d: d.NT * d.H * (2 * C * C * d.K * _nv(d) + 2 * C * C * d.V + 2 * C * d.K * d.V),
                   cuda=lambda d: d.NT * d.H * _nv(d) * 6 * C * C,
                   bytes=lambda d: 2 * _qk(d) * _nv(d) + 2 * _vb(d) + _kv_states(d))
    dh = Kernel(m, "_bwd_dh_kernel", states.grid, tc=states.tc, cuda=states.cuda,
                bytes=lambda d: _qk(d) * _nv(d) + _vb(d) * _nk(d) + _kv_states(d), serial=states.serial)
    dv = Kernel(m, "_bwd_dv_kernel", fwd_o.grid, tc=fwd_o.tc, cuda=fwd_o.cuda, bytes=fwd_o.bytes, num_warps=8)
    dqk = Kernel(m, "_bwd_dqk_kernel", lambda d: d.NT * d.H * _nk(d),
                 tc=lambda d: d.NT * d.H * (2 * C * C * d.V * _nk(d) + 3 * 2 * C * C * d.K + 2 * 2 * C * d.K * d.V),
                 cuda=lambda d: d.NT * d.H * _nk(d) * 8 * C * C,
                 bytes=lambda d: 2 * _qk(d) + 2 * _vb(d) * _nk(d) + 2 * _kv_states(d) + 2 * _qk(d)
                 + d.tokens * _nk(d) * F32, num_warps=8)
    dg = Kernel(m, "_bwd_dg_kernel", lambda d: d.NT * d.H,
                tc=lambda d: d.NT * d.H * (2 * C * C * d.K + 2 * C * C * d.V),
                cuda=lambda d: d.NT * d.H * 8 * C * C,
                bytes=lambda d: 2 * _qk(d) + 2 * _vb(d) + d.tokens * (_nk(d) + 1) * F32)
    return {"forward": [states, fwd_o], "backward": [states, dh, dv, dqk, dg]}


def _gla_key() -> dict[str, list[Kernel]]:
    m = "gla.triton_chunk_key"
    pairs = (C // BC) * (C // BC - 1) // 2  # off-diagonal sub-chunk blocks of a chunk: one tl.dot each
    diag = C // BC  # diagonal sub-chunk blocks: pairwise exponentials on CUDA cores

    def a_tc(d: Dims, kdim: int) -> float:
        return pairs * 2 * BC * BC * kdim

    def a_cuda(d: Dims, kdim: int) -> float:
        return diag * BC * BC * kdim * 4 + C * kdim * 6

    cumsum = Kernel(m, "_chunk_cumsum_kernel", lambda d: d.NT * d.H * _nk(d), tc=lambda d: 0.0,
                    cuda=lambda d: 2 * d.tokens * d.K,
                    bytes=lambda d: d.tokens * d.K * (IN_BYTES + F32 + 4))
    states = Kernel(m, "_chunk_states_kernel", lambda d: _nk(d) * _nv(d) * d.B * d.H,
                    tc=lambda d: 2 * d.tokens * d.K * d.V,
                    cuda=lambda d: 4 * d.tokens * d.K * _nv(d) + 2 * d.NT * d.H * d.K * d.V,
                    bytes=lambda d: (_qk(d) + d.tokens * d.K * 8) * _nv(d) + _vb(d) * _nk(d) + _kv_states(d),
                    serial=lambda d: math.ceil(d.T / C))
    fwd_o = Kernel(m, "_fwd_o_kernel", lambda d: d.NT * d.H * _nv(d),
                   tc=lambda d: d.NT * d.H * (_nv(d) * a_tc(d, d.K) + 2 * C * C * d.V + 2 * C * d.K * d.V),
                   cuda=lambda d: d.NT * d.H * _nv(d) * a_cuda(d, d.K),
                   bytes=lambda d: (2 * _qk(d) + 2 * d.tokens * d.K * 8) * _nv(d) + 2 * _vb(d) + _kv_states(d))
    dh = Kernel(m, "_bwd_dh_kernel", states.grid, tc=states.tc, cuda=states.cuda,
                bytes=lambda d: (_qk(d) + d.tokens * d.K * 8) * _nv(d) + _vb(d) * _nk(d) + _kv_states(d),
                serial=states.serial)
    dv = Kernel(m, "_bwd_dv_kernel", fwd_o.grid, tc=fwd_o.tc, cuda=fwd_o.cuda, bytes=fwd_o.bytes)

    def dqk(name: str) -> Kernel:  # dq and dk: one program per (chunk, head, key block), looping over V inside
        return Kernel(m, name, lambda d: d.NT * d.H * _nk(d),
                      tc=lambda d: d.NT * d.H * _nk(d) * (2 * C * C * d.V + a_tc(d, _blk64(d.K)[0])
                                                           + 2 * C * d.V * _blk64(d.K)[0]),
                      cuda=lambda d: d.NT * d.H * _nk(d) * a_cuda(d, _blk64(d.K)[0]),
                      bytes=lambda d: 2 * _qk(d) + d.tokens * d.K * 8 + 2 * _vb(d) * _nk(d) + _kv_states(d)
                      + _qk(d) + 2 * d.tokens * d.K * F32)
    dg = Kernel(m, "_bwd_dg_kernel", lambda d: d.B * d.H * _nk(d), tc=lambda d: 0.0,
                cuda=lambda d: 3 * d.tokens * d.K, bytes=lambda d: d.tokens * d.K * (2 * IN_BYTES + F32),
                serial=lambda d: math.ceil(d.T / C))
    return {"forward": [cumsum, states, fwd_o],
            "backward": [cumsum, states, dh, dv, dqk("_bwd_dq_kernel"), dqk("_bwd_dk_kernel"), dg]}


def _delta_blocks(d: Dims, walk: bool = False) -> tuple[int, int]:
    """BV and NV of the chunked delta rule: the whole key dim in a program; value blocks of 64 while K <= 64, else
    32, and 32 in the kernels that walk a sequence's chunks (``walk``)."""
    bk = max(16, _pow2(d.K))
    bv = min(32 if walk or bk > 64 else 64, max(16, _pow2(d.V)))
    return bv, math.ceil(d.V / bv)


def _delta() -> dict[str, list[Kernel]]:
    m = "delta_rule.triton_chunk"
    nv = lambda d: _delta_blocks(d)[1]  # noqa: E731
    walk_bv, walk_nv = (lambda d: _delta_blocks(d, True)[0]), (lambda d: _delta_blocks(d, True)[1])
    vf32 = lambda d: d.tokens * d.V * F32  # noqa: E731  (U, V_new and their gradients are float32)
    kf32 = lambda d: d.tokens * d.K * F32  # noqa: E731  (W and the dk accumulator)

    def wu(store_t: bool) -> Kernel:  # the backward's recompute also stores T by rows
        return Kernel(m, "_wu_kernel", lambda d: d.NT * d.H,
                      tc=lambda d: d.NT * d.H * (2 * C * C * d.K + 2 * C * C * d.K + 2 * C * C * d.V),
                      cuda=lambda d: d.NT * d.H * (C**3 + 8 * C * C),  # forward substitution for (I + A)^-1
                      bytes=lambda d: _qk(d) + _vb(d) + kf32(d) + vf32(d) + (d.tokens * C * F32 if store_t else 0),
                      serial=lambda d: C, step_us=SMEM_STEP_US)

    states = Kernel(m, "_states_kernel", lambda d: d.B * d.H * walk_nv(d),
                    tc=lambda d: 4 * d.tokens * d.K * d.V,
                    cuda=lambda d: 2 * d.tokens * d.K * walk_nv(d) + 3 * d.NT * d.H * d.K * d.V,
                    bytes=lambda d: (_qk(d) + kf32(d)) * walk_nv(d) + 2 * vf32(d) + _kv_states(d),
                    serial=lambda d: math.ceil(d.T / C), num_warps=8)
    fwd_o = Kernel(m, "_fwd_o_kernel", lambda d: d.NT * d.H * nv(d),
                   tc=lambda d: d.NT * d.H * (2 * C * C * d.K * nv(d) + 2 * C * C * d.V + 2 * C * d.K * d.V),
                   cuda=lambda d: d.NT * d.H * nv(d) * 6 * C * C,
                   bytes=lambda d: 2 * _qk(d) * nv(d) + vf32(d) + _vb(d) + _kv_states(d))
    dh = Kernel(m, "_bwd_dh_kernel", states.grid,
                tc=lambda d: d.NT * d.H * walk_nv(d) * (2 * C * C * d.K + 2 * C * C * walk_bv(d))
                + 3 * 2 * d.tokens * d.K * d.V,
                cuda=lambda d: d.NT * d.H * walk_nv(d) * 6 * C * C + 2 * d.NT * d.H * d.K * d.V,
                bytes=lambda d: (2 * _qk(d) + kf32(d)) * walk_nv(d) + _vb(d) + vf32(d) + _kv_states(d),
                serial=states.serial, num_warps=8)
    bwd_wu = Kernel(m, "_bwd_wu_kernel", lambda d: d.NT * d.H,
                    tc=lambda d: d.NT * d.H * (2 * C * d.K * d.V + 4 * C * C * d.V + 8 * C * C * d.K + 4 * C**3),
                    cuda=lambda d: d.NT * d.H * 8 * C * C,
                    bytes=lambda d: _qk(d) + 2 * _vb(d) + 2 * kf32(d) + 2 * vf32(d) + d.tokens * C * F32
                    + _kv_states(d), num_warps=8)
    bwd_dqk = Kernel(m, "_bwd_dqk_kernel", lambda d: d.NT * d.H,
                     tc=lambda d: d.NT * d.H * (4 * C * d.K * d.V + 2 * C * C * d.V + 6 * C * C * d.K),
                     cuda=lambda d: d.NT * d.H * 8 * C * C,
                     bytes=lambda d: 4 * _qk(d) + _vb(d) + vf32(d) + 2 * _kv_states(d) + kf32(d), num_warps=8)
    return {"forward": [wu(False), states, fwd_o], "backward": [wu(True), states, dh, bwd_wu, bwd_dqk]}


def _scan() -> dict[str, list[Kernel]]:
    m = "scan.triton_chunk"
    nd = lambda d: math.ceil(d.H * d.K / 32)  # noqa: E731  (D = H * K channels in blocks of 32)
    elems = lambda d: d.B * d.T * d.H * d.K  # noqa: E731
    tile = Kernel(m, "_scan_fwd_tile_kernel", lambda d: d.NT * nd(d), tc=lambda d: 0.0, cuda=lambda d: 3 * elems(d),
                  bytes=lambda d: 2 * elems(d) * IN_BYTES + 2 * d.NT * d.H * d.K * F32)
    carry = Kernel(m, "_scan_carry_kernel", lambda d: d.B * nd(d), tc=lambda d: 0.0,
                   cuda=lambda d: 3 * d.NT * d.H * d.K, bytes=lambda d: 3 * d.NT * d.H * d.K * F32,
                   serial=lambda d: math.ceil(math.ceil(d.T / C) / 64))
    apply = Kernel(m, "_scan_fwd_apply_kernel", tile.grid, tc=lambda d: 0.0, cuda=lambda d: 4 * elems(d),
                   bytes=lambda d: 3 * elems(d) * IN_BYTES + d.NT * d.H * d.K * F32)
    btile = Kernel(m, "_scan_bwd_tile_kernel", tile.grid, tc=lambda d: 0.0, cuda=tile.cuda, bytes=tile.bytes)
    bapply = Kernel(m, "_scan_bwd_apply_kernel", tile.grid, tc=lambda d: 0.0, cuda=lambda d: 6 * elems(d),
                    bytes=lambda d: 5 * elems(d) * IN_BYTES + d.NT * d.H * d.K * F32)
    return {"forward": [tile, carry, apply], "backward": [btile, carry, bapply]}


def _recurrent_gla(per_key: bool) -> dict[str, list[Kernel]]:
    m = "gla.triton_recurrent"

    def nv(d: Dims) -> int:
        bk = _pow2(d.K)
        return math.ceil(d.V / min(_pow2(d.V), max(8, 4096 // bk)))

    gate = (lambda d: d.tokens * d.K * IN_BYTES) if per_key else (lambda d: d.tokens * IN_BYTES)
    fwd = Kernel(m, "_gla_fwd_kernel", lambda d: d.B * d.H * nv(d), tc=lambda d: 0.0,
                 cuda=lambda d: 6 * d.tokens * d.K * d.V,
                 bytes=lambda d: (2 * _qk(d) + gate(d)) * nv(d) + 2 * _vb(d), serial=lambda d: d.T)
    # the backward's per-value-block float32 partials of dq, dk (and dg) are written, then summed in torch
    partials = lambda d: nv(d) * d.tokens * d.K * F32 * (3 if per_key else 2) * 2  # noqa: E731
    dq = Kernel(m, "_gla_bwd_dq_kernel", fwd.grid, tc=lambda d: 0.0, cuda=lambda d: 6 * d.tokens * d.K * d.V,
                bytes=lambda d: (_qk(d) + gate(d)) * nv(d) + 2 * _vb(d) + partials(d) / 2, serial=lambda d: d.T)
    dkv = Kernel(m, "_gla_bwd_dkv_kernel", fwd.grid, tc=lambda d: 0.0, cuda=lambda d: 10 * d.tokens * d.K * d.V,
                 bytes=lambda d: (2 * _qk(d) + gate(d)) * nv(d) + 3 * _vb(d) + partials(d) / 2, serial=lambda d: d.T)
    return {"forward": [fwd], "backward": [dq, dkv]}


def _recurrent_delta() -> dict[str, list[Kernel]]:
    m = "delta_rule.triton_recurrent"

    def blocks(d: Dims) -> tuple[int, int]:
        bk = _pow2(d.K)
        bv = min(_pow2(d.V), 32, max(8, 4096 // bk))
        return bv, math.ceil(d.V / bv)

    nv = lambda d: blocks(d)[1]  # noqa: E731
    fwd = Kernel(m, "_delta_rule_fwd_kernel", lambda d: d.B * d.H * nv(d), tc=lambda d: 0.0,
                 cuda=lambda d: 8 * d.tokens * d.K * d.V,
                 bytes=lambda d: 2 * _qk(d) * nv(d) + 2 * _vb(d) + d.B * math.ceil(d.T / C) * d.H * d.K * d.V * F32,
                 serial=lambda d: d.T)
    # backward: every step's state goes through the per-program scratch (written in the recompute, read in reverse)
    bwd = Kernel(m, "_delta_rule_bwd_kernel", lambda d: min(d.B, max(1, 512 // (d.H * nv(d)))) * d.H * nv(d),
                 tc=lambda d: 0.0, cuda=lambda d: 24 * d.tokens * d.K * d.V,
                 bytes=lambda d: 3 * _qk(d) * nv(d) + 3 * _vb(d) + 2 * d.tokens * d.K * d.V * F32
                 + 2 * nv(d) * d.tokens * d.K * F32,
                 serial=lambda d: 2 * d.T * math.ceil(d.B / min(d.B, max(1, 512 // (d.H * nv(d))))),
                 num_warps=8)
    return {"forward": [fwd], "backward": [bwd]}


FAMILIES: dict[str, Callable[[], dict[str, list[Kernel]]]] = {
    "gla per-head gate, triton_chunk": _gla_head,
    "gla per-key gate, triton_chunk": _gla_key,
    "gated delta rule, triton_chunk": _delta,
    "scan (D = H*K), triton_chunk": _scan,
    "gla per-head gate, triton_recurrent": lambda: _recurrent_gla(False),
    "gla per-key gate, triton_recurrent": lambda: _recurrent_gla(True),
    "gated delta rule, triton_recurrent": _recurrent_delta,
}
# the AOT case variant that launches each family's kernels
AOT_VARIANT = {"gla per-head gate": "headgate", "gla per-key gate": "keygate", "gated delta rule": "gated",
               "scan (D = H*K)": ""}


def in_tree(kernel: Kernel) -> bool:
    """Whether the module defines the kernel (read from its source, so no Triton import is needed)."""
    path = ROOT / "seqcore" / "ops" / (kernel.module.replace(".", "/") + ".py")
    return path.exists() and f"def {kernel.name}(" in path.read_text()


def load_aot(path: str | None) -> list[dict]:
    return json.loads(Path(path).read_text()) if path else []


def aot_row(rows: list[dict], kernel: Kernel, d: Dims, family: str, arch: str = "sm_90") -> dict | None:
    """The compiled kernel's row with the fewest CTAs/SM among the AOT cases of this K, V and family variant."""
    backend = family.rsplit(", ", 1)[1]
    variant = AOT_VARIANT[family.rsplit(", ", 1)[0]]
    hits = [r for r in rows if r.get("ok") and r.get("arch") == arch
            and r.get("kernel", "").split(":")[-1] == kernel.name
            and r.get("module", "").endswith(kernel.module)
            and f"K{d.K} V{d.V}" in r.get("case", "") and variant in r.get("case", "")
            and (backend in r.get("case", "") or "[" not in r.get("case", ""))]
    return min(hits, key=lambda r: r["ctas_per_sm"]) if hits else None


@dataclass
class Estimate:
    kernel: Kernel
    grid: int
    ctas: int
    ctas_known: bool
    tc: float
    cuda: float
    bytes: float
    us: dict[str, float]
    bound: dict[str, str]
    regs: int | None


def estimate(kernel: Kernel, d: Dims, row: dict | None, gpus: list[Gpu]) -> Estimate:
    grid = max(1, kernel.grid(d))
    ctas = int(row["ctas_per_sm"]) if row else DEFAULT_CTAS
    pipelined = bool(row and row.get("pipelined"))
    tc, cuda, nbytes = kernel.tc(d), kernel.cuda(d), kernel.bytes(d)
    us, bound = {}, {}
    for gpu in gpus:
        slots = max(1, ctas) * gpu.sms
        waves = math.ceil(grid / slots)
        eff = min(1.0, grid / gpu.sms) * (grid / (waves * slots) if grid > slots else 1.0)
        compute = (tc / (gpu.tc_tflops * 1e12 * TC_EFF) + cuda / (gpu.fp32_tflops * 1e12 * FP32_EFF)) * 1e6
        memory = nbytes / (gpu.tb_s * 1e12 * BW_EFF) * 1e6
        steps = kernel.serial(d)
        # one dependent step: an HBM round trip plus that step's share of the work on one SM
        latency = kernel.step_us if kernel.step_us is not None else LATENCY_US / (2 if pipelined else 1)
        per_step = latency + (max(compute, memory) * gpu.sms / grid) / max(1, steps)
        path = waves * steps * per_step if steps > 1 else 0.0
        roof = max(compute, memory) / eff
        us[gpu.name] = max(roof, path) + LAUNCH_US
        bound[gpu.name] = "latency" if path > roof else ("compute" if compute >= memory else "memory")
    return Estimate(kernel, grid, ctas, row is not None, tc, cuda, nbytes, us, bound, row.get("regs") if row else None)


def model(d: Dims, rows: list[dict], gpus: list[Gpu]) -> list[tuple[str, str, list[Estimate]]]:
    out = []
    for family, build in FAMILIES.items():
        for direction, kernels in build().items():
            out.append((family, direction, [estimate(k, d, aot_row(rows, k, d, family), gpus) for k in kernels]))
    return out


def sdpa_us(d: Dims, gpu: Gpu, efficiency: float = 0.6) -> float:
    """Flash attention, causal, forward + backward: about ``2 B H T^2 D`` (forward) and 2.5 times that (backward)."""
    flops = 3.5 * 2 * d.B * d.H * d.T**2 * d.K
    return flops / (gpu.tc_tflops * 1e12 * efficiency) * 1e6


def print_model(d: Dims, rows: list[dict], gpus: list[Gpu]) -> None:
    names = [g.name for g in gpus]
    print(f"\n### {d}, bfloat16 inputs\n")
    head = ["family", "pass", "kernel", "grid", "CTA/SM", "regs", "TC GFLOP", "fp32 GFLOP", "GB", "FLOP/B"]
    head += [f"{n} us" for n in names] + ["bound"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    totals: dict[str, dict[str, float]] = {}
    for family, direction, estimates in model(d, rows, gpus):
        for e in estimates:
            tag = "" if in_tree(e.kernel) else " (modelled)"
            ai = (e.tc + e.cuda) / e.bytes if e.bytes else float("inf")
            row = [family, direction, e.kernel.name + tag, f"{e.grid:,}", f"{e.ctas}{'' if e.ctas_known else '*'}",
                   "-" if e.regs is None else str(e.regs), f"{e.tc / 1e9:,.2f}", f"{e.cuda / 1e9:,.2f}",
                   f"{e.bytes / 1e9:,.3f}", f"{ai:,.1f}"]
            row += [f"{e.us[n]:,.0f}" for n in names] + [e.bound[names[-1]]]
            print("| " + " | ".join(row) + " |")
            for n in names:
                totals.setdefault(family, {}).setdefault(n, 0.0)
                totals[family][n] += e.us[n]
    print(f"\nforward+backward per family ({', '.join(names)}), ms:\n")
    print("| family | " + " | ".join(f"{n} ms" for n in names) + " | flash SDPA (model) / family |")
    print("|---|" + "---|" * len(names) + "---|")
    for family, by_gpu in totals.items():
        ratio = sdpa_us(d, gpus[-1]) / by_gpu[names[-1]]
        print(f"| {family} | " + " | ".join(f"{by_gpu[n] / 1e3:,.2f}" for n in names) + f" | {ratio:,.1f}x |")
    print(f"\nflash SDPA forward+backward model (causal, D={d.K}, 60% of the tensor peak): "
          + ", ".join(f"{g.name} {sdpa_us(d, g) / 1e3:,.2f} ms" for g in gpus))


def print_scaling(base: Dims, lengths: list[int], rows: list[dict], gpu: Gpu) -> None:
    """Forward+backward of the chunked families on ``gpu`` at several T, against the flash SDPA model."""
    print(f"\n### Chunked kernels against T ({gpu.name}, B{base.B} H{base.H} K{base.K} V{base.V})\n")
    print("| family | " + " | ".join(f"T={t:,} ms | SDPA/ours" for t in lengths) + " |")
    print("|---|" + "---|---|" * len(lengths))
    for family, build in FAMILIES.items():
        if not family.endswith("triton_chunk"):
            continue
        cells = []
        for t in lengths:
            d = Dims(base.B, t, base.H, base.K, base.V)
            total = sum(estimate(k, d, aot_row(rows, k, d, family), [gpu]).us[gpu.name]
                        for kernels in build().values() for k in kernels)
            cells += [f"{total / 1e3:,.2f}", f"{sdpa_us(d, gpu) / total:,.1f}x"]
        print(f"| {family} | " + " | ".join(cells) + " |")


def _shape(text: str) -> Dims:
    """``BxTxHxD`` (K = V = D) -> :class:`Dims`."""
    b, t, h, dim = (int(x) for x in text.lower().split("x"))
    return Dims(b, t, h, dim, dim)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["8x4096x16x128", "1x4096x4x64"], help="BxTxHxD, K = V = D")
    parser.add_argument("--aot-json", help="rows written by ../shared/tools/triton_aot.py --json (occupancy, registers)")
    parser.add_argument("--gpus", nargs="+", choices=list(GPUS), default=list(GPUS))
    parser.add_argument("--scaling-lengths", type=int, nargs="+", default=[4096, 16384, 32768],
                        help="T of the closing table (first shape, last GPU)")
    args = parser.parse_args(argv)
    rows = load_aot(args.aot_json)
    gpus = [GPUS[g] for g in args.gpus]
    print("# seqcore Triton kernels: roofline model (see the module docstring for the assumptions)")
    print(", ".join(f"{g.name}: {g.tc_tflops:g} TFLOP/s bf16 tensor, {g.fp32_tflops:g} fp32, {g.tb_s:g} TB/s, "
                    f"{g.sms} SMs" for g in gpus)
          + f"; sustained fractions tensor {TC_EFF}, fp32 {FP32_EFF}, HBM {BW_EFF}; {LATENCY_US} us per dependent "
          f"step; CTA/SM {'from ' + args.aot_json if rows else f'assumed {DEFAULT_CTAS} (*)'}")
    for shape in args.shapes:
        print_model(_shape(shape), rows, gpus)
    print_scaling(_shape(args.shapes[0]), args.scaling_lengths, rows, gpus[-1])


if __name__ == "__main__":
    main()
