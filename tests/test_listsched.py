"""Shared list scheduler: the default rule is unchanged, the priority-aware rules reorder as
documented, and every rule yields schedules that pass ``check`` on random layers."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from hypothesis import given, settings

from sieveopt.check import check
from sieveopt.dag import DagOptions, Edge, ModeCost, Resource, Task, TaskDAG
from sieveopt.errors import ScheduleError
from sieveopt.listsched import RULES, default_priority, list_schedule, tail_priority
from sieveopt.schedule import Schedule
from tests.layers import layer_params, random_layer


def _reference_ready(dag: TaskDAG, modes, priority) -> Schedule:
    """The scheduler as it was before rules existed (earliest ready first, ties by priority)."""
    n = len(dag.tasks)
    prio = default_priority(dag) if priority is None else np.asarray(priority, dtype=float)
    missing = [sum(dag.edge_active(e, modes) for e in dag.preds[t]) for t in range(n)]
    ready = np.zeros(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    slots = {r.rid: [0] * r.capacity for r in dag.resources}
    heap = [(0, prio[t], t) for t in range(n) if missing[t] == 0]
    heapq.heapify(heap)
    while heap:
        r_time, _, t = heapq.heappop(heap)
        cost = dag.tasks[t].modes[modes[t]]
        s, chosen = r_time, []
        for rid in cost.resources:
            k = min(range(len(slots[rid])), key=slots[rid].__getitem__)
            chosen.append((rid, k))
            s = max(s, slots[rid][k])
        start[t], end[t] = s, s + cost.duration_ns
        if cost.duration_ns > 0:
            for rid, k in chosen:
                slots[rid][k] = end[t]
        for e in dag.succs[t]:
            if dag.edge_active(e, modes):
                ready[e.dst] = max(ready[e.dst], end[t] + e.lag_ns)
                missing[e.dst] -= 1
                if missing[e.dst] == 0:
                    heapq.heappush(heap, (int(ready[e.dst]), prio[e.dst], e.dst))
    return Schedule(tuple(modes), start, end, "ref", {})


def _hand_dag() -> TaskDAG:
    """X (r0, 3) first; A (r0, 10) ready at 0; C (r0, 5) ready at 1 after P (r1, 1); C -> Z (r1, 20)."""
    res = (Resource(0, "r0", "gpu", 0), Resource(1, "r1", "pim", 0))
    spec = [("X", 0, 3), ("A", 0, 10), ("P", 1, 1), ("C", 0, 5), ("Z", 1, 20)]
    tasks = tuple(Task(i, name, "qkv", 0, {"gpu": ModeCost(d, (r,))}) for i, (name, r, d) in enumerate(spec))
    edges = (Edge(2, 3), Edge(3, 4))
    return TaskDAG(tasks, edges, res, 1, DagOptions())


def test_rules_reorder_as_documented() -> None:
    dag = _hand_dag()
    modes = ["gpu"] * 5
    prio = np.array([-1.0, 5.0, 0.0, 0.0, 0.0])
    ready = list_schedule(dag, modes, prio)
    # Earliest ready first: A (ready 0) takes r0 after X although C (ready 1) is more urgent.
    assert list(ready.start_ns) == [0, 3, 0, 13, 18] and ready.makespan_ns == 38
    # Schrage: r0 frees at 3, C is ready by then and has the lower priority value, so it goes first.
    sch = list_schedule(dag, modes, prio, rule="schrage")
    assert list(sch.start_ns) == [0, 8, 0, 3, 8] and sch.makespan_ns == 28
    # tail_priority ranks C (5 + 20 after it) ahead of A (10), but non-delay only chooses among
    # tasks that can start now: at time 0 (after P) that is A or X, and A has the longer tail.
    tp = tail_priority(dag, modes)
    assert tp[3] < tp[1] < tp[0]
    nd = list_schedule(dag, modes, tp, rule="nondelay")
    assert list(nd.start_ns) == [15, 0, 0, 10, 15] and nd.makespan_ns == 35
    for s in (ready, sch, nd):
        assert check(s, dag).ok


def test_tail_priority_is_longest_path() -> None:
    dag = _hand_dag()
    tp = tail_priority(dag, ["gpu"] * 5)
    assert np.allclose(np.round(-tp), [3, 10, 26, 25, 20])


def test_bad_rule_rejected() -> None:
    dag = _hand_dag()
    with pytest.raises(ScheduleError, match="rule"):
        list_schedule(dag, ["gpu"] * 5, rule="fastest")


@settings(max_examples=30, deadline=None)
@given(**layer_params(max_experts=12, max_batch=32))
def test_every_rule_valid_and_default_unchanged(seed, gpus, experts, batch, shared, kernel, sharing) -> None:
    rng, _, dag, _ = random_layer(seed, gpus, experts, batch, shared, kernel, sharing)
    modes = [str(rng.choice(list(t.modes))) for t in dag.tasks]
    prios = [None, rng.normal(size=len(dag.tasks)), tail_priority(dag, modes)]
    for prio in prios:
        ref = _reference_ready(dag, modes, prio)
        got = list_schedule(dag, modes, prio)
        assert np.array_equal(ref.start_ns, got.start_ns) and np.array_equal(ref.end_ns, got.end_ns)
        for rule in RULES:
            s = list_schedule(dag, modes, prio, rule=rule)
            rep = check(s, dag)
            assert rep.ok, rep.violations[:3]
            # The makespan is at least the longest duration/lag chain under these modes.
            assert s.makespan_ns >= -float(np.min(tail_priority(dag, modes))) - 1
