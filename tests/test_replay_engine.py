"""Replay engine: order, messages, scheduler latency, interference (analytic memory timer).

The memory side here is the roofline timer, so durations are known in closed form and the
tests isolate the co-simulation itself; DRAM-backed replays are in test_replay_dram.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.listsched import default_priority, list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.interconnect import Message, simulate
from sieveopt.validation.replay import replay
from sieveopt.validation.replay_memory import AnalyticTimer
from sieveopt.validation.replay_net import link_params


def _problem(gpus: int = 4, batch: int = 32, seed: int = 0, sharing: str | None = None, **dag_kw):
    model = tiny_model(num_experts=16, top_k=2, hidden=1024, inter=512)
    system = load_system("sieve-b200-hbm3e-pim", gpus)
    inst = random_instance(np.random.default_rng(seed), model, system, batch)
    cost = RooflineCostModel(system, model)
    dag = build_layer_dag(inst, cost, DagOptions(hbm_sharing=sharing, **dag_kw))
    return model, system, inst, dag


def _half_pim_schedule(dag, priority=None):
    experts = sorted(dag.expert_task)
    modes = modes_from_experts(dag, {e: ("pim" if i % 2 else "gpu") for i, e in enumerate(experts)})
    return list_schedule(dag, modes, priority, policy="half")


def test_replayed_schedule_has_the_dags_tasks_and_modes():
    model, system, inst, dag = _problem()
    sched = _half_pim_schedule(dag)
    r = replay(sched, dag, system, instance=inst, memory="analytic")
    assert len(r.schedule.modes) == len(dag.tasks)
    assert r.schedule.modes == sched.modes
    assert r.converged
    assert (r.schedule.end_ns >= r.schedule.start_ns).all()
    assert r.makespan_ns == r.schedule.makespan_ns
    assert set(r.kind_error) >= {"expert:gpu", "expert:pim", "dispatch", "combine"}


def test_analytic_replay_of_a_single_gpu_reproduces_the_list_schedule():
    """No messages, no interference (exclusive), roofline times: replay = prediction (+-1 ns/task)."""
    model, system, inst, dag = _problem(gpus=1, sharing="exclusive")
    sched = _half_pim_schedule(dag)
    r = replay(sched, dag, system, instance=inst, memory="analytic")
    assert abs(r.makespan_ns - sched.makespan_ns) <= len(dag.tasks)
    for kind, err in r.kind_error.items():
        assert err.median_abs_pct < 1.0, kind


def test_replay_respects_the_schedules_resource_order():
    model, system, inst, dag = _problem(gpus=2, batch=48, seed=3)
    prio = default_priority(dag)
    rng = np.random.default_rng(7)
    prio = prio + rng.permutation(len(prio)) * 1e-3 * (np.abs(prio).max() + 1)
    sched = _half_pim_schedule(dag, prio)
    r = replay(sched, dag, system, instance=inst, memory="analytic")
    want = sched.resource_order(dag)
    got = r.schedule.resource_order(dag)
    for res in dag.resources:
        if res.kind in ("gpu", "hbm", "pim", "sched"):
            w = [t for t in want[res.rid] if r.replayed_duration_ns[t] > 0]
            g = [t for t in got[res.rid] if r.replayed_duration_ns[t] > 0]
            assert g == w, res.name
            # exclusive: no two tasks of the resource overlap in the replay
            s, e = r.schedule.start_ns[g], r.schedule.end_ns[g]
            assert (s[1:] >= e[:-1]).all(), res.name


def test_replay_messages_match_the_interconnect_simulator_called_directly():
    model, system, inst, dag = _problem(gpus=4, batch=64, seed=1)
    sched = _half_pim_schedule(dag)
    r = replay(sched, dag, system, instance=inst, memory="analytic")
    order = sched.resource_order(dag)
    msgs, per_port = [], {}
    for t in dag.tasks:
        if t.kind in ("allgather", "dispatch", "combine"):
            msgs.append(Message(t.tid, t.gpu, t.peer, int(t.work.msg_bytes), int(r.message_release_ns[t.tid])))
    for g in range(dag.num_gpus):
        rid = dag.resource_id[("egress", g)]
        per_port[g] = [t for t in order[rid]]
    direct = simulate(msgs, link_params(system, dag.num_gpus), order=per_port)
    for m, arr_ps in zip(msgs, direct.arrival_ps.tolist(), strict=True):
        assert r.message_arrival_ns[m.msg_id] == -(-arr_ps // 1000)
    # and successors of a message never start before it arrived
    for e in dag.edges:
        if dag.tasks[e.src].kind in ("allgather", "dispatch", "combine") and dag.edge_active(e, sched.modes):
            assert r.schedule.start_ns[e.dst] >= r.message_arrival_ns[e.src]


def test_scheduler_latency_beyond_the_dispatch_moves_the_makespan_by_the_excess():
    model, system, inst, dag = _problem(gpus=4, batch=64, seed=2)
    sched = _half_pim_schedule(dag)
    base = replay(sched, dag, system, instance=inst, memory="analytic", scheduler_latency_ns=0)
    small = replay(sched, dag, system, instance=inst, memory="analytic", scheduler_latency_ns=100)
    assert small.makespan_ns == base.makespan_ns      # hidden behind the dispatch (>= 0.8 us latency)
    big1 = replay(sched, dag, system, instance=inst, memory="analytic", scheduler_latency_ns=100_000)
    big2 = replay(sched, dag, system, instance=inst, memory="analytic", scheduler_latency_ns=150_000)
    assert big1.makespan_ns > base.makespan_ns
    assert abs((big2.makespan_ns - big1.makespan_ns) - 50_000) <= 2
    assert big2.scheduler_latency_ns == 150_000


@pytest.mark.parametrize("factors", [(1.5, 1.3)])
def test_interference_slows_overlapping_stream_and_pim_only_when_stacks_are_shared(factors):
    model, system, inst, dag = _problem(gpus=1, batch=64, sharing="dual_row_buffer")
    sched = _half_pim_schedule(dag)
    slow = AnalyticTimer(system, model, interference_factors=factors)
    off = replay(sched, dag, system, instance=inst, timer=slow, interference=False)
    on = replay(sched, dag, system, instance=inst, timer=slow)
    assert on.interfered_ns.sum() > 0
    assert on.makespan_ns >= off.makespan_ns
    hit = np.flatnonzero(on.interfered_ns)
    assert (on.replayed_duration_ns[hit] >= off.replayed_duration_ns[hit] - 1).all()
    # exclusive sharing serialises PIM behind the hbm resource: nothing ever overlaps
    model, system, inst, dag_x = _problem(gpus=1, batch=64, sharing="exclusive")
    ex = replay(_half_pim_schedule(dag_x), dag_x, system, instance=inst, timer=slow)
    assert ex.interfered_ns.sum() == 0
