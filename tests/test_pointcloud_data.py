"""KittiDataset and collate (fast, CPU): the real sample frame and a tiny KITTI tree built in tmp_path, with the
KITTI splits (train, val, trainval, test, and split=None for a folder without ImageSets)."""
import functools
import os
import tempfile

import numpy as np
import pytest
import torch

from kitti_files import CALIB_TEXT, FRAME, KITTI_SAMPLE
from pointcloud.boxes import boxes_camera_to_lidar, boxes_lidar_to_camera
from pointcloud.calibration import Calibration
from pointcloud.data import SPLITS, KittiDataset, collate, fov_mask
from pointcloud.kitti_io import difficulty, read_labels, write_points
from pointcloud.lion import to_batch
from pointcloud.synthetic import kitti_calibration

SAMPLE_ROOT = KITTI_SAMPLE
# Points inside each Car of frame 000008, in label order (ground truth from the task statement).
CAR_POINT_COUNTS = [1325, 1900, 881, 659, 55, 162]
PCR = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)

requires_sample = pytest.mark.skipif(
    not all(os.path.isfile(os.path.join(SAMPLE_ROOT, "training", sub, f"{FRAME}.{ext}"))
            for sub, ext in (("velodyne", "bin"), ("label_2", "txt"), ("calib", "txt"))),
    reason=f"KITTI sample frame {FRAME} not found under {os.path.abspath(SAMPLE_ROOT)}",
)

# ----------------------------------------------------------------------------------------------------------
# Real frame
# ----------------------------------------------------------------------------------------------------------
@requires_sample
def test_real_frame_cars_dontcare_and_point_counts():
    ds = KittiDataset(SAMPLE_ROOT, None)
    assert ds.frame_ids == [FRAME]  # no ImageSets in the sample: split=None reads every velodyne id
    s = ds[0]
    assert s["frame_id"] == FRAME
    assert list(s["gt_names"]) == ["Car"] * 6
    assert s["gt_boxes"].shape == (6, 7) and s["gt_boxes"].dtype == np.float32
    assert s["dontcare_boxes"].shape == (4, 7) and s["dontcare_bbox"].shape == (4, 4)
    assert s["num_points_in_gt"].tolist() == CAR_POINT_COUNTS
    pts = s["points"]
    assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 4 and len(pts) > 0
    xyz = pts[:, :3].astype(np.float64)
    assert np.all(xyz >= np.array(PCR[:3])) and np.all(xyz < np.array(PCR[3:]))
    assert fov_mask(pts, s["calib"]).all()
    # Labels, difficulty and boxes agree with the committed readers / converters.
    cars = [o for o in read_labels(os.path.join(SAMPLE_ROOT, "training", "label_2", f"{FRAME}.txt"))
            if o.type == "Car"]
    assert s["difficulty"].tolist() == [difficulty(o) for o in cars]
    cam = torch.tensor([[*o.location, o.dims_hwl[2], o.dims_hwl[0], o.dims_hwl[1], o.ry] for o in cars],
                       dtype=torch.float64)
    np.testing.assert_allclose(s["gt_boxes"], boxes_camera_to_lidar(cam, s["calib"]).numpy(), atol=1e-5)
    np.testing.assert_allclose(s["bbox"], np.stack([o.bbox for o in cars]), atol=1e-4)
    assert s["truncated"].tolist() == pytest.approx([o.truncated for o in cars])
    assert s["occluded"].tolist() == [o.occluded for o in cars]
    assert s["other_boxes"].shape == (0, 7) and len(s["other_names"]) == 0


@requires_sample
def test_real_frame_cropping_does_not_change_counts():
    # The shipped scan is already limited to the camera's view and the range crop only removes points
    # beyond x = 70.4 m or outside z in [-3, 1): no labelled car loses a point either way.
    full = KittiDataset(SAMPLE_ROOT, None, fov_only=False, point_cloud_range=(-1e3, -1e3, -1e3, 1e3, 1e3, 1e3))[0]
    cropped = KittiDataset(SAMPLE_ROOT, None)[0]
    assert full["num_points_in_gt"].tolist() == CAR_POINT_COUNTS
    assert len(cropped["points"]) < len(full["points"])


@requires_sample
@pytest.mark.parametrize("split", ["train", "val", "trainval"])
def test_real_frame_has_no_image_sets_so_named_splits_are_errors(split):
    with pytest.raises(FileNotFoundError, match=rf"ImageSets[/\\]{split}\.txt.*split=None"):
        KittiDataset(SAMPLE_ROOT, split)
    with pytest.raises(FileNotFoundError, match=r"testing[/\\]velodyne"):  # and it has no testing/ folder
        KittiDataset(SAMPLE_ROOT, "test")


# ----------------------------------------------------------------------------------------------------------
# Tiny synthetic tree
# ----------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _calib() -> Calibration:
    """CALIB_TEXT parsed by the committed reader (it only reads files, hence the temporary one)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "calib.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(CALIB_TEXT)
        return Calibration.from_file(path)


def _label_line(name: str, lidar_box, bbox=(500.0, 150.0, 600.0, 250.0), truncated=0.0, occluded=0) -> str:
    """A KITTI label line for a LiDAR box, converted to the camera frame with the committed converter."""
    cam = boxes_lidar_to_camera(torch.tensor([lidar_box], dtype=torch.float64), _calib())[0].tolist()
    x, y, z, l, h, w, ry = cam
    return (f"{name} {truncated:.2f} {occluded} 0.00 {bbox[0]:.2f} {bbox[1]:.2f} {bbox[2]:.2f} {bbox[3]:.2f} "
            f"{h:.6f} {w:.6f} {l:.6f} {x:.6f} {y:.6f} {z:.6f} {ry:.6f}\n")


DONTCARE = "DontCare -1 -1 -10 700.00 160.00 720.00 180.00 -1 -1 -1 -1000 -1000 -1000 -10\n"
CAR_BOX = [10.0, 0.0, -0.8, 4.0, 1.8, 1.5, 0.1]
PED_BOX = [15.0, 3.0, -0.9, 0.8, 0.6, 1.7, 0.0]
VAN_BOX = [20.0, -4.0, -0.7, 5.0, 2.0, 2.0, 0.0]
SIT_BOX = [12.0, 5.0, -1.0, 0.8, 0.6, 1.2, 0.0]
CYC_BOX = [25.0, 2.0, -0.8, 1.8, 0.6, 1.7, 0.3]


def _write_tree(root, *, image_sets: bool = True) -> None:
    """Frames 000000 (Car + Pedestrian + Van + Person_sitting + DontCare), 000001 (Cyclist + Car), 000002 (0-byte scan)
    under ``training/``; with ``image_sets``, ImageSets train (000000, 000002) and val (000001), no trainval or test."""
    tr = root / "training"
    for sub in ("velodyne", "label_2", "calib"):
        (tr / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    # 000000: 5 points in the car, 3 in the pedestrian, one beyond the range (x > 70.4), one behind the
    # camera (in range? no: x < 0) and one in range but left of the image (y = 39 at x = 5).
    car_pts = np.array(CAR_BOX[:3]) + rng.uniform(-0.4, 0.4, (5, 3))
    ped_pts = np.array(PED_BOX[:3]) + rng.uniform(-0.15, 0.15, (3, 3))
    extra = np.array([[75.0, 0.0, -1.0], [-5.0, 0.0, -1.0], [5.0, 39.0, -1.0]])
    xyz = np.concatenate([car_pts, ped_pts, extra])
    pts0 = np.concatenate([xyz, np.full((len(xyz), 1), 0.5)], axis=1).astype(np.float32)
    write_points(tr / "velodyne" / "000000.bin", pts0)
    (tr / "label_2" / "000000.txt").write_text(
        _label_line("Car", CAR_BOX, truncated=0.1, occluded=1) + _label_line("Pedestrian", PED_BOX)
        + _label_line("Van", VAN_BOX) + _label_line("Person_sitting", SIT_BOX) + DONTCARE)
    pts1 = np.array([[25.0, 2.0, -0.8, 0.1], [30.0, 0.0, -1.0, 0.2]], dtype=np.float32)
    write_points(tr / "velodyne" / "000001.bin", pts1)
    (tr / "label_2" / "000001.txt").write_text(_label_line("Cyclist", CYC_BOX) + _label_line("Car", CAR_BOX))
    (tr / "velodyne" / "000002.bin").write_bytes(b"")
    (tr / "label_2" / "000002.txt").write_text(_label_line("Car", CAR_BOX))
    for fid in ("000000", "000001", "000002"):
        (tr / "calib" / f"{fid}.txt").write_text(CALIB_TEXT)
    if image_sets:
        (root / "ImageSets").mkdir()
        (root / "ImageSets" / "train.txt").write_text("000000\n000002\n")
        (root / "ImageSets" / "val.txt").write_text("000001\n")


def test_image_sets_select_frames(tmp_path):
    _write_tree(tmp_path)
    assert KittiDataset(tmp_path, "train").frame_ids == ["000000", "000002"]
    val = KittiDataset(tmp_path, "val")
    assert val.frame_ids == ["000001"] and len(val) == 1 and val[0]["frame_id"] == "000001"
    with pytest.raises(ValueError, match="split must be one of .*'trainval', 'test'.* or None"):
        KittiDataset(tmp_path, "validation")


@pytest.mark.parametrize("split", SPLITS)
def test_missing_image_set_is_an_error_naming_the_file_and_the_remedy(tmp_path, split):
    # Before, a missing val.txt silently gave every frame: "val" became the training set.
    _write_tree(tmp_path, image_sets=False)
    if split == "test":
        _write_testing(tmp_path, image_set=False)
    expected = os.path.join(str(tmp_path), "ImageSets", f"{split}.txt")
    with pytest.raises(FileNotFoundError) as err:
        KittiDataset(tmp_path, split)
    assert expected in str(err.value) and "split=None" in str(err.value) and "one frame id" in str(err.value)


def test_val_without_its_image_set_is_an_error_even_when_train_has_one(tmp_path):
    _write_tree(tmp_path)
    (tmp_path / "ImageSets" / "val.txt").unlink()
    assert KittiDataset(tmp_path, "train").frame_ids == ["000000", "000002"]
    with pytest.raises(FileNotFoundError, match=r"val\.txt"):
        KittiDataset(tmp_path, "val")


def test_split_none_reads_every_training_scan_sorted(tmp_path):
    _write_tree(tmp_path)  # ImageSets present: split=None still reads the folder, not a list
    ds = KittiDataset(tmp_path, None)
    assert ds.frame_ids == ["000000", "000001", "000002"] and ds.has_labels and ds.split is None
    assert list(ds[1]["gt_names"]) == ["Cyclist", "Car"]


def test_trainval_split(tmp_path):
    _write_tree(tmp_path)
    (tmp_path / "ImageSets" / "trainval.txt").write_text("000001\n000000\n")
    ds = KittiDataset(tmp_path, "trainval")
    assert ds.frame_ids == ["000001", "000000"] and ds.has_labels  # the file's order
    assert [ds[i]["frame_id"] for i in range(2)] == ["000001", "000000"]
    assert list(ds[1]["gt_names"]) == ["Car", "Pedestrian"]


def _write_testing(root, *, image_set: bool = True, calib: bool = True) -> None:
    """``testing/`` frames 000000 (3 points) and 000005 (0-byte scan), no label_2, as KITTI ships them."""
    te = root / "testing"
    (te / "velodyne").mkdir(parents=True)
    write_points(te / "velodyne" / "000000.bin",
                 np.array([[10.0, 0.0, -1.0, 0.5], [12.0, 1.0, -1.0, 0.2], [-5.0, 0.0, -1.0, 0.1]], np.float32))
    (te / "velodyne" / "000005.bin").write_bytes(b"")
    if calib:
        (te / "calib").mkdir()
        for fid in ("000000", "000005"):
            (te / "calib" / f"{fid}.txt").write_text(CALIB_TEXT)
    if image_set:
        (root / "ImageSets").mkdir(exist_ok=True)
        (root / "ImageSets" / "test.txt").write_text("000000\n000005\n")


def test_test_split_reads_testing_frames_without_labels(tmp_path):
    _write_tree(tmp_path)
    _write_testing(tmp_path)
    ds = KittiDataset(tmp_path, "test")
    assert ds.frame_ids == ["000000", "000005"] and not ds.has_labels
    s = ds[0]
    assert sorted(s) == ["calib", "frame_id", "points"]  # no gt_boxes: not an empty scene, an unlabelled one
    assert s["points"].shape == (2, 4)  # the point behind the camera is cropped, as in every split
    assert ds[1]["points"].shape == (0, 4)
    # Training frames of the same id are a different frame: the test split never reads training/.
    assert len(KittiDataset(tmp_path, "train")[0]["points"]) == 8


def test_test_split_refuses_ground_truth_and_training(tmp_path):
    _write_testing(tmp_path)
    ds = KittiDataset(tmp_path, "test")
    with pytest.raises(ValueError, match="split 'test' has no labels"):
        ds.ground_truth(0)
    with pytest.raises(ValueError, match=r"no labels .*'test' split.*'train', 'val' or 'trainval'"):
        to_batch([ds[0]], ("Car",))


def test_test_split_needs_no_label_folder_but_its_calib(tmp_path):
    _write_testing(tmp_path, calib=False)
    with pytest.raises(FileNotFoundError, match=r"testing[/\\]calib"):
        KittiDataset(tmp_path, "test")


def test_collate_unlabelled_frames_and_refuses_a_mix(tmp_path):
    _write_tree(tmp_path)
    _write_testing(tmp_path)
    test = KittiDataset(tmp_path, "test")
    batch = collate([test[0], test[1]])
    assert "gt_boxes" not in batch and batch["points"].shape == (2, 5) and batch["frame_id"] == ["000000", "000005"]
    with pytest.raises(ValueError, match=r"samples \[1\] have no gt_boxes"):
        collate([KittiDataset(tmp_path)[0], test[0]])


def test_a_split_folder_given_as_root_is_an_error_naming_the_root(tmp_path):
    _write_tree(tmp_path)
    with pytest.raises(ValueError, match="split folder, not the KITTI root") as err:
        KittiDataset(tmp_path / "training", None)
    assert f"({tmp_path})" in str(err.value)


def test_one_calibration_for_every_frame_instead_of_calib_files(tmp_path):
    _write_tree(tmp_path)
    for f in (tmp_path / "training" / "calib").iterdir():
        f.unlink()
    (tmp_path / "training" / "calib").rmdir()
    calib = kitti_calibration()
    ds = KittiDataset(tmp_path, calibration=calib)
    assert ds[0]["calib"] is calib and ds.ground_truth(0).boxes.shape[0] == 5  # every labelled object
    with pytest.raises(FileNotFoundError, match="calib"):
        KittiDataset(tmp_path)
    with pytest.raises(TypeError, match="calibration must be a Calibration"):
        KittiDataset(tmp_path, calibration=CALIB_TEXT)


@pytest.mark.parametrize("sub", ["velodyne", "label_2", "calib"])
def test_missing_folder_is_named(tmp_path, sub):
    _write_tree(tmp_path)
    for f in (tmp_path / "training" / sub).iterdir():
        f.unlink()
    (tmp_path / "training" / sub).rmdir()
    with pytest.raises(FileNotFoundError, match=sub):
        KittiDataset(tmp_path)


def test_missing_root_and_listed_frame(tmp_path):
    with pytest.raises(FileNotFoundError, match="root"):
        KittiDataset(tmp_path / "nope")
    _write_tree(tmp_path)
    (tmp_path / "ImageSets" / "val.txt").write_text("000001\n000009\n")
    with pytest.raises(FileNotFoundError, match="000009.bin"):
        KittiDataset(tmp_path, "val")


def test_zero_byte_scan(tmp_path):
    _write_tree(tmp_path)
    s = KittiDataset(tmp_path)[1]
    assert s["frame_id"] == "000002"
    assert s["points"].shape == (0, 4) and s["points"].dtype == np.float32
    assert s["gt_boxes"].shape == (1, 7) and s["num_points_in_gt"].tolist() == [0]


def test_frame_contents_crop_and_classes(tmp_path):
    _write_tree(tmp_path)
    s = KittiDataset(tmp_path)[0]
    # The point beyond the range, the one behind the camera and the one outside the image are gone.
    assert s["points"].shape == (8, 4)
    kept = KittiDataset(tmp_path, fov_only=False)[0]["points"]
    assert kept.shape == (9, 4)  # the range crop alone keeps the point left of the image
    assert list(s["gt_names"]) == ["Car", "Pedestrian"]
    assert s["gt_classes"].tolist() == [1, 2]
    np.testing.assert_allclose(s["gt_boxes"], np.array([CAR_BOX, PED_BOX]), atol=2e-5)
    assert s["num_points_in_gt"].tolist() == [5, 3]
    assert s["truncated"].tolist() == pytest.approx([0.1, 0.0]) and s["occluded"].tolist() == [1, 0]
    assert s["difficulty"].tolist() == [1, 0]  # 100 px tall; occlusion 1 makes the car moderate
    assert s["bbox"].shape == (2, 4)
    # Neighbouring classes are kept aside for the evaluation, DontCare separately.
    assert list(s["other_names"]) == ["Van", "Person_sitting"]
    np.testing.assert_allclose(s["other_boxes"], np.array([VAN_BOX, SIT_BOX]), atol=2e-5)
    assert s["dontcare_boxes"].shape == (1, 7)
    np.testing.assert_allclose(s["dontcare_bbox"], [[700, 160, 720, 180]])
    assert isinstance(s["calib"], Calibration)


def test_class_filtering(tmp_path):
    _write_tree(tmp_path)
    s = KittiDataset(tmp_path, classes=("Pedestrian",))[0]
    assert list(s["gt_names"]) == ["Pedestrian"] and s["gt_classes"].tolist() == [1]
    assert list(s["other_names"]) == ["Car", "Van", "Person_sitting"]
    assert s["other_boxes"].shape == (3, 7) and s["dontcare_boxes"].shape == (1, 7)
    v = KittiDataset(tmp_path, "val", classes=("Car", "Pedestrian", "Cyclist"))[0]
    assert list(v["gt_names"]) == ["Cyclist", "Car"] and v["gt_classes"].tolist() == [3, 1]
    with pytest.raises(ValueError, match="classes"):
        KittiDataset(tmp_path, classes=("Car", "DontCare"))


def test_transform_applied_last(tmp_path):
    _write_tree(tmp_path)
    seen = {}

    def flip(sample):
        seen["n"] = len(sample["points"])
        sample["points"] = sample["points"] * np.array([1, -1, 1, 1], dtype=np.float32)
        sample["flipped"] = True
        return sample

    s = KittiDataset(tmp_path, transform=flip)[0]
    assert seen["n"] == 8 and s["flipped"] is True


def test_collate_shapes_padding_batch_column(tmp_path):
    _write_tree(tmp_path, image_sets=False)
    ds = KittiDataset(tmp_path, None)
    samples = [ds[0], ds[1], ds[2]]  # 8, 2, 0 points; 2, 2, 1 boxes
    batch = collate(samples)
    assert batch["batch_size"] == 3 and batch["frame_id"] == ["000000", "000001", "000002"]
    pts = batch["points"]
    assert pts.shape == (10, 5) and pts.dtype == np.float32
    assert pts[:, 0].tolist() == [0.0] * 8 + [1.0] * 2
    np.testing.assert_array_equal(pts[:8, 1:], samples[0]["points"])
    gt = batch["gt_boxes"]
    assert gt.shape == (3, 2, 8) and gt.dtype == np.float32
    assert gt[:, :, 7].tolist() == [[1, 2], [3, 1], [1, 0]]
    np.testing.assert_array_equal(gt[2, 1], np.zeros(8))  # padding row
    np.testing.assert_array_equal(gt[1, :, :7], samples[1]["gt_boxes"])
    assert len(batch["gt_names"]) == 3 and len(batch["calib"]) == 3 and len(batch["num_points_in_gt"]) == 3


def test_collate_without_boxes_and_by_names():
    empty = {"frame_id": "a", "points": np.zeros((0, 4), np.float32), "gt_boxes": np.zeros((0, 7), np.float32),
             "gt_names": np.array([], dtype=str)}
    batch = collate([empty, dict(empty, frame_id="b")])
    assert batch["points"].shape == (0, 5) and batch["gt_boxes"].shape == (2, 0, 8)
    one = {"frame_id": "c", "points": np.ones((2, 4), np.float32), "gt_boxes": np.ones((1, 7), np.float32),
           "gt_names": np.array(["Cyclist"])}
    assert collate([one], classes=("Car", "Cyclist"))["gt_boxes"][0, 0, 7] == 2
    with pytest.raises(ValueError, match="classes"):
        collate([one])
    with pytest.raises(ValueError):
        collate([])
