"""Critical path of a timed schedule: the chain of tight dependencies that ends at the makespan.

Walking back from the task that finishes last, each step takes the dependency that released the
current task: an active DAG edge with ``end[src] + lag == start`` ("precedence") or the previous
task on one of its resources with ``end == start`` ("resource"). Precedence wins ties, so the
path explains *why* work waited. A schedule with idle gaps (e.g. a replayed one) has no tight
dependency at some step; the walk then takes the latest-releasing dependency ("slack"). Works on
any schedule-like object with ``modes``, ``start_ns`` and ``end_ns`` per task.

This is the one critical-path walker of the tree: the Perfetto/Chrome traces, Gantt charts and
DAG drawings (``sieveopt.viz``), the replay summary (``validation.replay``) and the e2e
time breakdown (``sieveopt.e2e.breakdown``) all call it, so the path a trace marks is the path
the breakdown charges.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

from sieveopt.dag import TaskDAG

PRECEDENCE, RESOURCE, SLACK = "precedence", "resource", "slack"


@dataclass(frozen=True, slots=True)
class CriticalLink:
    """``dst`` waited for ``src`` (``kind``: precedence, resource or slack). ``lag_ns`` is the
    lag of the DAG edge followed (0 for a resource link): the part of the wait spent in flight."""

    src: int
    dst: int
    kind: str
    lag_ns: int = 0


def schedule_arrays(schedule: Any, dag: TaskDAG) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(modes, start_ns, end_ns) of any schedule-like object, checked against ``dag``'s size."""
    start = np.asarray(schedule.start_ns, dtype=np.int64)
    end = np.asarray(schedule.end_ns, dtype=np.int64)
    modes = tuple(getattr(schedule, "modes", None) or [next(iter(t.modes)) for t in dag.tasks])
    n = len(dag.tasks)
    if start.shape != (n,) or end.shape != (n,) or len(modes) != n:
        from sieveopt.errors import ScheduleError

        raise ScheduleError(f"schedule covers {len(start)} tasks, the DAG has {n}")
    return modes, start, end


def critical_links(schedule: Any, dag: TaskDAG) -> list[CriticalLink]:
    """The critical chain as links, in time order (empty for a one-task path)."""
    modes, start, end = schedule_arrays(schedule, dag)
    n = len(dag.tasks)
    if n == 0:
        return []
    # Per resource: non-empty tasks sorted by end, to find "the last task on r ending <= t".
    holders: dict[int, list[int]] = {}
    for t in dag.tasks:
        if end[t.tid] > start[t.tid]:
            for rid in t.modes[modes[t.tid]].resources:
                holders.setdefault(rid, []).append(t.tid)
    ends_of: dict[int, list[int]] = {}
    for rid, tids in holders.items():
        tids.sort(key=lambda x: (end[x], start[x], x))
        ends_of[rid] = [int(end[x]) for x in tids]

    cur = int(np.lexsort((-np.arange(n), start, end))[-1])  # ends last; ties: starts last, lowest tid
    links: list[CriticalLink] = []
    seen = {cur}
    while True:
        s = int(start[cur])
        cands: list[tuple[int, int, int, int, int]] = []  # (release, kind rank, end, src, lag)
        for e in dag.preds[cur]:
            if dag.edge_active(e, modes):
                cands.append((int(end[e.src]) + e.lag_ns, 1, int(end[e.src]), e.src, int(e.lag_ns)))
        if end[cur] > s:
            for rid in dag.tasks[cur].modes[modes[cur]].resources:
                ends = ends_of.get(rid, [])
                i = bisect.bisect_right(ends, s) - 1
                while i >= 0 and holders[rid][i] == cur:
                    i -= 1
                if i >= 0:
                    u = holders[rid][i]
                    cands.append((ends[i], 0, ends[i], u, 0))
        cands = [c for c in cands if c[3] not in seen and c[0] <= s]
        if not cands:
            break
        best = max(cands)  # tight first, then precedence over resource, then the later end
        kind = SLACK if best[0] < s else (PRECEDENCE if best[1] == 1 else RESOURCE)
        links.append(CriticalLink(best[3], cur, kind, best[4] if best[1] == 1 else 0))
        cur = best[3]
        seen.add(cur)
    links.reverse()
    return links


def critical_path(schedule: Any, dag: TaskDAG) -> list[int]:
    """Task ids of the critical path, first task first, last one ending at the makespan."""
    links = critical_links(schedule, dag)
    if not links:
        if not dag.tasks:
            return []
        _, start, end = schedule_arrays(schedule, dag)
        return [int(np.lexsort((-np.arange(len(end)), start, end))[-1])]
    return [links[0].src] + [lk.dst for lk in links]
