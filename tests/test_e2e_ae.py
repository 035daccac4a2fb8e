"""The artifact-evaluation scripts run in quick mode and write their CSV + PNG + PDF."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from tests.ae_modules import AE, load_ae_module


@pytest.mark.slow
@pytest.mark.parametrize("figure,csv_name,min_rows", [
    ("latency_budget", "latency_budget.csv", 4),
    ("mixed_prefill", "mixed_prefill.csv", 4),
])
def test_ae_script_quick(tmp_path, figure, csv_name, min_rows):
    out = tmp_path / figure
    subprocess.run([sys.executable, str(AE / f"fig_{figure}.py"), "--quick", "--out", str(out)], check=True,
                   capture_output=True, text=True, timeout=120)
    rows = list(csv.DictReader((out / csv_name).open()))
    assert len(rows) >= min_rows
    stem = csv_name.removesuffix(".csv")
    assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    if figure == "latency_budget":
        lat = [(float(r["scheduler_latency_us"]), float(r["layer_us"])) for r in rows]
        # a longer scheduler can only delay the layer (the scheduler task gates the experts)
        assert all(b[1] >= a[1] for a, b in zip(lat, lat[1:], strict=False) if b[0] > a[0])
    else:
        by = {(r["policy"], r["prefill"]): float(r["step_us"]) for r in rows}
        assert all(by[(p, "1")] > by[(p, "0")] for p, _ in by)   # prefill work makes the step longer


def test_colocated_prefill_sweep_file_is_the_papers_setting(tmp_path):
    fig = load_ae_module("fig_colocated_prefill")
    DEFAULT_SWEEP, load_sweep, main = fig.DEFAULT_SWEEP, fig.load_sweep, fig.main
    data = load_sweep(DEFAULT_SWEEP)
    head, segs = data["colocated_prefill"], data["segment"]
    assert (head["model"], head["gpus"]) == ("qwen3-30b-a3b", 1)
    assert all(b <= 32 for b in segs[0]["batches"]) and segs[0]["prefill_requests"] == 2
    assert all(b >= 64 for b in segs[1]["batches"]) and segs[1]["prefill_requests"] == 8
    bad = tmp_path / "bad.toml"
    bad.write_text('[colocated_prefill]\nmodel = "qwen3-30b-a3b"\n')
    assert main(["--sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_run_all_lists_every_script():
    text = (AE / "run_all.sh").read_text()
    scripts = sorted(p.stem.removeprefix("fig_") for p in AE.glob("fig_*.py"))
    assert scripts and all(s in text for s in scripts)
