"""``check(schedule, dag)``: completeness, durations, precedence and resource capacity.

Every violation is reported (not just the first); every solver's output goes through it in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sieveopt.dag import TaskDAG
from sieveopt.errors import ScheduleError
from sieveopt.schedule import Schedule


@dataclass(frozen=True)
class CheckReport:
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_if_invalid(self) -> None:
        if self.violations:
            head = "; ".join(self.violations[:5])
            more = f" (+{len(self.violations) - 5} more)" if len(self.violations) > 5 else ""
            raise ScheduleError(f"invalid schedule: {head}{more}")



def check_task_times(dag: TaskDAG, modes, start_ns, end_ns, violations: list[str],
                     longest_ns: int | None = None) -> None:
    """Append to ``violations`` every task whose mode is unknown, that starts before 0, whose
    length is not its mode's duration, or (with ``longest_ns``) that holds a resource for longer
    than that (a periodic schedule's superperiod). Shared by :func:`check` and the periodic check."""
    n = len(dag.tasks)
    tid, name, dur, holds = dag.mode_pairs
    chosen = np.array(modes, dtype=object)[tid] == name
    known = np.zeros(n, dtype=bool)
    known[tid[chosen]] = True
    d_t = np.zeros(n, dtype=np.int64)
    d_t[tid[chosen]] = dur[chosen]
    s_a, e_a = np.asarray(start_ns), np.asarray(end_ns)
    flag = ~known | (s_a < 0) | (e_a - s_a != d_t)
    if longest_ns is not None:
        h_t = np.zeros(n, dtype=bool)
        h_t[tid[chosen]] = holds[chosen]
        flag |= (d_t > longest_ns) & h_t
    starts, ends = s_a.tolist(), e_a.tolist()
    for i in np.flatnonzero(flag).tolist():  # the tasks to report, each as the rules below say
        t = dag.tasks[i]
        m = modes[t.tid]
        if m not in t.modes:
            violations.append(f"{t.name}: mode {m!r} not among {list(t.modes)}")
            continue
        c = t.modes[m]
        d, s, e = c.duration_ns, starts[t.tid], ends[t.tid]
        if s < 0:
            violations.append(f"{t.name}: starts before 0 ({s})")
        if e - s != d:
            violations.append(f"{t.name}: lasts {e - s} ns, its {m} duration is {d} ns")
        if longest_ns is not None and d > longest_ns and c.resources:
            violations.append(f"{t.name}: lasts {d} ns, longer than the superperiod {longest_ns} ns")


def check_precedences(dag: TaskDAG, modes, start_ns, end_ns, violations: list[str]) -> None:
    """Append every active edge whose destination starts before its source's end plus lag (in
    edge order). Shared by :func:`check` and the periodic check."""
    src, dst, lag, _, _ = dag.edge_arrays
    s, e = np.asarray(start_ns), np.asarray(end_ns)
    for k in np.flatnonzero(dag.active_edge_mask(modes) & (s[dst] < e[src] + lag)).tolist():
        edge = dag.edges[k]
        violations.append(f"precedence {dag.tasks[edge.src].name} -> {dag.tasks[edge.dst].name}: starts at "
                          f"{s[edge.dst]} before {e[edge.src]} + lag {edge.lag_ns}")


def mode_resources(dag: TaskDAG, modes, holds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(task, resource) pairs of the tasks with ``holds[task]`` true in their ``modes``, in task
    order then the mode's resource order (the events' insertion order)."""
    tid, rid, _ = dag.chosen_resources(modes)
    keep = np.asarray(holds, dtype=bool)[tid]
    return tid[keep], rid[keep]


def check(schedule: Schedule, dag: TaskDAG) -> CheckReport:
    v: list[str] = []
    n = len(dag.tasks)
    if len(schedule.modes) != n:
        return CheckReport((f"schedule has {len(schedule.modes)} tasks, DAG has {n}",))
    s, e = np.asarray(schedule.start_ns), np.asarray(schedule.end_ns)
    check_task_times(dag, schedule.modes, s, e, v)
    if v:
        return CheckReport(tuple(v))
    check_precedences(dag, schedule.modes, s, e, v)
    # Resource capacity: sweep start/end events per resource (zero-length tasks hold nothing).
    tid, rid = mode_resources(dag, schedule.modes, e != s)
    ev_rid = np.repeat(rid, 2)
    ev_tid = np.repeat(tid, 2)
    ev_time = np.column_stack([s[tid], e[tid]]).reshape(-1)
    ev_delta = np.tile(np.array([1, -1], dtype=np.int64), len(tid))
    check_resource_events(dag, ev_rid, ev_time, ev_delta, ev_tid, v)
    return CheckReport(tuple(v))


def check_resource_events(dag: TaskDAG, rid: np.ndarray, time: np.ndarray, delta: np.ndarray, tid: np.ndarray,
                          violations: list[str], where: str = "") -> None:
    """Sweep each resource's (time, +1 start / -1 end, task) events (arrays in insertion order)
    and append every point where more tasks hold it than its capacity; ``where`` qualifies the
    time (e.g. "(mod 500)"). Resources in order of first appearance, each one's events by
    (time, delta), ties in insertion order (ends before starts at equal times). The load is a
    cumulative sum; only a resource that exceeds its capacity is walked event by event to name
    the tasks it overlaps. Shared by :func:`check` and the periodic check."""
    if not len(rid):
        return
    order = np.lexsort((delta, time, rid))  # stable: ties keep insertion order
    rid, time, delta, tid = rid[order], time[order], delta[order], tid[order]
    cut = np.flatnonzero(np.diff(rid)) + 1
    lo = np.concatenate([[0], cut])
    hi = np.concatenate([cut, [len(rid)]])
    _, first = np.unique(rid[np.argsort(order, kind="stable")], return_index=True)
    for g in np.argsort(first, kind="stable").tolist():  # groups in order of first appearance
        a, b = int(lo[g]), int(hi[g])
        r = int(rid[a])
        cap = dag.resources[r].capacity
        d = delta[a:b]
        if not ((d > 0) & (np.cumsum(d) > cap)).any():
            continue
        load, active = 0, set()
        for t_ns, dd, t in zip(time[a:b].tolist(), d.tolist(), tid[a:b].tolist(), strict=True):
            load += dd
            if dd > 0:
                if load > cap:
                    others = ", ".join(dag.tasks[o].name for o in sorted(active)[:3])
                    violations.append(f"resource {dag.resources[r].name}: {dag.tasks[t].name} at {t_ns}"
                                      f"{where} overlaps {others}")
                active.add(t)
            else:
                active.discard(t)


def assert_valid(schedule: Schedule, dag: TaskDAG) -> None:
    check(schedule, dag).raise_if_invalid()


__all__ = ["CheckReport", "ScheduleError", "assert_valid", "check"]
