"""``sieveopt run --overlap``: the main job under the overlapped execution models (real solves
and replays on a small instance: Qwen3-30B, 1 GPU, B = 8, one-layer windows)."""

from __future__ import annotations

import csv
import json

import pytest

from sieveopt.cli.main import main

SMALL = ["run", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8", "--layers", "1", "--window-layers", "1"]


def _run(capsys, *argv: str) -> tuple[int, dict]:
    rc = main([*SMALL, *argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_microbatch_run_replays_every_policy_and_caches_its_windows(tmp_path, capsys):
    out, cache = tmp_path / "o", tmp_path / "c"
    rc, d = _run(capsys, "--overlap", "microbatch", "--policies", "sieve,noexp,cpsat", "--time-limit", "1",
                 "--solver-param", "workers=1", "--out", str(out), "--cache", str(cache))
    assert rc == 0 and d["all_checks_ok"]
    written = json.loads((out / "results.json").read_text())
    assert written == d
    # What every number was measured under is named.
    assert d["execution_model"]["label"].startswith("microbatch(M=2,L=1") and d["precision"] == "bf16"
    assert d["cost_model"].startswith("roofline") and "DRAM/PIM + NVLink" in d["replay"]
    assert d["replay_settings"]["iterations"] == 6 and d["periodic_cpsat"]["workers"] == 1
    win = d["per_window"][0]["policies"]
    for p in ("sieve", "noexp", "cpsat"):
        v, s = win[p], d["summary"][p]
        assert v["check_ok"] is True and s["checks_ok"] == 1
        assert v["replay"]["replayed_period_ns"] > 0 and v["replay"]["kind_error"]
        assert v["replay"]["predicted_period_ns"] == pytest.approx(v["period_ns"])  # the same pipeline
        assert s["median_replayed_period_ns"] == v["replay"]["replayed_period_ns"]
        assert v["gap_to_cpsat_best"] >= -1e-9 and v["gap_to_cpsat_bound"] >= v["gap_to_cpsat_best"] - 1e-9
    assert win["cpsat"]["period_ns"] <= win["sieve"]["period_ns"]  # hinted with Sieve's schedule
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["policy"] for r in rows] == ["sieve", "noexp", "cpsat"]
    assert all(float(r["replayed_period_ns"]) > 0 and r["check_ok"] == "True" for r in rows)
    assert {r["execution_model"] for r in rows} == {d["execution_model"]["label"]}
    assert [float(r["period_ns"]) for r in rows] == [win[p]["period_ns"] for p in ("sieve", "noexp", "cpsat")]
    assert (out / "gantt.png").read_bytes()[:4] == b"\x89PNG" and d["gantt_policies"] == ["sieve", "cpsat"]
    # The window is one engine point, cached: a re-run reads it back (measured wall times included).
    (point,) = (cache / "points").iterdir()
    assert json.loads((point / "config.json").read_text())["cpsat_workers"] == 1
    rc2, d2 = _run(capsys, "--overlap", "microbatch", "--policies", "sieve,noexp,cpsat", "--time-limit", "1",
                   "--solver-param", "workers=1", "--out", str(tmp_path / "o2"), "--cache", str(cache))
    assert rc2 == 0 and d2["per_window"] == d["per_window"]


def test_ideal_run_is_a_bound_table(tmp_path, capsys):
    out = tmp_path / "o"
    rc, d = _run(capsys, "--overlap", "ideal", "--policies", "sieve,noexp", "--out", str(out))
    assert rc == 0 and d["replay"] is None and "bound" in d["replay_skipped"] and "bound" in d["gantt_skipped"]
    assert d["gantt"] is None and not (out / "gantt.png").exists()
    assert all(v["status"] == "BOUND" and "replay" not in v for v in d["per_window"][0]["policies"].values())
    written = json.loads((out / "results.json").read_text())
    assert written["execution_model"]["overlap"] == "ideal" and "bound" in written["gantt_skipped"]
    assert d["summary"]["sieve"]["median_period_ns"] < d["summary"]["noexp"]["median_period_ns"]


def test_workers_run_windows_in_parallel_with_the_same_results(tmp_path, capsys):
    """--workers 2: two windows on a process pool; deterministic policies give the serial numbers."""
    base = ["--overlap", "microbatch", "--policies", "sieve,noexp", "--layers", "2", "--no-replay"]
    rc1, one = _run(capsys, *base, "--out", str(tmp_path / "a"))
    rc2, two = _run(capsys, *base, "--workers", "2", "--out", str(tmp_path / "b"))
    assert rc1 == rc2 == 0 and one["windows"] == two["windows"] == 2
    periods = [{p: v["period_ns"] for p, v in w["policies"].items()} for w in one["per_window"]]
    assert periods == [{p: v["period_ns"] for p, v in w["policies"].items()} for w in two["per_window"]]
    assert [w["seed"] for w in two["per_window"]] == [0, 1]
    # --no-replay: nothing replayed, and said so; the predicted steady state is still drawn.
    assert one["replay"] is None and one["replay_skipped"] == "--no-replay"
    assert (tmp_path / "a" / "gantt.png").is_file()
    # Without --cache the windows wait in OUT/.sieveopt-resume (point_store_dir, as the serial run),
    # gone once the run completes.
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["gantt.png", "results.csv", "results.json"]


@pytest.mark.parametrize("argv, needle", [
    (["--overlap", "microbatch", "--solver-param", "time_limit_s=3"], "--solver-param"),
    (["--overlap", "microbatch", "--policies", "cpsat", "--solver-param", "workers=0"], "workers"),
    (["--overlap", "microbatch", "--policies", "sieve", "--solver-param", "workers=2"], "add cpsat"),
    (["--overlap", "microbatch", "--microbatches", "3"], "--microbatches 3 does not divide"),
    (["--overlap", "microbatch", "--microbatches", "1"], "--microbatches >= 2"),
    (["--overlap", "ideal", "--runtime-order-evaluations", "5"], "--runtime-order-evaluations"),
    (["--microbatches", "2"], "needs --overlap microbatch"),
    (["--window-layers", "2", "--no-replay"], "--window-layers"),
    (["--overlap", "microbatch", "--max-memory", "0.01"], "--max-memory"),
    (["--overlap", "microbatch", "--gpus", "1", "--model", "qwen3.5-397b-a17b"], "--ignore-capacity"),
    (["--overlap", "microbatch", "--cache", "afile"], "--cache"),
])
def test_bad_inputs_exit_2_and_write_nothing(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("keep me")
    rc = main([*SMALL, "--policies", "sieve,noexp", *argv, "--out", "o"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_out_that_is_a_file_exits_2_before_any_work(tmp_path, capsys):
    (tmp_path / "f").write_text("keep me")
    assert main([*SMALL, "--overlap", "microbatch", "--out", str(tmp_path / "f")]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "f").read_text() == "keep me"
