"""Exact-ns re-timing of a schedule's decisions (modes + per-resource order).

A serial schedule-generation pass in a given task order: each task starts at the earliest time its
active predecessors (end + lag) and its resources (in the given order) allow, with the DAG's exact
durations. If the order comes from a feasible schedule whose durations and lags are >= the exact
ones (e.g. CP-SAT's schedule with durations rounded up to a time quantum), every task starts no
later than it did there, so the makespan never grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sieveopt.dag import TaskDAG
from sieveopt.schedule import Schedule


def retime(dag: TaskDAG, modes: Sequence[str], order_key: Sequence[float], *,
           durations: list[dict[str, int]] | None = None, lags: Sequence[int] | None = None,
           policy: str = "", meta: dict | None = None) -> Schedule:
    """Earliest start times in the order of ``order_key`` (ties by topological index).

    ``durations``/``lags`` default to the DAG's exact values (pass quantised ones to time a hint
    in quanta)."""
    n = len(dag.tasks)
    topo_idx = np.empty(n, dtype=np.int64)
    topo_idx[list(dag.topo_order)] = np.arange(n)
    order = sorted(range(n), key=lambda t: (order_key[t], topo_idx[t]))
    dur = [(durations[t][modes[t]] if durations else dag.tasks[t].modes[modes[t]].duration_ns) for t in range(n)]
    lag_of = list(lags) if lags is not None else [e.lag_ns for e in dag.edges]
    pred_idx: list[list[int]] = [[] for _ in range(n)]
    for i, e in enumerate(dag.edges):
        pred_idx[e.dst].append(i)
    slots = {r.rid: [0] * r.capacity for r in dag.resources}
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for t in order:
        s = 0
        for i in pred_idx[t]:
            e = dag.edges[i]
            if not dag.edge_active(e, modes):
                continue
            if not done[e.src]:
                raise ValueError(f"order places {dag.tasks[t].name} before its predecessor {dag.tasks[e.src].name}")
            s = max(s, int(end[e.src]) + lag_of[i])
        res = dag.tasks[t].modes[modes[t]].resources
        chosen = []
        for rid in res:
            k = min(range(len(slots[rid])), key=slots[rid].__getitem__)
            chosen.append((rid, k))
            s = max(s, slots[rid][k])
        start[t], end[t] = s, s + dur[t]
        if dur[t] > 0:
            for rid, k in chosen:
                slots[rid][k] = int(end[t])
        done[t] = True
    return Schedule(tuple(modes), start, end, policy, dict(meta or {}))
