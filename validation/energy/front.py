"""Time/energy Pareto front of one decode layer (cost model) and where the policies sit on it.

For one layer instance: CP-SAT's minimum makespan ``T*`` (:mod:`sieveopt.solvers.cpsat`), then
CP-SAT's minimum cost-model energy under makespan limits ``T* x factor``
(:func:`sieveopt.solvers.cpsat_energy.solve_cpsat_energy`, the solver behind ``sieveopt compare
--objective energy --latency-limit-us X``): status, energy and certified lower bound per point.
Each policy's (makespan, energy) is placed beside it, and its distance to the front is measured
at its *own* makespan: CP-SAT's least energy with ``makespan <= the policy's makespan`` on the
DAG the policy executes (PIMoE's expert-parallel DAG for ``pimoe``), hinted by the policy's
schedule and the front's schedules that fit (so never worse than it). ``gap`` = policy energy / that optimum - 1 and ``gap_vs_bound``
= policy energy / its certified bound - 1 (an upper bound on the true gap).

Execution model: serialized layer (one batch through one layer DAG); cost model: the DAG's
(roofline by default); energy model: :mod:`.layer`, predicted side (``residency="sum"``, what
CP-SAT optimises); precision: the model's (``expert_weight_bytes_per_param``).
"""

from __future__ import annotations

import time
from typing import Any

#: makespan limits of the front, as multiples of CP-SAT's minimum makespan T*
LIMIT_FACTORS = (1.0, 1.05, 1.10, 1.25, 1.5, 2.0)
#: the published policies placed on the front
POLICIES = ("sieve", "sieve-plus", "duplex", "pimoe", "noexp", "allexp")


def layer_front(inst: Any, em: Any, *, policies: tuple[str, ...] = POLICIES,
                factors: tuple[float, ...] = LIMIT_FACTORS, time_limit_s: float = 2.0,
                seed: int = 0, cost_model: str = "roofline") -> dict[str, Any]:
    """The front of ``inst``'s layer and every policy's point and gap (see module docstring).
    CP-SAT runs deterministic (``max_deterministic_time = time_limit_s``, one worker)."""
    from sieveopt.check import check
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers.cpsat_energy import schedule_energy_J, solve_cpsat_energy

    t0 = time.perf_counter()
    dag, cost = build_dag(inst, cost_model)
    runs = {p: run_layer(inst, p, dag=dag, cost=cost) for p in policies}
    cp = run_layer(inst, "cpsat", dag=dag, cost=cost, time_limit_s=time_limit_s, deterministic=True,
                   workers=1, seed=seed).result
    same_dag = [cp.schedule, *(r.result.schedule for r in runs.values() if r.dag is dag)]

    def solve(d, limit_ns: int, hints) -> dict[str, Any]:
        r = solve_cpsat_energy(d, em, latency_limit_ns=int(limit_ns), time_limit_s=time_limit_s,
                               seed=seed, hints=hints)
        if r.schedule is not None and not check(r.schedule, d).ok:
            raise AssertionError(f"cpsat-energy schedule fails check() at limit {limit_ns} ns")
        return {"limit_ns": int(limit_ns), "status": r.status, "makespan_ns": r.makespan_ns,
                "energy_J": r.meta["energy_J"], "bound_J": r.meta["bound_J"], "gap": r.meta["gap"],
                "wall_s": r.wall_s, "schedule": r.schedule}

    # Limits in increasing order, each point hinted by the earlier ones' schedules too (feasible
    # under a looser limit): the front is non-increasing even where CP-SAT stops at FEASIBLE.
    front: list[dict[str, Any]] = []
    found = []
    for f in sorted(factors):
        pt = {"factor": f, **solve(dag, int(cp.makespan_ns * f), [*same_dag, *found])}
        found.append(pt.pop("schedule"))
        front.append(pt)
    _tighten_bounds(front)
    pts: dict[str, Any] = {}
    for p, run in runs.items():
        s = run.result.schedule
        e = schedule_energy_J(run.dag, s, em)
        own = solve(run.dag, s.makespan_ns, [s] if run.dag is not dag else [*same_dag, *found])
        own.pop("schedule")
        if run.dag is dag:   # E*(m) >= E*(L) >= bound(L) for every front limit L >= m
            own["bound_J"] = max([own["bound_J"] or 0.0,
                                  *(f["bound_J"] or 0.0 for f in front if f["limit_ns"] >= s.makespan_ns)]) or None
        pts[p] = {"makespan_ns": int(s.makespan_ns), "energy_J": e, "check_ok": bool(run.check.ok),
                  "own_dag": run.dag is not dag, "front_at_makespan": own,
                  "gap": None if not own["energy_J"] else e / own["energy_J"] - 1.0,
                  "gap_vs_bound": None if not own["bound_J"] else e / own["bound_J"] - 1.0}
    return {"moe_layer": inst.moe_layer, "step": inst.step, "tstar_ns": int(cp.makespan_ns),
            "tstar_status": cp.status, "tstar_bound_ns": cp.bound_ns,
            "tstar_energy_J": schedule_energy_J(dag, cp.schedule, em), "front": front, "policies": pts,
            "wall_s": time.perf_counter() - t0}


def _tighten_bounds(front: list[dict[str, Any]]) -> None:
    """The least energy is non-increasing in the limit, so a looser limit's certified bound is a
    bound at every tighter one: each point keeps the largest bound at or beyond its limit, and
    its ``gap`` is recomputed against it."""
    best = None
    for pt in sorted(front, key=lambda p: -p["limit_ns"]):
        if pt["bound_J"] is not None:
            best = pt["bound_J"] if best is None else max(best, pt["bound_J"])
        if best is not None and pt["energy_J"] is not None:
            pt["bound_J"] = min(best, pt["energy_J"])
            pt["gap"] = pt["energy_J"] / pt["bound_J"] - 1.0 if pt["bound_J"] else None
