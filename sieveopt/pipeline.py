"""One call from (model, system, layer, policy) to a checked schedule: the path every command,
sweep and study shares, so nothing re-derives the DAG or the cost model on its own."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from sieveopt.check import CheckReport, check
from sieveopt.dag import DagOptions, TaskDAG, build_layer_dag
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import CostModel, make_cost_model
from sieveopt.solvers import SolveResult, policy_info, solve


@dataclass(frozen=True, eq=False)
class LayerRun:
    instance: LayerInstance
    dag: TaskDAG
    cost: CostModel
    result: SolveResult
    check: CheckReport
    wall_s: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def makespan_ns(self) -> int | None:
        return self.result.makespan_ns


def build_dag(instance: LayerInstance, cost_model: str | CostModel = "roofline",
              options: DagOptions | None = None) -> tuple[TaskDAG, CostModel]:
    cost = make_cost_model(cost_model, instance.system, instance.model) if isinstance(cost_model, str) else cost_model
    return build_layer_dag(instance, cost, options), cost


def policy_dag(policy: str, dag: TaskDAG, instance: LayerInstance, cost: CostModel) -> TaskDAG:
    """The DAG ``policy`` executes on: ``dag``, rebuilt with the ``DagOptions`` the policy
    declares (``PolicyInfo.dag_options``, e.g. PIMoE's expert-parallel PIM channel groups,
    :mod:`sieveopt.pim_groups`) when they differ, so its decision and execution use the same
    model (single-layer DAGs; the scheduler latency and other options are kept)."""
    want = policy_info(policy).dag_options
    if not want or all(getattr(dag.options, k) == v for k, v in want.items()) or dag.is_window:
        return dag
    return build_layer_dag(instance, cost, replace(dag.options, **want))


def run_layer(instance: LayerInstance, policy: str, *, cost_model: str | CostModel = "roofline",
              options: DagOptions | None = None, dag: TaskDAG | None = None,
              cost: CostModel | None = None, **solver_params: Any) -> LayerRun:
    """Build the DAG (unless given), solve it with ``policy`` and check the schedule."""
    if dag is None or cost is None:
        dag, cost = build_dag(instance, cost_model, options)
    dag = policy_dag(policy, dag, instance, cost)
    t0 = time.perf_counter()
    result = solve(policy, dag, instance, cost, **solver_params)
    wall = time.perf_counter() - t0
    report = check(result.schedule, dag) if result.schedule is not None else CheckReport(("no schedule",))
    return LayerRun(instance, dag, cost, result, report, wall)
