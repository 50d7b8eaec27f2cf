"""Every Python block in README.md and docs/*.md runs as written (see ``tests/docs_blocks.py`` for the markers)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from docs_blocks import ROOT, Block, all_blocks, blocks_of

BLOCKS = all_blocks()
# A block without the slow marker must finish well within this on CI's 2-core machine.
FAST_LIMIT_S = 90
SLOW_LIMIT_S = 1800


def _param(block: Block):
    marks = []
    if block.slow:
        marks.append(pytest.mark.slow)
    if block.cuda:
        marks.append(pytest.mark.skipif(not torch.cuda.is_available(), reason="the block needs a CUDA GPU"))
    return pytest.param(block, id=block.name, marks=marks)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The blocks run as a user runs them: compiled Triton kernels only where there is a GPU.
    env.pop("TRITON_INTERPRET", None)
    # Two blocks run at a time (CI has two cores), one thread each.
    env["OMP_NUM_THREADS"] = "1"
    env["MPLBACKEND"] = "Agg"
    return env


def _run(block: Block, folder: Path) -> subprocess.CompletedProcess | None:
    """The block's run, or None where it ran past its limit."""
    script = folder / (block.name.replace("/", "_").replace(":", "_").replace(".", "_") + ".py")
    script.write_text(block.code, encoding="utf-8")
    if block.nproc:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={block.nproc}", str(script)]
    else:
        command = [sys.executable, str(script)]
    try:
        return subprocess.run(command, cwd=ROOT, env=_environment(), capture_output=True, text=True,
                              timeout=SLOW_LIMIT_S if block.slow else FAST_LIMIT_S)
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """Every selected block's run, started two at a time on first use; the root's entries before any ran."""
    selected = [item.callspec.params["block"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_block_runs"]
    selected = [b for b in selected if not (b.cuda and not torch.cuda.is_available())]
    folder = tmp_path_factory.mktemp("docs_blocks")
    before = set(os.listdir(ROOT))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {b.name: pool.submit(_run, b, folder) for b in selected}
        yield futures, before


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_block_runs(block: Block, runs):
    futures, before = runs
    run = futures[block.name].result()
    if run is None:
        pytest.fail(f"{block.name} ran past {SLOW_LIMIT_S if block.slow else FAST_LIMIT_S} s; give it a "
                    f"'<!-- docs-test: slow -->' marker and say its run time in the text, or shrink it")
    assert run.returncode == 0, f"{block.name} failed:\n{block.code}\n--- stderr ---\n{run.stderr[-4000:]}"
    # A reader runs the blocks in a clone: one that leaves files in its root (a checkpoint, a plot) should write
    # into a temporary folder instead. Blocks run two at a time, so this names the ones finished so far.
    left = sorted(set(os.listdir(ROOT)) - before)
    done = sorted(name for name, future in futures.items() if future.done())
    assert not left, f"a docs block left {left} in the repository root (one of {done})"


def test_blocks_are_found():
    # README's quick tour alone has one block per package; a parser that finds none would pass every run above.
    assert len([b for b in BLOCKS if b.path == "README.md"]) >= 7
    assert any(b.nproc for b in BLOCKS), "the distributed blocks must run under torchrun"


def test_markers(tmp_path, monkeypatch):
    monkeypatch.setattr("docs_blocks.ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        ```python
        a = 1
        ```
        <!-- docs-test: slow torchrun 2 -->
        ```python
        b = 2
        ```
        ```bash
        echo not python
        ```
          ```python
          c = 3
          ```
        """))
    plain, slow, indented = blocks_of(page)
    assert (plain.line, plain.code, plain.slow, plain.nproc) == (1, "a = 1\n", False, 0)
    assert (slow.line, slow.slow, slow.nproc) == (5, True, 2)
    assert indented.code == "c = 3\n"
    page.write_text("<!-- docs-test: slwo -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="slwo"):
        blocks_of(page)
    page.write_text("<!-- docs-test: slow -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="just before a fence"):
        blocks_of(page)
