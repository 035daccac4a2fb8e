"""``sieveopt place`` and ``sieveopt workload characterize`` end to end (real catalog, generator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sieveopt.cli.main import main

CHAOS = Path(__file__).parent / "fixtures" / "chaos"
SMALL = ["place", "--model", "qwen3-30b-a3b", "--gpus", "4", "--batch", "32", "--history", "4",
         "--steps", "4", "--eval", "surrogate"]


def test_place_json_reports_every_policy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = SMALL + ["--policies", "round-robin,eplb,gem,exact", "--variability", "0.1", "--time-limit", "5",
                    "--workers", "2", "--replace-every", "2", "--json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in d["policies"]] == ["round-robin", "eplb", "gem", "exact"]
    # named as every other command names them (docs/metrics.md)
    assert (d["execution_model"], d["precision"], d["cost_model"]) == ("serial", "bf16", "roofline")
    assert 0 < d["variability"]["spread"] <= 0.1 and len(d["variability"]["compute_speed"]) == 4
    for p in d["policies"]:
        assert p["layer_p99_ns"] >= p["layer_mean_ns"] > 0
        assert p["movement"]["placements"] == 2
    ex = d["policies"][-1]["exact"]
    assert ex["runs"][0]["bound_ns"] <= ex["runs"][0]["objective_ns"] + 1e-6 and ex["gap_max"] >= 0
    assert main(argv) == 0                                      # deterministic except wall times
    again = json.loads(capsys.readouterr().out)
    assert [p["layer_mean_ns"] for p in again["policies"][:3]] == [p["layer_mean_ns"] for p in d["policies"][:3]]


def test_place_per_step_series(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SMALL + ["--policies", "round-robin", "--per-step", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)["policies"][0]
    series = p["per_step"]["layer_ns"]
    assert len(series) == 4 and len(series[0]) == 1
    assert max(x[0] for x in series) == pytest.approx(p["layer_p99_ns"], rel=0.05)


def test_place_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SMALL + ["--policies", "round-robin,gem", "--eval", "dag", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "round-robin" in out and "straggler" in out and "sieve" in out


@pytest.mark.parametrize(("extra", "field"), [
    (["--speed-factors", "1,0,1,1"], "variability.compute_speed[1]"),
    (["--speed-factors", "1,-2,1,1"], "variability.compute_speed[1]"),
    (["--variability", "1.5"], "variability.spread"),
    (["--slots-per-gpu", "10"], "capacity"),
    (["--gpus", "2", "--redundant-experts", "0", "--slots-per-gpu", "63"], "capacity"),
])
def test_place_bad_input_exits_2(capsys: pytest.CaptureFixture[str], extra: list[str], field: str) -> None:
    assert main(SMALL + ["--policies", "round-robin"] + extra) == 2
    err = capsys.readouterr().err
    assert f"'{field}'" in err and "fix:" in err


def test_place_horizon_longer_than_trace_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    npz = tmp_path / "t.npz"
    assert main(["workload", "generate", "--model", "qwen3-30b-a3b", "--batch", "32", "--steps", "6",
                 "--layers", "1", "--out", str(npz)]) == 0
    capsys.readouterr()
    assert main(SMALL + ["--policies", "round-robin", "--trace", str(npz), "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert "'steps'" in err and "--steps <= 2" in err
    assert main(SMALL + ["--policies", "round-robin", "--trace", str(npz), "--steps", "2"]) == 0


def test_place_speed_profile_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps({"compute_speed": [1.0, 0.8, 0.9, 1.0]}))
    assert main(SMALL + ["--policies", "gem", "--variability-profile", str(prof), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["variability"]["compute_speed"] == [1.0, 0.8, 0.9, 1.0]
    prof.write_text(json.dumps({"compute_speed": [1.0, 0.0, 0.9, 1.0]}))
    assert main(SMALL + ["--policies", "gem", "--variability-profile", str(prof)]) == 2
    assert "compute_speed[1]" in capsys.readouterr().err


def test_characterize_json_and_figures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["workload", "characterize", "--model", "deepseek-v3", "--batch", "64", "--steps", "8",
                 "--layers", "2", "--figures", str(tmp_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    s = d["summary"]
    assert 0 < s["coact_top1pct"] < s["coact_top10pct"] <= 1
    assert s["consistent"] + s["temporal"] + s["cold"] == 256
    assert len(d["per_layer"]) == 2 and all(Path(f).stat().st_size > 0 for f in d["figures"])


def test_characterize_and_place_on_chaos_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """The Patterns-behind-Chaos fixture (4 decode steps at batch 2): characterised, and the
    placement run refuses a horizon longer than the trace."""
    assert main(["workload", "characterize", "--model", "mixtral-8x7b", "--batch", "2",
                 "--trace", str(CHAOS / "good"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["meta"]["source"] == "chaos" and d["meta"]["steps"] == 4
    base = ["place", "--model", "mixtral-8x7b", "--gpus", "2", "--batch", "2", "--eval", "surrogate",
            "--policies", "round-robin,gem", "--trace", str(CHAOS / "good"), "--history", "2", "--json"]
    assert main(base + ["--steps", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)["policies"]) == 2
    assert main(base + ["--steps", "3"]) == 2
    assert "'steps'" in capsys.readouterr().err


def test_place_exact_gem_space(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SMALL + ["--policies", "gem,exact", "--exact-space", "gem", "--time-limit", "5", "--workers", "2",
                         "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    run = d["policies"][1]["exact"]["runs"][0]
    assert run["space"] == "gem" and run["bound_ns"] <= run["objective_ns"] + 1e-6
    assert run["objective_ns"] <= run["given_hint_objective_ns"] + 1e-6       # never worse than GEM's hint


def test_place_exact_cheap_replicas(capsys: pytest.CaptureFixture[str]) -> None:
    """``--exact-replicas cheap``: reported, never worse than the hints, at most the budget of
    replicas; a bad value exits 2 naming the option."""
    assert main(SMALL + ["--policies", "exact", "--exact-replicas", "cheap", "--time-limit", "5", "--workers", "2",
                         "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    run = d["policies"][0]["exact"]["runs"][0]
    assert run["replica_choice"] == "cheap" and 0 < run["replicas_used"] <= d["redundant_experts"]
    assert run["bound_ns"] <= run["objective_ns"] + 1e-6 <= run["given_hint_objective_ns"] + 2e-6
    assert main(SMALL + ["--policies", "exact", "--exact-replicas", "hot"]) == 2
    assert "--exact-replicas" in capsys.readouterr().err


def test_place_surrogate_choice(capsys: pytest.CaptureFixture[str]) -> None:
    """``--surrogate``: the overlap-aware objective is the default, the serial one selectable; the
    overlapped work of a placement is never above its serial work."""
    out = {}
    for kind in ("overlap", "serial"):
        assert main(SMALL + ["--policies", "gem", "--surrogate", kind, "--json"]) == 0
        out[kind] = json.loads(capsys.readouterr().out)
    assert "overlap" in out["overlap"]["surrogate"] and "serial" in out["serial"]["surrogate"]
    assert (out["overlap"]["policies"][0]["layer_mean_ns"]
            <= out["serial"]["policies"][0]["layer_mean_ns"] + 1e-6)
    assert main(SMALL + ["--policies", "gem", "--surrogate", "nope"]) == 2
