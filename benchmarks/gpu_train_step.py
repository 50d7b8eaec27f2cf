"""One training step (forward, backward, optimizer step) of each domain model, with ``backend="auto"``.

    python benchmarks/gpu_train_step.py --device cuda     # realistic sizes (what benchmarks/gpu_check.sh runs)
    python benchmarks/gpu_train_step.py --device cpu      # tiny sizes, a few seconds (what the test runs)

Models, each built as its examples and tests build it, on synthetic data:

- LightNet-Tiny (``vision``): width 192, depth 12, 224 x 224 images, batch 32, cross-entropy.
- LION (``pointcloud``): the default KITTI configuration on two synthetic 360-degree scans, the CenterPoint loss.
  Needs spconv with CUDA kernels on a GPU; where its CUDA build is absent the row says so and LION is skipped.
- GSM++ (``graphs``): three Mamba-2 layers over HAC/DFS tokens of a 10,000-node random graph, node labels.
- AutoTimes (``timeseries``): 672-step contexts in 7 segment tokens of 96 steps, a two-layer GLA backbone,
  256 windows, next-segment MSE.
- shallow PLRNN (``timeseries.dynamics``): M=5, hidden 250, generalized teacher forcing, 16 windows of 200 steps.
- diagonal linear RNN (``timeseries.dynamics``): M=64 under GTF, which runs ``seqcore.ops.scan``.

``--device cpu`` shrinks every model and batch to a few seconds in all. Each row: status (``ok``, ``skipped:
why`` or ``error: why``), the median step time (``time_and_peak`` of ``benchmarks/measure.py``, as in
``benchmarks/ops.py``: an untimed first step, then the wall clock on the CPU, CUDA events on the GPU) and the peak
memory of a step above the weights, inputs and optimizer state (CUDA: ``max_memory_allocated`` during the timed
steps; CPU: the resident set's peak during the first step).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F

from benchmarks.measure import time_and_peak
from seqcore.ops.backends import resolve_backend

Step = Callable[[], None]


@dataclass
class Row:
    model: str
    status: str
    step_ms: float | None = None
    peak_mib: float | None = None


class Skipped(RuntimeError):
    """A model that cannot run on this machine (a missing optional package), with the reason."""


def _optimized(model: torch.nn.Module, loss: Callable[[], torch.Tensor]) -> Step:
    """The training step: zero the gradients, ``loss().backward()``, one AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    return step


def lightnet(device: torch.device, tiny: bool) -> Step:
    from vision.lightnet import LightNet

    size, batch = (32, 2) if tiny else (224, 32)
    dims = dict(embed_dim=32, depth=2, num_heads=2) if tiny else dict(embed_dim=192, depth=12, num_heads=3)
    model = LightNet(img_size=size, patch_size=16, num_classes=10, **dims).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    return _optimized(model, lambda: F.cross_entropy(model(x), y))


def _spconv_unavailable(device: torch.device) -> str | None:
    """Why spconv's sparse convolutions cannot run on ``device``, or ``None``."""
    try:
        import spconv.pytorch as spconv
    except Exception as err:  # noqa: BLE001  (missing, or a build for another CUDA)
        return f"spconv does not import ({type(err).__name__}: {err})"
    if device.type != "cuda":
        return None
    try:
        conv = spconv.SubMConv3d(4, 4, 3, padding=1, bias=False).to(device)
        coords = torch.zeros(1, 4, dtype=torch.int32, device=device)
        conv(spconv.SparseConvTensor(torch.ones(1, 4, device=device), coords, [4, 4, 4], 1))
    except Exception as err:  # noqa: BLE001  (a CPU-only build fails here)
        return f"spconv has no working CUDA build here ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None


def lion(device: torch.device, tiny: bool) -> Step:
    reason = _spconv_unavailable(device)
    if reason is not None:
        raise Skipped(reason)
    from pointcloud import SyntheticScenes
    from pointcloud.lion import LIONConfig, LIONDetector, to_batch

    if tiny:
        config = LIONConfig.tiny(classes=["Car"])
        scenes = SyntheticScenes(2, seed=4, point_cloud_range=config.point_cloud_range, objects_per_scene=(2, 4),
                                 classes=("Car",))
    else:
        config = LIONConfig()
        scenes = SyntheticScenes(2, seed=0)
    points, boxes, classes = (t.to(device) for t in to_batch([scenes[0], scenes[1]], config.classes))
    model = LIONDetector(config).to(device)
    return _optimized(model, lambda: model.loss(model(points, 2), boxes, classes)[0])


def gsm(device: torch.device, tiny: bool) -> Step:
    from benchmarks.graphs import MODELS, random_graph

    x, edge_index, y = (t.to(device) for t in random_graph(200 if tiny else 10_000, seed=0))
    model = MODELS["GSM++"]().to(device)
    return _optimized(model, lambda: F.cross_entropy(model(x, edge_index), y))


def autotimes(device: torch.device, tiny: bool) -> Step:
    from seqcore.nn import SeqEncoder
    from timeseries.autotimes import AutoTimesNet

    token_len, tokens, width, depth, batch = (8, 3, 16, 1, 4) if tiny else (96, 7, 128, 2, 256)
    model = AutoTimesNet(token_len, SeqEncoder(width, depth, "gla", 4 if not tiny else 2), "mlp", 2 * width, None)
    model = model.to(device)
    segments = torch.randn(batch, tokens + 1, token_len, device=device)
    # position i predicts segment i + 1
    return _optimized(model, lambda: F.mse_loss(model(segments[:, :-1]), segments[:, 1:]))


def _gtf(model: torch.nn.Module, device: torch.device, batch: int, steps: int) -> Step:
    from timeseries.dynamics.observation import IdentityObservation
    from timeseries.dynamics.training import gtf_loss

    model = model.to(device)
    obs = IdentityObservation(model.latent_dim, model.latent_dim).to(device)
    x = torch.randn(batch, steps + 1, model.latent_dim, device=device)
    return _optimized(model, lambda: gtf_loss(model, obs, x, 0.3))


def shallow_plrnn(device: torch.device, tiny: bool) -> Step:
    from timeseries.dynamics.models import ShallowPLRNN

    latent, hidden, batch, steps = (3, 8, 2, 20) if tiny else (5, 250, 16, 200)
    return _gtf(ShallowPLRNN(latent, hidden, clipped=True), device, batch, steps)


def diagonal_rnn(device: torch.device, tiny: bool) -> Step:
    from timeseries.dynamics.models import DiagonalLinearRNN

    latent, batch, steps = (4, 2, 20) if tiny else (64, 16, 1000)
    return _gtf(DiagonalLinearRNN(latent), device, batch, steps)


MODELS: dict[str, Callable[[torch.device, bool], Step]] = {
    "LightNet-Tiny": lightnet,
    "LION": lion,
    "GSM++": gsm,
    "AutoTimes": autotimes,
    "shallow PLRNN (GTF)": shallow_plrnn,
    "diagonal linear RNN (GTF scan)": diagonal_rnn,
}


def measure(name: str, device: torch.device, tiny: bool, repeats: int) -> Row:
    """Build one model and time its step; any failure becomes the row's status."""
    torch.manual_seed(0)
    try:
        timing, peak = time_and_peak(MODELS[name](device, tiny), device, repeats=repeats)
    except Skipped as why:
        return Row(name, f"skipped: {why}")
    except Exception as err:  # noqa: BLE001  (one model failing must not hide the others)
        return Row(name, f"error: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return Row(name, "ok", timing.median * 1e3, peak / 2**20)


def print_table(rows: list[Row]) -> None:
    print("| model | status | step ms | peak MiB |")
    print("|---|---|---|---|")
    for r in rows:
        ms = "-" if r.step_ms is None else f"{r.step_ms:,.1f}"
        mib = "-" if r.peak_mib is None else f"{r.peak_mib:,.0f}"
        print(f"| {r.model} | {r.status} | {ms} | {mib} |")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=["tiny", "full"], help="default: full on cuda, tiny on the CPU")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    tiny = (args.size or ("full" if device.type == "cuda" else "tiny")) == "tiny"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# one training step per model on {where} ({'tiny' if tiny else 'full'} sizes), backend auto = "
          f"{resolve_backend('auto', device)}, torch {torch.__version__}, median of {args.repeats}\n")
    rows = [measure(name, device, tiny, args.repeats) for name in args.models]
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
