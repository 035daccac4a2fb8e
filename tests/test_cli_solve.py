"""``sieveopt solve``, ``compare`` and ``bench latency`` through the real CLI entry point."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sieveopt.cli.main import main
from sieveopt.solvers import SOLVERS, solve


def _json(capsys, argv: list[str]) -> tuple[int, dict]:
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_solve_sieve_json(capsys) -> None:
    rc, d = _json(capsys, ["solve", "--model", "gpt-oss-120b", "--gpus", "4", "--batch", "32",
                           "--policy", "sieve", "--seed", "1", "--layer", "3", "--json"])
    assert rc == 0 and d["check_ok"] and d["policy"] == "sieve" and d["moe_layer"] == 3
    assert d["makespan_ns"] > 0 and d["decision_ns"] > 0
    assert len(d["per_gpu"]) == 4
    for row in d["per_gpu"]:
        assert row["gpu_experts"] + row["pim_experts"] == row["experts"] == len(row["gpu_expert_ids"]) + len(row["pim_expert_ids"])
        assert row["t_gpu_ns"] > 0 and 0.0 <= row["util_gpu"] <= 1.0


def test_solve_table_cost_model_and_readable_output(capsys) -> None:
    assert main(["solve", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "16", "--policy", "duplex",
                 "--cost-model", "table"]) == 0
    out = capsys.readouterr().out
    assert "duplex" in out and "T_PIM" in out


@pytest.mark.parametrize("argv", [
    ["solve", "--policy", "nope"],
    ["solve", "--model", "no-such-model"],
    ["solve", "--batch", "0"],
    ["compare", "--policies", "sieve,bogus", "--layers", "1"],
    ["compare", "--layers", "0"],
    ["bench", "latency", "--calls", "0"],
])
def test_bad_input_exits_2(capsys, argv: list[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_compare_json(capsys) -> None:
    rc, d = _json(capsys, ["compare", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "16",
                           "--layers", "2", "--policies", "sieve,noexp,allexp", "--json"])
    assert rc == 0 and d["all_checks_ok"] and d["layers"] == 2
    assert set(d["summary"]) == {"sieve", "noexp", "allexp"}
    for s in d["summary"].values():
        assert s["median_ratio_to_best"] >= 1.0
    assert sum(s["wins"] for s in d["summary"].values()) >= 2
    assert d["bounds"] == {}


@pytest.fixture
def bounded_policy():
    """A real policy reporting a (weak but valid) lower bound: noexp's schedule, and the longest
    single task as the bound. Registered for the test only."""

    def solve_bounded(dag, instance, cost, **params):
        res = solve("noexp", dag, instance, cost)
        lb = max(min(c.duration_ns for c in t.modes.values()) for t in dag.tasks)
        return dataclasses.replace(res, policy="bounded", bound_ns=lb, status="FEASIBLE",
                                   meta={"params": sorted(params)})

    SOLVERS.register("bounded", solve_bounded)
    yield "bounded"
    SOLVERS._items.pop("bounded", None)
    SOLVERS._docs.pop("bounded", None)


def test_compare_reports_gaps_against_a_bound(capsys, bounded_policy) -> None:
    rc, d = _json(capsys, ["compare", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "16", "--layers", "2",
                           "--policies", f"sieve,allexp,{bounded_policy}", "--time-limit", "1", "--json"])
    assert rc == 0
    b = d["bounds"][bounded_policy]
    assert set(b["gaps"]) == {"sieve", "allexp"}
    for g in b["gaps"].values():
        assert g["vs_bound"]["n"] == 2 and g["vs_bound"]["median"] >= 0.0   # the bound is below any makespan
        assert g["vs_solution"]["n"] == 2
    assert b["statuses"] == ["FEASIBLE"]
    # readable output renders the per-layer table too
    assert main(["compare", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8", "--layers", "1",
                 "--policies", f"sieve,{bounded_policy}"]) == 0
    assert "bound" in capsys.readouterr().out


def test_bench_latency_json(capsys) -> None:
    rc, d = _json(capsys, ["bench", "latency", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "32",
                           "--layers", "4", "--calls", "500", "--warmup", "50", "--ref-calls", "20", "--json"])
    assert rc == 0 and d["distinct_plans"] == 4 and d["compiled"]["calls"] == 500
    assert 0 < d["compiled"]["median_us"] <= d["compiled"]["p99_us"] <= d["compiled"]["max_us"]
    assert d["reference"]["calls"] == 20 and d["peak_rss_MiB"] > 0
