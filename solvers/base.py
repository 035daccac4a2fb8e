"""What every solver returns, and the one call that runs a policy by name.

A solver is a pure function ``solve(dag, instance, cost, **params) -> SolveResult``: the DAG is
the problem (durations included), the instance gives the routing a heuristic may need (token
counts, source GPUs), ``cost`` is the cost model the DAG was built with (for estimates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sieveopt.dag import TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import CostModel
from sieveopt.schedule import Schedule

# Solver-neutral statuses.
OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN, HEURISTIC = "OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN", "HEURISTIC"


@dataclass(frozen=True, eq=False)
class SolveResult:
    policy: str
    schedule: Schedule | None
    status: str = HEURISTIC
    objective_ns: int | None = None
    bound_ns: int | None = None
    wall_s: float = 0.0
    #: Time the policy needed to decide the modes (the serving-path latency), if measured.
    decision_ns: int | None = None
    #: (wall seconds, objective ns, bound ns) improvements, for anytime solvers.
    trajectory: tuple[tuple[float, int, int], ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def makespan_ns(self) -> int | None:
        return None if self.schedule is None else self.schedule.makespan_ns

    @property
    def gap(self) -> float | None:
        """Relative gap (objective - bound) / objective, when both are known."""
        if self.objective_ns is None or self.bound_ns is None or self.objective_ns <= 0:
            return None
        return (self.objective_ns - self.bound_ns) / self.objective_ns


class Solver(Protocol):
    def __call__(self, dag: TaskDAG, instance: LayerInstance, cost: CostModel, **params: Any) -> SolveResult: ...
