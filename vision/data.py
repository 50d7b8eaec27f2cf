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
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

Transform = Callable[[Image.Image], Any]

# load_digits stores grey levels 0..16; 255 / 16 maps them onto the full 8-bit range PIL images carry.
_DIGITS_LEVELS = 16


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
        if images.ndim != 3 or len(images) != len(targets):
            raise ValueError(f"images must be (N, H, W) with one target each, got {images.shape} and {len(targets)}")
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

    if not isinstance(img_size, int) or img_size < 1:
        raise ValueError(f"img_size must be a positive integer, got {img_size!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return (DigitsDataset(x_train, y_train, img_size, train_transform),
            DigitsDataset(x_test, y_test, img_size, test_transform))


def _load_image(path: str, mode: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert(mode)


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
) -> tuple[ImageFolder, ImageFolder]:
    """Train and validation :class:`~torchvision.datasets.ImageFolder` datasets of ``root/train`` and ``root/val``.

    Args:
        root: folder holding one subfolder per split, each with one subfolder per class (any nesting below
            that; files with the extensions of :data:`torchvision.datasets.folder.IMG_EXTENSIONS`).
        train_transform, val_transform: applied to the PIL images of each split.
        in_chans: 3 reads images as RGB, 1 as greyscale ('L'), whatever their stored mode.
        splits: names of the train and validation subfolders.

    Labels are the indices of the sorted class names, so they agree between the splits, which must hold the
    same classes. Raises ``FileNotFoundError`` for a missing folder and ``ValueError`` for a split without
    class subfolders, classes without images or differing class sets.
    """
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 (greyscale) or 3 (RGB), got {in_chans}")
    if len(splits) != 2:
        raise ValueError(f"splits must name the train and validation folders, got {tuple(splits)}")
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
    loader = functools.partial(_load_image, mode="RGB" if in_chans == 3 else "L")
    return (ImageFolder(str(train_dir), transform=train_transform, loader=loader),
            ImageFolder(str(val_dir), transform=val_transform, loader=loader))
