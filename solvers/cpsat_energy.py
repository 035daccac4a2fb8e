"""CP-SAT minimising the cost-model energy of a layer under a makespan limit, with a
certified lower bound (``sieveopt compare --objective energy``).

Energy model (:class:`~sieveopt.validation.energy.layer.LayerEnergyModel`, predicted side):
``E = sum_t E_t(mode_t) + P x makespan`` where ``E_t`` is a task's mode-dependent energy (its
DRAM/PIM commands, GPU FLOPs, NVLink bits, plus the open-row background power for its own
duration) and ``P`` the power no decision changes (GPU static, precharge standby, refresh).
That is linear in the mode literals and the makespan, so CP-SAT optimises it exactly: the
interval model of :mod:`.cpsat` (:func:`._interval_model.build_interval_model`: one optional
interval per (task, mode), NoOverlap / Cumulative per resource, precedence) in exact ns with the
limit as horizon, objective ``sum lit x E + P x M``.

Coefficients are integer pJ (rounded): the reported bound subtracts the worst rounding,
0.5 pJ per task and per ns of the limit, so it is a valid bound on the float model. The
schedule is re-timed to earliest starts (never longer) and its energy recomputed in floats.
"""

from __future__ import annotations

import time
from typing import Any

from ortools.sat.python import cp_model

from sieveopt.dag import TaskDAG
from sieveopt.schedule import Schedule
from sieveopt.solvers._interval_model import build_interval_model, make_solver
from sieveopt.solvers.base import FEASIBLE, INFEASIBLE, OPTIMAL, UNKNOWN, SolveResult
from sieveopt.solvers.cpsat_retime import retime
from sieveopt.solvers.cpsat_run import solve_by

_STATUS = {cp_model.OPTIMAL: OPTIMAL, cp_model.FEASIBLE: FEASIBLE, cp_model.INFEASIBLE: INFEASIBLE,
           cp_model.UNKNOWN: UNKNOWN, cp_model.MODEL_INVALID: UNKNOWN}


def mode_energy_pJ(dag: TaskDAG, em: Any) -> list[dict[str, float]]:
    """Per task and mode: the mode-dependent energy (pJ) of the cost-model energy."""
    out = []
    for t in dag.tasks:
        d = {}
        for m, mc in t.modes.items():
            e = sum(em.task_energy_pJ(t, m, simulated=False, dag=dag).values())
            if em.uses_dram(t, m):
                e += em.open_row_pJ_per_ns() * mc.duration_ns
            d[m] = e
        out.append(d)
    return out


def schedule_energy_J(dag: TaskDAG, schedule: Schedule, em: Any) -> float:
    """Cost-model energy of ``schedule`` (the objective CP-SAT minimises), in joules."""
    return sum(em.energy(dag, schedule.modes, schedule.start_ns, schedule.end_ns,
                         schedule.makespan_ns, simulated=False, residency="sum").values())


def solve_cpsat_energy(dag: TaskDAG, em: Any, *, latency_limit_ns: int, time_limit_s: float = 10.0,
                       workers: int = 1, seed: int = 0, deterministic: bool = True,
                       hints: list[Schedule] | None = None, time_price_W: float = 0.0) -> SolveResult:
    """Minimum cost-model energy of ``dag`` with makespan <= ``latency_limit_ns``.

    ``hints``: feasible heuristic schedules; the one of least energy under the limit seeds the
    search and is returned if CP-SAT finds nothing better. ``time_price_W`` > 0 minimises the
    weighted sum ``energy + time_price_W x makespan`` instead (a price on latency, in watts).
    ``SolveResult.meta`` carries ``energy_J``, ``objective_J`` (the weighted sum), ``bound_J``
    (certified bound on the objective) and ``gap`` (objective / bound - 1)."""
    t0 = time.perf_counter()
    n = len(dag.tasks)
    limit = int(latency_limit_ns)
    e_pj = mode_energy_pJ(dag, em)
    if time_price_W < 0:
        raise ValueError(f"time_price_W must be >= 0, got {time_price_W}")
    price_pj_ns = float(time_price_W) * 1e3            # W = 1e3 pJ/ns
    p_pj_ns = em.constant_pJ_per_ns(dag.num_gpus) + price_pj_ns

    def objective_j(sch: Schedule) -> float:
        return schedule_energy_J(dag, sch, em) + price_pj_ns * sch.makespan_ns * 1e-12

    feasible = [h for h in (hints or []) if h is not None and h.makespan_ns <= limit]
    hint = min(feasible, key=objective_j) if feasible else None

    # the interval model of solvers/cpsat.py (solvers/_interval_model.py), in exact ns, horizon = limit
    im = build_interval_model(dag, dag.mode_durations_ns(),
                              [e.lag_ns for e in dag.edges], limit)
    model, M, start, lit = im.model, im.makespan, im.start, im.lit
    const_pj = 0.0
    terms = []
    for t in dag.tasks:
        if t.has_choice:
            terms += [(round(e_pj[t.tid][m]), lit[t.tid][m]) for m in t.modes]
        else:
            const_pj += e_pj[t.tid][next(iter(t.modes))]
    p_int = round(p_pj_ns)
    model.minimize(sum(c * v for c, v in terms) + p_int * M)
    if hint is not None:
        for t in range(n):
            model.add_hint(start[t], int(hint.start_ns[t]))
            for m, lv in lit[t].items():
                if not isinstance(lv, int):
                    model.add_hint(lv, hint.modes[t] == m)
        model.add_hint(M, hint.makespan_ns)

    # the toolkit's CP-SAT settings (with several workers, deterministic time also interleaves
    # the search so that runs repeat, as for the makespan solver)
    solver = make_solver(workers=workers, seed=seed, time_limit_s=time_limit_s, deterministic=deterministic)
    p = solver.parameters
    st = solve_by(solver, model)
    status = _STATUS.get(st, UNKNOWN)
    schedule = None
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        modes = [next(m for m, lv in lit[t].items() if (lv if isinstance(lv, int) else solver.boolean_value(lv)))
                 for t in range(n)]
        schedule = retime(dag, modes, [solver.value(start[t]) for t in range(n)], policy="cpsat-energy")
    # rounding: |model - float| <= 0.5 pJ per choice literal + |P - round(P)| x limit
    slack_pj = 0.5 * len(terms) + abs(p_pj_ns - p_int) * limit
    bound_j = None
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.INFEASIBLE):
        bound_j = None if st == cp_model.INFEASIBLE else (solver.best_objective_bound + const_pj - slack_pj) * 1e-12
    obj_j = None if schedule is None else objective_j(schedule)
    if hint is not None:
        hint_j = objective_j(hint)
        if obj_j is None or hint_j < obj_j:
            schedule, obj_j = Schedule(hint.modes, hint.start_ns.copy(), hint.end_ns.copy(), "cpsat-energy",
                                       dict(hint.meta, from_hint=True)), hint_j
            status = FEASIBLE if status in (UNKNOWN, INFEASIBLE) else status
    if obj_j is not None and bound_j is not None:
        bound_j = min(bound_j, obj_j)
        if status == OPTIMAL and obj_j - bound_j > 1e-9 * obj_j + slack_pj * 1e-12:
            status = FEASIBLE
    energy_j = None if schedule is None else schedule_energy_J(dag, schedule, em)
    gap = None if obj_j is None or not bound_j else obj_j / bound_j - 1.0
    meta = {"objective": "energy" if price_pj_ns == 0 else "energy + time_price_W x makespan",
            "time_price_W": float(time_price_W), "objective_J": obj_j,
            "latency_limit_ns": limit, "energy_J": energy_j, "bound_J": bound_j,
            "gap": gap, "constant_W": p_pj_ns * 1e-3, "rounding_slack_J": slack_pj * 1e-12,
            "hint_objective_J": None if hint is None else objective_j(hint),
            "hint_policy": None if hint is None else hint.policy, "solver_status": solver.status_name(st),
            "deterministic": deterministic, "workers": p.num_workers, "seed": seed}
    return SolveResult("cpsat-energy", schedule, status, None if schedule is None else schedule.makespan_ns,
                       None, time.perf_counter() - t0, None, (), meta)
