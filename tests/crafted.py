"""A crafted pickle for the safe-loading tests: unpickling it with ``weights_only=False`` writes a marker file."""
from __future__ import annotations

from pathlib import Path

import torch


class WritesMarker:
    """Unpickles into a call of ``Path.write_text(marker)``: the stand-in for any code an attacker would run.

    Place it anywhere inside what a test saves (``torch.save``, ``pickle.dumps``, an object array): a safe loader
    must refuse the file, and ``marker`` must not exist afterwards.
    """

    def __init__(self, marker: str | Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran during loading"))


def crafted_pickle(folder: Path, name: str = "evil.pt") -> tuple[Path, Path]:
    """Write ``folder/name`` holding a payload that would create ``folder/<name>.ran``; returns both paths.

    The payload sits inside a dict shaped like a checkpoint, so a loader that only checks keys after an unsafe
    load would still run it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path, marker = folder / name, folder / f"{name}.ran"
    torch.save({"format": "seqcore.checkpoint", "version": 1, "state": WritesMarker(marker)}, path)
    return path, marker
