"""Exact solver: the layer DAG as a CP-SAT model (OR-Tools), generic over every DAG option.

Model (one per DAG, durations in time quanta of ``time_quantum_ns``, rounded up):

* per task a start variable; per mode of a multi-mode task a Boolean (exactly one) and an optional
  fixed-size interval on the shared start; ``end = start + sum(lit * duration)``;
* per resource ``NoOverlap`` (``Cumulative`` when capacity > 1) over the intervals that hold it;
* every DAG edge ``start[dst] >= end[src] + lag`` (conditional edges enforced by the mode literal);
* ``M >= end`` of every sink; minimise M; domains capped at the hint's makespan.

Levers (switchable through ``levers=``, all on by default; see docs/design-notes/cpsat.md for what each buys):

* ``cuts``: redundant resource load cuts over (head, tail) thresholds (:mod:`.cpsat_bounds`);
* ``partition``: the per-GPU GPU/PIM split relaxation solved exactly by DP, as ``M >= LB``;
* ``serial``: heads/tails lifted by predecessors/successors that share a unary resource (the
  dispatches into a GPU share its ingress port, an expert's combines share its GPU's egress port);
* ``release``: per-GPU split bounds that keep each expert's head and tail (threshold-counting
  bound and a two-class exact split, :func:`.cpsat_bounds.count_bound`,
  :func:`.cpsat_bounds.class_partition_bound`);
* ``symmetry``: interchangeable experts (same GPU, durations, predecessors and successors) are
  ordered: GPU-mode members first, then same-mode members in start order;
* ``multi_hint``: hint with the best of several heuristics (sieve, sieve-plus, the partition
  split, all-GPU) instead of one;
* ``assign``: for experts with more than the two GPU/PIM modes (e.g. TriMoE's three tiers), the
  two-stage approach of :mod:`.cpsat_assign`: the configuration-LP bound of the n-way assignment
  (machines of capacity > 1 resources as bins), then the assignment relaxation solved exactly by
  pattern IPs (a proven bound and an assignment), whose schedule becomes a hint candidate. It
  takes at most 80 % of the time limit (on these DAGs the schedule model rarely improves on its
  hint; the stage is what closes the gap).

The returned schedule is re-timed in exact ns from CP-SAT's modes and per-resource order
(:func:`.cpsat_retime.retime`) and always passes ``check``; it is never worse than the hint.
The bound is converted back from quanta conservatively (valid lower bound in ns).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from ortools.sat.python import cp_model

from sieveopt.dag import EXPERT, TaskDAG
from sieveopt.errors import SieveoptError
from sieveopt.instance import LayerInstance
from sieveopt.listsched import list_schedule
from sieveopt.models.costmodel import MODE_GPU, CostModel
from sieveopt.schedule import Schedule, modes_from_experts
from sieveopt.solvers._interval_model import build_interval_model, make_solver
from sieveopt.solvers.base import FEASIBLE, INFEASIBLE, OPTIMAL, UNKNOWN, SolveResult
from sieveopt.solvers.cpsat_bounds import (
    choice_energy_cuts,
    choice_lp_bound,
    class_partition_bound,
    count_bound,
    heads_tails,
    load_cuts,
    partition_bound,
    static_lower_bound,
)
from sieveopt.solvers.cpsat_retime import retime
from sieveopt.solvers.cpsat_run import solve_by

ALL_LEVERS = frozenset({"cuts", "partition", "symmetry", "multi_hint", "serial", "release", "assign"})

_STATUS = {cp_model.OPTIMAL: OPTIMAL, cp_model.FEASIBLE: FEASIBLE, cp_model.INFEASIBLE: INFEASIBLE,
           cp_model.UNKNOWN: UNKNOWN}


class _Trajectory(cp_model.CpSolverSolutionCallback):
    def __init__(self, q: int, offset_ns: int = 0) -> None:
        super().__init__()
        self.q, self.points, self.t0 = q, [], time.perf_counter()

    def on_solution_callback(self) -> None:
        self.points.append((time.perf_counter() - self.t0, int(round(self.ObjectiveValue())) * self.q,
                            int(math.ceil(self.BestObjectiveBound() - 1e-9))))


def _hint_candidates(dag: TaskDAG, instance: LayerInstance, cost: CostModel, multi: bool,
                     part_modes: dict[int, str] | None) -> list[Schedule]:
    """Heuristic schedules to warm-start from (the Sieve greedy first, when it exists)."""
    from sieveopt.solvers import check_target_needs, solve

    def usable(name: str) -> bool:
        try:
            check_target_needs(name, dag)
        except SieveoptError:
            return False  # a two-sided heuristic on a DAG whose experts lack one of its sides
        return True

    out: list[Schedule] = []
    for name in (("sieve", "sieve-plus") if multi else ("sieve",)):
        if not usable(name):
            continue
        try:
            r = solve(name, dag, instance, cost)
        except (ImportError, AttributeError, ModuleNotFoundError):
            continue
        if r.schedule is not None:
            out.append(r.schedule)
    if not out and not multi and usable("sieve-plus"):
        r = solve("sieve-plus", dag, instance, cost)
        out.append(r.schedule)
    if not out:  # other targets: the policies that declare a CP-SAT warm-start rank, if usable
        from sieveopt.solvers import cpsat_hint_policies

        for name in cpsat_hint_policies():
            if usable(name) and (r := solve(name, dag, instance, cost)).schedule is not None:
                out.append(r.schedule)
                if not multi:
                    break
    if not out:  # any targets: every multi-mode task at its shortest mode
        out.append(list_schedule(dag, _shortest_modes(dag), policy="shortest-mode"))
    if multi:
        if part_modes:
            modes = list(modes_from_experts(dag, {}, default_expert=MODE_GPU))
            for t, m in part_modes.items():
                modes[t] = m
            modes = _best_attention(dag, modes)
            out.append(list_schedule(dag, modes, policy="partition-dp"))
        if all(MODE_GPU in t.modes for t in dag.tasks if t.kind == EXPERT):
            out.append(list_schedule(dag, _best_attention(dag, modes_from_experts(dag, {}, default_expert=MODE_GPU)),
                                     policy="all-gpu"))
    return out


def _shortest_modes(dag: TaskDAG) -> list[str]:
    """Every task at its shortest mode (a hint that needs no particular targets)."""
    return [min(t.modes, key=lambda m, t=t: t.modes[m].duration_ns) for t in dag.tasks]


def _best_attention(dag: TaskDAG, modes: list[str]) -> list[str]:
    """Non-expert multi-mode tasks (attention) at their shortest mode."""
    modes = list(modes)
    for t in dag.tasks:
        if t.has_choice and t.kind != EXPERT:
            modes[t.tid] = min(t.modes, key=lambda m: t.modes[m].duration_ns)
    return modes


def _symmetry_classes(dag: TaskDAG) -> list[list[int]]:
    """Groups of interchangeable multi-mode tasks (identical durations, resources and neighbours)."""
    groups: dict[tuple, list[int]] = {}
    for t in dag.tasks:
        if not t.has_choice or t.kind != EXPERT:
            continue
        preds = tuple(sorted((e.src, e.lag_ns, None if e.if_mode is None else
                              ("self" if e.if_mode[0] == t.tid else e.if_mode), ) for e in dag.preds[t.tid]))
        succs = tuple(sorted((e.dst, e.lag_ns, e.if_mode is not None) for e in dag.succs[t.tid]))
        if any(e.if_mode is not None and e.if_mode[0] != t.tid for e in dag.preds[t.tid]) or \
                any(e.if_mode is not None for e in dag.succs[t.tid]):
            continue
        key = (t.gpu, tuple(sorted((m, c.duration_ns, c.resources) for m, c in t.modes.items())), preds, succs)
        groups.setdefault(key, []).append(t.tid)
    return [g for g in groups.values() if len(g) > 1]


def solve_cpsat(dag: TaskDAG, instance: LayerInstance, cost: CostModel, *, time_limit_s: float = 10.0,
                workers: int = 2, seed: int = 0, time_quantum_ns: int = 1, deterministic: bool = False,
                hint: Any = "auto", export_path: str | None = None,
                levers: frozenset[str] | set[str] | None = None, log: bool = False) -> SolveResult:
    """Minimise the makespan of ``dag`` exactly (see module docstring).

    ``hint``: "auto" (best available heuristic; all of them with the ``multi_hint`` lever),
    "sieve", "none", or a :class:`Schedule`/:class:`SolveResult`. ``time_limit_s`` bounds the
    wall time of the whole call (model building and hints included, CP-SAT's
    ``max_time_in_seconds`` gets the rest); ``deterministic`` replaces it by
    ``max_deterministic_time = time_limit_s`` for the search alone (reproducible results)."""
    t_start = time.perf_counter()
    levers = ALL_LEVERS if levers is None else frozenset(levers)
    q = max(1, int(time_quantum_ns))
    n = len(dag.tasks)
    d_exact = dag.mode_durations_ns()
    dq = [{m: -(-d // q) for m, d in dm.items()} for dm in d_exact]
    lagq = [-(-e.lag_ns // q) for e in dag.edges]

    # Static analysis in exact ns (valid bounds) and in quanta (model cuts).
    serial = "serial" in levers
    ht_ns = heads_tails(dag, d_exact, resource_aware=serial)
    cuts_ns = load_cuts(dag, d_exact, ht_ns)
    lb_ns = static_lower_bound(dag, d_exact, ht_ns, cuts_ns) if "cuts" in levers else ht_ns.critical_path_ns
    if "cuts" in levers:
        lb_ns = max(lb_ns, choice_lp_bound(choice_energy_cuts(dag, d_exact, ht_ns)))
    part = partition_bound(dag, d_exact, ht_ns) if ("partition" in levers or "multi_hint" in levers) else None
    if part is not None and "partition" in levers:
        lb_ns = max(lb_ns, part.bound_ns)
    release_lb_ns = None
    if "release" in levers:
        cb = count_bound(dag, d_exact, ht_ns)
        cl = class_partition_bound(dag, d_exact, ht_ns)
        release_lb_ns = max([cb.bound_ns if cb else 0, *cl.values()])
        lb_ns = max(lb_ns, release_lb_ns)

    # Hint.
    hint_sched: Schedule | None = None
    if isinstance(hint, SolveResult):
        hint_sched = hint.schedule
    elif isinstance(hint, Schedule):
        hint_sched = hint
    elif hint in ("auto", "sieve"):
        cands = _hint_candidates(dag, instance, cost, "multi_hint" in levers and hint == "auto",
                                 part.modes if part else None)
        hint_sched = min(cands, key=lambda s: s.makespan_ns) if cands else None
    elif hint not in (None, "none"):
        raise ValueError(f"hint: expected 'auto', 'sieve', 'none', a Schedule or a SolveResult, got {hint!r}")
    assign_meta: dict[str, Any] = {}
    declared = hint_sched   # the heuristic hint (reported as hint_*; the assignment hint may beat it)
    if "assign" in levers and "cuts" in levers:
        lb_ns, hint_sched = _assignment_stage(dag, d_exact, ht_ns, lb_ns, hint_sched, t_start, time_limit_s,
                                              deterministic, seed, assign_meta)
    if hint_sched is not None and lb_ns > hint_sched.makespan_ns:
        raise RuntimeError(f"cpsat: static lower bound {lb_ns} ns exceeds a feasible makespan "
                           f"{hint_sched.makespan_ns} ns (a bug in the redundant cuts; disable levers)")
    hint_q: Schedule | None = None
    if hint_sched is not None:
        hint_q = retime(dag, hint_sched.modes, hint_sched.start_ns, durations=dq, lags=lagq)

    # Horizon: the hint (in quanta), else a serial upper bound.
    if hint_q is not None:
        horizon = hint_q.makespan_ns
    else:
        horizon = sum(max(d.values()) for d in dq) + sum(lagq) + 1
    im = build_interval_model(dag, dq, lagq, horizon)  # the shared core (solvers/_interval_model.py)
    model, M, start, end, lit = im.model, im.makespan, im.start, im.end, im.lit

    # Levers.
    if "cuts" in levers:
        ht_q = heads_tails(dag, dq, {i: lq for i, lq in enumerate(lagq)}, resource_aware=serial)
        for c in load_cuts(dag, dq, ht_q):
            ct = model.add(M >= c.const + sum(d * lit[t][m] for t, m, d in c.terms))
            if not c.mandatory:  # valid only when some term is present
                any_on = model.new_bool_var("")
                model.add_max_equality(any_on, [lit[t][m] for t, m, _ in c.terms])
                ct.only_enforce_if(any_on)
        for c in choice_energy_cuts(dag, dq, ht_q):
            model.add(c.capacity * M >= c.capacity * c.const + sum(d * lit[t][m] for t, m, d in c.terms))
    # A quantised schedule scaled by q is a feasible ns schedule, so OPT_q >= OPT_ns / q >= lb_ns / q.
    lb_q = -(-lb_ns // q)
    if lb_q > 0:
        model.add(M >= min(lb_q, horizon))
    nsym = 0
    if "symmetry" in levers:
        for cls in _symmetry_classes(dag):
            modes = list(dag.tasks[cls[0]].modes)
            first = modes[0]
            for a, b in zip(cls, cls[1:], strict=False):
                model.add_implication(lit[b][first], lit[a][first])  # mode `first` members come first
                for m in modes:
                    # serial resources: b after a; a resource of capacity > 1 may run both at once,
                    # so only their start order is fixed (still valid: the tasks are interchangeable)
                    serial_m = all(dag.resources[r].capacity == 1 for r in dag.tasks[a].modes[m].resources)
                    gap = dq[a][m] if serial_m else 0
                    model.add(start[b] >= start[a] + gap).only_enforce_if([lit[a][m], lit[b][m]])
                nsym += 1
            if hint_q is not None:
                hint_q = _canonical_hint(dag, hint_q, cls, first)
    model.minimize(M)

    if hint_q is not None:
        for t in range(n):
            model.add_hint(start[t], int(hint_q.start_ns[t]))
            if dag.tasks[t].has_choice:
                model.add_hint(end[t], int(hint_q.end_ns[t]))
                for m, lv in lit[t].items():
                    model.add_hint(lv, hint_q.modes[t] == m)
        model.add_hint(M, hint_q.makespan_ns)
    if export_path:
        _export(model, export_path)
    build_s = time.perf_counter() - t_start

    # --time-limit means wall seconds of this whole call: building the model and the hint
    # heuristics come out of the budget (the search gets at least 10 ms to load the hint).
    limit = float(time_limit_s) if deterministic else max(0.01, float(time_limit_s) - (time.perf_counter() - t_start))
    solver = make_solver(workers=workers, seed=seed, time_limit_s=limit, deterministic=deterministic, log=log)
    if os.environ.get("SIEVEOPT_CPSAT_FIXHINT"):
        solver.parameters.fix_variables_to_their_hinted_value = True
    traj = _Trajectory(q)
    st = solve_by(solver, model, callback=traj)
    status = _STATUS.get(st, UNKNOWN)
    wall = time.perf_counter() - t_start

    # Conservative bound in ns.
    raw_bound = int(math.ceil(solver.best_objective_bound - 1e-9)) if st in (cp_model.OPTIMAL, cp_model.FEASIBLE) \
        else lb_q
    if q == 1:
        bound_ns = max(raw_bound, lb_ns)
    else:
        # Ceil-rounded durations/lags lengthen a path of k tasks by < 2kq at most.
        bound_ns = max(lb_ns, q * raw_bound - 2 * q * n)

    schedule: Schedule | None = None
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        modes = [next(m for m, lv in lit[t].items() if (lv if isinstance(lv, int) else solver.boolean_value(lv)))
                 for t in range(n)]
        starts = [solver.value(start[t]) for t in range(n)]
        schedule = retime(dag, modes, starts, policy="cpsat")
        obj_q = int(round(solver.objective_value))
    else:
        obj_q = None
    if hint_sched is not None and (schedule is None or hint_sched.makespan_ns < schedule.makespan_ns):
        schedule = Schedule(hint_sched.modes, hint_sched.start_ns.copy(), hint_sched.end_ns.copy(), "cpsat",
                            dict(hint_sched.meta, from_hint=True))
        if status in (UNKNOWN,):
            status = FEASIBLE
    objective = schedule.makespan_ns if schedule is not None else None
    if status == OPTIMAL and q > 1 and objective is not None and objective > bound_ns:
        status = FEASIBLE  # optimal for the quantised model only
    if objective is not None:
        bound_ns = min(bound_ns, objective)
        if objective == bound_ns:
            status = OPTIMAL
    if status == INFEASIBLE and hint_sched is not None:
        status = FEASIBLE  # horizon capped at a feasible hint cannot be infeasible; defensive
    meta = {
        "time_quantum_ns": q, "workers": solver.parameters.num_workers, "seed": seed, "deterministic": deterministic,
        "levers": sorted(levers), "hint_makespan_ns": None if declared is None else declared.makespan_ns,
        "hint_policy": None if declared is None else declared.policy,
        "static_lb_ns": lb_ns, "partition_lb_ns": None if part is None else part.bound_ns,
        "release_lb_ns": release_lb_ns,
        "build_s": build_s, "solver_status": solver.status_name(st), "symmetry_pairs": nsym,
        "quantised_objective_ns": None if obj_q is None else obj_q * q,
        "quantisation_error_ns": None if obj_q is None or schedule is None else obj_q * q - objective,
        "num_booleans": sum(len(x) for x in lit if x and not isinstance(next(iter(x.values())), int)),
        "num_conflicts": solver.num_conflicts, "num_branches": solver.num_branches,
        **assign_meta,
    }
    traj_pts = tuple((t, o, max(b * q if q == 1 else 0, lb_ns)) for t, o, b in traj.points)
    return SolveResult("cpsat", schedule, status, objective, bound_ns, wall, None, traj_pts, meta)


def _assignment_stage(dag: TaskDAG, d_exact: list[dict[str, int]], ht_ns: Any, lb_ns: int,
                      hint_sched: Schedule | None, t_start: float, time_limit_s: float, deterministic: bool,
                      seed: int, meta: dict[str, Any]) -> tuple[int, Schedule | None]:
    """Stage one of the two-stage approach (``assign`` lever): a stronger bound and a better hint
    from the n-way assignment relaxation (:mod:`.cpsat_assign`); no-op without n-way experts."""
    from sieveopt.solvers.cpsat_assign import (
        assignment_schedule,
        configuration_bound,
        pattern_search,
    )

    energy = choice_energy_cuts(dag, d_exact, ht_ns)
    if not energy or hint_sched is None or lb_ns >= hint_sched.makespan_ns:
        return lb_ns, hint_sched
    budget = 0.8 * float(time_limit_s)   # the schedule model rarely improves these hints (trimoe.md)
    t0 = time.perf_counter()
    cb = configuration_bound(dag, d_exact, ht_ns, energy, lb_ns, hint_sched.makespan_ns,
                             time_limit_s=None if deterministic else 0.4 * budget)
    if cb is None:
        return lb_ns, hint_sched
    lb_ns = max(lb_ns, cb.bound_ns)
    meta["configuration_lb_ns"] = cb.bound_ns
    left = budget if deterministic else max(0.5, budget - (time.perf_counter() - t0))
    ps = pattern_search(dag, d_exact, ht_ns, energy, lb_ns, hint_sched.makespan_ns, time_limit_s=left, seed=seed,
                        deterministic=deterministic)
    if ps is None:
        return lb_ns, hint_sched
    lb_ns = max(lb_ns, ps.bound_ns)
    meta.update(assignment_lb_ns=ps.bound_ns, assignment_tests=ps.tests)
    if ps.modes:
        cand = assignment_schedule(dag, ps)
        meta["assignment_makespan_ns"] = cand.makespan_ns
        if cand.makespan_ns < hint_sched.makespan_ns:
            hint_sched = cand
    return lb_ns, hint_sched


def _canonical_hint(dag: TaskDAG, hint: Schedule, cls: list[int], first: str) -> Schedule:
    """Permute interchangeable tasks so the hint satisfies the symmetry-breaking constraints."""
    members = sorted(cls, key=lambda t: (hint.modes[t] != first, hint.modes[t], int(hint.start_ns[t])))
    modes, s, e = list(hint.modes), hint.start_ns.copy(), hint.end_ns.copy()
    for dst, src in zip(cls, members, strict=True):
        modes[dst] = hint.modes[src]
        s[dst], e[dst] = hint.start_ns[src], hint.end_ns[src]
    return Schedule(tuple(modes), s, e, hint.policy, hint.meta)


def _export(model: cp_model.CpModel, path: str) -> None:
    """Write the model proto atomically (text format unless the name ends in .pb/.bin)."""
    from sieveopt.fileio import atomic_path

    with atomic_path(path) as tmp:
        if not model.export_to_file(str(tmp)):
            raise OSError(f"could not write the CP-SAT model to {path}")
