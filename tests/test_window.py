"""Micro-batch windows: structure, every policy checks, CP-SAT never worse than its hint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.cli.main import main
from sieveopt.dag import QKV, REDUCE, build_window_dag
from sieveopt.errors import SieveoptError
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.window import microbatch_slices, sample_window, solve_window


@pytest.fixture(scope="module")
def setup():
    model = load_model("gpt-oss-120b")
    system = load_system("sieve-b200-hbm3e-pim", 4)
    return model, system, make_cost_model("roofline", system, model)


def test_microbatch_slices_keep_gpu_placement():
    sl = microbatch_slices(16, 2, 2)
    assert [s.tolist() for s in sl] == [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]]
    with pytest.raises(SieveoptError, match="multiple of 6"):
        microbatch_slices(16, 3, 2)


def test_window_structure(setup):
    model, system, cost = setup
    window = sample_window(model, system, 32, 2, 2, seed=3)
    assert [row[0].moe_layer + 1 for row in window[:-1]] == [row[0].moe_layer for row in window[1:]]
    assert sum(inst.batch for inst in window[0]) == 32
    dag = build_window_dag(window, cost)
    assert dag.is_window and len(dag.resources) == 6 * system.num_gpus
    with pytest.raises(ValueError, match="ambiguous"):
        dag.expert_task  # noqa: B018
    # layer 1 of micro-batch m waits for layer 0's reduce of the same micro-batch only
    q = dag.by_name["qkv[0]@L1m1"]
    srcs = {dag.tasks[e.src].name for e in dag.preds[q]}
    assert srcs == {"reduce[0]@L0m1"}
    assert dag.tasks[q].kind == QKV and dag.tasks[dag.by_name["reduce[0]@L0m1"]].kind == REDUCE
    assert set(dag.expert_tasks_by_slot) == {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("policy", ["noexp", "allexp", "duplex", "sieve"])
def test_window_policies_pass_check(setup, policy):
    model, system, cost = setup
    window = sample_window(model, system, 16, 2, 2, seed=5)
    dag, res = solve_window(window, policy, cost)
    assert check(res.schedule, dag).ok
    # per-slot planning: expert modes in the window equal the slot's own layer decision
    assert len(res.schedule.modes) == len(dag.tasks)


def test_window_cpsat_not_worse_than_best_hint(setup):
    model, system, cost = setup
    window = sample_window(model, system, 16, 2, 2, seed=7)
    fast = {p: solve_window(window, p, cost)[1].makespan_ns for p in ("sieve", "duplex", "noexp", "allexp")}
    dag, res = solve_window(window, "cpsat", cost, time_limit_s=2, workers=1)
    assert check(res.schedule, dag).ok
    assert res.makespan_ns <= min(fast.values())
    assert res.bound_ns is None or res.bound_ns <= res.makespan_ns


def test_window_cli_json(capsys):
    code = main(["window", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8", "--layers", "2",
                 "--microbatches", "2", "--policies", "noexp,sieve", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["policy"] for r in data["rows"]} == {"noexp", "sieve"}
    assert all(r["checked"] for r in data["rows"])
    assert np.isclose(min(r["vs_best"] for r in data["rows"]), 0.0)


def test_window_cli_bad_batch(capsys):
    assert main(["window", "--gpus", "1", "--batch", "7", "--microbatches", "2"]) == 2
    assert "micro-batch" in capsys.readouterr().err
