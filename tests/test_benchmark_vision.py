"""benchmarks/vision.py --quick: one row per (resolution, model, mode) with sane throughput, memory and tokens."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "vision.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory needs /proc (Linux)")
def test_quick_run_reports_both_models_and_modes(capsys: pytest.CaptureFixture[str]) -> None:
    module = load_script(SCRIPT, "benchmark_vision")

    rows = module.main(["--quick", "--threads", "1", "--device", "cpu"])

    keys = {(r["resolution"], r["model"], r["mode"]) for r in rows}
    expected = {(size, model, mode) for size in (64, 128) for model in ("LightNet-Tiny", "DeiT-Tiny")
                for mode in ("forward", "forward+backward")}
    assert keys == expected and len(rows) == len(expected)
    for r in rows:
        patches = (r["resolution"] // 16) ** 2
        assert r["tokens"] == patches + (1 if r["model"] == "DeiT-Tiny" else 0)
        assert r["batch"] == 2 and r["repeats"] == 1
        assert r["images_per_s"] > 0 and r["peak_mib"] > 0
    out = capsys.readouterr().out
    assert "| resolution | tokens | model | mode | batch | images/s | peak MiB |" in out
    assert "LightNet-Tiny / DeiT-Tiny" in out and "Crossover (forward):" in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory needs /proc (Linux)")
def test_scan_order_benchmark_trains_and_times_every_configuration(tmp_path: Path) -> None:
    """benchmarks/vision_scans.py --quick: LightNet and a decay mixer at 1, 2 and 4 orders, each trained and timed."""
    script = SCRIPT.with_name("vision_scans.py")
    module = load_script(script, "benchmark_vision_scans")

    rows = module.main(["--quick", "--mixers", "retnet", "--out", str(tmp_path)])

    assert [r["config"] for r in rows] == ["LightNet (1 scan)", "retnet (1 scan)", "retnet (2 scans)", "retnet (4 scans)"]
    for r in rows:
        assert 0 <= r["test_acc"] <= 1 and r["train_images_per_s"] > 0
        assert r["infer_images_per_s"] > 0 and r["step_images_per_s"] > 0 and r["step_peak_mib"] > 0
    # the four-order model shares the two-order model's weights (one bidirectional mixer per block)
    assert rows[3]["params"] == rows[2]["params"]
    assert (tmp_path / "lightnet" / "1" / "checkpoint.pt").exists()
