"""Image-classification datasets for the vision examples: scikit-learn's digits and ImageFolder directories.

Both return ``(train, test)`` torch datasets of ``(image, label)`` pairs whose images are PIL images until a
``transform`` (a torchvision or ``timm.data.create_transform`` pipeline) turns them into tensors, so the same
transforms serve both sources. Both expose ``classes`` (names in label order) and ``targets`` (one label per
image), as torchvision's datasets do.

- :func:`digits_datasets`: the 1797 handwritten digits bundled with scikit-learn (8x8, 16 grey levels, 10
  classes; real data shipped in the package, nothing is downloaded), split with stratification and upscaled
  to ``img_size`` as single-channel ('L') images: the data has one channel, and three copies of it would only
  triple the patch embedding's input. Build models with ``in_chans=1``.
- :func:`image_folder_datasets`: ``root/train/<class>/*.png`` and ``root/val/<class>/*.png`` (the ImageNet
  layout that timm's own training script reads), through :class:`torchvision.datasets.ImageFolder`, checked
  for a missing folder, no class subfolders, classes without images and class sets differing between splits.

Every stored image mode becomes 8-bit ``'RGB'`` (``in_chans=3``) or ``'L'`` (``in_chans=1``) levels ``0..255``,
so a transform's ``ToTensor`` gives ``[0, 1]`` whatever the file held (levels are rounded to the nearest):

- 16-bit and other integer modes (``I;16*``, ``I``): levels ``v`` in ``[0, 65535]`` become ``v / 257``; an
  integer image with values outside that range is refused (``ValueError`` naming the file and the range found).
- floating point (``F``): values in ``[0, 1]`` become ``255 v``; NaN or values outside ``[0, 1]`` are refused.
- alpha (``LA``, ``PA``, ``RGBA``, or a palette / ``tRNS`` transparency): composited over black, each colour
  scaled by ``alpha / 255``, so a transparent pixel is black whatever colour it hides.
- palette (``P``), bilevel (``1``), ``CMYK``, ``YCbCr`` and the 8-bit modes: PIL's conversion (palette colours
  looked up; CMYK as ``R = 255 - min(255, C + K)``; greyscale as ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``).

Only files with an image extension (:data:`torchvision.datasets.folder.IMG_EXTENSIONS`) are read; others are
ignored. A file that cannot be decoded (truncated, empty, not an image) raises a ``ValueError`` naming it when it
is loaded; ``image_folder_datasets(..., verify=True)`` decodes every image once at construction instead and
lists all the unreadable ones (a full pass over the data: worth it before a long run, not on every start).
"""
from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from seqcore.ops.validation import check_bool, check_int

Transform = Callable[[Image.Image], Any]

# load_digits stores grey levels 0..16; 255 / 16 maps them onto the full 8-bit range PIL images carry.
_DIGITS_LEVELS = 16
# 65535 / 255: 16-bit levels per 8-bit level.
_SIXTEEN_BIT_STEP = 257
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
# Verification failures listed in full before the rest are only counted.
_LISTED_FAILURES = 10


class DigitsDataset(Dataset):
    """Images (PIL 'L', ``img_size`` square) and labels of a part of scikit-learn's digits.

    Args:
        images: ``(N, 8, 8)`` grey levels in ``[0, 16]`` as :func:`sklearn.datasets.load_digits` gives them.
        targets: ``(N,)`` labels in ``0..9``.
        img_size: side of the upscaled images.
        transform: applied to each PIL image (``None``: the PIL image itself).
    """

    classes = [str(d) for d in range(10)]

    def __init__(
        self, images: np.ndarray, targets: np.ndarray, img_size: int, transform: Transform | None = None
    ) -> None:
        images, targets = np.asarray(images), np.asarray(targets)
        if images.ndim != 3 or targets.ndim != 1 or len(images) != len(targets):
            raise ValueError(f"images must be (N, H, W) with one target each, got {images.shape} and {targets.shape}")
        # Out-of-range levels would wrap around in the uint8 cast below and give wrong pixels silently.
        if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= _DIGITS_LEVELS):
            raise ValueError(f"images must hold grey levels in [0, {_DIGITS_LEVELS}], got values in "
                             f"[{images.min()}, {images.max()}]")
        if targets.size and not (np.issubdtype(targets.dtype, np.integer) and targets.min() >= 0 and targets.max() <= 9):
            raise ValueError(f"targets must be integer labels in 0..9, got {targets.dtype} values in "
                             f"[{targets.min()}, {targets.max()}]")
        check_int("img_size", img_size, 1)
        _check_transform("transform", transform)
        pixels = np.round(np.asarray(images, dtype=np.float64) * (255 / _DIGITS_LEVELS)).astype(np.uint8)
        # Upscaled once here rather than per item: 1797 small images are cheap to keep and epochs stay fast.
        self.images = [Image.fromarray(p).resize((img_size, img_size), Image.BILINEAR) for p in pixels]
        self.targets = [int(t) for t in targets]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform is not None else image), self.targets[index]


def digits_datasets(
    img_size: int = 32,
    test_fraction: float = 0.25,
    seed: int = 0,
    train_transform: Transform | None = None,
    test_transform: Transform | None = None,
) -> tuple[DigitsDataset, DigitsDataset]:
    """Stratified train/test split of scikit-learn's digits as single-channel ``img_size`` images.

    Args:
        img_size: side of the square images (the 8x8 digits are upscaled bilinearly).
        test_fraction: share of the 1797 images held out for testing, in ``(0, 1)``; every class keeps
            its proportion in both parts.
        seed: seed of the split (the same seed gives the same split).
        train_transform, test_transform: applied to the PIL images of each part.

    Returns:
        ``(train, test)``; with the defaults 1347 and 450 images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    check_int("img_size", img_size, 1)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if check_int("seed", seed, 0) >= 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed}")
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return (DigitsDataset(x_train, y_train, img_size, train_transform),
            DigitsDataset(x_test, y_test, img_size, test_transform))


def _check_transform(name: str, transform: object) -> None:
    if transform is not None and not callable(transform):
        raise TypeError(f"{name} must be a callable taking a PIL image, or None, got {type(transform).__name__}")


def _load_image(path: str, mode: str) -> Image.Image:
    """The image file ``path`` as 8-bit ``mode`` (``'RGB'`` or ``'L'``) pixels; see the module docstring."""
    with open(path, "rb") as file:  # a missing or unreadable file raises an OSError that names the path
        try:
            image = Image.open(file)
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise ValueError(f"{path} is not a readable image: {error}") from error
        return _to_eight_bit(image, mode, path)


def _to_eight_bit(image: Image.Image, mode: str, path: str) -> Image.Image:
    if image.mode.startswith("I"):
        levels = np.asarray(image, dtype=np.float64)
        _check_pixel_range(levels, 0, 65535, path, f"integer pixels (mode {image.mode}) are read as 16-bit levels")
        grey = levels / _SIXTEEN_BIT_STEP
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        _check_pixel_range(values, 0, 1, path, "floating-point pixels (mode F) must be intensities")
        grey = values * 255
    elif image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        rgb = np.rint(rgba[..., :3] * rgba[..., 3:] / 255).astype(np.uint8)
        return Image.fromarray(rgb, "RGB").convert(mode)
    else:
        try:
            return image.convert(mode)
        except ValueError as error:
            raise ValueError(f"{path}: cannot convert its mode {image.mode} to {mode}: {error}") from error
    return Image.fromarray(np.rint(grey).astype(np.uint8), "L").convert(mode)


def _check_pixel_range(values: np.ndarray, low: float, high: float, path: str, what: str) -> None:
    if values.size and not ((values >= low) & (values <= high)).all():
        raise ValueError(
            f"{path}: {what} in [{low}, {high}], got values in [{values.min()}, {values.max()}]"
        )


def _verify(datasets: Sequence[ImageFolder], mode: str) -> None:
    """Decode every image of ``datasets`` once; raise one ``ValueError`` listing the unreadable ones."""
    failures = []
    for dataset in datasets:
        for path, _ in dataset.samples:
            try:
                _load_image(path, mode)
            except ValueError as error:
                failures.append(str(error))
    if failures:
        listed = "; ".join(failures[:_LISTED_FAILURES])
        more = f"; and {len(failures) - _LISTED_FAILURES} more" if len(failures) > _LISTED_FAILURES else ""
        raise ValueError(f"{len(failures)} unreadable image{'s' if len(failures) > 1 else ''}: {listed}{more}")


def _has_image(folder: Path) -> bool:
    # Stops at the first image: only emptiness matters, and ImageFolder walks every file again anyway.
    suffixes = tuple(IMG_EXTENSIONS)
    return any(path.is_file() and path.name.lower().endswith(suffixes) for path in folder.rglob("*"))


def _class_folders(split: Path) -> list[str]:
    """Class names of ``split`` (its subfolders), after checking that each holds at least one image."""
    if not split.is_dir():
        raise FileNotFoundError(
            f"no folder {split}: expected the layout <root>/train/<class>/*.png and <root>/val/<class>/*.png"
        )
    # Every subfolder counts, hidden ones included, exactly as ImageFolder will count them.
    classes = sorted(entry.name for entry in split.iterdir() if entry.is_dir())
    if not classes:
        raise ValueError(f"{split} has no class subfolders: put the images of each class in {split}/<class>/")
    empty = [name for name in classes if not _has_image(split / name)]
    if len(empty) == len(classes):
        raise ValueError(f"no images under {split} (looked for files ending in {', '.join(IMG_EXTENSIONS)})")
    if empty:
        raise ValueError(f"class folders without images in {split}: {', '.join(empty)}")
    return classes


def image_folder_datasets(
    root: str | Path,
    train_transform: Transform | None = None,
    val_transform: Transform | None = None,
    in_chans: int = 3,
    splits: Sequence[str] = ("train", "val"),
    verify: bool = False,
) -> tuple[ImageFolder, ImageFolder]:
    """Train and validation :class:`~torchvision.datasets.ImageFolder` datasets of ``root/train`` and ``root/val``.

    Args:
        root: folder holding one subfolder per split, each with one subfolder per class (any nesting below
            that; files with the extensions of :data:`torchvision.datasets.folder.IMG_EXTENSIONS`).
        train_transform, val_transform: applied to the PIL images of each split.
        in_chans: 3 reads images as 8-bit RGB, 1 as 8-bit greyscale ('L'), whatever their stored mode (how each
            mode is converted: see the module docstring).
        splits: names of the train and validation subfolders.
        verify: decode every image now and raise one error listing the unreadable files, instead of failing
            on the first of them when it is loaded.

    Labels are the indices of the sorted class names, so they agree between the splits, which must hold the
    same classes. Raises ``FileNotFoundError`` for a missing folder and ``ValueError`` for a split without
    class subfolders, classes without images or differing class sets, and (when loaded, or here with
    ``verify``) for an image that cannot be decoded or whose pixels lie outside its mode's range.
    """
    verify = check_bool("verify", verify)
    if isinstance(in_chans, bool) or in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 (greyscale) or 3 (RGB), got {in_chans!r}")
    if (isinstance(splits, (str, bytes)) or not isinstance(splits, Sequence) or len(splits) != 2
            or not all(isinstance(split, str) and split for split in splits) or splits[0] == splits[1]):
        raise ValueError(f"splits must name two different folders (train, validation), got {splits!r}")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
    _check_transform("train_transform", train_transform)
    _check_transform("val_transform", val_transform)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    train_dir, val_dir = root / splits[0], root / splits[1]
    train_classes, val_classes = _class_folders(train_dir), _class_folders(val_dir)
    if train_classes != val_classes:
        only_train = sorted(set(train_classes) - set(val_classes))
        only_val = sorted(set(val_classes) - set(train_classes))
        raise ValueError(
            f"{train_dir} and {val_dir} must hold the same classes; only in {splits[0]}: {only_train or 'none'}, "
            f"only in {splits[1]}: {only_val or 'none'}"
        )
    # A module-level function bound with partial (not a lambda) so DataLoader workers can pickle the loader.
    mode = "RGB" if in_chans == 3 else "L"
    loader = functools.partial(_load_image, mode=mode)
    datasets = (ImageFolder(str(train_dir), transform=train_transform, loader=loader),
                ImageFolder(str(val_dir), transform=val_transform, loader=loader))
    if verify:
        _verify(datasets, mode)
    return datasets
