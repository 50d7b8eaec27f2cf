"""examples/state_tracking.py: a linear RNN with eigenvalues in [-1, 1] learns parity and extrapolates to T=256."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from scripts import load_script

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "state_tracking.py"


def load_example() -> ModuleType:
    """Import the example by path: examples/ is not a package."""
    return load_script(EXAMPLE, "state_tracking_example")


def test_hgrn_with_negative_eigenvalues_learns_parity_at_length_256() -> None:
    # HGRN learns parity fastest; at this size every seed 0-9 reached 100% in development (about 3 s each).
    result = load_example().run("parity", "hgrn", neg_eigval=True, seed=0, steps=200, dim=64, test_size=512)
    assert result["seq_acc"] > 0.9, result
