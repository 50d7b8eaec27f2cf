"""seqcore.atomic and seqcore.checkpoint: atomic writes, safe tagged loads, config checks and exact RNG round trips."""
from __future__ import annotations

import errno
import os
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from seqcore import atomic
from seqcore.atomic import atomic_write, atomic_write_text
from seqcore.checkpoint import (
    CheckpointError, load_checkpoint, restore_rng_state, restore_training_state, rng_state, save_checkpoint,
    training_state,
)

from crafted import crafted_pickle


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "table.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="bug"):
        with atomic_write(target, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("bug in the writer")
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and leftovers(tmp_path) == []


def test_atomic_write_keeps_the_mode_a_plain_open_would_give(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode == plain.stat().st_mode
    os.chmod(plain, 0o640)
    atomic_write_text(plain, "y")
    assert plain.stat().st_mode & 0o777 == 0o640


def test_disk_full_names_the_file_and_keeps_the_previous_one(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    atomic_write_text(target, "previous")
    with pytest.raises(OSError, match=r"writing .*last.pt failed \(No space left on device\); the previous last.pt "
                                      "was left untouched") as info:
        with atomic_write(target) as handle:
            handle.write(b"the first half of the new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC
    assert target.read_text() == "previous" and leftovers(tmp_path) == []


def test_unwritable_folder_is_a_named_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=f"cannot write {tmp_path / 'x.pt'}: creating a file in"):
        atomic_write_text(tmp_path / "x.pt", "x")
    with pytest.raises(FileNotFoundError, match="its folder .* does not exist"):
        atomic_write_text(tmp_path / "missing" / "x.pt", "x")


def test_atomic_write_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        atomic_write_text(tmp_path, "x")
    with pytest.raises(TypeError, match="text must be a str"):
        atomic_write_text(tmp_path / "x", b"bytes")


def test_leftovers_of_killed_writers_are_removed(tmp_path: Path) -> None:
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    host = atomic._host()
    stale = tmp_path / f".last.pt.{host}-{dead}.abc.tmp"
    alive = tmp_path / f".last.pt.{host}-{os.getppid()}.abc.tmp"  # a live process's write in progress
    other = tmp_path / f".last.pt.otherhost-{dead}.abc.tmp"  # another machine's: its pids mean nothing here
    for path in (stale, alive, other):
        path.write_text("partial")
    atomic_write_text(tmp_path / "last.pt", "x")
    assert not stale.exists() and alive.exists() and other.exists()


def test_round_trip_of_a_training_state(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=10)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    data, noise = np.random.default_rng(0), torch.Generator().manual_seed(1)
    state = training_state(model, optimizer, scheduler, step=1, generators={"data": data, "noise": noise},
                           curve=[{"ap": np.float32(0.5), "step": np.int64(1)}], best=OrderedDict(a=(1, 2)))
    save_checkpoint(tmp_path / "c.pt", state, kind="test.run", config={"widths": (8, 16), "name": "x"})

    expected = [data.random(), float(torch.rand(1, generator=noise)), float(torch.rand(1)), random.random(),
                float(np.random.rand())]
    loaded = load_checkpoint(tmp_path / "c.pt", kind="test.run", config={"widths": [8, 16], "name": "x"})
    assert loaded.state["curve"] == [{"ap": 0.5, "step": 1}] and type(loaded.state["curve"][0]["ap"]) is float

    model2 = torch.nn.Linear(3, 2)
    optimizer2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    scheduler2 = torch.optim.lr_scheduler.OneCycleLR(optimizer2, 0.1, total_steps=10)
    data2, noise2 = np.random.default_rng(5), torch.Generator()
    step = restore_training_state(loaded.state, model2, optimizer2, scheduler2,
                                  generators={"data": data2, "noise": noise2})
    assert step == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert optimizer2.state_dict()["state"][0]["exp_avg"].equal(optimizer.state_dict()["state"][0]["exp_avg"])
    # every generator continues exactly where the saved run was
    assert [data2.random(), float(torch.rand(1, generator=noise2)), float(torch.rand(1)), random.random(),
            float(np.random.rand())] == expected


def test_rng_state_rejects_foreign_generators_and_mismatched_names() -> None:
    with pytest.raises(TypeError, match=r"generators\['data'\] must be a torch.Generator or numpy"):
        rng_state({"data": random.Random(0)})
    state = rng_state({"data": np.random.default_rng(0)})
    with pytest.raises(CheckpointError, match=r"holds generators \['data'\], the caller passed \[\]"):
        restore_rng_state(state)


@pytest.mark.parametrize("value, where", [
    (np.ones(2), r"state\['x'\] is a numpy array; store torch.from_numpy"),
    (lambda: 0, r"state\['x'\] is a builtins.function"),
    ({"a": [1, {"b": object()}]}, r"state\['x'\]\['a'\]\[1\]\['b'\] is a builtins.object"),
    ({(1, 2): 3}, r"state\['x'\] has a key of type tuple"),
    (slice(1, 2), r"state\['x'\] is a builtins.slice"),
    (torch.nn.Linear(1, 1), r"state\['x'\] is a torch.nn.modules.linear.Linear"),
])
def test_save_refuses_values_a_safe_load_could_not_read(tmp_path: Path, value, where: str) -> None:
    with pytest.raises(TypeError, match=where):
        save_checkpoint(tmp_path / "c.pt", {"x": value}, kind="test")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call, error, message", [
    (lambda p: save_checkpoint(p, [1], kind="t"), TypeError, "state must be a dict"),
    (lambda p: save_checkpoint(p, {}, kind=""), TypeError, "kind must be a non-empty str"),
    (lambda p: save_checkpoint(p, {}, kind="t", config=[1]), TypeError, "config must be a dict or None"),
    (lambda p: training_state(torch.nn.Linear(1, 1), step=-1), ValueError, "step must be >= 0, got -1"),
    (lambda p: training_state(torch.nn.Linear(1, 1), step=True), TypeError, "step must be an int >= 0, got bool True"),
    (lambda p: training_state(torch.nn.Linear(1, 1), step=0, rng=1), ValueError, "may not be named"),
    (lambda p: load_checkpoint(p, kind="t"), FileNotFoundError, "no checkpoint at"),
])
def test_bad_arguments(tmp_path: Path, call, error, message: str) -> None:
    with pytest.raises(error, match=message):
        call(tmp_path / "missing.pt")


def test_load_refuses_foreign_old_newer_and_mismatched_files(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="is not a seqcore checkpoint"):
        load_checkpoint(path, kind="t")
    torch.save({"format": "seqcore.checkpoint", "version": 2, "kind": "t", "config": None, "state": {}}, path)
    with pytest.raises(CheckpointError, match="protocol version 2; this seqcore reads versions up to 1"):
        load_checkpoint(path, kind="t")
    save_checkpoint(path, {"x": 1}, kind="vision.train", config={"lr": 0.1, "depth": 2})
    with pytest.raises(CheckpointError, match="is a 'vision.train' checkpoint, expected 'graphs.fit_classifier'"):
        load_checkpoint(path, kind="graphs.fit_classifier")
    with pytest.raises(CheckpointError, match=r"different config: depth: saved 2, not expected now; lr: saved 0.1, "
                                              r"now 0.2; width: not in the checkpoint, now 8"):
        load_checkpoint(path, kind="vision.train", config={"lr": 0.2, "width": 8})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(path, kind="vision.train")


def test_a_crafted_pickle_is_refused_without_running(tmp_path: Path) -> None:
    path, marker = crafted_pickle(tmp_path)
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match="cannot be loaded safely .* nothing of it was executed"):
        load_checkpoint(path, kind="t")
    assert not marker.exists()
