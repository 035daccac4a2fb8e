"""A third execution tier defined only here: the proof that a new target takes one entry.

``toy_cpu`` is an AMX-like CPU socket next to each GPU (TriMoE's third tier, in spirit): its own
resource per GPU, a roofline cost hook with CPU rates, a replay timer that is 10 % slower than
the prediction, a colour and an e2e booking. Nothing else in the tree knows it, yet CP-SAT, the
list scheduler, ``check()``, replay, the Gantt chart, the trace and the e2e breakdown handle it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.e2e.breakdown import critical_path_breakdown
from sieveopt.errors import SieveoptError
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.solvers import solve
from sieveopt.targets import MODE_GPU, MODE_PIM, Target, register_target, unregister_target
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.replay import replay
from sieveopt.validation.replay_engine import TaskTime

CPU = "toy_cpu"
CPU_FLOPS_PER_NS = 50_000.0    # toy rates, fast enough that the tier pays off on this instance:
CPU_BYTES_PER_NS = 6_000.0     # only the mechanism is tested, not a real CPU
CPU_OVERHEAD_NS = 300.0


def cpu_cost_ns(cost_model, work) -> float:
    """Cost hook: a CPU roofline, whatever the cost model is."""
    nbytes = work.weight_bytes + work.act_bytes + work.kv_bytes
    return CPU_OVERHEAD_NS + max(work.flops / CPU_FLOPS_PER_NS, nbytes / CPU_BYTES_PER_NS)


def cpu_replay_time(ctx, task, mode) -> TaskTime:
    """Replay timer hook: 10 % slower than predicted (no interference with GPU or PIM)."""
    return TaskTime(0.0, 1.1 * task.modes[mode].duration_ns)


TOY_CPU = Target(CPU, "toy AMX CPU", "#17becf", owns={CPU: "CPU cores"}, holds=(CPU,), cost=cpu_cost_ns,
                 replay=cpu_replay_time, expert_category="experts_cpu")


@pytest.fixture
def toy():
    register_target(TOY_CPU)
    yield TOY_CPU
    unregister_target(CPU)


def _problem(expert_modes=(MODE_GPU, MODE_PIM, CPU), gpus=2, batch=32, seed=0):
    model = tiny_model(num_experts=8, top_k=2, hidden=1024, inter=512)
    system = load_system("sieve-b200-hbm3e-pim", gpus)
    inst = random_instance(np.random.default_rng(seed), model, system, batch)
    cost = RooflineCostModel(system, model)
    return inst, cost, build_layer_dag(inst, cost, DagOptions(expert_modes=tuple(expert_modes)))


def _cpu_experts(dag, modes):
    return [t.tid for t in dag.tasks if t.kind == "expert" and modes[t.tid] == CPU]


def test_the_dag_gets_the_tier_its_resource_and_its_cost_hook(toy):
    inst, cost, dag = _problem()
    assert dag.resource_kinds[-1] == CPU
    assert {r.name for r in dag.resources if r.kind == CPU} == {"toy_cpu[0]", "toy_cpu[1]"}
    for t in dag.tasks:
        if t.kind == "expert":
            assert set(t.modes) == {MODE_GPU, MODE_PIM, CPU}
            assert t.modes[CPU].duration_ns == math.ceil(cpu_cost_ns(cost, t.work) - 1e-9)
            assert t.modes[CPU].resources == (dag.resource_id[(CPU, t.gpu)],)
    # Without the tier in DagOptions nothing changes: no CPU resource, two-sided experts.
    _, _, plain = _problem(expert_modes=(MODE_GPU, MODE_PIM))
    assert CPU not in plain.resource_kinds


def test_an_unregistered_mode_fails_naming_the_known_targets():
    with pytest.raises(SieveoptError, match="unknown execution target 'toy_cpu'.*gpu"):
        _problem()


def test_list_scheduler_and_check_handle_the_tier(toy):
    inst, cost, dag = _problem()
    experts = sorted(dag.expert_task)
    modes = modes_from_experts(dag, {e: (CPU, MODE_GPU, MODE_PIM)[i % 3] for i, e in enumerate(experts)})
    sched = list_schedule(dag, modes, policy="thirds")
    assert check(sched, dag).ok
    cpu = _cpu_experts(dag, sched.modes)
    assert cpu
    # check() enforces the new resource: overlap two CPU experts of one GPU and it objects.
    by_gpu: dict[int, list[int]] = {}
    for t in cpu:
        by_gpu.setdefault(dag.tasks[t].gpu, []).append(t)
    a, b = next(v for v in by_gpu.values() if len(v) >= 2)[:2]
    start, end = sched.start_ns.copy(), sched.end_ns.copy()
    start[b], end[b] = start[a], start[a] + (end[b] - sched.start_ns[b])
    from sieveopt.schedule import Schedule

    bad = Schedule(sched.modes, start, end, "bad")
    assert any("toy_cpu" in v for v in check(bad, dag).violations)


def test_cpsat_uses_the_tier_and_stays_valid(toy):
    inst, cost, dag = _problem()
    res = solve("cpsat", dag, inst, cost, time_limit_s=1.0, deterministic=True, workers=1)
    assert res.schedule is not None and check(res.schedule, dag).ok
    assert res.makespan_ns <= res.meta["hint_makespan_ns"]
    # A third parallel tier beats the two-sided optimum here, and CP-SAT finds it.
    _, _, dag2 = _problem(expert_modes=(MODE_GPU, MODE_PIM))
    res2 = solve("cpsat", dag2, inst, cost, time_limit_s=1.0, deterministic=True, workers=1)
    assert res.status == res2.status == "OPTIMAL"
    assert res.makespan_ns < res2.makespan_ns
    assert _cpu_experts(dag, res.schedule.modes)


def test_cpsat_works_when_no_two_sided_heuristic_applies(toy):
    inst, cost, dag = _problem(expert_modes=(MODE_GPU, CPU))
    res = solve("cpsat", dag, inst, cost, time_limit_s=1.0, deterministic=True, workers=1)
    assert res.schedule is not None and check(res.schedule, dag).ok
    assert res.meta["hint_policy"] == "shortest-mode"


def test_two_sided_heuristics_declare_their_needs(toy):
    inst, cost, dag = _problem(expert_modes=(MODE_GPU, CPU))
    for policy in ("sieve", "sieve-plus", "pimoe", "duplex", "allexp"):
        with pytest.raises(SieveoptError, match=r"needs every routed expert to offer modes"):
            solve(policy, dag, inst, cost)
    # gpu_only needs only the GPU side; on the three-tier DAG the two-sided ones still run.
    assert check(solve("gpu_only", dag, inst, cost).schedule, dag).ok
    _, _, dag3 = _problem()
    assert check(solve("sieve", dag3, inst, cost).schedule, dag3).ok


def test_replay_times_the_tier_with_its_own_timer(toy):
    inst, cost, dag = _problem()
    experts = sorted(dag.expert_task)
    modes = modes_from_experts(dag, {e: (CPU if i % 2 else MODE_GPU) for i, e in enumerate(experts)})
    sched = list_schedule(dag, modes, policy="half-cpu")
    r = replay(sched, dag, inst.system, instance=inst, memory="analytic")
    cpu = _cpu_experts(dag, modes)
    for t in cpu:
        assert abs(r.replayed_duration_ns[t] - 1.1 * dag.tasks[t].modes[CPU].duration_ns) <= 1
    assert f"expert:{CPU}" in r.kind_error
    # docs/metrics.md: (predicted - replayed) / replayed < 0: the timer is slower than predicted
    assert r.kind_error[f"expert:{CPU}"].mean_signed_pct < 0
    assert r.makespan_ns > 0 and r.converged


def test_gantt_and_trace_draw_the_tier(toy, tmp_path):
    pytest.importorskip("matplotlib")
    from sieveopt.viz import chrome_trace
    from sieveopt.viz.gantt import gantt
    from sieveopt.viz.layout import build_layout
    from sieveopt.viz.style import mode_color

    inst, cost, dag = _problem()
    experts = sorted(dag.expert_task)
    sched = list_schedule(dag, modes_from_experts(dag, dict.fromkeys(experts, CPU)), policy="all-cpu")
    layout = build_layout(sched, dag)
    labels = {r.label for r in layout.rows}
    assert "CPU cores" in labels
    assert mode_color(CPU) == "#17becf"
    out = gantt(sched, dag, tmp_path / "g.png")
    assert out.stat().st_size > 1000
    trace = chrome_trace(sched, dag)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e.get("ph") == "M" and e.get("name") == "thread_name"}
    assert "CPU cores" in names


def test_e2e_breakdown_books_the_tier_as_its_own_category(toy):
    inst, cost, dag = _problem()
    experts = sorted(dag.expert_task)
    sched = list_schedule(dag, modes_from_experts(dag, dict.fromkeys(experts, CPU)), policy="all-cpu")
    bd = critical_path_breakdown(sched, dag)
    assert sum(bd.values()) == sched.makespan_ns
    assert bd["experts_cpu"] > 0 and bd["experts_gpu"] == 0 and bd["experts_pim"] == 0
