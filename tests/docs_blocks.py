"""The Python blocks of README.md and docs/*.md, and how each one is run by ``tests/test_docs_run.py``.

A fenced ``python`` block runs as written, on its own, in a fresh process with the repository root as the
working directory. The line just before its fence may say how it runs instead:

- ``<!-- docs-test: slow -->``: longer than a few seconds; runs in the slow job (``make test-slow``);
- ``<!-- docs-test: torchrun N -->``: runs under ``torchrun --standalone --nproc_per_node=N``;
- ``<!-- docs-test: cuda -->``: needs a GPU; skipped where torch sees none.

Words may be combined (``<!-- docs-test: slow torchrun 2 -->``). Anything else after ``docs-test:`` is an
error, so a typo cannot silently turn a block off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MARKER = re.compile(r"^<!--\s*docs-test:(.*?)-->\s*$")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    code: str
    slow: bool = False
    cuda: bool = False
    nproc: int = 0  # > 0: under torchrun with this many processes

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"


def _parse_marker(text: str, where: str) -> dict:
    words = text.split()
    options: dict = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("slow", "cuda"):
            options[word] = True
        elif word == "torchrun" and i + 1 < len(words) and words[i + 1].isdigit() and int(words[i + 1]) > 0:
            options["nproc"] = int(words[i + 1])
            i += 1
        else:
            raise ValueError(f"{where}: unknown docs-test marker word {word!r} (expected slow, cuda or torchrun N)")
        i += 1
    return options


def blocks_of(path: Path) -> list[Block]:
    """Every ``python`` block of one Markdown file, with the options its marker line gives."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(ROOT).as_posix()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            if _MARKER.match(lines[i].strip()) and not (i + 1 < len(lines) and _FENCE.match(lines[i + 1])):
                raise ValueError(f"{rel}:{i + 1}: a docs-test marker must be the line just before a fence")
            i += 1
            continue
        indent, ticks, language = fence.groups()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(ticks):
            end += 1
        if language == "python":
            marker = _MARKER.match(lines[i - 1].strip()) if i > 0 else None
            options = _parse_marker(marker.group(1), f"{rel}:{i}") if marker else {}
            code = "\n".join(line[len(indent):] for line in lines[i + 1:end]) + "\n"
            found.append(Block(rel, i + 1, code, **options))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [block for path in paths for block in blocks_of(path)]
