"""Without ``--cache``, ``sieveopt pareto`` and ``sieveopt run`` keep their finished points in
``OUT/.sieveopt-resume`` until the run completes (:func:`sieveopt.sweep.runner.point_store_dir`):
a real Ctrl-C leaves them on disk, the same command resumes from them, and a completed run leaves
only its outputs. Before, the points lived in a temporary folder and Ctrl-C lost them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sieveopt.sweep.runner import RESUME_DIR, point_store_dir
from tests.interrupt import interrupt, running

# CP-SAT does not finish this instance within its limit (tests/test_cpsat_run.py), so each CP-SAT
# point lasts --time-limit seconds: the interrupt lands while one runs.
_BIG = ["--model", "qwen3.5-397b-a17b", "--gpus", "8", "--ignore-capacity", "--time-limit", "3"]
COMMANDS = {
    # points: noexp@64, cpsat@64, noexp@128, cpsat@128 (one per (batch, policy))
    "pareto": (["pareto", *_BIG, "--layers", "1", "--batches", "64,128", "--policies", "noexp,cpsat", "--json"],
               ["pareto.csv", "pareto.json", "pareto.pdf", "pareto.png", "pareto_compare.csv",
                "pareto_compare.json", "pareto_energy.png"]),
    # points: one per sampled layer (noexp and cpsat on it)
    "run": (["run", *_BIG, "--batch", "64", "--layers", "3", "--policies", "noexp,cpsat", "--no-replay", "--json"],
            ["gantt.png", "results.csv", "results.json"]),
}


def _finished(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (out / RESUME_DIR / "points").glob("*/metrics.json")}


def _walls(metrics: dict) -> list[float]:
    """Wall-clock seconds a point measured: equal only when the point is read back, not recomputed."""
    rows = [metrics["row"]] if "row" in metrics else metrics["rows"]
    return sorted(r["solver_wall_s"] if "solver_wall_s" in r else r["wall_s"] for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_ctrl_c_keeps_finished_points_and_the_same_command_resumes(tmp_path, command):
    argv, outputs = COMMANDS[command]
    cmd = [sys.executable, "-m", "sieveopt", *argv, "--out", "res"]
    out = tmp_path / "res"
    with running(cmd, cwd=tmp_path) as proc:
        t0 = time.monotonic()
        while not _finished(out):  # the first point is stored: interrupt the next one
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < 120, "no point finished"
            time.sleep(0.05)
        _, err, _ = interrupt(proc)
    assert proc.returncode == 130, err[-2000:]
    kept = _finished(out)
    assert kept and f"finished point(s) kept in res/{RESUME_DIR}" in err and "re-run the same command" in err
    assert sorted(p.name for p in out.iterdir()) == [RESUME_DIR]  # no result written

    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)["rows"]
    got = [r.get("solver_wall_s", r.get("wall_s")) for r in rows]
    for metrics in kept.values():  # the interrupted run's finished points were reused as stored
        assert all(w in got for w in _walls(metrics))
    assert len(rows) == (4 if command == "pareto" else 6) and all(r.get("check", r.get("check_ok")) in ("ok", True)
                                                                 for r in rows)
    assert sorted(p.name for p in out.iterdir()) == outputs  # the resume folder is gone once complete


def test_point_store_dir_rules(tmp_path):
    """--cache wins and stays; the output folder's resume store goes after a normal end, stays
    after an exception while it holds finished points or a failed point's traceback, and goes
    (with an output folder this run created) when it holds neither; with no folder at all, a
    temporary one that is removed."""
    with point_store_dir(tmp_path / "cache", tmp_path / "out") as root:
        (root / "points" / "h").mkdir(parents=True)
    assert root == tmp_path / "cache" and root.is_dir() and not (tmp_path / "out").exists()
    with point_store_dir(None, tmp_path / "out") as root:
        (root / "points" / "h").mkdir(parents=True)
    assert root == tmp_path / "out" / RESUME_DIR and not root.exists()
    with pytest.raises(ValueError), point_store_dir(None, tmp_path / "out") as root:
        (root / "points" / "h").mkdir(parents=True)
        (root / "points" / "h" / "metrics.json").write_text("{}")
        raise ValueError
    assert (root / "points" / "h" / "metrics.json").is_file()
    with pytest.raises(KeyboardInterrupt, match="1 finished point"), point_store_dir(None, tmp_path / "o2") as root:
        (root / "points" / "h").mkdir(parents=True)
        (root / "points" / "h" / "metrics.json").write_text("{}")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt) as info, point_store_dir(None, tmp_path / "o3" / "sub") as root:
        (root / "points" / "h").mkdir(parents=True)      # started, nothing finished: nothing kept
        (root / "points" / "h" / "config.json").write_text("{}")
        raise KeyboardInterrupt
    assert not str(info.value) and not (tmp_path / "o3" / "sub").exists() and (tmp_path / "o3").is_dir()
    with pytest.raises(RuntimeError), point_store_dir(None, tmp_path / "o4") as root:
        (root / "points" / "h").mkdir(parents=True)      # a failed point's traceback stays
        (root / "points" / "h" / "error.json").write_text("{}")
        raise RuntimeError
    assert (root / "points" / "h" / "error.json").is_file()
    with point_store_dir(None, None) as tmp:
        assert tmp.is_dir()
    assert not tmp.exists()
