"""Where a layer's time goes: critical-path attribution and per-resource busy time.

``critical_path_breakdown`` charges the critical path of :mod:`sieveopt.critpath` (the one the
Perfetto trace and the replay summary mark): walking back from the task that ends last, each step
follows the dependency (an active DAG edge, or the previous task on one of its resources) whose
finish (+ edge lag) binds the task's start. Every nanosecond of the makespan is charged to exactly
one category, so the categories sum to the makespan:

* ``attention`` (attn tasks, PIM or GPU), ``dense`` (QKV/output projections, router, shared
  expert, grouped-GEMM launch, weighted-sum reduce), ``experts_gpu``, ``experts_pim``,
  ``comm`` (AllGather / dispatch / combine transfers and the link latency lags),
  ``sched`` (the scheduler task) and ``idle`` (a start later than any binding predecessor:
  never for list schedules, possible for replayed or externally timed ones).

``busy_ns`` is the other view: per resource kind and GPU, the time the resource is held.
"""

from __future__ import annotations

from sieveopt.critpath import critical_links, critical_path
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


def critical_path_charges(schedule: Schedule, dag: TaskDAG) -> list[tuple[int, str, int]]:
    """(task id or -1, category, ns) in time order along the critical path of
    :func:`sieveopt.critpath.critical_links` (the path the traces mark): each path task's
    duration in its category; the wait on a link as ``comm`` up to the followed edge's lag (the
    transfer latency) and ``idle`` beyond it (a slack link, task id -1); the first task's start
    as ``idle``. The ns sum to the makespan."""
    if not dag.tasks:
        return []
    start, end, modes = schedule.start_ns, schedule.end_ns, schedule.modes
    path = critical_path(schedule, dag)
    out: list[tuple[int, str, int]] = [(-1, "idle", int(start[path[0]]))]
    for lk in critical_links(schedule, dag):
        wait = int(start[lk.dst] - end[lk.src])
        lag = min(wait, max(0, lk.lag_ns))
        out += [(lk.src, task_category(dag.tasks[lk.src].kind, modes[lk.src]), int(end[lk.src] - start[lk.src])),
                (-1, "comm", lag), (-1, "idle", wait - lag)]
    last = path[-1]
    out.append((last, task_category(dag.tasks[last].kind, modes[last]), int(end[last] - start[last])))
    # Time after the path's last task ends and the makespan (none: the path ends last).
    out.append((-1, "idle", max(0, schedule.makespan_ns - int(end[last]))))
    return [c for c in out if c[2] or c[0] >= 0]


def critical_path_breakdown(schedule: Schedule, dag: TaskDAG) -> dict[str, int]:
    """Makespan split over :data:`CATEGORIES` along the critical path (sums to the makespan;
    see :func:`critical_path_charges`)."""
    out = dict.fromkeys(CATEGORIES, 0)
    for _, cat, ns in critical_path_charges(schedule, dag):
        out[cat] = out.get(cat, 0) + ns     # a registered target may add its experts category
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
