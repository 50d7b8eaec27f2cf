"""Results do not depend on the thread count: every package's main compute paths at 2 threads against 1.

Each path below builds its inputs from a fixed seed, runs forward and backward (or fit and predict) and returns
named tensors. The test runs it with one thread, then twice with two, and asks:

* every value is bitwise the same in both 2-thread runs (a race or an unordered atomic accumulation shows up here
  as run-to-run differences);
* every value is bitwise the 1-thread value, except the ones a path names as reassociated: float32 sums whose
  split over threads, and so whose rounding, follows the thread count (measured: the weight and bias gradients
  of LayerNorm, summed per thread over the rows and then across threads, and MKL's GEMM for the weight gradient
  of a Linear layer with few outputs, which splits its sum over the rows). Those must agree within the float32
  bound for two summation orders of the same n terms, ``2 gamma_n sum|x_i|`` (about ``n * eps * sum|x_i|``),
  with the magnitudes of the terms recorded as the path runs; they are leaves, so nothing downstream inherits
  them.

Sizes are chosen so that torch really runs the paths on two threads: an elementwise kernel only splits above
32768 elements (``at::internal::GRAIN_SIZE``; at exactly one grain it still runs on one thread), so the
per-step tensors of the step loops hold two grains or more. :func:`test_two_threads_split_the_work` checks that
the 2-thread setting takes effect at all. spconv's sparse convolutions (and so LION) are covered by
``test_pointcloud_threads.py``.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from seqcore.nn import MIXERS

EPS32 = torch.finfo(torch.float32).eps


class Reassociated(NamedTuple):
    """A value that is a float32 sum whose order follows the thread count: ``rows`` terms summed, and
    ``magnitude``, the sum of their absolute values (float64, shaped like the value)."""

    rows: int
    magnitude: Tensor | float


class Result(NamedTuple):
    """``values``: named outputs and gradients; ``reassociated``: the names among them that are reassociated
    sums (every other value must be bitwise thread-independent)."""

    values: dict[str, Tensor]
    reassociated: dict[str, Reassociated]


Path = Callable[[], Result]


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` threads in every pool the packages compute in: torch's intra-op pool, numba's
    and numpy's BLAS (ARNet's least squares and forecasts). The previous counts come back afterwards."""
    import numba
    from threadpoolctl import threadpool_limits

    before_torch, before_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before_torch)
        numba.set_num_threads(before_numba)


def run(path: Path, n: int) -> Result:
    with threads(n):
        result = path()
    return Result({k: v.detach().clone() for k, v in result.values.items()}, dict(result.reassociated))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _with_grads(outputs: dict[str, Tensor], leaves: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """``outputs`` and ``grad.<leaf>`` of ``sum <output, w>`` for fixed random cotangents ``w`` (a plain sum of
    the outputs would give every output the same gradient and let errors cancel)."""
    gen = _gen(seed + 1000)
    outs = {k: v for k, v in outputs.items() if v is not None}
    cotangents = [torch.randn(o.shape, generator=gen, dtype=o.dtype) for o in outs.values()]
    names = [k for k, v in leaves.items() if v.requires_grad]
    grads = torch.autograd.grad(list(outs.values()), [leaves[k] for k in names], cotangents, allow_unused=True)
    return {**outs, **{f"grad.{k}": g for k, g in zip(names, grads) if g is not None}}


def _params(model: nn.Module) -> dict[str, Tensor]:
    return {f"param.{name}": p for name, p in model.named_parameters()}


@contextlib.contextmanager
def _row_sums(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> Iterator[dict[str, Reassociated]]:
    """Yields ``grad.param.<name>`` -> :class:`Reassociated` for the weights and biases of the ``kinds`` modules
    of ``model`` (LayerNorm, Linear), filled in while the body runs the model forward and backward.

    Those gradients are float32 sums over the rows the module saw: LayerNorm's CPU backward sums ``dy * x_hat``
    (weight) and ``dy`` (bias) in per-thread partial sums, and MKL's GEMM for a Linear weight gradient
    ``dy^T x`` with few outputs splits its sum over the rows between threads. The magnitudes of the terms are
    summed here in float64 from the module's input and output gradient.
    """
    found: dict[str, Reassociated] = {}

    def record(prefix: str, module: nn.Module, args: tuple, out: Tensor) -> None:
        layer_norm = isinstance(module, nn.LayerNorm)
        width = math.prod(module.normalized_shape) if layer_norm else module.in_features
        x = args[0].detach().double().reshape(-1, width)
        if layer_norm:
            x = nn.functional.layer_norm(x, (width,), eps=module.eps)

        def add_terms(dy: Tensor) -> None:
            dy = dy.detach().double().reshape(x.shape[0], -1).abs()
            terms = {"weight": (dy * x.abs()).sum(0) if layer_norm else dy.T @ x.abs(), "bias": dy.sum(0)}
            for name, param in module.named_parameters(recurse=False):
                key = f"grad.param.{prefix}{name}"
                rows, total = found.get(key, Reassociated(0, 0.0))
                found[key] = Reassociated(rows + x.shape[0], total + terms[name].reshape(param.shape))

        out.register_hook(add_terms)

    hooks = [module.register_forward_hook(functools.partial(record, f"{name}." if name else ""))
             for name, module in model.named_modules() if isinstance(module, kinds)]
    try:
        yield found
    finally:
        for hook in hooks:
            hook.remove()


# ----------------------------------------------------------------------------------------------- seqcore.ops

# (B, T, H, K = V) per backend. Every per-step tensor of the step loop, (B, H, K, V), holds two grains (65536
# elements), and T only repeats those steps, so 128 steps suffice; the chunked form works on whole-sequence
# tensors whose size grows with T, so it gets 512 steps (8 chunks of 64, 32 of 16 for per-key gates).
OP_SHAPES = {"recurrent": (2, 128, 8, 64), "chunk": (2, 512, 8, 64)}
# The scan's (B, T, D): its step loop works on (B, D) per step, the chunked form on (B, T / 32, D) per in-chunk
# step; both hold two grains.
SCAN_SHAPES = {"recurrent": (2, 32, 32768), "chunk": (2, 512, 2048)}


def _log_gate(shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    return nn.functional.logsigmoid(torch.randn(shape, generator=gen) + 3)


def scan_path(backend: str) -> Path:
    def path() -> Result:
        from seqcore import ops

        gen = _gen(0)
        b, t, d = SCAN_SHAPES[backend]
        leaves = {"x": torch.randn(b, t, d, generator=gen),
                  "a": torch.rand(b, t, d, generator=gen) * 2 - 1,  # negative coefficients too
                  "h0": torch.randn(b, d, generator=gen)}
        x, a, h0 = (leaf.requires_grad_() for leaf in leaves.values())
        out, final = ops.scan(x, a, initial_state=h0, output_final_state=True, backend=backend)
        return Result(_with_grads({"out": out, "final": final}, leaves, 0), {})

    return path


def op_path(op: str, gate: str | None, backend: str, varlen: bool = False) -> Path:
    """``op`` in gla, gla_signed, delta_rule; ``gate``: gla's per_key / per_head / None, delta_rule's g / None;
    ``varlen``: the batch packed into one row with ``cu_seqlens``, lengths not multiples of the chunk size."""
    def path() -> Result:
        from seqcore import ops

        gen = _gen(0)
        b, t, h, d = OP_SHAPES[backend]
        cu_seqlens = torch.tensor([0, 100, 237, 400, t]) if varlen else None
        if varlen:
            b = 1
        leaves = {"q": torch.randn(b, t, h, d, generator=gen),
                  "k": nn.functional.normalize(torch.randn(b, t, h, d, generator=gen), dim=-1),
                  "v": torch.randn(b, t, h, d, generator=gen),
                  "h0": torch.randn(b if cu_seqlens is None else cu_seqlens.numel() - 1, h, d, d, generator=gen)}
        if op == "gla" and gate == "per_key":
            leaves["g"] = _log_gate((b, t, h, d), gen)
        elif op == "gla_signed":
            leaves["a"] = torch.rand(b, t, h, generator=gen) * 2 - 1
        elif op == "delta_rule":
            leaves["beta"] = torch.rand(b, t, h, generator=gen) * 2  # up to 2: negative eigenvalues too
        if gate in ("per_head", "g"):
            leaves["g"] = _log_gate((b, t, h), gen)
        for leaf in leaves.values():
            leaf.requires_grad_()
        q, k, v = leaves["q"], leaves["k"], leaves["v"]
        common = dict(initial_state=leaves["h0"], output_final_state=True, cu_seqlens=cu_seqlens, backend=backend)
        if op == "gla":
            out, final = ops.gla(q, k, v, leaves.get("g"), **common)
        elif op == "gla_signed":
            out, final = ops.gla_signed(q, k, v, leaves["a"], **common)
        else:
            out, final = ops.delta_rule(q, k, v, leaves["beta"], leaves.get("g"), **common)
        return Result(_with_grads({"out": out, "final": final}, leaves, 0), {})

    return path


OP_CASES = [("gla", "per_key"), ("gla", "per_head"), ("gla", None), ("gla_signed", None), ("delta_rule", None),
            ("delta_rule", "g")]
OP_PATHS: dict[str, Path] = {}
for _backend in ("recurrent", "chunk"):
    OP_PATHS[f"ops.scan[{_backend}]"] = scan_path(_backend)
    for _op, _gate in OP_CASES:
        OP_PATHS[f"ops.{_op}{'' if _gate is None else '-' + _gate}[{_backend}]"] = op_path(_op, _gate, _backend)
OP_PATHS["ops.gla-per_key[chunk,varlen]"] = op_path("gla", "per_key", "chunk", varlen=True)
OP_PATHS["ops.delta_rule-g[chunk,varlen]"] = op_path("delta_rule", "g", "chunk", varlen=True)


# ----------------------------------------------------------------------------------------------- seqcore.nn

def _module_path(build: Callable[[], nn.Module], x: Tensor, seed: int, row_sums: tuple[type[nn.Module], ...] = (),
                 **call: Tensor) -> Result:
    """Output and gradients (input and parameters) of ``build()(x, **call)``; the parameter gradients of the
    ``row_sums`` module kinds are reassociated sums (see :func:`_row_sums`)."""
    torch.manual_seed(seed)
    model = build()
    x = x.requires_grad_()
    with _row_sums(model, row_sums) as rows:
        out = model(x, **call)
    return Result(_with_grads({"out": out}, {"x": x, **_params(model)}, seed), rows)


def mixer_path(name: str, **options) -> Path:
    def path() -> Result:
        from seqcore.nn import build_mixer

        return _module_path(lambda: build_mixer(name, 128, num_heads=4, **options),
                            torch.randn(2, 256, 128, generator=_gen(1)), 1)

    return path


def encoder_path(mixer: str) -> Path:
    def path() -> Result:
        from seqcore.nn import SeqEncoder

        return _module_path(lambda: SeqEncoder(128, 2, mixer, num_heads=4),
                            torch.randn(2, 256, 128, generator=_gen(2)), 2)

    return path


def lm_path() -> Result:
    from seqcore.nn import SeqLM

    torch.manual_seed(3)
    model = SeqLM(512, 128, 2, "gated_deltanet", num_heads=4)
    tokens = torch.randint(0, 512, (2, 256), generator=_gen(3))
    # an embedding lookup with repeated tokens: its backward accumulates rows of the same token
    return Result(_with_grads({"logits": model(tokens)}, _params(model), 3), {})


NN_PATHS: dict[str, Path] = {
    **{f"nn.mixer.{name}": mixer_path(name) for name in sorted(MIXERS)},  # every registered mixer
    "nn.mixer.gla[bidirectional]": mixer_path("gla", bidirectional=True),
    "nn.mixer.mamba2[bidirectional]": mixer_path("mamba2", bidirectional=True),
    **{f"nn.SeqEncoder.{name}": encoder_path(name) for name in ("gla", "gated_deltanet")},
    "nn.SeqLM.gated_deltanet": lm_path,
}


# ----------------------------------------------------------------------------------------------- domains


def lightnet_path() -> Result:
    from vision import LightNet

    return _module_path(
        lambda: LightNet(img_size=32, patch_size=4, embed_dim=96, depth=2, num_heads=3, num_classes=10),
        torch.randn(4, 3, 32, 32, generator=_gen(4)), 4)


GRAPH_SIZES = (300, 180, 420, 250)  # 1150 nodes: node features (N, 64) span two grains


def _graph_batch():
    from torch_geometric.data import Batch, Data

    graphs = []
    for seed, n in enumerate(GRAPH_SIZES):
        gen = _gen(10 + seed)
        parent = [int(torch.randint(0, i, (), generator=gen)) for i in range(1, n)]
        src = torch.tensor([*range(1, n), *torch.randint(0, n, (n,), generator=gen).tolist()])
        dst = torch.tensor([*parent, *torch.randint(0, n, (n,), generator=gen).tolist()])
        keep = src != dst
        e = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
        graphs.append(Data(x=torch.randn(n, 8, generator=gen), edge_index=e, num_nodes=n))
    return Batch.from_data_list(graphs)


def gsm_path(task: str) -> Path:
    def path() -> Result:
        from graphs import GSMPlusPlus

        batch = _graph_batch()
        call = {}
        if task == "graph":
            call["num_graphs"] = batch.num_graphs
        elif task == "edge":
            # many pairs share a node, so the gradient of the node rows accumulates several pairs
            call["edge_label_index"] = torch.randint(0, batch.num_nodes, (2, 1024), generator=_gen(5))
        # measured: LayerNorm's weight and bias gradients and the head's last Linear (5 outputs, a sum over the
        # 1150 nodes) follow the thread count; everything else is bitwise
        return _module_path(lambda: GSMPlusPlus(8, 64, 5, task=task).eval(), batch.x.clone(), 5,
                            (nn.LayerNorm, nn.Linear), edge_index=batch.edge_index, batch=batch.batch, **call)

    return path


def hac_path() -> Result:
    from graphs.tokenize import TOKENIZERS, build_plan, hac

    batch = _graph_batch()
    tree = hac(batch.x, batch.edge_index, batch.batch)
    values = {f"assignment.{i}": a for i, a in enumerate(tree.assignment)}
    values |= {f"links.{i}": a for i, a in enumerate(tree.links)}
    values["node_key"] = tree.node_key
    for name in TOKENIZERS:
        plan = build_plan(name, batch.x, batch.edge_index, batch.batch)
        for field in ("pool_token", "pool_node", "cu_seqlens", "read_token", "read_node"):
            values[f"{name}.{field}"] = getattr(plan, field)
    return Result(values, {})


def _ar_series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(n + 200)
    e = rng.normal(size=y.shape)
    for t in range(3, len(y)):
        y[t] = 0.5 * y[t - 1] - 0.3 * y[t - 3] + e[t]
    return y[-n:]


def arnet_path(solver: str) -> Path:
    def path() -> Result:
        from timeseries import ARNetForecaster

        y = _ar_series(3000, 0)
        options = dict(hidden_layers=(64,), epochs=3, batch_size=256, random_state=0) if solver == "sgd" else {}
        model = ARNetForecaster(n_lags=48, n_forecasts=8, solver=solver, **options).fit(y)
        return Result({"forecast": torch.as_tensor(np.asarray(model.predict(8), dtype=np.float64))}, {})

    return path


def autotimes_path() -> Result:
    from timeseries import AutoTimesForecaster

    y = np.sin(2 * np.pi * np.arange(600) / 16) + 0.1 * _ar_series(600, 1)
    model = AutoTimesForecaster(token_len=4, context_len=64, d_model=64, depth=1, mlp_hidden=128, batch_size=64,
                                lr=3e-3, epochs=2, max_windows_per_epoch=128, random_state=0).fit(y)
    values = {"forecast": torch.as_tensor(np.asarray(model.predict(8), dtype=np.float64))}
    return Result(values | {k: p.detach() for k, p in _params(model.net_).items()}, {})


def dynamics_path(model_name: str, **options) -> Path:
    def path() -> Result:
        from timeseries.dynamics import DynamicsReconstructor, simulate_lorenz63

        x = simulate_lorenz63(1000, random_state=0)
        x = (x - x.mean(0)) / x.std(0)
        params = dict(epochs=2, batches_per_epoch=3, sequence_length=20, random_state=0) | options
        est = DynamicsReconstructor(model=model_name, **params).fit(x)
        values = {"generated": torch.as_tensor(est.generate(200))}
        return Result(values | {k: p.detach() for k, p in _params(est.model_).items()}, {})

    return path


def voxel_path() -> Result:
    from pointcloud import DynamicVFE, VoxelGrid, voxelize

    gen = _gen(6)
    # A fifth of the voxels hold several points, and of three samples the middle one straddles the two halves the
    # threads split the points into: both threads then add into the same voxel rows.
    grid = VoxelGrid([0.0, -20.0, -3.0, 40.0, 20.0, 1.0], [0.8, 0.8, 0.4])
    n = 60000
    lo, hi = torch.tensor([-1.0, -21.0, -4.0]), torch.tensor([41.0, 21.0, 2.0])  # some points out of range
    points = torch.cat([lo + torch.rand(n, 3, generator=gen) * (hi - lo), torch.rand(n, 1, generator=gen)], 1)
    batch = torch.randint(0, 3, (n,), generator=gen).sort().values
    vox = voxelize(points, batch, grid)
    values = {"coords": vox.coords, "point_to_voxel": vox.point_to_voxel, "num_points": vox.num_points,
              "mean": vox.mean}
    torch.manual_seed(6)
    vfe = DynamicVFE(4, (32, 32))
    points = points.requires_grad_()
    with _row_sums(vfe, (nn.LayerNorm,)) as rows:
        feats = vfe(points, vox, grid)
    return Result(values | _with_grads({"features": feats}, {"points": points, **_params(vfe)}, 6), rows)


def _boxes(m: int, gen: torch.Generator) -> Tensor:
    centre = torch.rand(m, 3, generator=gen) * torch.tensor([30.0, 30.0, 2.0])
    size = 1 + torch.rand(m, 3, generator=gen) * torch.tensor([3.0, 1.5, 1.0])
    heading = (torch.rand(m, 1, generator=gen) * 2 - 1) * torch.pi
    return torch.cat([centre, size, heading], 1)


def iou_nms_path() -> Result:
    from pointcloud import bev_iou, iou_3d, multiclass_nms, nms_rotated

    gen = _gen(7)
    a, b = _boxes(600, gen), _boxes(500, gen)
    scores = torch.rand(600, generator=gen)
    labels = torch.randint(0, 3, (600,), generator=gen)
    return Result({"bev_iou": bev_iou(a, b), "iou_3d": iou_3d(a, b), "nms_bev": nms_rotated(a, scores, 0.1),
                   "nms_3d": nms_rotated(a, scores, 0.1, use_3d=True),
                   "multiclass_nms": multiclass_nms(a, scores, labels, 0.1)}, {})


DOMAIN_PATHS: dict[str, Path] = {
    "vision.LightNet": lightnet_path,
    "graphs.GSMPlusPlus[node]": gsm_path("node"),
    "graphs.GSMPlusPlus[graph]": gsm_path("graph"),
    "graphs.GSMPlusPlus[edge]": gsm_path("edge"),
    "graphs.hac+tokenizers": hac_path,
    "timeseries.ARNet[lstsq]": arnet_path("lstsq"),
    "timeseries.ARNet[sgd]": arnet_path("sgd"),
    "timeseries.AutoTimes": autotimes_path,
    # At its usual sizes DSR does not split work at all: the numba kernels of the shallow PLRNN's training loop
    # are serial and every per-step tensor (B, M) or (B, H) is far below one grain; this guards that.
    "timeseries.DSR[clipped_shallow]": dynamics_path("clipped_shallow"),
    # A PLRNN wide enough (1024 windows x 64 latents) that the per-step tensors of its step loop, forward and
    # backward, span two grains and really run on two threads.
    "timeseries.DSR[plrnn,wide]": dynamics_path("plrnn", latent_dim=64, observation="affine", batch_size=1024),
    "pointcloud.voxelize+DynamicVFE": voxel_path,
    "pointcloud.iou+nms": iou_nms_path,
}

PATHS: dict[str, Path] = {**OP_PATHS, **NN_PATHS, **DOMAIN_PATHS}


# ----------------------------------------------------------------------------------------------- tests


def _gap(a: Tensor, b: Tensor) -> str:
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    if not a.is_floating_point():
        return f"{int((a != b).sum())} of {a.numel()} entries differ"
    diff = (a.double() - b.double()).abs().max().item()
    rms = a.double().pow(2).mean().sqrt().item()
    return f"max abs difference {diff:.3g}, {diff / rms if rms else math.inf:.3g} of the RMS"


def test_two_threads_split_the_work() -> None:
    """The 2-thread runs below are multi-threaded: a float32 sum of 2^20 numbers is split between the threads,
    which changes its rounding. If it did not, the comparisons would prove nothing."""
    x = torch.randn(1 << 20, generator=_gen(0))
    with threads(1):
        one = x.sum()
    with threads(2):
        two = x.sum()
    assert not torch.equal(one, two)


@pytest.mark.parametrize("name", list(PATHS))
def test_two_threads_give_the_one_thread_result(name: str) -> None:
    path = PATHS[name]
    one = run(path, 1)
    two, again = run(path, 2), run(path, 2)
    assert two.values.keys() == one.values.keys() == again.values.keys()
    for key, expected in one.values.items():
        got = two.values[key]
        deterministic = got.shape == again.values[key].shape and torch.equal(got, again.values[key])
        assert deterministic, (
            f"{name}: {key} differs between two runs at 2 threads ({_gap(got, again.values[key])}): the result "
            f"is nondeterministic (a race, or an accumulation in the order threads arrive)")
        if key not in one.reassociated:
            same = got.shape == expected.shape and torch.equal(got, expected)
            assert same, (
                f"{name}: {key} at 2 threads is not bitwise the 1-thread result ({_gap(expected, got)}); an "
                f"accumulation in the order threads arrive (x[index] backward, index_put_(accumulate=True)) gives "
                f"this even when two runs agree")
            continue
        # A float32 sum of n terms in any order is within gamma_n * sum|x_i| of the exact sum (gamma_n = n u /
        # (1 - n u), u = eps / 2: the classic bound for recursive summation, which blocked and pairwise orders
        # also meet), so two orders differ by at most 2 gamma_n sum|x_i|, about n eps sum|x_i|, per element.
        rows, magnitude = one.reassociated[key]
        u = EPS32 / 2
        bound = 2 * rows * u / (1 - rows * u) * magnitude
        excess = (got.double() - expected.double()).abs() - bound
        assert bool((excess <= 0).all()), (
            f"{name}: {key}, a sum over {rows} rows, differs between 1 and 2 threads by more than float32 "
            f"reassociation allows ({_gap(expected, got)}; exceeds the bound by up to {excess.max().item():.3g})")
