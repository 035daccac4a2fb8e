"""One sweep engine: the e2e step sweep (``sieveopt pareto``, ae/) runs on the cached, resumable
engine of ``sieveopt sweep``; ``run_sweep`` exists once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sieveopt.cli.main import main
from sieveopt.e2e.step import StepSettings
from sieveopt.e2e.sweep import StepSweepSpec, run_step_sweep, step_configs
from sieveopt.models.catalog import load_model, load_system

ROOT = Path(__file__).resolve().parents[1]


def _spec(batches=(1, 8), policies=("noexp", "sieve")):
    return StepSweepSpec(load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1), tuple(batches),
                         tuple(policies), StepSettings(num_layers=1))


def test_step_points_are_cached_and_reused(tmp_path):
    spec = _spec()
    rows = run_step_sweep(spec, tmp_path)
    configs = step_configs(spec)
    assert [(r["batch"], r["policy"]) for r in rows] == [(c["batch"], c["policy"]) for c in configs]
    metrics = {c["hash"]: tmp_path / "points" / c["hash"] / "metrics.json" for c in configs}
    assert all(p.is_file() for p in metrics.values())
    stamps = {h: p.stat().st_mtime_ns for h, p in metrics.items()}
    again = run_step_sweep(spec, tmp_path)                       # nothing recomputed
    assert again == rows and {h: p.stat().st_mtime_ns for h, p in metrics.items()} == stamps
    # extending the sweep computes only the new points; the old ones are read back unchanged
    wider = run_step_sweep(_spec(batches=(1, 8, 16)), tmp_path)
    assert wider[:4] == rows and len(wider) == 6
    assert {h: p.stat().st_mtime_ns for h, p in metrics.items()} == stamps
    # an interrupted point (no metrics.json) is recomputed to the same row
    victim = configs[1]["hash"]
    metrics[victim].unlink()
    assert run_step_sweep(spec, tmp_path)[1]["step_us"] == rows[1]["step_us"]


def test_pareto_cli_resumes_from_its_cache(tmp_path, capsys):
    args = ["pareto", "--model", "qwen3-30b-a3b", "--gpus", "1", "--layers", "1", "--batches", "1,8",
            "--policies", "noexp,sieve", "--cache", str(tmp_path / "cache"), "--json"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    first = json.loads(capsys.readouterr().out)["rows"]
    assert len(list((tmp_path / "cache" / "points").iterdir())) == 4
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == first


def test_one_run_sweep_in_the_tree():
    defs = [p for p in (ROOT / "sieveopt").rglob("*.py") if re.search(r"^def run_sweep\b", p.read_text(), re.M)]
    assert [p.relative_to(ROOT).as_posix() for p in defs] == ["sieveopt/sweep/runner.py"]


def test_gap_study_on_the_engine_matches_the_in_process_study(tmp_path):
    import numpy as np

    from sieveopt.instance import sample_layers
    from sieveopt.study import gap_summary, run_gap_study, run_study

    policies = ("noexp", "sieve")
    recs = run_gap_study([("qwen3-30b-a3b", 1)], [16], layers=2, seed=3, policies=policies,
                         reference_params={"time_limit_s": 5.0}, cache_dir=tmp_path)
    model, system = load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1)
    rows, _ = run_study(sample_layers(model, system, 16, 2, 3), policies, replay=False)
    # the heuristics are deterministic: the engine's records are the in-process study's
    assert [(r["layer"], {p: r["policies"][p]["makespan_ns"] for p in policies}) for r in recs] == \
        [(i, {r.policy: r.makespan_ns for r in rows if r.layer_index == i}) for i in range(2)]
    summary = gap_summary([r["policies"] for r in recs], (*policies, "cpsat"), "cpsat")
    for p in policies:
        want = [r["policies"][p]["makespan_ns"] / r["policies"]["cpsat"]["makespan_ns"] - 1 for r in recs]
        bound = [r["policies"][p]["makespan_ns"] / r["policies"]["cpsat"]["bound_ns"] - 1 for r in recs]
        assert summary["gaps"][p]["vs_solution"]["median"] == float(np.median(want))
        assert summary["gaps"][p]["vs_bound"]["max"] == max(bound) and min(bound) >= 0


def test_sieveopt_run_is_one_engine_point_per_layer_and_resumes(tmp_path, capsys):
    from sieveopt.instance import sample_layers
    from sieveopt.study import run_study

    args = ["run", "--model", "qwen3-30b-a3b", "--batch", "8", "--layers", "2", "--policies", "noexp,sieve",
            "--no-replay", "--cache", str(tmp_path / "cache"), "--json"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["gantt.png", "results.csv", "results.json"]
    assert len(list((tmp_path / "cache" / "points").iterdir())) == 2          # one point per layer
    model, system = load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1)
    rows, _ = run_study(sample_layers(model, system, 8, 2, 0), ("noexp", "sieve"), replay=False)
    assert [(r["layer_index"], r["policy"], r["makespan_ns"]) for r in first["rows"]] == \
        [(r.layer_index, r.policy, r.makespan_ns) for r in rows]
    assert main([*args, "--out", str(tmp_path / "b")]) == 0                  # all cached: same rows
    assert json.loads(capsys.readouterr().out)["rows"] == first["rows"]


def test_require_complete_names_the_failed_point(tmp_path):
    """Callers that need every point (run, pareto, the gap study) get the first failure as a
    SieveoptError naming the point and its traceback file, and Ctrl-C back as KeyboardInterrupt."""
    from sieveopt.errors import SieveoptError
    from sieveopt.sweep.runner import SweepReport
    from sieveopt.sweep.store import SweepStore

    store = SweepStore(tmp_path)
    SweepReport(tmp_path, 1, done=1).require_complete(store)  # complete: nothing raised
    bad = SweepReport(tmp_path, 1, failed=1, errors={"abc123": "ValueError: boom"})
    with pytest.raises(SieveoptError, match=r"^gap study: ValueError: boom \(point abc123; traceback in .*abc123"):
        bad.require_complete(store, "gap study")
    with pytest.raises(SieveoptError, match=r"^ValueError: boom \(point abc123"):
        bad.require_complete(store)
    with pytest.raises(KeyboardInterrupt):
        SweepReport(tmp_path, 1, interrupted=True).require_complete(store)
