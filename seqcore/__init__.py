"""seqcore: linear-recurrence operators (``seqcore.ops``) and the layers built on them."""
from . import ops

__version__ = "0.1.0"
__all__ = ["ops", "__version__"]
