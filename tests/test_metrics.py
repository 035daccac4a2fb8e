"""docs/metrics.md: every error of a replay output is (predicted - replayed) / replayed."""

from __future__ import annotations

import numpy as np

from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.replay import replay


def test_makespan_and_per_kind_errors_share_one_sign():
    model = tiny_model(num_experts=16, top_k=2, hidden=1024, inter=512)
    system = load_system("sieve-b200-hbm3e-pim", 1)
    inst = random_instance(np.random.default_rng(2), model, system, 64)
    dag = build_layer_dag(inst, RooflineCostModel(system, model), DagOptions())
    sched = list_schedule(dag, modes_from_experts(dag, {e: "pim" for e in dag.expert_task}))
    r = replay(sched, dag, system, instance=inst)
    p, m = r.predicted_makespan_ns, r.makespan_ns
    assert r.makespan_error_pct == 100.0 * (p - m) / m
    e = r.kind_error["expert:pim"]
    tids = [t.tid for t in dag.tasks_of("expert") if r.replayed_duration_ns[t.tid] > 0]
    pred = r.predicted_duration_ns[tids].astype(float)
    rep = r.replayed_duration_ns[tids].astype(float)
    assert np.isclose(e.mean_signed_pct, np.mean(100.0 * (pred - rep) / rep))
    assert np.isclose(e.mean_abs_pct, np.mean(np.abs(100.0 * (pred - rep) / rep)))
    assert e.mean_signed_pct != 0.0      # the roofline and the simulator do differ here
