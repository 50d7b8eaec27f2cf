"""Sparse convolutions give the same bits at every CPU thread count; the LION detector the same bits on every rerun.

spconv 2.3.8's CPU ``scatter_add`` kernel shares its row pointers between OpenMP threads, so with more than one
thread rows are added into the wrong outputs (:mod:`pointcloud.spconv_cpu` runs exactly that kernel on one
thread). A race needs many rows per kernel offset to show, hence ~20k voxels packed densely enough that most of the
27 offsets pair thousands of them. Every test restores the thread count it found.
"""
from __future__ import annotations

import contextlib
import os

import pytest
import torch

from kitti_files import KITTI_SAMPLE

spconv = pytest.importorskip("spconv.pytorch")

import pointcloud  # noqa: E402,F401  (applies the spconv patches)
from pointcloud import KittiDataset, SyntheticScenes  # noqa: E402
from pointcloud.lion import LIONConfig, LIONDetector, to_batch  # noqa: E402
from pointcloud.spconv_cpu import _one_thread_on_cpu, apply_cpu_thread_patch, single_threaded  # noqa: E402

SHAPE = [24, 48, 48]  # (nz, ny, nx)
CHANNELS = 16


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def voxels():
    """~20k unique voxels filling 36% of a 24 x 48 x 48 block, features of scale 1.25."""
    gen = torch.Generator().manual_seed(0)
    cells = torch.randperm(SHAPE[0] * SHAPE[1] * SHAPE[2], generator=gen)[:20000]
    z, rest = cells // (SHAPE[1] * SHAPE[2]), cells % (SHAPE[1] * SHAPE[2])
    coords = torch.stack([torch.zeros_like(z), z, rest // SHAPE[2], rest % SHAPE[2]], 1).int()
    features = 1.25 * torch.randn(len(coords), CHANNELS, generator=gen)
    return coords, features


def _conv(kind: str) -> torch.nn.Module:
    torch.manual_seed(1)
    if kind == "subm":
        return spconv.SubMConv3d(CHANNELS, CHANNELS, 3, padding=1, bias=False, indice_key="subm")
    if kind in ("strided", "down"):
        # Only the inverse case keys the pairs: spconv reuses keyed pairs for submanifold and inverse layers only.
        key = "down" if kind == "down" else None
        return spconv.SparseConv3d(CHANNELS, CHANNELS, 3, stride=2, padding=1, bias=False, indice_key=key)
    return spconv.SparseInverseConv3d(CHANNELS, CHANNELS, 3, bias=False, indice_key="down")


def _run(conv: torch.nn.Module, coords, features, pairs):
    """Features, input-feature grads and weight grads of one forward + backward. Keyed pairs are reused from
    ``pairs`` (the index building is serial and race-free, and the slowest part of a submanifold layer)."""
    feats = features.clone().requires_grad_(True)
    x = spconv.SparseConvTensor(feats, coords, pairs["shape"], 1, indice_dict=dict(pairs["indices"]))
    conv.zero_grad()
    out = conv(x).features
    # A fixed, non-uniform upstream gradient, so the backward's scatter adds distinct rows.
    upstream = torch.cos(torch.arange(out.numel(), dtype=out.dtype)).view_as(out)
    (out * upstream).sum().backward()
    return out.detach(), feats.grad, conv.weight.grad.clone()


def _case(kind: str, coords, features):
    """The inputs of one case: the inverse convolution runs on the output of a stride-2 convolution, whose
    pairs it reuses."""
    conv = _conv(kind)
    if kind == "subm":
        with torch.no_grad():
            warm = conv(spconv.SparseConvTensor(features, coords, SHAPE, 1))
        return conv, coords, features, {"indices": warm.indice_dict, "shape": SHAPE}
    if kind == "strided":
        return conv, coords, features, {"indices": {}, "shape": SHAPE}
    with torch.no_grad():
        coarse = _conv("down")(spconv.SparseConvTensor(features, coords, SHAPE, 1))
    return conv, coarse.indices, coarse.features, {"indices": coarse.indice_dict, "shape": coarse.spatial_shape}


@pytest.mark.parametrize("kind", ["subm", "strided", "inverse"])
def test_sparse_convolution_is_bitwise_equal_at_one_and_two_threads(voxels, kind):
    conv, coords, features, pairs = _case(kind, *voxels)
    with threads(1):
        reference = _run(conv, coords, features, pairs)
    with threads(2):
        first = _run(conv, coords, features, pairs)
        second = _run(conv, coords, features, pairs)
    for name, ref, a, b in zip(("features", "input grad", "weight grad"), reference, first, second):
        assert torch.equal(a, b), f"{kind} {name}: two 2-thread runs differ by {(a - b).abs().max():.3g}"
        assert torch.equal(a, ref), f"{kind} {name}: 2 threads differ from 1 by {(a - ref).abs().max():.3g}"


def _assert_rounding_close(one: torch.Tensor, two: torch.Tensor, name: str) -> None:
    """Equal up to float32 rounding: torch's dense kernels (MKL GEMMs, oneDNN convolutions, LayerNorm's weight
    gradient) block their sums by thread, e.g. ``nn.Linear`` on 1537 rows or a 1x1 ``nn.Conv2d`` differ by an ulp
    between 1 and 2 threads. A scatter race shows as errors of 1e-3 and more."""
    scale = float(one.abs().max())
    error = float((one - two).abs().max())
    assert error <= 1e-5 * max(scale, 1e-30), f"{name}: 2 threads differ from 1 by {error:.3g} (scale {scale:.3g})"


def test_lion_detector_reruns_are_identical_and_thread_counts_agree():
    """Two 2-thread training steps give the same bits (the race made reruns differ); against 1 thread the forward
    and the gradients agree to float32 rounding (the sparse convolutions are bitwise equal on equal inputs, see
    above, but their inputs come through torch's dense layers)."""
    scenes = SyntheticScenes(2, seed=3, point_cloud_range=(0.0, -12.8, -3.0, 25.6, 12.8, 1.0),
                             objects_per_scene=(3, 5), classes=("Car",))
    config = LIONConfig.tiny(classes=["Car"], operator="retnet")
    torch.manual_seed(0)
    model = LIONDetector(config)
    points, boxes, classes = to_batch([scenes[0], scenes[1]], config.classes)

    def step():
        model.zero_grad()
        preds = model(points, 2)
        model.loss(preds, boxes, classes)[0].backward()
        return {k: v.detach() for k, v in preds.items()}, {n: p.grad.clone() for n, p in model.named_parameters()}

    with threads(1):
        one = step()
    with threads(2):
        two, again = step(), step()
    for part in (0, 1):
        for name in one[part]:
            assert torch.equal(two[part][name], again[part][name]), f"{name}: two 2-thread runs differ"
            _assert_rounding_close(one[part][name], two[part][name], name)


@pytest.mark.skipif(not os.path.isdir(os.path.join(KITTI_SAMPLE, "training", "velodyne")),
                    reason=f"the shared KITTI frame is not at {os.path.abspath(KITTI_SAMPLE)}")
def test_lion_forward_on_the_real_kitti_frame_is_identical_between_reruns():
    """The issue's symptom: LION (the CPU setting) on frame 000008 differed by 3e-3 between reruns."""
    config = LIONConfig.small(classes=["Car"])
    sample = KittiDataset(KITTI_SAMPLE, None, classes=config.classes, point_cloud_range=config.point_cloud_range)[0]
    torch.manual_seed(0)
    model = LIONDetector(config).eval()
    points, _, _ = to_batch([sample], config.classes)
    with torch.no_grad(), threads(1):
        one = model(points, 1)
    with torch.no_grad(), threads(2):
        two, again = model(points, 1), model(points, 1)
    for key in one:
        assert torch.equal(two[key], again[key]), f"{key}: two 2-thread runs differ"
        _assert_rounding_close(one[key], two[key], key)


def test_single_threaded_restores_the_thread_count_even_when_the_body_raises():
    with threads(2):
        with single_threaded():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"):
            with single_threaded():
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2


def test_thread_patch_is_applied_once():
    assert apply_cpu_thread_patch()
    assert apply_cpu_thread_patch()  # idempotent: a second call must not wrap the wrapper
    import spconv.pytorch.ops as ops
    if ops.GEMM_CPP is None:  # CPU-only build: one subclass over spconv's own class, not a stack of them
        assert not hasattr(ops.SpconvOps.__mro__[1], "_seqcore_cpu_thread_patch")


def test_cuda_builds_run_only_cpu_tensors_on_one_thread():
    """In spconv's CUDA builds the whole convolution call is guarded, and only for CPU features (the ``meta``
    device stands in for CUDA here): GPU work must keep the caller's thread count."""
    seen = []
    guarded = _one_thread_on_cpu(lambda features, *rest: seen.append(torch.get_num_threads()))
    with threads(2):
        guarded(torch.zeros(3))
        guarded(torch.zeros(3, device="meta"))
        assert torch.get_num_threads() == 2
    assert seen == [1, 2]
