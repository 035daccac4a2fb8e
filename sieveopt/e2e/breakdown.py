"""Where a layer's time goes: critical-path attribution and per-resource busy time.

``critical_path_breakdown`` walks back from the task that ends last: each step follows the
predecessor (an active DAG edge, or the previous task on one of its resources) whose finish
(+ edge lag) binds the task's start. Every nanosecond of the makespan is charged to exactly one
category, so the categories sum to the makespan:

* ``attention`` (attn tasks, PIM or GPU), ``dense`` (QKV/output projections, router, shared
  expert, grouped-GEMM launch, weighted-sum reduce), ``experts_gpu``, ``experts_pim``,
  ``comm`` (AllGather / dispatch / combine transfers and the link latency lags),
  ``sched`` (the scheduler task) and ``idle`` (a start later than any binding predecessor:
  never for list schedules, possible for replayed or externally timed ones).

``busy_ns`` is the other view: per resource kind and GPU, the time the resource is held.
"""

from __future__ import annotations

import numpy as np

from sieveopt.dag import (
    ALLGATHER,
    ATTN,
    COMBINE,
    DISPATCH,
    EXPERT,
    SCHED,
    TaskDAG,
)
from sieveopt.schedule import Schedule
from sieveopt.targets import MODE_GPU, expert_category

#: Categories of the built-in targets; a registered target adds its own experts category
#: (``Target.expert_category``, e.g. ``experts_cpu``) when its experts appear on the path.
CATEGORIES = ("attention", "dense", "experts_gpu", "experts_pim", "comm", "sched", "idle")
_COMM = {ALLGATHER, DISPATCH, COMBINE}


def task_category(kind: str, mode: str) -> str:
    if kind == ATTN:
        return "attention"
    if kind == EXPERT:
        return expert_category(mode)
    if kind in _COMM:
        return "comm"
    if kind == SCHED:
        return "sched"
    return "dense"


def critical_path(schedule: Schedule, dag: TaskDAG) -> list[tuple[int, int, int]]:
    """Critical path as (task id, gap before it in ns, gap kind 0=lag 1=idle), last task first."""
    start, end, modes = schedule.start_ns, schedule.end_ns, schedule.modes
    n = len(dag.tasks)
    if n == 0:
        return []
    res_prev: list[list[int]] = [[] for _ in range(n)]
    for tids in schedule.resource_order(dag).values():
        for a, b in zip(tids, tids[1:], strict=False):
            res_prev[b].append(a)
    t = int(np.lexsort((start, end))[-1])
    path: list[tuple[int, int, int]] = []
    seen = set()
    while t not in seen:
        seen.add(t)
        s = int(start[t])
        best, best_ready, best_lag = -1, -1, 0
        for e in dag.preds[t]:
            if dag.edge_active(e, modes):
                ready = int(end[e.src]) + e.lag_ns
                if best_ready < ready <= s:
                    best, best_ready, best_lag = e.src, ready, e.lag_ns
        for p in res_prev[t]:
            ready = int(end[p])
            if best_ready < ready <= s:
                best, best_ready, best_lag = p, ready, 0
        if best < 0:
            path.append((t, s, 1))
            break
        gap = s - best_ready
        path.append((t, best_lag, 0))
        if gap:
            path.append((t, gap, 1))
        t = best
    return path


def critical_path_breakdown(schedule: Schedule, dag: TaskDAG) -> dict[str, int]:
    """Makespan split over :data:`CATEGORIES` along the critical path (sums to the makespan)."""
    out = dict.fromkeys(CATEGORIES, 0)
    charged: set[int] = set()
    for tid, gap, gap_kind in critical_path(schedule, dag):
        if tid not in charged:
            charged.add(tid)
            task = dag.tasks[tid]
            cat = task_category(task.kind, schedule.modes[tid])
            out[cat] = out.get(cat, 0) + int(schedule.end_ns[tid] - schedule.start_ns[tid])
        if gap:
            out["comm" if gap_kind == 0 else "idle"] += gap
    # Time after the path's last task ends and the makespan (none for a path from the last task).
    out["idle"] += max(0, schedule.makespan_ns - sum(out.values()))
    return out


def busy_ns(schedule: Schedule, dag: TaskDAG) -> dict[tuple[str, int], int]:
    """(resource kind, GPU) -> ns the resource is held."""
    out: dict[tuple[str, int], int] = {(r.kind, r.gpu): 0 for r in dag.resources}
    for t in dag.tasks:
        d = int(schedule.end_ns[t.tid] - schedule.start_ns[t.tid])
        for rid in t.modes[schedule.modes[t.tid]].resources:
            r = dag.resources[rid]
            out[(r.kind, r.gpu)] += d
    return out


def attention_mode(schedule: Schedule, dag: TaskDAG) -> str:
    """The off-GPU mode attention takes when any attention task leaves the GPU, else 'gpu'."""
    return offload_mode({schedule.modes[t.tid] for t in dag.tasks if t.kind == ATTN})


def offload_mode(modes: set[str]) -> str:
    """One mode for a set of attention modes: the (first, by name) non-GPU one, else 'gpu'."""
    return min((m for m in modes if m != MODE_GPU), default=MODE_GPU)
