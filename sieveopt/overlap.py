"""Run a policy under an execution model (:mod:`sieveopt.execution_model`) and report its
steady-state period (time per layer for the whole batch), per-micro-batch latency and bound.

Heuristics plan with the information a GPU has at run time: every (layer, micro-batch) slot is
planned on its own layer DAG, from that slot's routing only (as in serving, where the router's
output of one micro-batch is all the scheduler sees), exactly like
:func:`sieveopt.window.solve_window`. The chosen modes are then executed by the pipeline runtime
(:func:`pipeline_schedule`: modulo list scheduling or staggered-slot orders, whichever is shorter,
the same for every policy). A policy whose registry
entry declares ``periodic`` (CP-SAT: :func:`sieveopt.solvers.cpsat_periodic.solve_overlap_cpsat`)
solves the periodic problem jointly, hinted with the best of the
heuristics' periodic schedules and of the load-optimal modes.

The scheduler task of every slot (``sched[g]``, beside the dispatch) lasts the policy's charged
decision latency, as in the serial layer DAG (:mod:`sieveopt.solvers.sched_latency`):
:func:`charged_problem` gives each policy its own copy of the iteration. Hints made on a copy
with another charge are re-timed onto the exact solver's (:func:`sieveopt.periodic.retime`).

Under ``ideal`` every policy's time per layer is the busiest resource's load under its modes
(Sieve's max(T_comm, T_GPU, T_PIM) with every task counted) divided by L: a bound, not a
schedule; ``cpsat`` reports the minimum over all modes (CP-SAT on the load model).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import dataclass, field
from typing import Any

from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.errors import SieveoptError
from sieveopt.execution_model import DEFAULT_RUNTIME_ORDER_EVALUATIONS, ExecutionModel
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import CostModel
from sieveopt.periodic import (
    PeriodicProblem,
    PeriodicSchedule,
    build_periodic_problem,
    check_periodic,
    check_unrolled,
    modulo_list_schedule,
    resource_loads_ns,
    retime,
)
from sieveopt.solvers import policy_info
from sieveopt.solvers.base import HEURISTIC

#: Heuristics whose periodic schedules hint the exact solver.
HINT_POLICIES = ("sieve", "sieve-plus", "sieve-pipe", "duplex", "noexp", "allexp", "pimoe")
#: Iterations a periodic schedule is unrolled into for the ordinary ``check()``.
UNROLL_CHECK_ITERATIONS = 3
#: Solver parameters :func:`solve_overlap` takes (sweep points and pareto pass only these).
OVERLAP_SOLVER_PARAMS = ("time_limit_s", "workers", "seed", "latency_weight")
BOUND = "BOUND"


@dataclass(frozen=True, eq=False)
class OverlapResult:
    """One policy under one execution model (times per layer, whole batch)."""

    policy: str
    execution: ExecutionModel
    schedule: PeriodicSchedule | None
    period_ns: float
    latency_ns: float | None
    bound_ns: float | None
    status: str
    check_ok: bool | None
    decision_ns: int | None
    wall_s: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.bound_ns is None or not self.period_ns:
            return None
        return (self.period_ns - self.bound_ns) / self.period_ns

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "execution_model": self.execution.label, "period_ns": self.period_ns,
                "latency_ns": self.latency_ns, "bound_ns": self.bound_ns, "gap": self.gap, "status": self.status,
                "check_ok": self.check_ok, "decision_ns": self.decision_ns, "wall_s": self.wall_s,
                "meta": self.meta}


def charge_scheduler(problem: PeriodicProblem, ns: int) -> PeriodicProblem:
    """``problem`` with every ``sched`` task lasting ``ns``, in the iteration and in every DAG
    rebuilt from its options (per-slot planning, unrolling, replay)."""
    from sieveopt.solvers.sched_latency import with_scheduler_latency

    dag = with_scheduler_latency(problem.dag, int(ns))
    if dag is problem.dag and problem.options.scheduler_latency_ns == int(ns):
        return problem
    return dataclasses.replace(problem, dag=dag,
                               options=dataclasses.replace(problem.options, scheduler_latency_ns=int(ns)))


def policy_problem(problem: PeriodicProblem, policy: str) -> PeriodicProblem:
    """``problem`` rebuilt with the ``DagOptions`` ``policy`` declares (``PolicyInfo.dag_options``,
    e.g. PIMoE's expert-parallel PIM channel groups, :mod:`sieveopt.pim_groups`) when they
    differ, so its per-slot decisions and the pipeline it runs in use its own layout, as
    :func:`sieveopt.pipeline.policy_dag` does for one layer (the same window, execution model,
    cost model and other options; the scheduler charge is kept)."""
    want = policy_info(policy).dag_options
    if not want or all(getattr(problem.options, k) == v for k, v in want.items()):
        return problem
    return build_periodic_problem(problem.window, problem.cost, problem.execution,
                                  dataclasses.replace(problem.options, **want))


def charged_problem(problem: PeriodicProblem, policy: str, spec: str | int | None = "default", *,
                    calibration: dict[str, Any] | None = None) -> tuple[PeriodicProblem, Any]:
    """(``problem`` as ``policy`` runs it: on its declared layout (:func:`policy_problem`) and
    charged its scheduler latency, the :class:`SchedulerLatency`): the same rule as the serial
    commands (``spec``: ``default``, ``calibrated`` or ns; static and offline policies are charged
    0). ``calibrated`` measures on one micro-batch's routing (what each slot's planner sees):
    ``calibration`` gives model and system, the batch is B / M."""
    from sieveopt.solvers.sched_latency import resolve

    problem = policy_problem(problem, policy)

    cal = None
    if calibration is not None:
        cal = {**calibration, "batch": max(1, int(calibration["batch"]) // problem.microbatches)}
    lat = resolve(policy, spec, calibration=cal, overlap=problem.execution.overlap)
    return charge_scheduler(problem, lat.ns), lat


def _as_hint(problem: PeriodicProblem, r: OverlapResult) -> OverlapResult:
    """``r`` with its schedule re-timed onto ``problem`` (another scheduler charge), or without a
    schedule when it is not valid there."""
    if r.schedule is None:
        return r
    ps = retime(problem, r.schedule)
    return r if ps is r.schedule else dataclasses.replace(r, schedule=ps)


def plan_modes(problem: PeriodicProblem, policy: str, **params: Any) -> tuple[tuple[str, ...], int]:
    """Per-slot planning with ``policy`` mapped onto the iteration: (modes, max decision ns)."""
    from sieveopt.solvers import solve

    dag = problem.dag
    modes = [""] * len(dag.tasks)
    decision = 0
    from sieveopt.solvers import policy_info

    declared = policy_info(policy).params
    if "microbatches" in declared:  # it plans for the pipeline's period
        params = {"microbatches": problem.microbatches, **params}
    if "overlap" in declared:  # it plans for the execution model's time per layer
        params = {"overlap": problem.execution.overlap, **params}
    # A policy declaring ``carry`` is told the per-(resource kind, GPU) load its earlier slots of
    # the window put there (run-time information: its own earlier decisions).
    carried: dict[tuple[str, int], float] = {}
    slots = 0
    built = [(li, m, inst, build_layer_dag(inst, problem.cost, DagOptions(
        **{**problem.options.__dict__, "layer": li, "microbatch": m})))
        for li, row in enumerate(problem.window) for m, inst in enumerate(row)]
    for j, (li, m, inst, ldag) in enumerate(built):
        extra: dict[str, Any] = {"prior_load_ns": dict(carried), "prior_slots": slots} if "carry" in declared else {}
        if "concurrent" in declared and problem.execution.overlap == "microbatch":
            # the slot whose dense chain runs beside this slot's experts in the staggered pipeline
            # (the next slot, cyclically): its dense work is known before routing (the model's
            # layer kind and its micro-batch's context lengths)
            extra["concurrent_dag"] = built[(j + 1) % len(built)][3]
        res = solve(policy, ldag, inst, problem.cost, **params, **extra)
        if res.schedule is None:
            raise SieveoptError(f"{policy} found no plan for layer {li} micro-batch {m}")
        decision = max(decision, res.decision_ns or 0)
        for t in ldag.tasks:
            modes[dag.by_name[t.name]] = res.schedule.modes[t.tid]
            c = t.modes[res.schedule.modes[t.tid]]
            for rid in c.resources:
                r = ldag.resources[rid]
                carried[(r.kind, r.gpu)] = carried.get((r.kind, r.gpu), 0.0) + c.duration_ns
        slots += 1
    return tuple(modes), decision


#: Slot spacings (fractions of busiest load / (L M)) the pipeline runtime tries for staggered
#: slots: the period is sensitive to them (GPT-OSS x4, B = 16, M = 2, sieve-pipe's modes charged
#: 1 us: 40.9 us per layer at 0.95-1.3, 38.9 at 0.9, 36.1 at 0.85).
RUNTIME_PHASE_FRACTIONS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1)


#: Whether the pipeline runtime also tries the explicit staggered construction (round 5; off only
#: to measure what it adds).
RUNTIME_STAGGERED = True


def runtime_order_evaluations(num_tasks: int, cap: int = DEFAULT_RUNTIME_ORDER_EVALUATIONS) -> int:
    """Evaluations of the runtime's order-only descent for a window of ``num_tasks`` tasks:
    ``min(cap, 2.5e8 / tasks^2)``, at least ``min(50, cap)``; 0 when ``cap`` is 0 (the
    constructive runtime only). ``cap`` is the execution model's
    ``runtime_order_evaluations`` (``--runtime-order-evaluations``, default 1000). One evaluation
    is about O(tasks + edges) plus a few Bellman-Ford passes: the default gives 1000 on the
    paper's one- and four-GPU windows, 101 on Qwen3.5 x8 B = 64's 1,570 tasks, 51 on B = 256's
    2,214."""
    if cap <= 0:
        return 0
    return max(min(50, cap), min(cap, int(2.5e8 / max(1, num_tasks) ** 2)))


def fixed_modes_problem(problem: PeriodicProblem, modes: tuple[str, ...]) -> PeriodicProblem:
    """``problem`` with every task held to its mode in ``modes`` (the same tasks, durations,
    resources, edges and recurrences), so a search on it can move resource orders only."""
    from sieveopt.dag import TaskDAG

    dag = problem.dag
    tasks = tuple(dataclasses.replace(t, modes={modes[t.tid]: t.modes[modes[t.tid]]}) if len(t.modes) > 1 else t
                  for t in dag.tasks)
    return dataclasses.replace(problem, dag=TaskDAG(tasks, dag.edges, dag.resources, dag.num_gpus, dag.options,
                                                    meta=dag.meta))


def pipeline_schedule(problem: PeriodicProblem, modes: tuple[str, ...], *, policy: str = "",
                      order_evaluations: int | None = None) -> PeriodicSchedule:
    """How the pipeline runtime executes a heuristic's modes: the shorter superperiod (then the
    shorter micro-batch latency) of two issue orders, each computed from the modes alone (no
    search over modes, the same for every policy):

    * modulo list scheduling (:func:`sieveopt.periodic.modulo_list_schedule`): each resource
      serves tasks in the window's list-schedule order, micro-batches released 0, 1/4 or 1/2
      period apart;
    * staggered slots (:func:`sieveopt.periodic_search.phase_order_schedule`, slot spacings
      :data:`RUNTIME_PHASE_FRACTIONS`), the two-micro-batch overlap of DeepSeek-style decode:
      slot j = l M + m released j phases apart, so one
      micro-batch's dense chain (QKV, O-proj, router) runs while another's experts run; its
      resource orders executed as soon as possible (exact timing of fixed cyclic orders);
    * the explicit staggered construction (:func:`sieveopt.periodic_search.staggered_schedule`,
      round 5): the same phases, but inside each phase the dense micro-batch's chain is laid
      out first and the expert micro-batch's GPU experts and PIM experts fill around it (a fixed
      set of placements, each phase simulated, the orders timed exactly);

    then the shortest of these is improved by an **order-only descent**
    (:func:`sieveopt.periodic_search.local_search` on :func:`fixed_modes_problem`: move a task
    before its tight predecessor or after its tight successor on a resource, seeded kicks;
    :func:`runtime_order_evaluations` shortest-superperiod evaluations, no clock), which never
    changes a mode: the policy's decision is executed as made. Its cap is
    ``order_evaluations``, by default the execution model's ``runtime_order_evaluations``
    (``--runtime-order-evaluations``; 0: the constructive runtime only, no search).

    Modulo list scheduling alone tends to run the micro-batches in lock-step on multi-GPU
    configurations (Qwen3.5 x8, B = 64, M = 2: sieve-pipe's load-optimal modes 129.9 us per
    layer, staggered 103.1 us); on one GPU the explicit construction packs where the slot
    orders leave gaps (Qwen3-30B x1, B = 256, M = 2, Sieve's modes: 131.7 -> 124.5 us per layer;
    docs/design-notes/overlap.md, round 5)."""
    from sieveopt.periodic_search import (
        compact,
        local_search,
        phase_order_schedule,
        staggered_schedule,
    )

    dag = problem.dag
    modes = tuple(modes)
    cands = [modulo_list_schedule(problem, modes, policy=policy),
             phase_order_schedule(problem, modes, policy=policy, fractions=RUNTIME_PHASE_FRACTIONS)]
    if RUNTIME_STAGGERED:
        cands.append(staggered_schedule(problem, modes, policy=policy))
    best = min((c for c in cands if c is not None), key=lambda c: (c.superperiod_ns, c.latency_ns(dag)))
    cap = problem.execution.runtime_order_evaluations if order_evaluations is None else int(order_evaluations)
    budget = runtime_order_evaluations(len(dag.tasks), cap)
    if budget > 0 and all(r.capacity == 1 for r in dag.resources):
        moved = local_search(fixed_modes_problem(problem, modes), best, max_evaluations=budget)
        if moved.superperiod_ns < best.superperiod_ns:  # timed (and checked) again on the problem itself
            best = compact(problem, dataclasses.replace(moved, meta=dict(moved.meta, runtime_descent_from_ns=int(
                best.superperiod_ns))))
    return best


def _checked(problem: PeriodicProblem, ps: PeriodicSchedule) -> bool:
    return check_periodic(ps, problem).ok and check_unrolled(problem, ps, UNROLL_CHECK_ITERATIONS).ok


def solve_overlap(problem: PeriodicProblem, policy: str, *, time_limit_s: float = 10.0, workers: int = 2,
                  seed: int = 0, latency_weight: float = 0.0,
                  hints: dict[str, OverlapResult] | None = None) -> OverlapResult:
    """``policy`` under ``problem.execution`` (microbatch or ideal)."""
    ex = problem.execution
    L = problem.window_layers
    dag = problem.dag
    t0 = time.perf_counter()
    if ex.overlap == "serial":
        raise SieveoptError("solve_overlap: serial execution is the layer DAG (use sieveopt.pipeline.run_layer)")
    hook = policy_info(policy).periodic
    if hook:  # an exact solver of the periodic problem declares its own entry point
        mod, _, attr = hook.partition(":")
        solver = getattr(importlib.import_module(mod), attr)
        hints = None if hints is None else {p: _as_hint(problem, r) for p, r in hints.items()}
        return solver(problem, policy, time_limit_s=time_limit_s, workers=workers, seed=seed,
                      latency_weight=latency_weight, hints=hints)
    modes, decision = plan_modes(problem, policy)
    loads = resource_loads_ns(dag, modes)
    charge = int(problem.options.scheduler_latency_ns)
    if ex.overlap == "ideal":
        return OverlapResult(policy, ex, None, float(loads.max()) / L, None, None, BOUND, None, decision or None,
                             time.perf_counter() - t0, {"busiest_resource": dag.resources[int(loads.argmax())].name,
                                                        "scheduler_latency_ns": charge})
    ps = pipeline_schedule(problem, modes, policy=policy)
    ok = _checked(problem, ps)
    return OverlapResult(policy, ex, ps, ps.period_ns, ps.latency_ns(dag), None, HEURISTIC, ok, decision or None,
                         time.perf_counter() - t0,
                         {"ideal_period_ns": float(loads.max()) / L, "scheduler_latency_ns": charge, **ps.meta})


def sample_problem(model, system, batch: int, execution: ExecutionModel, seed: int, cost: CostModel, *,
                   first_layer: int | None = None, context_len_tokens: int | None = None,
                   options: DagOptions | None = None) -> PeriodicProblem:
    """A seeded cyclic window of ``execution.window_layers`` consecutive layers, cut into
    ``execution.microbatches`` micro-batches, as a periodic problem."""
    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS
    from sieveopt.window import sample_window

    window: list[list[LayerInstance]] = sample_window(
        model, system, batch, execution.window_layers, execution.microbatches, seed, first_layer=first_layer,
        context_len_tokens=context_len_tokens or DEFAULT_CONTEXT_LEN_TOKENS)
    return build_periodic_problem(window, cost, execution, options)


__all__ = ["BOUND", "HINT_POLICIES", "OVERLAP_SOLVER_PARAMS", "OverlapResult", "RUNTIME_PHASE_FRACTIONS", "charge_scheduler", "charged_problem", "pipeline_schedule", "plan_modes", "runtime_order_evaluations", "policy_problem", "sample_problem", "solve_overlap"]
