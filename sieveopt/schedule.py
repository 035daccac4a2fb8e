"""A timed schedule of a :class:`~sieveopt.dag.TaskDAG`: a mode and [start, end) per task.

Per-resource order is derived from the start times (ties by end time, then task id), so a
schedule is fully described by ``modes``, ``start_ns`` and ``end_ns``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt.dag import EXPERT, TaskDAG
from sieveopt.errors import ScheduleError


@dataclass(frozen=True, eq=False)
class Schedule:
    modes: tuple[str, ...]
    start_ns: np.ndarray      # int64 [num_tasks]
    end_ns: np.ndarray        # int64 [num_tasks]
    policy: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.modes)
        if self.start_ns.shape != (n,) or self.end_ns.shape != (n,):
            raise ScheduleError(f"schedule arrays must have shape ({n},)")
        self.start_ns.setflags(write=False)
        self.end_ns.setflags(write=False)

    @property
    def makespan_ns(self) -> int:
        return int(self.end_ns.max()) if len(self.end_ns) else 0

    def expert_modes(self, dag: TaskDAG) -> dict[int, str]:
        """Routed expert id -> mode."""
        return {t.expert: self.modes[t.tid] for t in dag.tasks if t.kind == EXPERT}

    def resource_order(self, dag: TaskDAG) -> dict[int, list[int]]:
        """Resource id -> task ids that hold it, in execution order."""
        out: dict[int, list[int]] = {r.rid: [] for r in dag.resources}
        for t in dag.tasks:
            for rid in t.modes[self.modes[t.tid]].resources:
                out[rid].append(t.tid)
        for tids in out.values():
            tids.sort(key=lambda x: (self.start_ns[x], self.end_ns[x], x))
        return out

    def utilisation(self, dag: TaskDAG) -> dict[str, float]:
        """Busy fraction of the makespan per resource name (of all its units: a resource of
        capacity c, e.g. c DIMM-NDP units, is fully busy when c tasks run all the time)."""
        span = max(1, self.makespan_ns)
        busy = {r.rid: 0 for r in dag.resources}
        for t in dag.tasks:
            for rid in t.modes[self.modes[t.tid]].resources:
                busy[rid] += int(self.end_ns[t.tid] - self.start_ns[t.tid])
        return {dag.resources[rid].name: b / (span * max(1, dag.resources[rid].capacity)) for rid, b in busy.items()}

    def to_dict(self, dag: TaskDAG | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"policy": self.policy, "makespan_ns": self.makespan_ns, "meta": self.meta,
                             "modes": list(self.modes), "start_ns": self.start_ns.tolist(),
                             "end_ns": self.end_ns.tolist()}
        if dag is not None:
            d["task_names"] = [t.name for t in dag.tasks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        return cls(tuple(d["modes"]), np.asarray(d["start_ns"], dtype=np.int64),
                   np.asarray(d["end_ns"], dtype=np.int64), d.get("policy", ""), dict(d.get("meta", {})))


def modes_from_experts(dag: TaskDAG, expert_modes: dict[int, str] | None = None, *,
                       default_expert: str = "gpu", attention: str = "pim") -> list[str]:
    """Full per-task mode list from a per-expert choice (single-mode tasks take their only mode).

    Attention takes ``attention`` when allowed; experts not in ``expert_modes`` take
    ``default_expert``."""
    modes: list[str] = []
    expert_modes = expert_modes or {}
    for t in dag.tasks:
        names = t.mode_names
        if len(names) == 1:
            modes.append(names[0])
        elif t.kind == EXPERT:
            modes.append(expert_modes.get(t.expert, default_expert))
        else:
            modes.append(attention if attention in names else names[0])
    return modes
