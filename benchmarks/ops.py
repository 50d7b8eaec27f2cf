"""Forward+backward time and peak memory of the operators against causal softmax attention.

    python benchmarks/ops.py                 # CPU: T = 1,024 ... 16,384 (the table in benchmarks/RESULTS.md)
    python benchmarks/ops.py --quick         # CPU: T = 1,024 and 4,096, as `make demo` runs it
    python benchmarks/ops.py --device cuda   # GPU: the kernels against fla and flash SDPA (see below)

CPU: B = 1, H = 4, K = V = 64 (the scan runs over D = H * K = 256 channels); the step loop and the chunked
PyTorch backend against SDPA. Peak memory is the rise of the process's resident set over the inputs during the
first forward+backward, each in a fresh forked process.

CUDA (``--device cuda``): bfloat16 inputs at B=8 H=16 K=V=128 and B=1 H=4 K=V=64 (``--shapes``), T = 1k ... 32k
(``--lengths``), for GLA with a per-head gate ``g (B, T, H)``, GLA with a per-key gate ``g (B, T, H, K)`` and the
gated delta rule, on the backends ``triton_chunk``, ``triton_recurrent`` and ``chunk`` (PyTorch), against
``scaled_dot_product_attention(is_causal=True)`` on the flash kernel with the same q/k/v in ``(B, H, T, D)``, and
against flash-linear-attention's ``chunk_simple_gla`` / ``chunk_gla`` / ``chunk_gated_delta_rule`` when
``import fla`` works (benchmark only, never a dependency; it takes the same ``[B, T, H, D]`` layout and log-space
gates; its delta rule gets the same L2-normalized keys). Each case: one untimed call (compilation, autotuning),
then calls timed with CUDA events until ``--case-budget`` seconds or ``--repeats`` calls (median), and the
peak of ``torch.cuda.max_memory_allocated`` over the inputs (reset per case; gradients are freed before every
call, so each call allocates them anew). A case whose time, extrapolated from the previous length (linear;
quadratic for SDPA), would exceed ``--max-call-ms`` is skipped and shown as ``skip``; cases left when
``--time-limit`` runs out show ``budget``. Every ratio comes from this one run.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from dataclasses import dataclass
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

import seqcore.ops as ops
from benchmarks.measure import ChildError, Stopwatch, in_child, time_and_peak

B, H, D = 1, 4, 64


@dataclass
class Measure:
    ms: float
    peak_mb: float


def _measured(step: Callable[[], None], device: torch.device, repeats: int, budget_s: float | None = None) -> Measure:
    """:func:`benchmarks.measure.time_and_peak` in this table's units: the median call in ms, the peak in MiB."""
    timing, peak = time_and_peak(step, device, repeats=repeats, budget_s=budget_s)
    return Measure(timing.median * 1e3, peak / 2**20)


def measure(family: str, backend: str, t: int, device: torch.device, repeats: int) -> Measure:
    """Each CPU measurement runs in a forked child, so its peak resident set starts from a clean heap."""
    try:
        return in_child(lambda: _measured(make_step(family, backend, t, device), device, repeats),
                        threads=torch.get_num_threads())
    except ChildError as err:
        raise RuntimeError(f"benchmark failed: {family} {backend} T={t}: {err}") from err


def make_step(family: str, backend: str, t: int, device: torch.device) -> Callable[[], None]:
    gen = torch.Generator(device="cpu").manual_seed(t)

    def leaf(*shape, fn=lambda z: z):
        return fn(torch.randn(*shape, generator=gen)).to(device).requires_grad_()

    if backend == "sdpa":
        q, k, v = (leaf(B, H, t, D) for _ in range(3))
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    if family == "scan":
        x = leaf(B, t, H * D)
        a = leaf(B, t, H * D, fn=lambda z: torch.tanh(z))
        return lambda: ops.scan(x, a, backend=backend)[0].sum().backward()
    q, v = leaf(B, t, H, D), leaf(B, t, H, D)
    if family == "delta_rule":
        k = leaf(B, t, H, D, fn=lambda z: F.normalize(z, dim=-1))
        beta = leaf(B, t, H, fn=lambda z: 2 * torch.sigmoid(z))
        g = leaf(B, t, H, fn=lambda z: F.logsigmoid(z + 3))
        return lambda: ops.delta_rule(q, k, v, beta, g, backend=backend)[0].sum().backward()
    k = leaf(B, t, H, D, fn=lambda z: z / D**0.5)
    gate_shape = (B, t, H, D) if family == "gla (per-key gate)" else (B, t, H)
    g = leaf(*gate_shape, fn=lambda z: F.logsigmoid(z + 3))
    return lambda: ops.gla(q, k, v, g, backend=backend)[0].sum().backward()


FAMILIES = ["scan", "gla (per-head gate)", "gla (per-key gate)", "delta_rule"]
CPU_BACKENDS = ["recurrent", "chunk"]


def run(lengths: list[int], max_recurrent: int, repeats: int, device: torch.device) -> dict:
    backends = CPU_BACKENDS
    results: dict = {}
    for t in lengths:
        results[("sdpa", t)] = measure("", "sdpa", t, device, repeats)
        for family in FAMILIES:
            for backend in backends:
                if backend == "recurrent" and t > max_recurrent:
                    continue
                results[(family, backend, t)] = measure(family, backend, t, device, repeats)
                print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return results


def _cell(m: Measure | None, kind: str) -> str:
    if m is None:
        return "-"
    return f"{m.ms:,.1f}" if kind == "ms" else f"{m.peak_mb:,.0f}"


def print_tables(results: dict, lengths: list[int]) -> list[tuple[str, bool, str]]:
    backends = CPU_BACKENDS
    checks = []
    for family in FAMILIES:
        print(f"\n### {family}\n")
        head = ["T"] + [f"{b} ms" for b in backends] + ["sdpa ms", "recurrent/chunk", "sdpa/chunk"]
        head += [f"{b} MB" for b in backends] + ["sdpa MB"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for t in lengths:
            ms = [results.get((family, b, t)) for b in backends]
            sdpa = results[("sdpa", t)]
            chunk = results[(family, "chunk", t)]
            rec = results.get((family, "recurrent", t))
            speedup = f"{rec.ms / chunk.ms:,.1f}x" if rec else "-"
            row = [f"{t:,}"] + [_cell(m, "ms") for m in ms] + [_cell(sdpa, "ms"), speedup, f"{sdpa.ms / chunk.ms:,.2f}x"]
            row += [_cell(m, "mb") for m in ms] + [_cell(sdpa, "mb")]
            print("| " + " | ".join(row) + " |")
        checks += _targets(results, family, lengths)
    return checks


def _targets(results: dict, family: str, lengths: list[int]) -> list[tuple[str, bool, str]]:
    out = []
    chunk = lambda t: results[(family, "chunk", t)].ms  # noqa: E731
    rec = results.get((family, "recurrent", 4096))
    if rec:
        ratio = rec.ms / chunk(4096)
        out.append((f"{family}: chunk >= 20x faster than recurrent at T=4,096", ratio >= 20, f"{ratio:.1f}x"))
    if 4096 in lengths and 16384 in lengths:
        growth = chunk(16384) / chunk(4096)
        out.append((f"{family}: chunk time T=4,096 -> 16,384 grows <= 4.6x", growth <= 4.6, f"{growth:.2f}x"))
    for t in (t for t in lengths if t >= 4096):
        ratio = results[("sdpa", t)].ms / chunk(t)
        out.append((f"{family}: chunk faster than SDPA at T={t:,}", ratio > 1, f"{ratio:.2f}x"))
    return out


# ---------------------------------------------------------------------------------------------------------
# The GPU suite (``--device cuda``; ``--suite gpu`` runs the same code on the CPU, under TRITON_INTERPRET=1)


@dataclass(frozen=True)
class Shape:
    batch: int
    heads: int
    dim: int  # K = V

    @classmethod
    def parse(cls, text: str) -> "Shape":
        """``"8x16x128"`` -> B=8, H=16, K=V=128."""
        b, h, d = (int(x) for x in text.lower().split("x"))
        return cls(b, h, d)

    def __str__(self) -> str:
        return f"B={self.batch} H={self.heads} K=V={self.dim}"


GPU_SHAPES = ["8x16x128", "1x4x64"]
GPU_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768]
GPU_FAMILIES = {"head": "gla (per-head gate)", "key": "gla (per-key gate)", "delta": "gated delta rule"}
OURS = "triton_chunk"
GPU_BACKENDS = [OURS, "triton_recurrent", "chunk", "fla", "sdpa"]
# fla's op for each family; it takes [B, T, H, D] inputs and log-space gates, as seqcore.ops does.
FLA_NAMES = {"gla (per-head gate)": "chunk_simple_gla", "gla (per-key gate)": "chunk_gla",
             "gated delta rule": "chunk_gated_delta_rule"}
TARGET_LENGTHS = (4096, 32768)  # the speed target holds from T = 4k to 32k
SDPA_TARGET_T, SDPA_TARGET_RATIO = 16384, 5.0


def load_fla() -> tuple[dict[str, Callable] | None, str]:
    """fla's chunked ops by family, and its version; ``(None, why)`` when it does not import."""
    try:
        import fla
        import fla.ops as fla_ops
    except Exception as err:  # noqa: BLE001  (any failure means: no fla column)
        return None, f"fla does not import ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    return {family: getattr(fla_ops, name) for family, name in FLA_NAMES.items()}, f"fla {fla.__version__}"


def gpu_step(family: str, backend: str, shape: Shape, t: int, device: torch.device, dtype: torch.dtype,
             fla_ops: dict[str, Callable] | None) -> Callable[[], None]:
    """One forward+backward of ``family`` on ``backend``; gradients are freed first, so each call allocates them.

    Inputs in ``dtype`` made on ``device``: q, v ``(B, T, H, D)``; k scaled by ``D ** -0.5`` (GLA) or L2-normalized
    (delta rule, as fla's ``chunk_gated_delta_rule`` expects without ``use_qk_l2norm_in_kernel``); log decays
    ``logsigmoid(z + 3)``: ``(B, T, H)`` (per head, delta rule) or ``(B, T, H, D)`` (per key); beta in (0, 1).
    ``sdpa``: q, k, v ``(B, H, T, D)`` on the flash kernel (CUDA, 16-bit) with ``is_causal=True``.
    """
    gen = torch.Generator(device=device).manual_seed(t)
    b, h, d = shape.batch, shape.heads, shape.dim

    def leaf(*size: int, fn: Callable[[Tensor], Tensor] = lambda z: z) -> Tensor:
        z = torch.randn(*size, generator=gen, device=device, dtype=torch.float32)
        return fn(z).to(dtype).requires_grad_()

    def decay(z: Tensor) -> Tensor:
        return F.logsigmoid(z + 3)

    if backend == "sdpa":
        q, k, v = (leaf(b, h, t, d) for _ in range(3))
        return _grad_step([q, k, v], lambda: _sdpa(q, k, v))
    q, v = leaf(b, t, h, d), leaf(b, t, h, d)
    if family == "gated delta rule":
        k = leaf(b, t, h, d, fn=lambda z: F.normalize(z, dim=-1))
        beta, g = leaf(b, t, h, fn=torch.sigmoid), leaf(b, t, h, fn=decay)
        if backend == "fla":
            return _grad_step([q, k, v, beta, g], lambda: fla_ops[family](q, k, v, g, beta)[0])
        return _grad_step([q, k, v, beta, g], lambda: ops.delta_rule(q, k, v, beta, g, backend=backend)[0])
    k = leaf(b, t, h, d, fn=lambda z: z / d**0.5)
    g = leaf(*((b, t, h, d) if family == "gla (per-key gate)" else (b, t, h)), fn=decay)
    if backend == "fla":
        return _grad_step([q, k, v, g], lambda: fla_ops[family](q, k, v, g)[0])
    return _grad_step([q, k, v, g], lambda: ops.gla(q, k, v, g, backend=backend)[0])


def _sdpa(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _grad_step(leaves: list[Tensor], forward: Callable[[], Tensor]) -> Callable[[], None]:
    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        forward().sum().backward()

    return step


@dataclass
class GpuRun:
    """What the GPU suite measured: ``results[(shape, family, backend, T)]`` is a :class:`Measure` or why not
    (``skip``, ``budget``, ``OOM``, ``error``, ``no fla``); SDPA is stored under the family ``"sdpa"``."""

    shapes: list[Shape]
    lengths: list[int]
    families: list[str]
    backends: list[str]
    results: dict
    fla_note: str


class _Budget:
    """The suite's deadline and the extrapolation that skips a case predicted to take longer than one call may."""

    def __init__(self, time_limit_s: float, max_call_ms: float) -> None:
        self.watch, self.time_limit_s = Stopwatch(), time_limit_s
        self.max_call_ms = max_call_ms
        self.last: dict[tuple, tuple[int, float]] = {}

    def verdict(self, series: tuple, t: int, backend: str) -> str | None:
        if self.watch.seconds() > self.time_limit_s:
            return "budget"
        if series in self.last:
            t0, ms = self.last[series]
            predicted = ms * (t / t0) ** (2 if backend == "sdpa" else 1)
            if predicted > self.max_call_ms:
                return f"skip (~{predicted / 1e3:,.1f} s)"
        return None

    def record(self, series: tuple, t: int, ms: float) -> None:
        self.last[series] = (t, ms)


def _measure_gpu_case(make: Callable[[], Callable[[], None]], device: torch.device, repeats: int,
                      budget_s: float, label: str) -> Measure | str:
    try:
        return _measured(make(), device, repeats, budget_s)
    except torch.cuda.OutOfMemoryError:
        return "OOM"
    except Exception as err:  # noqa: BLE001  (one failing case must not end the run; the log says why)
        print(f"\n{label}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return "error"
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run_gpu(shapes: list[Shape], lengths: list[int], families: list[str], backends: list[str], device: torch.device,
            dtype: torch.dtype, repeats: int, case_budget_s: float, max_call_ms: float, time_limit_s: float) -> GpuRun:
    """Measure every (shape, T, family, backend) in that order, short lengths first, within the budgets."""
    fla_ops, fla_note = load_fla() if "fla" in backends else (None, "fla not requested")
    budget = _Budget(time_limit_s, max_call_ms)
    results: dict = {}
    for shape in shapes:
        for t in sorted(lengths):
            cases = [("sdpa", "sdpa")] if "sdpa" in backends else []
            cases += [(f, b) for f in families for b in backends if b != "sdpa"]
            for family, backend in cases:
                key = (shape, family, backend, t)
                if backend == "fla" and fla_ops is None:
                    results[key] = "no fla"
                    continue
                series = (shape, family, backend)
                results[key] = budget.verdict(series, t, backend)
                if results[key] is None:
                    make = functools.partial(gpu_step, family, backend, shape, t, device, dtype, fla_ops)
                    results[key] = _measure_gpu_case(make, device, repeats, case_budget_s, f"{shape} T={t} {family} {backend}")
                if isinstance(results[key], Measure):
                    budget.record(series, t, results[key].ms)
                print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return GpuRun(shapes, sorted(lengths), families, backends, results, fla_note)


def _ms(m: Measure | str | None) -> str:
    if m is None:
        return "-"
    return m if isinstance(m, str) else f"{m.ms:,.2f}"


def _mib(m: Measure | str | None) -> str:
    return f"{m.peak_mb:,.0f}" if isinstance(m, Measure) else "-"


def _ratio(num: Measure | str | None, den: Measure | str | None, field: str = "ms", digits: int = 2) -> str:
    value = _ratio_value(num, den, field)
    return "-" if value is None else f"{value:,.{digits}f}x"


def _ratio_value(num: Measure | str | None, den: Measure | str | None, field: str = "ms") -> float | None:
    if not (isinstance(num, Measure) and isinstance(den, Measure)):
        return None
    a, b = getattr(num, field), getattr(den, field)
    return a / b if b > 0 else None


def print_gpu_tables(run: GpuRun) -> list[tuple[str, bool, str]]:
    """One table per (shape, family): times, ratios (X / ours: above 1 means ours is faster) and peak memory;
    then the issue's targets. Returns the targets ``(target, met, measured)``."""
    timed = [b for b in (OURS, "triton_recurrent", "chunk", "fla") if b in run.backends]
    has_sdpa = "sdpa" in run.backends
    checks = []
    for shape in run.shapes:
        for family in run.families:
            print(f"\n### {family}, {shape}\n")
            head = ["T"] + [f"{b} ms" for b in timed] + (["sdpa ms"] if has_sdpa else [])
            head += [f"{b}/ours" for b in timed[1:]] + (["sdpa/ours"] if has_sdpa else [])
            head += [f"{b} MiB" for b in timed] + (["sdpa MiB"] if has_sdpa else [])
            head += [f"ours/{b} MiB" for b in ("fla", "chunk") if b in timed]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for t in run.lengths:
                got = {b: run.results.get((shape, family, b, t)) for b in timed}
                if has_sdpa:
                    got["sdpa"] = run.results.get((shape, "sdpa", "sdpa", t))
                ours = got.get(OURS)
                others = timed[1:] + (["sdpa"] if has_sdpa else [])
                row = [f"{t:,}"] + [_ms(got[b]) for b in timed] + ([_ms(got["sdpa"])] if has_sdpa else [])
                row += [_ratio(got[b], ours) for b in others]
                row += [_mib(got[b]) for b in timed] + ([_mib(got["sdpa"])] if has_sdpa else [])
                row += [_ratio(ours, got[b], "peak_mb") for b in ("fla", "chunk") if b in timed]
                print("| " + " | ".join(row) + " |")
            checks += _gpu_targets(run, shape, family)
    return checks


def _gpu_targets(run: GpuRun, shape: Shape, family: str) -> list[tuple[str, bool, str]]:
    get = lambda backend, t: run.results.get((shape, family if backend != "sdpa" else "sdpa", backend, t))  # noqa: E731
    lo, hi = TARGET_LENGTHS
    span = [t for t in run.lengths if lo <= t <= hi]
    out = []
    if "fla" in run.backends and span:
        ratios = [_ratio_value(get("fla", t), get(OURS, t)) for t in span]
        mems = [_ratio_value(get(OURS, t), get("fla", t), "peak_mb") for t in span]
        out.append(_all_at_least(f"{family}, {shape}: fla/ours time >= 1.0 at T={lo:,}-{hi:,}", ratios, 1.0))
        out.append(_all_at_most(f"{family}, {shape}: ours/fla peak memory <= 1.0 at T={lo:,}-{hi:,}", mems, 1.0))
    if "chunk" in run.backends and span:
        mems = [_ratio_value(get(OURS, t), get("chunk", t), "peak_mb") for t in span]
        out.append(_all_at_most(f"{family}, {shape}: ours/chunk peak memory <= 1.0 at T={lo:,}-{hi:,}", mems, 1.0))
    if "sdpa" in run.backends and SDPA_TARGET_T in run.lengths:
        ratio = _ratio_value(get("sdpa", SDPA_TARGET_T), get(OURS, SDPA_TARGET_T))
        name = f"{family}, {shape}: sdpa/ours time >= {SDPA_TARGET_RATIO:g} at T={SDPA_TARGET_T:,}"
        out.append((name, ratio is not None and ratio >= SDPA_TARGET_RATIO, "not measured" if ratio is None else f"{ratio:.2f}x"))
    return out


def _all_at_least(name: str, values: list[float | None], bound: float) -> tuple[str, bool, str]:
    if any(v is None for v in values):
        return name, False, f"not measured at every T ({sum(v is not None for v in values)}/{len(values)})"
    return name, min(values) >= bound, f"min {min(values):.2f}x"


def _all_at_most(name: str, values: list[float | None], bound: float) -> tuple[str, bool, str]:
    if any(v is None for v in values):
        return name, False, f"not measured at every T ({sum(v is not None for v in values)}/{len(values)})"
    return name, max(values) <= bound, f"max {max(values):.2f}x"


def _print_checks(title: str, checks: list[tuple[str, bool, str]]) -> None:
    print(f"\n### {title}\n")
    print("| target | measured | met |")
    print("|---|---|---|")
    for name, ok, value in checks:
        print(f"| {name} | {value} | {'yes' if ok else 'NO'} |")


def _gpu_header(device: torch.device, dtype: torch.dtype, fla_note: str, args: argparse.Namespace) -> str:
    import triton

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (TRITON_INTERPRET)"
    return (f"# seqcore.ops forward+backward on {name}: {str(dtype).split('.')[-1]}, torch {torch.__version__}, "
            f"triton {triton.__version__}, {fla_note}; per case: median of up to {args.repeats} calls or "
            f"{args.case_budget:g} s, skip past {args.max_call_ms:g} ms a call, {args.time_limit:g} s in all. "
            "X/ours above 1: ours is faster (or smaller).")


def main_gpu(args: argparse.Namespace) -> list[tuple[str, bool, str]]:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    shapes = [Shape.parse(s) for s in args.shapes]
    families = [GPU_FAMILIES[f] for f in args.families]
    fla_note = load_fla()[1] if "fla" in args.backends else "fla not requested"
    print(_gpu_header(device, dtype, fla_note, args), flush=True)
    run = run_gpu(shapes, args.lengths or GPU_LENGTHS, families, args.backends, device, dtype, args.repeats,
                  args.case_budget, args.max_call_ms, args.time_limit)
    checks = print_gpu_tables(run)
    if checks:
        _print_checks(f"Targets ({device.type})", checks)
    return checks


def main(argv: list[str] | None = None) -> list[tuple[str, bool, str]]:
    """Run the benchmark, print its tables; returns the target checks ``(target, met, measured)``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU: T = 1,024 and 4,096 only, one repeat")
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths to run")
    parser.add_argument("--max-recurrent", type=int, default=4096, help="CPU: longest T for the step loop (slow)")
    parser.add_argument("--repeats", type=int, help="timed calls per case (default: 3 on the CPU, 10 on the GPU)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (the GPU suite)")
    parser.add_argument("--suite", choices=["cpu", "gpu"], help="default: gpu on cuda, else cpu; "
                        "--suite gpu on the CPU runs the GPU suite's code through TRITON_INTERPRET=1 (tests)")
    gpu = parser.add_argument_group("GPU suite")
    gpu.add_argument("--shapes", nargs="+", default=GPU_SHAPES, help="BxHxD with K = V = D (default: %(default)s)")
    gpu.add_argument("--families", nargs="+", choices=list(GPU_FAMILIES), default=list(GPU_FAMILIES))
    gpu.add_argument("--backends", nargs="+", choices=GPU_BACKENDS, default=GPU_BACKENDS)
    gpu.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    gpu.add_argument("--case-budget", type=float, default=1.0, help="seconds of timed calls per case")
    gpu.add_argument("--max-call-ms", type=float, default=2000.0,
                     help="skip a case whose call is predicted (from the previous T) to take longer")
    gpu.add_argument("--time-limit", type=float, default=240.0, help="seconds for the whole suite; later cases: budget")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if (args.suite or ("gpu" if device.type == "cuda" else "cpu")) == "gpu":
        args.repeats = args.repeats or 10
        return main_gpu(args)
    if args.lengths:
        lengths = args.lengths
    elif args.quick:
        lengths = [1024, 4096]
    else:
        lengths = [1024, 2048, 4096, 8192, 16384]
    repeats = 1 if args.quick else (args.repeats or 3)
    torch.manual_seed(0)
    print(f"# seqcore.ops forward+backward: B={B}, H={H}, K=V={D}, device={device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = run(lengths, args.max_recurrent, repeats, device)
    checks = print_tables(results, lengths)
    if checks:
        _print_checks("Targets (CPU)", checks)
    return checks


if __name__ == "__main__":
    main()
