"""LightNet vision backbones on seqcore, registered with timm (``timm.create_model("lightnet_tiny")``).

- :class:`LightNet`: patch embedding, MD-TPE, LightNet blocks (one global additive-recurrence product per block
  with MD-LRPE), pooling and head; 1-, 2- and 3-D inputs ``(B, C, *spatial)``; any multiple of the patch size.
- :func:`md_lrpe_angles`, :class:`MDTPE`, :func:`grid_coordinates`: the position encodings for grids.
- :class:`GridScan`: several scan orders for multiplicative-decay baselines.
- :func:`digits_datasets`, :func:`image_folder_datasets`: scikit-learn's bundled digits and ImageFolder trees.
- :func:`load_model`: the trained model of a checkpoint of ``examples/vision/train.py``, from the file alone.
"""
# Named before any import below fails on a bare module name (docs/install.md).
from seqcore.extras import require_extra

require_extra("vision")

from .checkpoints import load_model
from .data import DigitsDataset, digits_datasets, image_folder_datasets
from .lightnet import LightNet, PatchEmbed, lightnet_base, lightnet_mini, lightnet_small, lightnet_tiny
from .position import MDTPE, grid_coordinates, md_lrpe_angles
from .scan_orders import GridScan, axis_major_order

__all__ = [
    "LightNet",
    "PatchEmbed",
    "lightnet_mini",
    "lightnet_tiny",
    "lightnet_small",
    "lightnet_base",
    "MDTPE",
    "md_lrpe_angles",
    "grid_coordinates",
    "GridScan",
    "axis_major_order",
    "DigitsDataset",
    "digits_datasets",
    "image_folder_datasets",
    "load_model",
]
