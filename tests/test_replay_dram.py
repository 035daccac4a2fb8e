"""Replay on the cycle-level DRAM/PIM simulator: closed-form timing and interference direction.

Needs ``sieveopt.validation.dram.api`` (the layer-level DRAM API); the module is skipped with
that reason until it is installed. Shapes are tiny and results cached per shape.
"""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.validation.replay import dram_available

pytestmark = pytest.mark.skipif(not dram_available(), reason="sieveopt.validation.dram.api not installed yet")


def _setup(sharing: str, gpus: int = 1, batch: int = 32):
    from sieveopt.dag import DagOptions, build_layer_dag
    from sieveopt.models.catalog import load_system
    from sieveopt.models.roofline import RooflineCostModel
    from sieveopt.testing import random_instance, tiny_model

    model = tiny_model(num_experts=16, top_k=2, hidden=1024, inter=512)
    system = load_system("sieve-b200-hbm3e-pim", gpus, {"hbm_pim.sharing": sharing})
    inst = random_instance(np.random.default_rng(0), model, system, batch)
    dag = build_layer_dag(inst, RooflineCostModel(system, model), DagOptions())
    return model, system, inst, dag


def test_gpu_expert_time_is_max_of_compute_and_simulated_stream_plus_overhead():
    from sieveopt.listsched import list_schedule
    from sieveopt.schedule import modes_from_experts
    from sieveopt.validation.replay import replay
    from sieveopt.validation.replay_dram import DramTimer

    model, system, inst, dag = _setup("exclusive")
    sched = list_schedule(dag, modes_from_experts(dag, {}, default_expert="gpu", attention="gpu"))
    timer = DramTimer(system, model)
    r = replay(sched, dag, system, instance=inst, timer=timer)
    flops_per_ns = system.gpu.peak_TFLOPS * 1e3 * system.gpu.compute_efficiency
    bw = system.gpu.hbm_bw_GBps
    for t in dag.tasks_of("expert"):
        w = t.work
        nbytes = w.weight_bytes + w.act_bytes
        stream = timer.stream_ns(nbytes)
        want = max(w.flops / flops_per_ns, stream) + w.launches * system.gpu.kernel_overhead_ns
        assert abs(r.replayed_duration_ns[t.tid] - want) <= 2
        # the simulated stream runs close to the external bandwidth (refresh, row switches)
        assert nbytes / bw <= stream <= 1.6 * nbytes / bw + 500


def test_dual_row_buffer_interference_slows_down_versus_no_interference():
    from sieveopt.listsched import list_schedule
    from sieveopt.schedule import modes_from_experts
    from sieveopt.validation.replay import replay
    from sieveopt.validation.replay_dram import DramTimer

    model, system, inst, dag = _setup("dual_row_buffer", batch=64)
    experts = sorted(dag.expert_task)
    sched = list_schedule(dag, modes_from_experts(dag, {e: ("pim" if i % 2 else "gpu") for i, e in enumerate(experts)}))
    timer = DramTimer(system, model)
    k_s, k_p = timer.interference("expert", 2)
    assert k_s >= 1.0 and k_p >= 1.0 and (k_s > 1.0 or k_p > 1.0)
    on = replay(sched, dag, system, instance=inst, timer=timer)
    off = replay(sched, dag, system, instance=inst, timer=timer, interference=False)
    assert on.makespan_ns >= off.makespan_ns
    _, system_x, inst_x, dag_x = _setup("exclusive", batch=64)
    sched_x = list_schedule(dag_x, modes_from_experts(dag_x, {e: ("pim" if i % 2 else "gpu")
                                                               for i, e in enumerate(sorted(dag_x.expert_task))}))
    ex = replay(sched_x, dag_x, system_x, instance=inst_x, timer=DramTimer(system_x, model))
    assert ex.interfered_ns.sum() == 0
