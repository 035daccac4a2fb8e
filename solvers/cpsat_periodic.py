"""Exact periodic (modulo) scheduling of a cyclic window with CP-SAT: minimise the superperiod.

Model (integer ns, the problem of :mod:`sieveopt.periodic`):

* ``lam`` (Lambda) in [lower bound, hint's Lambda]; per task a start ``s_i >= 0``, per mode of a
  multi-mode task a Boolean (exactly one); ``e_i = s_i + sum(lit * duration)``;
* every DAG edge ``s_dst >= e_src + lag`` (conditional edges under their mode literal); every
  recurrence ``s_dst + lam >= e_src + lag``;
* resources modulo Lambda: per resource one ``NoOverlap`` (``Cumulative`` when capacity > 1)
  over the copies k = 0, 1, 2 of every interval that holds it (copy k starts at ``s_i + k lam``),
  with every task inside ``[0, 3 lam)``. Copies further apart cannot meet inside that horizon,
  so this is exactly "no overlap modulo Lambda". The horizon loses nothing: micro-batches share
  no edges, so shifting one micro-batch by a multiple of Lambda keeps a schedule valid; shift
  each one so its first start lies in [0, lam); its last layer's ``reduce[g]`` ends by
  ``s[qkv[g]@L0] + lam`` (recurrence) and every ``qkv[g]@L0`` precedes every last-layer task
  (the AllGather feeds every GPU's scheduler), so all its tasks end by ``2 lam`` after its first
  start, inside ``3 lam``;
* redundant cuts: ``lam >= load_r`` of every resource (linear in the mode literals: Sieve's
  max(T_comm, T_GPU, T_PIM) over every resource), ``lam >=`` the recurrence bound, and the
  chain-load cuts of :mod:`sieveopt.periodic_bounds` (``cuts=False`` drops them).
* objective: ``lam`` (optionally ``+ latency_weight * sum of micro-batch spans / (L M)``).

Neighbourhoods (``free=``, :func:`window_lns`) and the relaxation with NoOverlap on a subset of
the resources (``resources=`` a set) are experiment APIs (design note, round 6).

The returned bound is CP-SAT's best objective bound (valid lower bound on Lambda), never below
the static bounds. :func:`slot_bound_ns` is a separate bound: the slot relaxation of
:func:`sieveopt.periodic_bounds.slot_bounds` over the modes alone (no start times). The schedule passes :func:`sieveopt.periodic.check_periodic`; it is never
worse than the hint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from sieveopt.periodic import (
    PeriodicProblem,
    PeriodicSchedule,
    check_periodic,
    recurrence_bound_ns,
    resource_loads_ns,
)
from sieveopt.periodic_bounds import SlotBounds, chain_cuts, slot_bounds
from sieveopt.periodic_search import compact, order_arcs, orders_from_periodic, search_incumbent
from sieveopt.solvers._interval_model import chosen_modes, make_solver, mode_literals
from sieveopt.solvers.base import FEASIBLE, INFEASIBLE, OPTIMAL, UNKNOWN
from sieveopt.solvers.cpsat_run import solve_by

_STATUS = {cp_model.OPTIMAL: OPTIMAL, cp_model.FEASIBLE: FEASIBLE, cp_model.INFEASIBLE: INFEASIBLE,
           cp_model.UNKNOWN: UNKNOWN}
COPIES = 3


def cpu_share(wall0_s: float, cpu0_s: float) -> float:
    """Share of one core this process got since (``time.perf_counter()``, ``time.process_time()``)
    = (wall0_s, cpu0_s), in [0.05, 1]. The steps measured are mostly single-threaded, so on a
    machine with idle cores it is about 1; on an oversubscribed machine it is the fraction of a
    core the scheduler gave us (measured 0.3-0.5 at load 6-8 on 2 cores)."""
    wall = time.perf_counter() - wall0_s
    if wall <= 0.05:
        return 1.0
    return float(min(1.0, max(0.05, (time.process_time() - cpu0_s) / wall)))


def _add_load_cuts(model: cp_model.CpModel, dag: Any, lit: list[dict[str, Any]], lam: Any) -> None:
    """``lam >= load_r`` of every resource, linear in the mode literals (Sieve's max() over all)."""
    terms: dict[int, list[Any]] = {}
    for t in dag.tasks:
        for m, c in t.modes.items():
            for rid in c.resources:
                if c.duration_ns:
                    terms.setdefault(rid, []).append(c.duration_ns * lit[t.tid][m])
    for ts in terms.values():
        model.add(lam >= sum(ts))


def load_bound_ns(problem: PeriodicProblem, *, time_limit_s: float = 5.0, workers: int = 2,
                  seed: int = 0, hint_modes: Sequence[Sequence[str]] = ()) -> tuple[int, int, tuple[str, ...] | None]:
    """Ideal-overlap optimum: min over modes of the busiest resource's load (CP-SAT, small model).

    Returns (lower bound, best value found, its modes); the bound is a valid lower bound on
    Lambda of any periodic schedule (and the ``ideal`` execution model's answer). ``hint_modes``
    (e.g. the heuristics' decisions) seed the search and cap the answer: the result is never
    worse than the best of them, even when CP-SAT finds nothing in its time."""
    dag = problem.dag
    seeds = [(int(resource_loads_ns(dag, m).max()), tuple(m)) for m in hint_modes]
    best_seed = min(seeds) if seeds else None
    model = cp_model.CpModel()
    hi = sum(max(c.duration_ns for c in t.modes.values()) for t in dag.tasks) + 1
    z = model.new_int_var(0, hi, "z")
    lit = mode_literals(model, dag)
    _add_load_cuts(model, dag, lit, z)
    model.minimize(z)
    if best_seed is not None:
        model.add(z <= best_seed[0])
        model.add_hint(z, best_seed[0])
        for t in dag.tasks:
            for m, lv in lit[t.tid].items():
                if not isinstance(lv, int):
                    model.add_hint(lv, best_seed[1][t.tid] == m)
    solver = make_solver(workers=workers, seed=seed, time_limit_s=time_limit_s)
    st = solve_by(solver, model)
    lb = int(math.ceil(solver.best_objective_bound - 1e-9))
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if best_seed is not None:  # nothing found in time: the best seed stands
            return min(lb, best_seed[0]), best_seed[0], best_seed[1]
        return lb, hi, None
    modes = chosen_modes(solver, lit)
    return lb, int(solver.objective_value), modes


def add_slot_cuts(model: cp_model.CpModel, problem: PeriodicProblem, lit: list[dict[str, Any]], lam: Any, hi: int,
                  sb: SlotBounds | None = None) -> int:
    """Add the slot relaxation (:func:`sieveopt.periodic_bounds.slot_bounds`: sync-to-sync and
    window terms, cycles, overlap) over the mode literals ``lit`` and the superperiod ``lam``;
    returns the number of constraints. Each D/W variable is bounded below by its terms only, so
    the true values of any periodic schedule satisfy everything (proofs in ``slot_bounds``)."""
    sb = slot_bounds(problem) if sb is None else sb
    dag = problem.dag
    var: dict[tuple[Any, ...], Any] = {}
    count = 0

    def v(key: tuple[Any, ...]) -> Any:
        if key not in var:
            var[key] = model.new_int_var(0, hi, "_".join(map(str, key)))
        return var[key]

    for term in sb.terms:
        expr = [c.duration_ns * lit[i][m] for i in term.tasks for m, c in dag.tasks[i].modes.items()
                if term.resource in c.resources and c.duration_ns]
        for y, dy, lits in term.gates:
            on = [lit[i][m] for i, m in lits if m in lit[i]]
            if any(isinstance(lv, int) and lv for lv in on):
                expr.append(dy)
                continue
            z = model.new_bool_var(f"gate{y}_{term.resource}")
            for lv in on:
                if not isinstance(lv, int):
                    model.add_implication(lv, z)
            expr.append(dy * z)
        model.add(v(term.var) >= term.offset_ns + sum(expr))
        count += 1
    for (li, mb, g), (off, extras) in sb.gaps.items():
        model.add(v(("D", li, mb)) >= v(("W", li, mb, g)) + off + sum(x * lit[i][m] for i, m, x in extras))
        count += 1
    for slots in sb.cycles:
        model.add(lam >= sum(v(("D", *j)) for j in slots))
        count += 1
    for (g, r), tasks in sb.dense.items():
        load = [c.duration_ns * lit[i][m] for i in tasks for m, c in dag.tasks[i].modes.items()
                if r in c.resources and c.duration_ns]
        wins = [v(("W", li, mb, g)) for (li, mb, gg) in sb.gaps if gg == g]
        model.add(sb.microbatches * lam >= sum(load) + sum(wins))
        count += 1
    return count


def slot_bound_ns(problem: PeriodicProblem, *, time_limit_s: float = 5.0, workers: int = 2, seed: int = 0,
                  hint_modes: Sequence[str] | None = None) -> tuple[int, dict[str, Any]]:
    """Lower bound on Lambda: the minimum over modes of the superperiod that the load cuts, the
    recurrence bound and the slot constraints allow. Every periodic schedule satisfies all of
    them (a relaxation), so CP-SAT's objective bound on this small model (mode Booleans and one
    variable per slot arc, no start times) is a valid bound. Returns (bound, info); info holds
    the status, the relaxation's best value and its modes."""
    t0 = time.perf_counter()
    dag = problem.dag
    sb = slot_bounds(problem)
    # any schedule fits in one superperiod of every task and lag in sequence
    hi = sum(max(c.duration_ns for c in t.modes.values()) for t in dag.tasks) + sum(e.lag_ns for e in dag.edges) + 1
    model = cp_model.CpModel()
    lam = model.new_int_var(max(1, recurrence_bound_ns(problem)), hi, "lam")
    lit = mode_literals(model, dag)
    _add_load_cuts(model, dag, lit, lam)
    ncuts = add_slot_cuts(model, problem, lit, lam, COPIES * hi, sb)
    model.minimize(lam)
    if hint_modes is not None:
        for t in dag.tasks:
            for m, lv in lit[t.tid].items():
                if not isinstance(lv, int):
                    model.add_hint(lv, hint_modes[t.tid] == m)
    solver = make_solver(workers=workers, seed=seed, time_limit_s=time_limit_s)
    st = solve_by(solver, model)
    if st == cp_model.INFEASIBLE:
        raise RuntimeError(f"slot relaxation infeasible below {hi} ns: a feasible Lambda is cut (a bug)")
    lb = int(math.ceil(solver.best_objective_bound - 1e-9))
    info = {"status": _STATUS.get(st, UNKNOWN), "bound_ns": lb, "wall_s": time.perf_counter() - t0,
            "cuts": ncuts, "value_ns": None, "modes": None}
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        info["value_ns"] = int(solver.objective_value)
        info["modes"] = chosen_modes(solver, lit)
    return lb, info


def _keep_outside(model: cp_model.CpModel, problem: PeriodicProblem, hint: PeriodicSchedule, free: set[int],
                  s: list[Any], lit: list[dict[str, Any]], lam: Any) -> int:
    """Fix the mode of every task outside ``free`` to the hint's and keep, on every resource, the
    hint's cyclic order of those tasks as the difference constraints of
    :func:`sieveopt.periodic_search.order_arcs` (valid at every Lambda for any schedule with
    that order). Returns the number of order constraints."""
    dag = problem.dag
    for t in dag.tasks:
        if t.tid not in free:
            lv = lit[t.tid][hint.modes[t.tid]]
            if not isinstance(lv, int):
                model.add(lv == 1)
    kept = {rid: [(i, k) for i, k in seq if i not in free] for rid, seq in orders_from_periodic(problem, hint).items()}
    src, dst, w, h = order_arcs(kept, [t.modes[hint.modes[t.tid]].duration_ns for t in dag.tasks])
    for i, j, wi, hi in zip(src.tolist(), dst.tolist(), w.tolist(), h.tolist(), strict=True):
        model.add(s[j] + hi * lam >= s[i] + wi)
    return len(src)


def solve_periodic_cpsat(problem: PeriodicProblem, hint: PeriodicSchedule | None, *, time_limit_s: float = 10.0,
                         workers: int = 2, seed: int = 0, latency_weight: float = 0.0,
                         deterministic: bool = False, load_bound: int | None = None,
                         resources: bool | frozenset[int] = True, cuts: bool = True, fixed_ns: int | None = None,
                         log: bool = False, deadline: float | None = None,
                         free: Sequence[int] | None = None,
                         ) -> tuple[PeriodicSchedule | None, dict[str, Any]]:
    """Minimise Lambda (see the module docstring). Returns (schedule, info) where info holds
    status, bound_ns (on Lambda), wall_s and the solver's counters.

    ``resources=False`` drops the NoOverlap constraints but keeps the load cuts: the
    *load + recurrence relaxation* (modes trade resource load against the micro-batch's chain);
    a frozenset of resource ids keeps NoOverlap on those resources only (a tighter relaxation,
    e.g. one GPU's gpu/hbm/pim; with ``fixed_ns`` an INFEASIBLE answer certifies Lambda* >
    fixed_ns just as for the full model). A relaxation returns no schedule; ``info["bound_ns"]`` is a valid bound and ``info["modes"]`` the
    relaxation's best modes (a good start for modulo list scheduling). ``deadline`` (a
    ``time.perf_counter()`` value) caps the solve so that building the model counts too.

    ``free`` (task ids; needs ``hint``): a large neighbourhood of the hint. Every other task keeps
    its mode, and on every resource the other tasks keep the hint's cyclic order, as difference
    constraints ``s_j + h lam >= s_i + d_i`` (the arcs of
    :func:`sieveopt.periodic_search.shortest_superperiod`, valid at every Lambda); the free tasks
    choose their modes and their places among them (the NoOverlap constraints stay). A restriction
    of the full model, so every solution is a valid periodic schedule; the returned bound is
    then the neighbourhood's, *not* a bound on the problem (``info["bound_ns"]`` is the load bound)."""
    t0 = time.perf_counter()
    dag = problem.dag
    n = len(dag.tasks)
    rec_lb = recurrence_bound_ns(problem)
    if load_bound is None:
        load_bound = load_bound_ns(problem, time_limit_s=min(5.0, time_limit_s / 4), workers=workers, seed=seed)[0]
    lb = max(rec_lb, load_bound, 1)
    if fixed_ns is not None:  # feasibility of one Lambda (see prove_superperiod_bound)
        if fixed_ns < lb:
            return None, {"status": INFEASIBLE, "bound_ns": lb, "wall_s": time.perf_counter() - t0,
                          "static": True}
        lb, hint = int(fixed_ns), None
        ub = lb
    elif hint is not None:
        ub = int(hint.superperiod_ns)
    else:
        ub = int(sum(max(c.duration_ns for c in t.modes.values()) for t in dag.tasks) +
                 sum(e.lag_ns for e in dag.edges) + 1)
    if lb > ub:
        raise RuntimeError(f"periodic bound {lb} ns above a feasible Lambda {ub} ns (a bug)")
    H = COPIES * ub
    model = cp_model.CpModel()
    lam: Any = lb if fixed_ns is not None else model.new_int_var(lb, ub, "lam")
    s = [model.new_int_var(0, H, f"s{t}") for t in range(n)]
    e: list[Any] = [None] * n
    lit: list[dict[str, Any]] = [dict() for _ in range(n)]
    by_res: dict[int, list[Any]] = {}
    copies: list[tuple[Any, int, int]] = []  # (copy start, task, k): hinted with the rest
    for t in dag.tasks:
        i = t.tid
        if t.has_choice:
            for m in t.modes:
                lit[i][m] = model.new_bool_var(f"x{i}_{m}")
            model.add_exactly_one(lit[i].values())
            e[i] = model.new_int_var(0, H, f"e{i}")
            model.add(e[i] == s[i] + sum(c.duration_ns * lit[i][m] for m, c in t.modes.items()))
        else:
            (m, c), = t.modes.items()
            lit[i][m] = 1
            e[i] = s[i] + c.duration_ns
        model.add(e[i] <= COPIES * lam)
        for m, c in t.modes.items():
            if c.duration_ns <= 0 or not c.resources or not resources:
                continue
            if not isinstance(resources, bool) and not resources.intersection(c.resources):
                continue
            for k in range(COPIES):
                if k == 0:
                    st_k = s[i]
                else:
                    st_k = model.new_int_var(0, H + COPIES * ub, f"c{i}_{m}_{k}")
                    model.add(st_k == s[i] + k * lam)
                    copies.append((st_k, i, k))
                if isinstance(lit[i][m], int):
                    iv = model.new_fixed_size_interval_var(st_k, c.duration_ns, f"i{i}_{m}_{k}")
                else:
                    iv = model.new_optional_fixed_size_interval_var(st_k, c.duration_ns, lit[i][m], f"i{i}_{m}_{k}")
                for rid in c.resources:
                    by_res.setdefault(rid, []).append(iv)
    for rid, ivs in by_res.items():
        if not isinstance(resources, bool) and rid not in resources:
            continue
        cap = dag.resources[rid].capacity
        if cap == 1:
            model.add_no_overlap(ivs)
        else:
            model.add_cumulative(ivs, [1] * len(ivs), cap)
    for edge in dag.edges:
        lv = 1 if edge.if_mode is None else lit[edge.if_mode[0]].get(edge.if_mode[1])
        if lv is None:
            continue
        c = model.add(s[edge.dst] >= e[edge.src] + edge.lag_ns)
        if not isinstance(lv, int):
            c.only_enforce_if(lv)
    for r in problem.recurrences:
        model.add(s[r.dst] + lam >= e[r.src] + r.lag_ns)
    # Redundant load cuts (the ideal-overlap bound, per resource).
    _add_load_cuts(model, dag, lit, lam)
    if free is not None:
        if hint is None:
            raise ValueError("solve_periodic_cpsat(free=...) needs a hint (the neighbourhood's centre)")
        _keep_outside(model, problem, hint, set(int(i) for i in free), s, lit, lam)
    # Redundant chain-load cuts (sieveopt.periodic_bounds: a micro-batch's chain with its own
    # work on one resource serialised between two backbone tasks).
    ncuts = 0
    if cuts:
        for cut in chain_cuts(problem):
            work = [c.duration_ns * lit[i][m] for i in cut.tasks for m, c in dag.tasks[i].modes.items()
                    if cut.resource in c.resources and c.duration_ns]
            model.add(s[cut.b] >= e[cut.a] + cut.offset_ns + sum(work))
            ncuts += 1
    # Objective.
    spans = []
    if latency_weight > 0:
        for (li, mb) in sorted({(t.layer, t.microbatch) for t in dag.tasks}):
            ids = [t.tid for t in dag.tasks if (t.layer, t.microbatch) == (li, mb)]
            lo = model.new_int_var(0, H, f"lo{li}_{mb}")
            hi = model.new_int_var(0, H, f"hi{li}_{mb}")
            model.add_min_equality(lo, [s[i] for i in ids])
            model.add_max_equality(hi, [e[i] for i in ids])
            spans.append(hi - lo)
        nslots = max(1, len(spans))
        scale = 1000
        model.minimize(scale * nslots * lam + int(round(scale * latency_weight)) * sum(spans))
    elif fixed_ns is None:
        model.minimize(lam)
    if hint is not None:
        hs = hint.start_ns - int(hint.start_ns.min())
        if int((hint.end_ns - int(hint.start_ns.min())).max()) <= COPIES * ub:
            model.add_hint(lam, ub)
            for t in range(n):
                model.add_hint(s[t], int(hs[t]))
                if dag.tasks[t].has_choice:
                    model.add_hint(e[t], int(hs[t] + hint.end_ns[t] - hint.start_ns[t]))
                for m, lv in lit[t].items():
                    if not isinstance(lv, int):
                        model.add_hint(lv, hint.modes[t] == m)
            for st_k, t, k in copies:  # a complete hint: CP-SAT checks it instead of repairing it
                model.add_hint(st_k, int(hs[t]) + k * ub)
    build_s = time.perf_counter() - t0
    limit = float(time_limit_s)
    if deadline is not None and not deterministic:
        limit = max(0.1, min(limit, deadline - time.perf_counter()))
    solver = make_solver(workers=workers, seed=seed, time_limit_s=limit, deterministic=deterministic, log=log)
    st = solve_by(solver, model, None if deterministic else deadline)
    status = _STATUS.get(st, UNKNOWN)
    if fixed_ns is not None:
        feas = None
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE) and resources is True:  # a relaxation's is no schedule
            modes = chosen_modes(solver, lit)
            starts = np.array([solver.value(s[t]) for t in range(n)], dtype=np.int64)
            ends = np.array([starts[t] + dag.tasks[t].modes[modes[t]].duration_ns for t in range(n)], dtype=np.int64)
            feas = PeriodicSchedule(modes, starts, ends, int(fixed_ns), problem.window_layers, "cpsat",
                                    {"method": "cpsat-periodic-fixed"})
        return feas, {"status": status, "wall_s": time.perf_counter() - t0, "static": False,
                      "deterministic_s": solver.deterministic_time}
    sched: PeriodicSchedule | None = None
    bound = lb
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        modes = chosen_modes(solver, lit)
        starts = np.array([solver.value(s[t]) for t in range(n)], dtype=np.int64)
        ends = np.array([starts[t] + dag.tasks[t].modes[modes[t]].duration_ns for t in range(n)], dtype=np.int64)
        if resources is not True:  # a relaxation: a bound and modes, no schedule
            bound = max(lb, int(math.ceil(solver.best_objective_bound - 1e-9))) if latency_weight == 0 else lb
            return None, {"status": _STATUS.get(st, UNKNOWN), "bound_ns": bound, "modes": modes,
                          "value_ns": int(solver.value(lam)), "wall_s": time.perf_counter() - t0}
        sched = PeriodicSchedule(modes, starts, ends, int(solver.value(lam)), problem.window_layers, "cpsat",
                                 {"method": "cpsat-periodic"})
        if latency_weight == 0 and free is None:
            bound = max(lb, int(math.ceil(solver.best_objective_bound - 1e-9)))
    from_hint = False
    if hint is not None and (sched is None or hint.superperiod_ns < sched.superperiod_ns or
                             (latency_weight > 0 and hint.superperiod_ns <= sched.superperiod_ns and
                              hint.latency_ns(dag) < sched.latency_ns(dag))):
        sched = PeriodicSchedule(hint.modes, hint.start_ns.copy(), hint.end_ns.copy(), hint.superperiod_ns,
                                 hint.window_layers, "cpsat", dict(hint.meta, from_hint=True, hint_policy=hint.policy))
        from_hint = True
        if status == UNKNOWN:
            status = FEASIBLE
    if sched is not None:
        bound = min(bound, sched.superperiod_ns)
        if bound == sched.superperiod_ns:
            status = OPTIMAL
        elif free is not None and status == OPTIMAL:
            status = FEASIBLE  # optimal in the neighbourhood only
        if not check_periodic(sched, problem).ok:  # defensive: never return an unchecked schedule
            raise RuntimeError("cpsat periodic schedule failed check_periodic (a bug)")
    info = {"status": status, "bound_ns": bound, "wall_s": time.perf_counter() - t0, "build_s": build_s,
            "solver_status": solver.status_name(st), "load_bound_ns": load_bound, "recurrence_bound_ns": rec_lb,
            "hint_superperiod_ns": None if hint is None else hint.superperiod_ns,
            "hint_policy": None if hint is None else hint.policy, "from_hint": from_hint,
            "workers": solver.parameters.num_workers, "seed": seed, "latency_weight": latency_weight,
            "num_conflicts": solver.num_conflicts, "copies": COPIES, "chain_cuts": ncuts}
    return sched, info




def probe_superperiod(problem: PeriodicProblem, lower_ns: int, best: PeriodicSchedule, *, time_limit_s: float,
                      workers: int = 2, seed: int = 0, tolerance: float = 0.001, deterministic: bool = False,
                      ) -> tuple[int, PeriodicSchedule, dict[str, Any]]:
    """Bisection on Lambda with fixed-Lambda CP-SAT feasibility runs (returns bound, best, info).

    With Lambda a constant the copies ``s_i + k Lambda`` are plain offsets and CP-SAT's NoOverlap
    propagation is far stronger than with a variable Lambda: a feasible probe is a better
    schedule, an INFEASIBLE probe at Lambda = x certifies ``Lambda* >= x + 1``. That certificate
    is valid because feasibility is *monotone* in Lambda: map every time ``t = q Lambda + r``
    (0 <= r < Lambda) of the unrolled schedule to ``q Lambda' + r`` for Lambda' > Lambda. The map
    never shrinks the distance between two times (``(q2 - q1) Lambda' + r2 - r1 >=
    (q2 - q1) Lambda + r2 - r1`` when q2 >= q1), so starting every task at the image of its start
    keeps every precedence and recurrence lag and every pair of disjoint intervals disjoint, and
    the result repeats every Lambda'. A probe that ends UNKNOWN proves nothing: the certified
    bound stays, and the next probe moves halfway towards the best known Lambda."""
    t0 = time.perf_counter()
    lo = int(lower_ns)            # certified: Lambda* >= lo
    hi = int(best.superperiod_ns)  # feasible
    try_lo = lo
    probes: list[tuple[int, str]] = []
    spent = 0.0  # deterministic: CP-SAT's deterministic time, so the probes do not depend on the clock
    while hi - try_lo > max(1, int(tolerance * hi)):
        left = time_limit_s - (spent if deterministic else time.perf_counter() - t0)
        if left < 0.5:
            break
        mid = (try_lo + hi) // 2
        ps, info = solve_periodic_cpsat(problem, None, time_limit_s=min(left, max(2.0, time_limit_s / 4)),
                                        workers=workers, seed=seed, fixed_ns=mid, load_bound=lo,
                                        deterministic=deterministic,
                                        deadline=None if deterministic else t0 + time_limit_s)
        probes.append((mid, info["status"]))
        spent += info.get("deterministic_s", 0.0)
        if ps is not None and check_periodic(ps, problem).ok:
            hi, best = mid, ps
        elif info["status"] == INFEASIBLE:
            lo = try_lo = mid + 1
        else:
            try_lo = mid
    return lo, best, {"probes": probes, "wall_s": time.perf_counter() - t0}


def window_lns(problem: PeriodicProblem, ps: PeriodicSchedule, *, load_bound: int, deadline: float | None = None,
               width: float = 0.25, step_s: float = 3.0, max_steps: int = 64, workers: int = 2, seed: int = 0,
               deterministic: bool = False) -> tuple[PeriodicSchedule, dict[str, Any]]:
    """Large-neighbourhood search on *time windows* of a periodic schedule: the tasks whose start
    (mod Lambda) lies in ``[t, t + width Lambda)`` are freed (modes and places), every other task
    keeps its mode and its resources' cyclic orders (:func:`solve_periodic_cpsat` with ``free``),
    and CP-SAT minimises Lambda for ``step_s``. Windows slide by half a width around the cycle;
    an improvement is compacted and the sweep goes on from it. Stops after a full sweep without
    gain, ``max_steps`` or ``deadline``. Never longer than ``ps``. ``deterministic``: ``step_s``
    is CP-SAT's deterministic time and no deadline applies (tests)."""
    t0 = time.perf_counter()
    cur = ps
    steps: list[tuple[float, int, int, str]] = []
    offset, since_gain = 0.0, 0
    per_sweep = max(1, int(round(2 / width)))
    while len(steps) < max_steps and since_gain < per_sweep:
        left = step_s if deadline is None or deterministic else min(step_s, deadline - time.perf_counter())
        if left < min(0.3, step_s):
            break
        lam = int(cur.superperiod_ns)
        pos = (np.asarray(cur.start_ns, dtype=np.int64) - int(offset * lam)) % lam
        free = np.flatnonzero(pos < int(width * lam)).tolist()
        if free:
            out, info = solve_periodic_cpsat(problem, cur, time_limit_s=left, workers=workers, seed=seed + len(steps),
                                             load_bound=load_bound, free=free, deterministic=deterministic,
                                             deadline=None if deterministic else deadline)
            steps.append((offset, len(free), int(out.superperiod_ns) if out is not None else lam, info["solver_status"]))
            if out is not None and out.superperiod_ns < cur.superperiod_ns:
                cur = compact(problem, out)
                since_gain = 0
            else:
                since_gain += 1
        else:
            since_gain += 1
        offset = (offset + width / 2) % 1.0
    return cur, {"steps": steps, "wall_s": time.perf_counter() - t0, "from_ns": int(ps.superperiod_ns),
                 "to_ns": int(cur.superperiod_ns)}


#: Share of the wall-clock budget left after the bounds that goes to the incumbent search
#: (:func:`sieveopt.periodic_search.search_incumbent`); CP-SAT and the probes get the rest.
SEARCH_SHARE = 0.75


def local_search_budget(num_tasks: int) -> int:
    """Cap on the evaluations of the descent race (:func:`sieveopt.periodic_search.search_incumbent`):
    ``min(100000, 2e10 / tasks^2)`` (one evaluation costs about O(tasks + edges) plus a few
    Bellman-Ford passes: 3.8 ms on GPT-OSS's 378 tasks, 18 ms on Qwen3.5's 2214). Under
    :func:`solve_overlap_cpsat` the wall-clock deadline normally ends the descent first; the cap
    only bounds runs without one."""
    return max(200, min(100_000, int(2e10 / max(1, num_tasks) ** 2)))


def solve_overlap_cpsat(problem: PeriodicProblem, policy: str = "cpsat", *, time_limit_s: float = 10.0,
                        workers: int = 2, seed: int = 0, latency_weight: float = 0.0,
                        hints: dict[str, Any] | None = None) -> Any:
    """CP-SAT under ``problem.execution`` as an :class:`sieveopt.overlap.OverlapResult`.

    ``ideal``: the minimum over all modes of the busiest resource's load (a bound). ``microbatch``:
    the periodic model hinted with the incumbent search's best schedule, searched from the
    heuristics' periodic schedules and the constructions of the phase-balanced, the heuristics',
    the load-optimal and a load + recurrence relaxation's modes (the relaxation's bound also
    tightens ours)."""
    from sieveopt.overlap import HINT_POLICIES, OverlapResult, _checked, solve_overlap

    ex = problem.execution
    L = problem.window_layers
    dag = problem.dag
    t0, cpu0 = time.perf_counter(), time.process_time()
    from sieveopt.overlap import plan_modes
    hints = dict(hints or {})
    # the heuristics' modes: from their hints when given (re-planning them costs 15 s of the
    # budget on Qwen3.5 x8, B = 256), else planned here
    seed_modes = [hints[p].schedule.modes if p in hints and hints[p].schedule is not None else plan_modes(problem, p)[0]
                  for p in HINT_POLICIES]
    # ``ideal`` is the load model alone: it gets the whole time limit.
    load_limit_s = time_limit_s if ex.overlap == "ideal" else min(5.0, max(1.0, time_limit_s / 4))
    lb, best_load, load_modes = load_bound_ns(problem, time_limit_s=load_limit_s, workers=workers, seed=seed,
                                              hint_modes=seed_modes)
    if ex.overlap == "ideal":
        return OverlapResult(policy, ex, None, best_load / L, None, lb / L,
                             OPTIMAL if lb == best_load else FEASIBLE, None, None, time.perf_counter() - t0,
                             {"load_bound_ns": lb, "load_best_ns": best_load})
    cands: list[PeriodicSchedule] = []
    for p in HINT_POLICIES:
        if p not in hints:
            hints[p] = solve_overlap(problem, p)
        if hints[p].schedule is not None:
            cands.append(hints[p].schedule)
    # The load optimum's and the relaxation's modes go to the incumbent search as mode sets (it
    # builds their staggered constructions while its construction time lasts): a modulo list
    # schedule of each cost 6 s of the budget on Qwen3.5 x8, B = 256 (2214 tasks) and was never
    # the best start on the paper's configurations.
    extra: list[tuple[tuple[str, ...], str]] = []
    if load_modes is not None:
        extra.append((tuple(load_modes), "load-optimal"))
    hint_mls_ns = int(min(c.superperiod_ns for c in cands))
    # Load + recurrence relaxation: a stronger bound, and modes that respect the chain.
    _, relax = solve_periodic_cpsat(problem, min(cands, key=lambda s: s.superperiod_ns),
                                    time_limit_s=min(10.0, max(1.0, time_limit_s / 6)),
                                    workers=workers, seed=seed, load_bound=lb, resources=False)
    lb = max(lb, relax["bound_ns"])
    if relax.get("modes") is not None:
        extra.append((tuple(relax["modes"]), "relaxation"))
    elapsed = {"bounds_and_candidates": time.perf_counter() - t0}
    # Incumbent search (periodic_search): staggered constructions of the phase-balanced modes
    # and of every candidate's modes, staggered-slot orders, the descent from the best; a share
    # of what is left of the wall-clock budget, the rest to CP-SAT and the probes.
    # reserve: the final compaction and unrolled check (about 1 ms a task) and 2 % for the
    # overruns of a loaded machine (solver stops, thread start-up)
    def end_by(share: float) -> float:  # the reserve grows as the CPU share falls
        return t0 + time_limit_s - ((0.3 + 1e-3 * len(dag.tasks)) / share + 0.02 * time_limit_s)

    deadline = end_by(cpu_share(t0, cpu0))
    now = time.perf_counter()
    hint, search = search_incumbent(problem, cands, extra_modes=extra,
                                    deadline=now + SEARCH_SHARE * max(0.0, deadline - now),
                                    max_evaluations=local_search_budget(len(dag.tasks)),
                                    phase_model_s=min(5.0, max(0.5, time_limit_s / 12)), workers=workers, seed=seed)
    hint_phase_ns = int(search["before_descent_ns"])
    elapsed["search"] = time.perf_counter() - t0
    probe = latency_weight == 0  # the Lambda-only objective: half the time to fixed-Lambda probes
    # A starved process (share f of a core) stretches every chunk of CP-SAT's work by 1/f, and
    # CP-SAT checks its wall-clock limit only between chunks (measured: a 6 s limit ended at
    # 11 s wall at load 6-8 on 2 cores): CP-SAT and the probes get f times what is left, the
    # rest is headroom for that overrun; ``solve_by`` stops them at the deadline.
    share = cpu_share(t0, cpu0)
    deadline = min(deadline, end_by(share))
    remaining = max(0.5, deadline - time.perf_counter())
    ps, info = solve_periodic_cpsat(problem, hint, time_limit_s=share * (remaining / 2 if probe else remaining),
                                    workers=workers, seed=seed, latency_weight=latency_weight, load_bound=lb,
                                    deadline=deadline)
    info["cpu_share"] = share
    info["relaxation_bound_ns"] = relax["bound_ns"]
    info["incumbent_search"] = search
    elapsed["cpsat"] = time.perf_counter() - t0
    left = deadline - time.perf_counter()
    # a probe builds a model like the main one: no probe when its build would overrun the budget
    if probe and info["status"] != OPTIMAL and left >= 0.5 + 2 * info.get("build_s", 0.0):
        plo, pbest, pinfo = probe_superperiod(problem, int(info["bound_ns"]), ps, time_limit_s=share * left,
                                              workers=workers, seed=seed)
        info.update(probe_bound_ns=plo, probes=pinfo["probes"], probe_wall_s=pinfo["wall_s"],
                    main_bound_ns=info["bound_ns"], main_superperiod_ns=ps.superperiod_ns)
        if pbest is not ps:
            ps = pbest
            info["from_hint"] = False
        info["bound_ns"] = max(int(info["bound_ns"]), plo)
        info["status"] = OPTIMAL if info["bound_ns"] >= ps.superperiod_ns else FEASIBLE
    before = int(ps.superperiod_ns)
    if latency_weight == 0:  # Lambda-only objective: the same orders at their shortest superperiod
        ps = compact(problem, ps)
    info.update(hint_modulo_list_ns=hint_mls_ns, hint_phase_order_ns=hint_phase_ns, hint_local_search_ns=int(hint.superperiod_ns),
                compacted_from_ns=before)
    if int(info["bound_ns"]) >= ps.superperiod_ns:
        info["status"] = OPTIMAL
    elapsed["probes"] = time.perf_counter() - t0
    ok = _checked(problem, ps)
    elapsed["checked"] = time.perf_counter() - t0
    info["elapsed_s"] = elapsed  # since the call started, at the end of each step
    return OverlapResult(policy, ex, ps, ps.period_ns, ps.latency_ns(dag), info["bound_ns"] / L, info["status"],
                         ok, None, time.perf_counter() - t0, info)


__all__ = ["window_lns", "add_slot_cuts", "load_bound_ns", "local_search_budget", "probe_superperiod", "slot_bound_ns", "solve_overlap_cpsat",
           "solve_periodic_cpsat"]
