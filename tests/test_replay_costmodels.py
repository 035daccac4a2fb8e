"""Cost models fed by replay: the table converges to replayed PIM times; ``calibrated`` predicts
an interference-free replay; the CLI command runs end to end."""

from __future__ import annotations

import json

import numpy as np

from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.models.costmodel import COST_MODELS, make_cost_model
from sieveopt.models.table import TableCostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.calibrated import CalibratedCostModel
from sieveopt.validation.replay import feed_table_from_replay, replay
from sieveopt.validation.replay_memory import AnalyticTimer


def _all_pim(dag):
    return list_schedule(dag, modes_from_experts(dag, {e: "pim" for e in dag.expert_task}), policy="allpim")


def test_table_fed_from_replay_converges_to_the_replayed_pim_times():
    """The table starts from the roofline of a 12x-PIM system; the hardware (replayed) has 6x."""
    model = tiny_model(num_experts=16, top_k=2)
    believed = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.sharing": "exclusive"})
    real = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.sharing": "exclusive",
                                                    "hbm_pim.pim.internal_bw_multiplier": 6.0})
    table = TableCostModel(believed, model)
    errs = []
    rng = np.random.default_rng(0)
    for _ in range(4):
        inst = random_instance(rng, model, believed, 48)
        dag = build_layer_dag(inst, table, DagOptions())
        r = replay(_all_pim(dag), dag, real, instance=inst, memory="analytic")
        errs.append(r.kind_error["expert:pim"].median_abs_pct)
        assert feed_table_from_replay(table, r, dag) == len(dag.expert_task)
    assert errs[0] > 10.0                  # the roofline of the wrong system is far off
    assert errs[-1] < 1.0                  # after feeding, the table predicts the replay (seen counts)
    truth = AnalyticTimer(real, model)
    for n in range(1, 8):
        if table.observations(n):
            assert abs(table.pim_expert_ns(n) - truth.pim_expert_ns(n)) <= 1.0


def test_calibrated_is_registered_and_predicts_an_interference_free_replay():
    assert "calibrated" in COST_MODELS.names()
    model = tiny_model(num_experts=16, top_k=2)
    system = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.sharing": "exclusive"})
    timer = AnalyticTimer(system, model)
    cm = make_cost_model("calibrated", system, model, timer=timer)
    assert isinstance(cm, CalibratedCostModel)
    inst = random_instance(np.random.default_rng(1), model, system, 32)
    dag = build_layer_dag(inst, cm, DagOptions())
    r = replay(_all_pim(dag), dag, system, instance=inst, timer=timer)
    for kind, e in r.kind_error.items():
        assert e.median_abs_pct < 1.0, kind
    assert abs(r.makespan_ns - r.predicted_makespan_ns) <= len(dag.tasks)


def test_replay_cli_prints_json(capsys):
    from sieveopt.cli.main import main

    rc = main(["replay", "--model", "qwen3-30b-a3b", "--gpus", "2", "--batch", "16", "--policy", "sieve",
               "--memory", "analytic", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["replayed_makespan_ns"] > 0 and d["predicted_makespan_ns"] > 0
    assert "expert:pim" in d["kind_error"] or "expert:gpu" in d["kind_error"]
    assert d["critical_path"]
