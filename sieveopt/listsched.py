"""The shared list scheduler: modes + priorities -> a timed :class:`Schedule`.

Serial schedule generation: among tasks whose active predecessors are placed (*eligible*), pick
one by the ``rule`` and start it at the earliest time its resources are free. Unary resources
keep the order tasks were placed in; a resource of capacity c behaves as c identical slots. Every
policy goes through this, so their makespans are comparable. Rules:

* ``"ready"`` (default): the earliest precedence-ready time first (ties: lower priority value,
  then task id) -- priorities only break ties;
* ``"schrage"``: let t* be the ready-rule choice and s* its start; among eligible tasks ready by
  s* take the lowest priority value (Schrage's rule for one machine with release dates: with
  ``priority = -tail`` a task whose successors are longer goes first when both could start);
* ``"nondelay"``: among eligible tasks that can start at the earliest possible start time of any
  eligible task, the lowest priority value (the classic non-delay priority rule).

:func:`tail_priority` gives the longest-path-to-the-end priority these rules are meant for.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from sieveopt.dag import EXPERT, TaskDAG
from sieveopt.errors import ScheduleError
from sieveopt.schedule import Schedule


def default_priority(dag: TaskDAG) -> np.ndarray:
    """Bigger experts first (more tokens = lower value), everything else neutral."""
    return np.array([-float(t.tokens) if t.kind == EXPERT else 0.0 for t in dag.tasks])


RULES = ("ready", "schrage", "nondelay")


def tail_priority(dag: TaskDAG, modes: Sequence[str]) -> np.ndarray:
    """``-(duration + longest lag/duration path to the end)`` of every task under ``modes``
    (lower value = more urgent), ties broken by :func:`default_priority` scaled below 1 ns."""
    n = len(dag.tasks)
    q = np.zeros(n, dtype=np.float64)
    for t in reversed(dag.topo_order):
        best = 0
        for e in dag.succs[t]:
            if dag.edge_active(e, modes):
                best = max(best, e.lag_ns + q[e.dst])
        q[t] = dag.tasks[t].modes[modes[t]].duration_ns + best
    base = default_priority(dag)
    scale = float(np.max(np.abs(base))) if len(base) else 0.0
    return -q + (base / (2.0 * scale) if scale > 0 else 0.0)


def list_schedule(dag: TaskDAG, modes: Sequence[str], priority: np.ndarray | None = None, *,
                  policy: str = "", meta: dict | None = None, rule: str = "ready") -> Schedule:
    """Timed schedule of ``dag`` under ``modes`` (see the module docstring for ``rule``)."""
    if rule not in RULES:
        raise ScheduleError(f"list scheduler rule {rule!r}: expected one of {', '.join(RULES)}")
    n = len(dag.tasks)
    if len(modes) != n:
        raise ScheduleError(f"modes has {len(modes)} entries, DAG has {n} tasks")
    for t in dag.tasks:
        if modes[t.tid] not in t.modes:
            raise ScheduleError(f"{t.name}: mode {modes[t.tid]!r} not among {list(t.modes)}")
    prio = default_priority(dag) if priority is None else np.asarray(priority, dtype=float)
    active_preds = [[e for e in dag.preds[t] if dag.edge_active(e, modes)] for t in range(n)]
    missing = [len(p) for p in active_preds]
    ready = np.zeros(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    slots = {r.rid: [0] * r.capacity for r in dag.resources}
    heap = [(0, prio[t], t) for t in range(n) if missing[t] == 0]
    heapq.heapify(heap)
    # Non-default rules scan the eligible set with numpy: per task its resources (padded with a
    # dummy resource that is always free) and per resource the earliest free slot.
    nres = len(dag.resources)
    width = max((len(t.modes[modes[t.tid]].resources) for t in dag.tasks), default=0) or 1
    res_mat = np.full((n, width), nres, dtype=np.int64)
    for t in dag.tasks:
        rs = t.modes[modes[t.tid]].resources
        res_mat[t.tid, :len(rs)] = rs
    free = np.zeros(nres + 1, dtype=np.int64)
    placed = 0
    while heap:
        if rule == "ready":
            r_time, _, t = heapq.heappop(heap)
        else:
            el = np.array([x[2] for x in heap], dtype=np.int64)
            rdy = np.array([x[0] for x in heap], dtype=np.int64)
            st = np.maximum(rdy, free[res_mat[el]].max(axis=1))
            if rule == "schrage":
                first = min(range(len(heap)), key=lambda i: heap[i])
                mask = rdy <= st[first]
            else:
                mask = st <= st.min()
            idx = np.flatnonzero(mask)
            i = min(idx.tolist(), key=lambda i: (heap[i][1], heap[i][0], heap[i][2]))
            r_time, _, t = heap[i]
            heap[i] = heap[-1]
            heap.pop()
            heapq.heapify(heap)
        cost = dag.tasks[t].modes[modes[t]]
        s = r_time
        chosen = []
        for rid in cost.resources:
            k = min(range(len(slots[rid])), key=slots[rid].__getitem__)
            chosen.append((rid, k))
            s = max(s, slots[rid][k])
        start[t], end[t] = s, s + cost.duration_ns
        if cost.duration_ns > 0:
            for rid, k in chosen:
                slots[rid][k] = end[t]
                free[rid] = min(slots[rid])
        placed += 1
        for edge in dag.succs[t]:
            if not dag.edge_active(edge, modes):
                continue
            d = edge.dst
            ready[d] = max(ready[d], end[t] + edge.lag_ns)
            missing[d] -= 1
            if missing[d] == 0:
                heapq.heappush(heap, (int(ready[d]), prio[d], d))
    if placed != n:
        raise ScheduleError("DAG has a cycle under these modes")
    return Schedule(tuple(modes), start, end, policy, dict(meta or {}))
