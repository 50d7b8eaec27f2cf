"""Tests for pointcloud.voxels (dynamic voxelization, DynamicVFE) and pointcloud.spconv_cpu (spconv CPU backward).

Boundary convention under test: a point is inside when ``min <= p < max`` on every axis (lower bound in,
upper bound out).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pointcloud.voxels import DynamicVFE, VoxelGrid, voxelize

GRID = VoxelGrid([0.0, -2.0, -1.0, 4.0, 2.0, 1.0], [0.5, 0.25, 0.5])  # (nz, ny, nx) = (4, 16, 8)


def _cloud(n, extra=1, seed=0, margin=0.5):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor(GRID.point_cloud_range[:3], dtype=torch.float64) - margin
    hi = torch.tensor(GRID.point_cloud_range[3:], dtype=torch.float64) + margin
    xyz = lo + torch.rand(n, 3, generator=g, dtype=torch.float64) * (hi - lo)
    return torch.cat([xyz, torch.rand(n, extra, generator=g, dtype=torch.float64)], dim=1)


def _naive(points, batch, grid):
    """Per-point floor computation in numpy; returns (inside mask, (b, z, y, x) per point)."""
    p = points[:, :3].numpy()
    lo, hi = np.array(grid.point_cloud_range[:3]), np.array(grid.point_cloud_range[3:])
    inside = np.all((p >= lo) & (p < hi), axis=1)
    cell = np.floor((p - lo) / np.array(grid.voxel_size)).astype(np.int64)
    return inside, np.stack([batch.numpy(), cell[:, 2], cell[:, 1], cell[:, 0]], axis=1)


def test_grid_shape_and_validation():
    assert GRID.grid_shape == (4, 16, 8)
    assert VoxelGrid([0, -40, -3, 70.4, 40, 1], [0.05, 0.05, 0.1]).grid_shape == (40, 1600, 1408)
    with pytest.raises(ValueError):
        VoxelGrid([0, 0, 0, 0, 1, 1], [0.1, 0.1, 0.1])  # max == min
    with pytest.raises(ValueError):
        VoxelGrid([0, 0, 0, 1, 1, 1], [0.1, -0.1, 0.1])  # negative size
    with pytest.raises(ValueError):
        VoxelGrid([0, 0, 0, 1, 1, 1], [0.3, 0.1, 0.1])  # 1 / 0.3 not an integer
    with pytest.raises(ValueError):
        VoxelGrid([0, 0, 0, 1, 1], [0.1, 0.1, 0.1])  # wrong length


def test_voxelize_matches_naive_floor_and_numpy_mean():
    pts = _cloud(3000)
    batch = torch.randint(0, 3, (3000,), generator=torch.Generator().manual_seed(1))
    vox = voxelize(pts, batch, GRID)
    inside, naive = _naive(pts, batch, GRID)
    p2v = vox.point_to_voxel.numpy()
    assert vox.dropped == int((~inside).sum()) > 0
    assert np.array_equal(p2v < 0, ~inside)
    coords = vox.coords.numpy()
    assert vox.coords.dtype == torch.int64 and coords.shape[1] == 4
    assert len(np.unique(coords, axis=0)) == len(coords)
    # every in-range point maps to the voxel containing it
    assert np.array_equal(coords[p2v[inside]], naive[inside])
    # the set of voxels is exactly the set of occupied cells
    assert np.array_equal(np.unique(naive[inside], axis=0), coords)
    nz, ny, nx = GRID.grid_shape
    assert coords[:, 1].max() < nz and coords[:, 2].max() < ny and coords[:, 3].max() < nx
    for v in range(len(coords)):
        members = pts.numpy()[p2v == v]
        assert vox.num_points[v] == len(members) >= 1
        np.testing.assert_allclose(vox.mean[v].numpy(), members.mean(axis=0), rtol=1e-12, atol=1e-12)


def test_boundaries_lower_in_upper_out():
    lo, hi = GRID.point_cloud_range[:3], GRID.point_cloud_range[3:]
    pts = torch.tensor([
        [lo[0], lo[1], lo[2]],            # on every lower bound: in
        [hi[0], 0.0, 0.0],                # on the x upper bound: out
        [1.0, hi[1], 0.0],                # on the y upper bound: out
        [1.0, 0.0, hi[2]],                # on the z upper bound: out
        [np.nextafter(hi[0], -np.inf), np.nextafter(hi[1], -np.inf), np.nextafter(hi[2], -np.inf)],  # in, last cell
        [float("inf"), 0.0, 0.0],         # out
    ], dtype=torch.float64)
    vox = voxelize(pts, None, GRID)
    assert vox.dropped == 4
    assert vox.point_to_voxel.tolist()[1:4] == [-1, -1, -1] and vox.point_to_voxel[5] == -1
    nz, ny, nx = GRID.grid_shape
    assert vox.coords.tolist() == [[0, 0, 0, 0], [0, nz - 1, ny - 1, nx - 1]]


def test_batch_separation():
    pts = _cloud(500, margin=0.0)
    both = torch.cat([pts, pts])
    batch = torch.cat([torch.zeros(500, dtype=torch.int64), torch.full((500,), 2, dtype=torch.int64)])
    vox = voxelize(both, batch, GRID)
    single = voxelize(pts, None, GRID)
    assert vox.num_voxels == 2 * single.num_voxels
    assert set(vox.coords[:, 0].tolist()) == {0, 2}
    for b in (0, 2):
        sel = vox.coords[:, 0] == b
        assert torch.equal(vox.coords[sel, 1:], single.coords[:, 1:])
        assert torch.equal(vox.num_points[sel], single.num_points)
    # same cell in two samples never shares a voxel
    assert not set(vox.point_to_voxel[:500].tolist()) & set(vox.point_to_voxel[500:].tolist())


def test_empty_cloud_and_all_out():
    vox = voxelize(torch.zeros(0, 4), None, GRID)
    assert vox.coords.shape == (0, 4) and vox.mean.shape == (0, 4) and vox.num_points.shape == (0,)
    assert vox.point_to_voxel.shape == (0,) and vox.dropped == 0
    vox = voxelize(torch.full((3, 4), 100.0), None, GRID)
    assert vox.num_voxels == 0 and vox.dropped == 3 and (vox.point_to_voxel == -1).all()
    enc = DynamicVFE(4, (8, 8))
    assert enc(torch.full((3, 4), 100.0), vox, GRID).shape == (0, 8)


def test_nan_and_bad_inputs():
    pts = _cloud(10)
    pts[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        voxelize(pts, None, GRID)
    with pytest.raises(ValueError):
        voxelize(torch.zeros(5, 2), None, GRID)
    with pytest.raises(ValueError):
        voxelize(torch.zeros(5, 3), torch.zeros(4, dtype=torch.int64), GRID)


def test_dynamic_vfe_shape_permutation_and_grad():
    torch.manual_seed(0)
    pts = _cloud(400, extra=1).float()
    vox = voxelize(pts, None, GRID)
    for kw in ({}, {"with_distance": True}, {"norm": "batch"}, {"channels": (16,)}):
        enc = DynamicVFE(4, **{"channels": (16, 32), **kw}).eval()
        out = enc(pts, vox, GRID)
        assert out.shape == (vox.num_voxels, enc.out_channels) and torch.isfinite(out).all()
    enc = DynamicVFE(4, (16, 32))
    out = enc(pts, vox, GRID)
    # permuting points (hence the order within every voxel) leaves each voxel's feature unchanged
    perm = torch.randperm(400)
    vox_p = voxelize(pts[perm], None, GRID)
    assert torch.equal(vox_p.coords, vox.coords)
    torch.testing.assert_close(enc(pts[perm], vox_p, GRID), out, rtol=1e-5, atol=1e-5)
    # gradients reach the points and every parameter
    p = pts.clone().requires_grad_(True)
    enc(p, vox, GRID).square().sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad[vox.point_to_voxel >= 0].abs().sum() > 0
    assert (p.grad[vox.point_to_voxel < 0] == 0).all()
    for name, prm in enc.named_parameters():
        assert prm.grad is not None and prm.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------------------------------- spconv (CPU)

def _spconv():
    try:
        import spconv.pytorch as spconv
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - depends on the environment
        pytest.skip(f"spconv is not importable: {exc!r}")
    from pointcloud.spconv_cpu import apply_cpu_backward_patch, is_patched

    applied = apply_cpu_backward_patch()
    assert apply_cpu_backward_patch() == applied  # idempotent
    if not torch.cuda.is_available():
        assert applied and is_patched()
    return spconv


def _sparse_input(spconv, cin, seed=0, size=16, active=200, batch=2):
    g = torch.Generator().manual_seed(seed)
    flat = torch.randperm(batch * size ** 3, generator=g)[:active]
    b, rest = flat // size ** 3, flat % size ** 3
    idx = torch.stack([b, rest // size ** 2, (rest // size) % size, rest % size], dim=1)
    feats = torch.randn(active, cin, generator=g, requires_grad=True)
    x = spconv.SparseConvTensor(feats, idx.int(), [size] * 3, batch)
    return x, feats, idx


@pytest.mark.parametrize("kind", ["subm", "stride2"])
def test_spconv_forward_backward_matches_dense(kind):
    spconv = _spconv()
    torch.manual_seed(0)
    cin, cout = 3, 5
    x, feats, idx = _sparse_input(spconv, cin)
    if kind == "subm":
        conv = spconv.SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key="s")
    else:
        conv = spconv.SparseConv3d(cin, cout, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():  # asymmetric weights so a wrong axis order cannot pass
        conv.weight.copy_(torch.randn_like(conv.weight))
    # spconv 2.3 stores weights as (out, kz, ky, kx, in), found by experiment against conv3d
    assert conv.weight.shape == (cout, 3, 3, 3, cin)
    out = conv(x)
    sp_dense = out.dense()

    dense_in = x.dense().detach().requires_grad_(True)  # (B, cin, 16, 16, 16)
    w_ref = conv.weight.detach().permute(0, 4, 1, 2, 3).contiguous().requires_grad_(True)
    ref = F.conv3d(dense_in, w_ref, stride=1 if kind == "subm" else 2, padding=1)
    if kind == "subm":
        mask = torch.zeros(2, 1, 16, 16, 16)
        mask[idx[:, 0], 0, idx[:, 1], idx[:, 2], idx[:, 3]] = 1
        ref = ref * mask  # submanifold: outputs only at the active input sites
        assert torch.equal(out.indices.long().sort(0).values, idx.sort(0).values)
    assert sp_dense.shape == ref.shape
    torch.testing.assert_close(sp_dense, ref, rtol=1e-4, atol=1e-4)

    gout = torch.randn_like(ref)
    (sp_dense * gout).sum().backward()
    (ref * gout).sum().backward()
    ref_feat_grad = dense_in.grad[idx[:, 0], :, idx[:, 1], idx[:, 2], idx[:, 3]]
    torch.testing.assert_close(feats.grad, ref_feat_grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(conv.weight.grad.permute(0, 4, 1, 2, 3), w_ref.grad, rtol=1e-4, atol=1e-4)
