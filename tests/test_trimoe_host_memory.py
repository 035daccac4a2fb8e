"""Host memory shared by CPU expert jobs and PCIe fetches (sieveopt/offload_host_memory.py):
demands from the preset's numbers, the lane encoding of the cumulative constraint, check(),
the list scheduler, CP-SAT against brute force, and replay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.offload_host_memory import HOST_MEMORY_UNITS, RES_HOSTMEM, demand_units
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH, MODE_NDP
from sieveopt.schedule import Schedule
from sieveopt.solvers import solve
from sieveopt.solvers.base import OPTIMAL
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.bruteforce import brute_force

SYSTEM = "trimoe-h100-xeon-ndp"
SHARED = {"offload.host_memory": "shared"}


def _dags(model: str = "deepseek-v2", batch: int = 64):
    system, m = load_system(SYSTEM), load_model(model)
    inst = sample_layers(m, system, batch, 1, 0)[0]
    cost = RooflineCostModel(system, m)
    return (inst, cost, build_layer_dag(inst, cost, DagOptions.for_system(system)),
            build_layer_dag(inst, cost, DagOptions.for_system(system, host_memory="shared")))


def test_demands_follow_the_presets_bandwidths() -> None:
    inst, _cost, plain, shared = _dags()
    system = inst.system
    assert DagOptions.for_system(system).host_memory == "independent"          # the paper's objective
    assert DagOptions.for_system(load_system(SYSTEM, overrides=SHARED)).host_memory == "shared"
    assert not [r for r in plain.resources if r.kind == RES_HOSTMEM]
    C = 307.2 * 0.8                                         # GB/s achievable (8 x DDR5-4800 x 0.8)
    W = inst.model.expert_weight_bytes
    t = max((t for t in shared.tasks if t.kind == "expert"), key=lambda t: t.tokens)
    d_fetch, d_cpu = t.modes[MODE_GPU_FETCH].duration_ns, t.modes[MODE_CPU].duration_ns
    b, a = demand_units(system, W, d_fetch), demand_units(system, W, d_cpu)
    assert b == math.ceil(100 * W / d_fetch / C) == 23      # PCIe-bound: 54.4 of 245.8 GB/s
    assert a == math.ceil(100 * W / d_cpu / C) >= 90        # memory-bound CPU: nearly all of C
    lanes = [r.rid for r in shared.resources if r.kind == RES_HOSTMEM]
    assert len(lanes) == 1 and shared.meta["host_memory_fetch_demand_pct"] == [23, 23]
    # a + b > 100: both hold the lane; NDP holds none; durations are those of the plain DAG.
    assert lanes[0] in t.modes[MODE_GPU_FETCH].resources and lanes[0] in t.modes[MODE_CPU].resources
    assert not set(lanes) & set(t.modes[MODE_NDP].resources)
    assert plain.mode_durations_ns() == shared.mode_durations_ns()


def test_a_compute_bound_cpu_job_fits_beside_a_fetch() -> None:
    """Demand a + b <= 100: no lane in common (the cumulative constraint lets them overlap)."""
    system = load_system(SYSTEM, overrides=SHARED)
    C = 307.2 * 0.8
    W = 1e9
    assert demand_units(system, W, math.ceil(W / C)) == HOST_MEMORY_UNITS
    assert demand_units(system, W, math.ceil(2 * W / C)) == 50
    assert demand_units(system, 0.0, 1000) == 0
    # A big batch on a small model makes some CPU jobs compute-bound (AMX 32 TFLOP/s sustained).
    model = tiny_model(num_experts=8, top_k=2, hidden=2048, inter=1024)
    inst = random_instance(np.random.default_rng(0), model, system, 4096)
    dag = build_layer_dag(inst, RooflineCostModel(system, model))
    lanes = {r.rid for r in dag.resources if r.kind == RES_HOSTMEM}
    ex = [t for t in dag.tasks if t.kind == "expert"]
    free = [t for t in ex if not lanes & set(t.modes[MODE_CPU].resources)]
    assert free, "expected compute-bound CPU jobs that fit beside a fetch"
    for t in free:
        a = demand_units(system, model.expert_weight_bytes, t.modes[MODE_CPU].duration_ns)
        assert a + max(dag.meta["host_memory_fetch_demand_pct"]) <= HOST_MEMORY_UNITS


def test_check_rejects_a_cpu_job_overlapping_a_fetch_and_the_scheduler_serialises_them() -> None:
    inst, cost, plain, shared = _dags()
    ex = [t for t in plain.tasks if t.kind == "expert"]
    # Half on the CPU, two fetched: the independent schedule overlaps them, the shared one cannot.
    modes = {t.expert: MODE_NDP for t in ex}
    for t in ex[:2]:
        modes[t.expert] = MODE_GPU_FETCH
    for t in ex[2:8]:
        modes[t.expert] = MODE_CPU
    from sieveopt.solvers.sieve import finish

    free = finish(plain, "x", modes, attention="gpu", wall_t0=0.0).schedule
    assert check(free, plain).ok
    bad = check(Schedule(free.modes, free.start_ns.copy(), free.end_ns.copy()), shared)
    assert not bad.ok and any(RES_HOSTMEM in v for v in bad.violations)
    tight = finish(shared, "x", modes, attention="gpu", wall_t0=0.0).schedule
    assert check(tight, shared).ok and tight.makespan_ns > free.makespan_ns
    cpu = [t.tid for t in ex[2:8]]
    fetch = [t.tid for t in ex[:2]]
    for c in cpu:
        for f in fetch:
            assert tight.end_ns[c] <= tight.start_ns[f] or tight.end_ns[f] <= tight.start_ns[c]


@pytest.mark.parametrize("model", ["deepseek-v2", "qwen3-235b-a22b", "glm-4.5-air"])
def test_policies_stay_valid_and_only_cpu_with_fetch_pays(model: str) -> None:
    inst, cost, plain, shared = _dags(model)
    for pol in ("trimoe", "gpu-cpu", "gpu-ndp", "gpu-fetch"):
        a, b = solve(pol, plain, inst, cost), solve(pol, shared, inst, cost)
        assert check(b.schedule, shared).ok and a.schedule.modes == b.schedule.modes   # the planner is unchanged
        used = set(b.schedule.expert_modes(shared).values())
        if {MODE_CPU, MODE_GPU_FETCH} <= used:
            assert b.makespan_ns >= a.makespan_ns
        else:
            assert b.makespan_ns == a.makespan_ns


@pytest.mark.parametrize("seed,experts,batch,dimms,gflops", [(0, 4, 5, 1, 8.0), (1, 5, 5, 2, 4.0)])
def test_cpsat_matches_brute_force_with_shared_host_memory(seed, experts, batch, dimms, gflops) -> None:
    system = load_system(SYSTEM, overrides={**SHARED, "offload.ndp.num_dimms": dimms,
                                            "offload.ndp.peak_GFLOPS": gflops})
    model = tiny_model(num_experts=experts, top_k=2, hidden=2048, inter=1024)
    inst = random_instance(np.random.default_rng(seed), model, system, batch, skew=0.5)
    cost = RooflineCostModel(system, model)
    dag = build_layer_dag(inst, cost)
    assert any(r.kind == RES_HOSTMEM for r in dag.resources)
    opt = brute_force(dag)
    free = brute_force(build_layer_dag(inst, cost, DagOptions.for_system(system, host_memory="independent")))
    assert opt >= free
    r = solve("cpsat", dag, inst, cost, time_limit_s=20.0, deterministic=True, workers=1, seed=0)
    assert check(r.schedule, dag).ok and r.status == OPTIMAL
    assert r.objective_ns == opt and r.bound_ns == opt and r.makespan_ns <= r.meta["hint_makespan_ns"]


def test_replay_keeps_the_schedules_host_memory_order() -> None:
    from sieveopt.validation.replay import replay

    inst, cost, _plain, shared = _dags(batch=32)
    res = solve("trimoe", shared, inst, cost)
    rep = replay(res.schedule, shared, inst.system, instance=inst)
    lanes = {r.rid for r in shared.resources if r.kind == RES_HOSTMEM}
    users = [t.tid for t in shared.tasks if lanes & set(t.modes[res.schedule.modes[t.tid]].resources)]
    assert len(users) >= 2
    s, e = rep.schedule.start_ns, rep.schedule.end_ns
    for i in users:
        for j in users:
            if i < j:
                assert e[i] <= s[j] or e[j] <= s[i]
