"""``check(schedule, dag)``: completeness, durations, precedence and resource capacity.

Every violation is reported (not just the first); every solver's output goes through it in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    for t in dag.tasks:
        m = modes[t.tid]
        if m not in t.modes:
            violations.append(f"{t.name}: mode {m!r} not among {list(t.modes)}")
            continue
        d = t.modes[m].duration_ns
        if start_ns[t.tid] < 0:
            violations.append(f"{t.name}: starts before 0 ({start_ns[t.tid]})")
        if end_ns[t.tid] - start_ns[t.tid] != d:
            violations.append(f"{t.name}: lasts {end_ns[t.tid] - start_ns[t.tid]} ns, its {m} duration is {d} ns")
        if longest_ns is not None and d > longest_ns and t.modes[m].resources:
            violations.append(f"{t.name}: lasts {d} ns, longer than the superperiod {longest_ns} ns")

def check(schedule: Schedule, dag: TaskDAG) -> CheckReport:
    v: list[str] = []
    n = len(dag.tasks)
    if len(schedule.modes) != n:
        return CheckReport((f"schedule has {len(schedule.modes)} tasks, DAG has {n}",))
    s, e = schedule.start_ns, schedule.end_ns
    check_task_times(dag, schedule.modes, s, e, v)
    if v:
        return CheckReport(tuple(v))
    for edge in dag.edges:
        if not dag.edge_active(edge, schedule.modes):
            continue
        if s[edge.dst] < e[edge.src] + edge.lag_ns:
            v.append(f"precedence {dag.tasks[edge.src].name} -> {dag.tasks[edge.dst].name}: starts at "
                     f"{s[edge.dst]} before {e[edge.src]} + lag {edge.lag_ns}")
    # Resource capacity: sweep start/end events per resource (zero-length tasks hold nothing).
    events: dict[int, list[tuple[int, int, int]]] = {}
    for t in dag.tasks:
        if e[t.tid] == s[t.tid]:
            continue
        for rid in t.modes[schedule.modes[t.tid]].resources:
            ev = events.setdefault(rid, [])
            ev.append((int(s[t.tid]), 1, t.tid))
            ev.append((int(e[t.tid]), -1, t.tid))
    check_resource_events(dag, events, v)
    return CheckReport(tuple(v))


def check_resource_events(dag: TaskDAG, events: dict[int, list[tuple[int, int, int]]],
                          violations: list[str], where: str = "") -> None:
    """Sweep each resource's (time, +1 start / -1 end, task) events and append every point where
    more tasks hold it than its capacity; ``where`` qualifies the time (e.g. "(mod 500)").
    Shared by :func:`check` and the periodic check."""
    for rid, ev in events.items():
        ev.sort(key=lambda x: (x[0], x[1]))  # ends (-1) before starts (+1) at equal times
        cap, load, active = dag.resources[rid].capacity, 0, set()
        for time, delta, tid in ev:
            load += delta
            if delta > 0:
                if load > cap:
                    others = ", ".join(dag.tasks[o].name for o in sorted(active)[:3])
                    violations.append(f"resource {dag.resources[rid].name}: {dag.tasks[tid].name} at {time}"
                                      f"{where} overlaps {others}")
                active.add(tid)
            else:
                active.discard(tid)


def assert_valid(schedule: Schedule, dag: TaskDAG) -> None:
    check(schedule, dag).raise_if_invalid()


__all__ = ["CheckReport", "ScheduleError", "assert_valid", "check"]
