"""The shared list scheduler: modes + priorities -> a timed :class:`Schedule`.

Serial schedule generation: among tasks whose active predecessors are placed, take the one with
the earliest precedence-ready time (ties: lower priority value, then task id) and start it at the
earliest time its resources are free. Unary resources keep the order tasks were placed in;
a resource of capacity c behaves as c identical slots. Every policy goes through this, so their
makespans are comparable.
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


def list_schedule(dag: TaskDAG, modes: Sequence[str], priority: np.ndarray | None = None, *,
                  policy: str = "", meta: dict | None = None) -> Schedule:
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
    placed = 0
    while heap:
        r_time, _, t = heapq.heappop(heap)
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
