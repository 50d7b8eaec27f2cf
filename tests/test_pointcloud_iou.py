"""Rotated BEV / 3-D IoU and rotated NMS (pointcloud.iou, pointcloud.nms) against shapely references."""

import math

import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from pointcloud.iou import (
    bev_corners,
    bev_iou,
    bev_iou_aligned,
    iou_3d,
    iou_3d_aligned,
    rotated_bev_intersection,
    rotated_bev_intersection_aligned,
)
from pointcloud.nms import multiclass_nms, nms_rotated

F64 = torch.float64


def box(x, y, dx, dy, heading=0.0, z=0.0, dz=1.0):
    return [x, y, z, dx, dy, dz, heading]


def T(rows, dtype=F64):
    return torch.tensor(rows, dtype=dtype)


def random_boxes(n, spread, gen, *, aspect=False):
    b = torch.empty(n, 7, dtype=F64)
    b[:, 0:2] = (torch.rand(n, 2, generator=gen, dtype=F64) - 0.5) * spread
    b[:, 2] = torch.randn(n, generator=gen, dtype=F64)
    b[:, 3:6] = torch.exp(torch.randn(n, 3, generator=gen, dtype=F64))
    if aspect:  # long thin boxes (up to ~1000:1) against fat ones
        b[:, 3] = 5 + 20 * torch.rand(n, generator=gen, dtype=F64)
        b[:, 4] = 0.02 + 0.1 * torch.rand(n, generator=gen, dtype=F64)
    b[:, 6] = (torch.rand(n, generator=gen, dtype=F64) - 0.5) * 4 * math.pi
    return b


def shapely_inter(a, b):
    ca, cb = bev_corners(a).numpy(), bev_corners(b).numpy()
    return np.array([Polygon(ca[i]).intersection(Polygon(cb[i])).area for i in range(len(ca))])


def shapely_zover(a, b):
    a, b = a.numpy(), b.numpy()
    top = np.minimum(a[:, 2] + a[:, 5] / 2, b[:, 2] + b[:, 5] / 2)
    bot = np.maximum(a[:, 2] - a[:, 5] / 2, b[:, 2] - b[:, 5] / 2)
    return np.clip(top - bot, 0, None)


@pytest.fixture(scope="module")
def mixed_pairs():
    """2,400 pairs: heavily overlapping, medium, far apart, and extreme aspect ratios, all randomly rotated."""
    g = torch.Generator().manual_seed(1234)
    parts = [(800, 1.0, False), (800, 4.0, False), (400, 60.0, False), (400, 3.0, True)]
    a = torch.cat([random_boxes(n, s, g, aspect=asp) for n, s, asp in parts])
    b = torch.cat([random_boxes(n, s, g, aspect=False) for n, s, _ in parts])
    return a, b, shapely_inter(a, b)


# ---------------------------------------------------------------- BEV intersection vs shapely


def test_corners_ccw_and_area():
    b = T([box(1.0, 2.0, 4.0, 2.0, 0.3)])
    c = bev_corners(b)
    assert c.shape == (1, 4, 2)
    poly = Polygon(c[0].numpy())
    assert poly.exterior.is_ccw
    assert poly.area == pytest.approx(8.0, rel=1e-12)
    assert np.allclose(c[0].mean(0).numpy(), [1.0, 2.0])


def test_intersection_matches_shapely_random(mixed_pairs):
    a, b, ref = mixed_pairs
    assert (ref > 0).mean() > 0.3 and (ref == 0).mean() > 0.1  # the mix really has both kinds
    got = rotated_bev_intersection_aligned(a, b).numpy()
    scale = np.minimum((a[:, 3] * a[:, 4]).numpy(), (b[:, 3] * b[:, 4]).numpy())
    # Relative to the smaller box area: a sliver's own relative error is meaningless at 1e-9.
    assert np.max(np.abs(got - ref) / scale) < 1e-9
    assert np.max(np.abs(got - ref) / np.maximum(ref, 1e-3)) < 1e-9


def test_matrix_matches_shapely_and_aligned_is_diagonal(mixed_pairs):
    a, b, _ = mixed_pairs
    sel = torch.arange(0, a.shape[0], 40)  # 60 x 60 from every group
    aa, bb = a[sel], b[sel]
    m = rotated_bev_intersection(aa, bb)
    assert m.shape == (60, 60)
    ii, jj = torch.meshgrid(torch.arange(60), torch.arange(60), indexing="ij")
    ref = shapely_inter(aa[ii.reshape(-1)], bb[jj.reshape(-1)]).reshape(60, 60)
    assert np.allclose(m.numpy(), ref, rtol=1e-9, atol=1e-9)
    assert torch.equal(torch.diagonal(m), rotated_bev_intersection_aligned(aa, bb))
    assert torch.allclose(torch.diagonal(bev_iou(aa, bb)), bev_iou_aligned(aa, bb), rtol=0, atol=1e-15)
    assert torch.allclose(torch.diagonal(iou_3d(aa, bb)), iou_3d_aligned(aa, bb), rtol=0, atol=1e-15)


def test_bev_iou_matches_shapely(mixed_pairs):
    a, b, ref_inter = mixed_pairs
    area_a, area_b = (a[:, 3] * a[:, 4]).numpy(), (b[:, 3] * b[:, 4]).numpy()
    ref = ref_inter / (area_a + area_b - ref_inter)
    assert np.max(np.abs(bev_iou_aligned(a, b).numpy() - ref)) < 1e-9


def test_iou_3d_matches_shapely_times_z(mixed_pairs):
    a, b, ref_inter = mixed_pairs
    a = a.clone()
    a[:, 2] += torch.linspace(-2, 2, a.shape[0], dtype=F64)  # z offsets from deep overlap to disjoint
    vi = ref_inter * shapely_zover(a, b)
    va, vb = (a[:, 3] * a[:, 4] * a[:, 5]).numpy(), (b[:, 3] * b[:, 4] * b[:, 5]).numpy()
    ref = vi / (va + vb - vi)
    assert (ref > 0).sum() > 300 and ((ref_inter > 0) & (ref == 0)).sum() > 50
    assert np.max(np.abs(iou_3d_aligned(a, b).numpy() - ref)) < 1e-9


# ---------------------------------------------------------------- special cases


@pytest.mark.parametrize("heading", [0.0, 0.7, -2.1, math.pi / 2])
def test_identical_boxes(heading):
    b = T([box(3.0, -1.0, 4.2, 1.7, heading)])
    assert bev_iou(b, b).item() == pytest.approx(1.0, abs=1e-12)
    assert iou_3d(b, b).item() == pytest.approx(1.0, abs=1e-12)


def test_rotated_by_pi_is_same_box():
    a = T([box(1.0, 2.0, 4.0, 1.5, 0.4)])
    b = T([box(1.0, 2.0, 4.0, 1.5, 0.4 + math.pi)])
    assert bev_iou(a, b).item() == pytest.approx(1.0, abs=1e-12)


def test_square_rotated_90_degrees():
    a = T([box(0.0, 0.0, 2.0, 2.0, 0.0)])
    b = T([box(0.0, 0.0, 2.0, 2.0, math.pi / 2)])
    assert bev_iou(a, b).item() == pytest.approx(1.0, abs=1e-12)


def test_rectangle_rotated_90_degrees_is_a_cross():
    a = T([box(0.0, 0.0, 4.0, 2.0, 0.0)])
    b = T([box(0.0, 0.0, 4.0, 2.0, math.pi / 2)])
    assert rotated_bev_intersection(a, b).item() == pytest.approx(4.0, rel=1e-12)
    assert bev_iou(a, b).item() == pytest.approx(4.0 / 12.0, rel=1e-12)


@pytest.mark.parametrize("heading", [0.0, 0.5, math.pi / 2])
def test_touching_edge(heading):
    # Two 2x2 squares sharing a full edge (in the rotated frame): zero area.
    c, s = math.cos(heading), math.sin(heading)
    a = T([box(0.0, 0.0, 2.0, 2.0, heading)])
    b = T([box(2 * c, 2 * s, 2.0, 2.0, heading)])
    assert rotated_bev_intersection(a, b).item() == pytest.approx(0.0, abs=1e-12)
    assert bev_iou(a, b).item() == pytest.approx(0.0, abs=1e-12)


def test_touching_edge_exactly_zero_axis_aligned():
    a = T([box(0.0, 0.0, 2.0, 2.0)])
    b = T([box(2.0, 0.5, 2.0, 1.0)])
    assert rotated_bev_intersection(a, b).item() == 0.0


def test_shared_vertex_only():
    a = T([box(0.0, 0.0, 2.0, 2.0)])
    b = T([box(2.0, 2.0, 2.0, 2.0)])  # meets a only at (1, 1)
    c = T([box(1.0 + math.sqrt(2), 0.0, 2.0, 2.0, math.pi / 4)])  # diamond whose left tip touches a's right edge
    assert rotated_bev_intersection(a, b).item() == 0.0
    assert rotated_bev_intersection(a, c).item() == pytest.approx(0.0, abs=1e-12)


def test_nested_box():
    outer = T([box(0.0, 0.0, 10.0, 6.0, 0.3)])
    inner = T([box(0.5, -0.2, 2.0, 1.0, 1.2)])
    assert rotated_bev_intersection(outer, inner).item() == pytest.approx(2.0, rel=1e-12)
    assert rotated_bev_intersection(inner, outer).item() == pytest.approx(2.0, rel=1e-12)
    assert bev_iou(outer, inner).item() == pytest.approx(2.0 / 60.0, rel=1e-12)


def test_collinear_edges_and_partial_overlap():
    a = T([box(0.0, 0.0, 4.0, 2.0)])
    b = T([box(1.0, 0.0, 4.0, 2.0)])  # same y extent: top and bottom edges collinear
    assert rotated_bev_intersection(a, b).item() == pytest.approx(6.0, rel=1e-12)
    c = T([box(1.0, 0.5, 2.0, 1.0)])  # inside a, sharing a's top edge line and right edge
    assert rotated_bev_intersection(a, c).item() == pytest.approx(2.0, rel=1e-12)
    # Same with both rotated together: the collinear edges are no longer axis-aligned.
    ang = 0.9
    rot = lambda x, y: (x * math.cos(ang) - y * math.sin(ang), x * math.sin(ang) + y * math.cos(ang))  # noqa: E731
    a2 = T([box(0.0, 0.0, 4.0, 2.0, ang)])
    b2 = T([box(*rot(1.0, 0.0), 4.0, 2.0, ang)])
    assert rotated_bev_intersection(a2, b2).item() == pytest.approx(6.0, rel=1e-12)


def test_degenerate_near_identical_orientation():
    # Headings differing by ~1e-12 make every pair of edges nearly parallel: no spurious area blow-up.
    a = T([box(0.0, 0.0, 4.0, 2.0, 0.3)])
    b = T([box(1e-13, 0.0, 4.0, 2.0, 0.3 + 1e-12)])
    assert bev_iou(a, b).item() == pytest.approx(1.0, abs=1e-9)


def test_3d_z_offsets():
    a = T([box(0.0, 0.0, 2.0, 2.0, 0.0, z=0.0, dz=2.0)])
    b = T([box(0.0, 0.0, 2.0, 2.0, 0.0, z=1.0, dz=2.0), box(0.0, 0.0, 2.0, 2.0, 0.0, z=2.0, dz=2.0)])
    got = iou_3d(a, b)[0]
    assert got[0].item() == pytest.approx(4.0 / 12.0, rel=1e-12)  # half the height overlaps
    assert got[1].item() == 0.0  # z faces touch


def test_float32_close_to_float64(mixed_pairs):
    a, b, _ = mixed_pairs
    a = a.clone()
    a[:, :2] += 50.0  # far from the origin, as LiDAR boxes are
    b = b.clone()
    b[:, :2] += 50.0
    for fn in (bev_iou_aligned, iou_3d_aligned):
        r64 = fn(a, b)
        r32 = fn(a.float(), b.float())
        assert r32.dtype == torch.float32
        assert torch.max(torch.abs(r32.double() - r64)).item() < 1e-4
    m64 = bev_iou(a[:200], b[:200])
    m32 = bev_iou(a[:200].float(), b[:200].float())
    assert torch.max(torch.abs(m32.double() - m64)).item() < 1e-4


def test_empty_inputs():
    e = torch.zeros(0, 7, dtype=F64)
    b = T([box(0.0, 0.0, 1.0, 1.0)])
    assert bev_iou(e, b).shape == (0, 1)
    assert iou_3d(b, e).shape == (1, 0)
    assert bev_iou_aligned(e, e).shape == (0,)


@pytest.mark.parametrize(
    "bad",
    [
        [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0, -1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
        [float("nan"), 0.0, 0.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, float("inf")],
    ],
)
def test_rejects_bad_boxes(bad):
    good = T([box(0.0, 0.0, 1.0, 1.0)])
    with pytest.raises(ValueError):
        bev_iou(T([bad]), good)
    with pytest.raises(ValueError):
        iou_3d_aligned(good, T([bad]))


def test_rejects_bad_shapes():
    good = T([box(0.0, 0.0, 1.0, 1.0)])
    with pytest.raises(ValueError):
        bev_iou(torch.zeros(3, 6, dtype=F64), good)
    with pytest.raises(ValueError):
        bev_iou_aligned(good, torch.cat([good, good]))
    with pytest.raises(TypeError):
        bev_iou(good.long(), good.long())


def test_chunking_is_invisible(monkeypatch, mixed_pairs):
    import pointcloud.iou as iou_mod

    a, b, _ = mixed_pairs
    full = bev_iou(a[:100], b[:100])
    monkeypatch.setattr(iou_mod, "_CHUNK_PAIRS", 7)
    assert torch.equal(bev_iou(a[:100], b[:100]), full)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(mixed_pairs):
    a, b, _ = mixed_pairs
    for dt in (F64, torch.float32):
        cpu = iou_3d(a[:300].to(dt), b[:300].to(dt))
        gpu = iou_3d(a[:300].to(dt).cuda(), b[:300].to(dt).cuda()).cpu()
        assert torch.allclose(cpu, gpu, atol=1e-5 if dt == torch.float32 else 1e-12)
    s = torch.rand(300, dtype=F64)
    assert torch.equal(nms_rotated(a[:300].cuda(), s.cuda(), 0.3).cpu(), nms_rotated(a[:300], s, 0.3))


# ---------------------------------------------------------------- NMS


def naive_nms(boxes, scores, thr, use_3d=False):
    """Reference greedy NMS with shapely IoU, one box at a time."""
    polys = [Polygon(c) for c in bev_corners(boxes).numpy()]
    bx = boxes.numpy()
    order = sorted(range(len(polys)), key=lambda i: (-float(scores[i]), i))
    kept = []
    for i in order:
        ok = True
        for k in kept:
            inter = polys[i].intersection(polys[k]).area
            if use_3d:
                top = min(bx[i, 2] + bx[i, 5] / 2, bx[k, 2] + bx[k, 5] / 2)
                bot = max(bx[i, 2] - bx[i, 5] / 2, bx[k, 2] - bx[k, 5] / 2)
                inter *= max(top - bot, 0.0)
                union = np.prod(bx[i, 3:6]) + np.prod(bx[k, 3:6]) - inter
            else:
                union = polys[i].area + polys[k].area - inter
            if inter / union > thr:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


def test_nms_hand_made():
    boxes = T(
        [
            box(0.0, 0.0, 4.0, 2.0),  # 0: score 0.9, kept
            box(0.2, 0.0, 4.0, 2.0),  # 1: IoU ~0.9 with 0 -> suppressed
            box(10.0, 0.0, 4.0, 2.0),  # 2: far away -> kept
            box(10.0, 0.0, 4.0, 2.0, math.pi / 2),  # 3: cross with 2, IoU 1/3 -> kept at 0.5
            box(3.0, 0.0, 4.0, 2.0),  # 4: IoU 1/7 with 0; 1 is suppressed so it cannot suppress 4
        ]
    )
    scores = T([0.9, 0.8, 0.7, 0.6, 0.5])
    assert nms_rotated(boxes, scores, 0.5).tolist() == [0, 2, 3, 4]
    assert nms_rotated(boxes, scores, 0.3).tolist() == [0, 2, 4]
    assert nms_rotated(boxes, scores, 0.1).tolist() == [0, 2]
    # Order follows the scores, not the input order.
    # Ranking 3, 1, 2, 4, 0: box 0 now loses to box 1 (IoU ~0.9), while 4 survives (IoU ~0.18 with 1).
    assert nms_rotated(boxes, T([0.1, 0.8, 0.7, 0.95, 0.5]), 0.5).tolist() == [3, 1, 2, 4]
    assert nms_rotated(boxes, scores, 0.5, post_max=2).tolist() == [0, 2]
    assert nms_rotated(boxes, scores, 0.5, pre_max=2).tolist() == [0]


@pytest.mark.parametrize("use_3d", [False, True])
def test_nms_equals_naive_greedy(use_3d):
    g = torch.Generator().manual_seed(7)
    boxes = random_boxes(120, 4.0, g)
    scores = torch.rand(120, generator=g, dtype=F64)
    sizes = []
    for thr in (0.02, 0.1, 0.3):
        got = nms_rotated(boxes, scores, thr, use_3d=use_3d).tolist()
        assert got == naive_nms(boxes, scores, thr, use_3d=use_3d)
        sizes.append(len(got))
    # Every threshold must actually suppress something, and fewer boxes survive a stricter threshold.
    assert 1 < sizes[0] < sizes[1] < sizes[2] < 120, sizes


def test_nms_pre_max_equals_nms_of_top_k():
    g = torch.Generator().manual_seed(8)
    boxes = random_boxes(80, 6.0, g)
    scores = torch.rand(80, generator=g, dtype=F64)
    top = torch.argsort(scores, descending=True)[:30]
    want = top[nms_rotated(boxes[top], scores[top], 0.2)]
    assert torch.equal(nms_rotated(boxes, scores, 0.2, pre_max=30), want)


def test_nms_empty_and_single():
    e = torch.zeros(0, 7, dtype=F64)
    out = nms_rotated(e, torch.zeros(0, dtype=F64), 0.5)
    assert out.shape == (0,) and out.dtype == torch.int64
    assert multiclass_nms(e, torch.zeros(0, dtype=F64), torch.zeros(0, dtype=torch.int64), 0.5).shape == (0,)
    one = T([box(0.0, 0.0, 1.0, 1.0)])
    assert nms_rotated(one, T([0.3]), 0.5).tolist() == [0]


def test_multiclass_nms_separates_classes():
    boxes = T([box(0.0, 0.0, 4.0, 2.0), box(0.1, 0.0, 4.0, 2.0), box(0.1, 0.0, 4.0, 2.0), box(0.0, 0.1, 4.0, 2.0)])
    scores = T([0.9, 0.8, 0.95, 0.5])
    labels = torch.tensor([0, 0, 1, 1])
    # Class 0 keeps 0 (1 suppressed), class 1 keeps 2 (3 suppressed); boxes 0 and 2 overlap but differ in class.
    assert multiclass_nms(boxes, scores, labels, 0.5).tolist() == [2, 0]
    assert nms_rotated(boxes, scores, 0.5).tolist() == [2]
    # Agrees with running each class on its own.
    g = torch.Generator().manual_seed(9)
    rb = random_boxes(90, 6.0, g)
    rs = torch.rand(90, generator=g, dtype=F64)
    rl = torch.randint(0, 3, (90,), generator=g)
    got = multiclass_nms(rb, rs, rl, 0.2)
    want = torch.cat([torch.nonzero(rl == c)[:, 0][nms_rotated(rb[rl == c], rs[rl == c], 0.2)] for c in range(3)])
    want = want[torch.argsort(rs[want], descending=True)]
    assert torch.equal(got, want)
    assert (torch.diff(rs[got]) <= 0).all()
