"""Sieve's runtime cost table fed by replayed PIM job times (issue 12, item 4)."""

from __future__ import annotations

import math

import pytest

from sieveopt.e2e.step import StepSettings, prepare_step, run_step
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.table import ObservedTables
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.validation.replay import replay


@pytest.fixture(scope="module")
def problem():
    return load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1)


def test_ema_table_converges_on_a_replayed_trace(problem):
    model, system = problem
    tables = ObservedTables(system, model)
    for inst in sample_layers(model, system, 32, 6, 3):
        table = tables.table("sieve")
        dag, _ = build_dag(inst, table)
        run = run_layer(inst, "sieve", dag=dag, cost=table)
        assert run.check.ok
        # the planner read the table: its DAG's PIM expert durations are the table's entries
        for t in run.dag.tasks:
            if t.kind == "expert" and t.tokens:
                assert t.modes["pim"].duration_ns == math.ceil(table.pim_expert_ns(t.tokens) - 1e-9)
        tables.observe("sieve", replay(run.result.schedule, run.dag, system, instance=inst), run.dag)
    h = [r for r in tables.history if r["jobs"]]
    assert len(h) >= 4
    first, last = h[0], h[-1]
    # layer 0 is priced by the roofline fallback; later layers by the observed EMA
    assert first["mean_abs_err"] == pytest.approx(first["roofline_mean_abs_err"])
    assert first["roofline_mean_abs_err"] > 0.02
    assert last["mean_abs_err"] < 0.25 * last["roofline_mean_abs_err"]
    assert last["mean_abs_err"] < 0.02
    assert tables.table("sieve").observations(1) >= 1


def test_pareto_replay_feeds_the_table_across_layers(problem):
    from sieveopt.e2e.policies import load_replay

    model, system = problem
    prob = prepare_step(model, system, 8, StepSettings(num_layers=2, seed=1))
    tables = ObservedTables(system, model)
    res = run_step(prob, "sieve", replay=load_replay(), tables=tables)
    assert res.check_ok and res.replay_step_ns is not None
    assert [r["policy"] for r in tables.history] == ["sieve", "sieve"]
    # a baseline does not read (or feed) a table
    run_step(prob, "noexp", replay=load_replay(), tables=tables)
    assert len(tables.history) == 2
