"""seqcore: linear-recurrence operators (``seqcore.ops``) and the layers built on them."""
from . import ops

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it (CHANGELOG.md)
__all__ = ["ops", "__version__"]
