"""Faults beside the killed rank (tests/test_distributed.py): a rank that raises but stays alive, and the group
timeout of the distributed examples."""
from __future__ import annotations

import datetime
import json
import multiprocessing
from pathlib import Path

import pytest
import torch.distributed as dist

from distributed_cases import raising_worker
from scripts import load_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "distributed"


def run_raising_ranks(tmp_path: Path, timeout_s: float, announce: bool) -> tuple[str, str, float]:
    """Rank 1 raises and stays alive; returns rank 0's (error type, message, seconds in sp_gla)."""
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=raising_worker,
                             args=(rank, 2, str(tmp_path / "init"), str(tmp_path), timeout_s, announce))
             for rank in range(2)]
    for p in procs:
        p.start()
    try:
        procs[0].join(timeout=timeout_s + 60)
        assert not procs[0].is_alive(), "rank 0 is still waiting for the rank that raised"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    kind, message, seconds = json.loads((tmp_path / "rank0.json").read_text())
    return kind, message, seconds


def test_a_rank_that_raises_and_stays_alive_fails_the_others_after_the_group_timeout(tmp_path):
    timeout = 3.0
    kind, message, seconds = run_raising_ranks(tmp_path, timeout, announce=False)
    assert kind == "RuntimeError"
    assert "sequence-parallel all-gather failed on rank 0 of 2" in message
    assert "process group's timeout (init_process_group(timeout=...))" in message, message
    assert timeout * 0.8 < seconds < timeout + 10


def test_raise_on_every_rank_stops_the_others_at_once(tmp_path):
    # A long group timeout: the peer must not depend on it.
    kind, message, seconds = run_raising_ranks(tmp_path, 60.0, announce=True)
    assert kind == "ValueError"
    assert "rank 1 (ValueError in a mixer's input checks) raised an error before the collective" in message
    assert seconds < 10


@pytest.mark.parametrize("script", ["long_sequence_lm.py", "ddp_digits.py"])
def test_the_examples_pass_their_timeout_to_the_process_group(script, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = load_script(EXAMPLES / script, f"example_{script[:-3]}")
    seen = {}

    class Joined(Exception):
        pass

    def init_process_group(backend, **kwargs):
        seen.update(kwargs, backend=backend)
        raise Joined

    monkeypatch.setattr(dist, "init_process_group", init_process_group)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(Joined):
        module.main(["--timeout", "7.5"])
    assert seen == {"backend": "gloo", "timeout": datetime.timedelta(seconds=7.5)}
    with pytest.raises(Joined):
        module.main([])
    assert seen["timeout"] == datetime.timedelta(minutes=5)  # the default


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_the_examples_refuse_a_timeout_that_is_not_a_positive_number(value, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = load_script(EXAMPLES / "long_sequence_lm.py", "example_long_sequence_lm")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit):
        module.main(["--timeout", value])
    assert "--timeout must be a finite number of seconds > 0" in capsys.readouterr().err
