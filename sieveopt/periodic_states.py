"""Integral joint-state model: an incumbent construction from one path of the joint-phase
relaxation (issue 11, round 9).

Why. The phase model (:func:`sieveopt.periodic_search.phase_balanced_modes`) puts every task in
one of 2L phases *shared* by both micro-batches, so the micro-batches are offset by whole phases.
The joint-phase path relaxation (:mod:`sieveopt.periodic_phase_bound`) gives each micro-batch its
own 2L phases whose boundaries interleave on the circle (a *path* of 4L states) and reaches the
load bound, but only fractionally (a task's work may be split over states). This module is the
integral version of one path, used as a construction:

* ``tau_s`` integer state lengths, ``Lambda = sum_s tau_s`` (minimised);
* every task goes *whole* into exactly one state of its allowed phases (:func:`phase_map`; a
  micro-batch's own phase boundaries fix which states its phase spans) and one mode (one
  Boolean per (state, mode) option, exactly one per task);
* per state and capacity-1 resource, the work assigned to the state is at most ``tau_s``;
* precedences: a task's state is not earlier than its predecessor's in its micro-batch's own
  timeline (recurrences one cycle later); inside one state an offset ``o_x`` from the state's
  start with ``o_x + d_x <= tau_s`` and, for an edge whose two ends share a state,
  ``o_y >= o_x + d_x + lag``; a lag from a task in an earlier state is taken from the state's
  start (sufficient);
* the boundary separations of :func:`phase_map` over the states of the phases they span;
* *chain-only* (``disjunctive=False``): no resource order inside a state (optimistic: the value
  is neither a bound nor a schedule's superperiod); *sequenced* (``disjunctive=True``): one task
  at a time per state and capacity-1 resource (optional intervals, no-overlap): when every
  resource has capacity 1 (the toolkit's periodic problems) its solution is a periodic schedule
  at its value.

CP-SAT needs a complete feasible hint to do well: :func:`phase_states` reads the phase model's
solution as a solution of :func:`alternating_path`, and :func:`two_stage` completes it, solves the
chain-only model from it, sequences the assignments with the assignment fixed (one small job
shop per state) and optionally refines the sequenced model with the assignment free.

:func:`state_schedule` turns a solution into per-resource cyclic orders (a timeline at the
model's starts, ties in topological order) and times them exactly with
:func:`~sieveopt.periodic_search.shortest_superperiod`: never longer than a sequenced solution's
value; for a chain-only one it can exceed the value (the order inside a state on one resource is
ignored) or fall below it (tasks may cross state boundaries once timed). M = 2 only, as the
relaxation. Measured (docs/design-notes/overlap.md, "Round 9"): on GPT-OSS x4 B = 64 a better
construction than the phase construction (87.68 vs 92.40 us; 86.04 vs 88.97 after a 30 s
descent) but no incumbent below the pipeline's 85.33 us; not wired into the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt._modulo_numba import dag_longest
from sieveopt.periodic import PeriodicProblem, PeriodicSchedule
from sieveopt.periodic_phase_bound import (
    PhaseMap,
    _model,
    boundary_times,
    cyclic_paths,
    mode_columns,
    path_lp,
    phase_map,
    schedule_path,
)
from sieveopt.periodic_search import _durations, orders_from_periodic, shortest_superperiod

Path = tuple[tuple[int, int], ...]


@dataclass
class StateSolution:
    """One path's CP-SAT result: state lengths (ns), per task its (state, copy) and mode, its
    offset inside the state; ``value_ns`` = sum of the state lengths; ``status`` CP-SAT's."""

    path: Path
    tau_ns: list[int]
    state: list[int]
    copy: list[int]
    offset_ns: list[int]
    modes: tuple[str, ...]
    value_ns: int
    bound_ns: int
    status: str
    wall_s: float
    info: dict[str, Any] = field(default_factory=dict)


def unrolled_states(path: Path, m: int, phases: int) -> list[int]:
    """Micro-batch m's unrolled phase in every state of ``path``: A (m = 0) goes 0 .. P-1; B starts
    at its phase at the origin and counts on past P-1 (its phase at the origin may return at the
    end of the circle, one cycle later)."""
    out, shift, prev = [], 0, None
    for st in path:
        k = st[m]
        if prev is not None and k < prev:
            shift += phases
        out.append(k + shift)
        prev = k
    return out


def task_options(problem: PeriodicProblem, pm: PhaseMap, path: Path) -> list[list[tuple[int, int, int]]]:
    """Per task its (state, copy, timeline rank) options: state s holds unrolled phase u of its
    micro-batch when ``u = ub[s] + copy * P``; the rank ``s + copy * S`` orders one micro-batch's
    options in time. Allowed unrolled phases are ``lo .. hi-1`` of :func:`phase_map`; a task it
    leaves unconstrained (a launch: no unconditional successor) gets the P phases from its
    layer's dense phase on."""
    P, S = pm.phases, len(path)
    ub = [unrolled_states(path, m, P) for m in range(2)]
    out = []
    for t in problem.dag.tasks:
        m = pm.mb[t.tid]
        us = range(pm.lo[t.tid], pm.hi[t.tid]) if pm.constrained(t.tid) and pm.lo[t.tid] >= 0 else \
            range(2 * t.layer, 2 * t.layer + P)
        opts = []
        for u in us:
            for s in range(S):
                if (u - ub[m][s]) % P == 0:
                    c = (u - ub[m][s]) // P
                    opts.append((s, c, s + c * S))
        out.append(sorted(set(opts), key=lambda o: o[2]))
    return out


def solve_states(problem: PeriodicProblem, path: Path, *, modes: Any = None, time_limit_s: float = 10.0,
                 workers: int = 1, seed: int = 0, deterministic: bool = True, disjunctive: bool = True,
                 pm: PhaseMap | None = None, hint: StateSolution | None = None,
                 group_order: bool = True, fixed: StateSolution | None = None) -> StateSolution | None:
    """The integral state model of ``path`` (module docstring) with CP-SAT; ``modes`` fixes the
    modes (else they are free). ``deterministic``: the limit is deterministic time (repeatable).
    None when the model has no solution (or the phase map does not apply)."""
    from ortools.sat.python import cp_model

    from sieveopt.solvers._interval_model import make_solver
    from sieveopt.solvers.cpsat_run import solve_by

    t0 = time.perf_counter()
    if pm is None:
        pm, _ = phase_map(problem)
        if pm is None:
            return None
    dag = problem.dag
    S, P = len(path), pm.phases
    opts = task_options(problem, pm, path)
    hi = int(sum(max(c.duration_ns for c in t.modes.values()) for t in dag.tasks) +
             sum(e.lag_ns for e in dag.edges) + 1)
    model = cp_model.CpModel()
    tau = [model.new_int_var(0, hi, f"tau{s}") for s in range(S)]
    w: list[dict[tuple[int, str], Any]] = []   # (option index, mode) -> Boolean
    z: list[list[Any]] = []                     # option index -> Boolean
    mlit: list[dict[str, Any]] = []
    for t in dag.tasks:
        tm = [k for k in t.modes if modes is None or modes[t.tid] == k]
        wt = {(j, k): model.new_bool_var(f"w{t.tid}_{j}_{k}") for j in range(len(opts[t.tid])) for k in tm}
        model.add_exactly_one(wt.values())
        w.append(wt)
        zt = []
        for j in range(len(opts[t.tid])):
            ws = [wt[(j, k)] for k in tm]
            if len(ws) == 1:
                zt.append(ws[0])
            else:
                zj = model.new_bool_var(f"z{t.tid}_{j}")
                model.add(zj == sum(ws))
                zt.append(zj)
        z.append(zt)
        ml = {}
        for k in tm:
            ws = [wt[(j, k)] for j in range(len(opts[t.tid]))]
            if len(ws) == 1:
                ml[k] = ws[0]
            else:
                b = model.new_bool_var(f"m{t.tid}_{k}")
                model.add(b == sum(ws))
                ml[k] = b
        mlit.append(ml)
    dur = [sum(t.modes[k].duration_ns * ml[k] for k in ml) for t, ml in zip(dag.tasks, mlit, strict=True)]
    # capacity per state and resource
    load: dict[tuple[int, int], list] = {}
    for t in dag.tasks:
        for (j, k), b in w[t.tid].items():
            c = t.modes[k]
            if c.duration_ns > 0:
                for r in c.resources:
                    load.setdefault((opts[t.tid][j][0], r), []).append(c.duration_ns * b)
    caps = {r.rid: r.capacity for r in dag.resources}
    for (s, r), ts in load.items():
        model.add(sum(ts) <= caps[r] * tau[s])
    # offsets inside the state; a task ends by its state's end
    off = [model.new_int_var(0, hi, f"o{t.tid}") for t in dag.tasks]
    for t in dag.tasks:
        for j, (s, _c, _r) in enumerate(opts[t.tid]):
            model.add(off[t.tid] + dur[t.tid] <= tau[s]).only_enforce_if(z[t.tid][j])
    rank = [sum(o[2] * zz for o, zz in zip(opts[x], z[x], strict=True)) for x in range(len(dag.tasks))]

    def link(src: int, dst: int, lag: int, cycles: int, cond: Any) -> None:
        model.add(rank[src] <= rank[dst] + cycles * S)
        for k, (s2, _c2, r2) in enumerate(opts[dst]):
            same = [j for j, (s, _c, r) in enumerate(opts[src]) if s == s2 and r == r2 + cycles * S]
            for j in same:
                lits = [z[src][j], z[dst][k]] + ([] if cond is None else [cond])
                model.add(off[dst] >= off[src] + dur[src] + lag).only_enforce_if(lits)
            if lag > 0:  # the source in an earlier state: the lag from the state's start (sufficient)
                lits = [z[dst][k]] + [z[src][j].Not() for j in same] + ([] if cond is None else [cond])
                model.add(off[dst] >= lag).only_enforce_if(lits)

    for e in dag.edges:
        cond = None
        if e.if_mode is not None:
            cond = mlit[e.if_mode[0]].get(e.if_mode[1])
            if cond is None:
                continue  # the mode is excluded: the edge is inactive
        link(e.src, e.dst, e.lag_ns, 0, cond)
    for e in problem.recurrences:
        link(e.src, e.dst, e.lag_ns, 1, None)
    # order restriction inside a group (same slot, GPU, kind, mode set and options; e.g. one
    # GPU's experts of one slot): its tasks take states in tid order and, sharing a state and a
    # fixed mode, run in tid order. A restriction (the tasks differ in duration) that keeps the
    # search small.
    groups: dict[tuple, list[int]] = {}
    for t in dag.tasks:
        if group_order and len(opts[t.tid]) > 1:
            key = (t.layer, t.microbatch, t.gpu, str(t.kind), tuple(sorted(mlit[t.tid])), tuple(opts[t.tid]))
            groups.setdefault(key, []).append(t.tid)
    for key, ids in groups.items():
        for a, b in zip(ids, ids[1:], strict=False):
            model.add(rank[a] <= rank[b])
            if len(key[4]) == 1:
                for j in range(len(opts[a])):
                    model.add(off[b] >= off[a] + dur[a]).only_enforce_if([z[a][j], z[b][j]])
    if disjunctive:  # one task at a time per state and capacity-1 resource
        ivs: dict[tuple[int, int], list] = {}
        for t in dag.tasks:
            for (j, k), b in w[t.tid].items():
                c = t.modes[k]
                if c.duration_ns > 0:
                    iv = model.new_optional_fixed_size_interval_var(off[t.tid], c.duration_ns, b, f"i{t.tid}_{j}_{k}")
                    for r in c.resources:
                        if caps[r] == 1:
                            ivs.setdefault((opts[t.tid][j][0], r), []).append(iv)
        for v in ivs.values():
            if len(v) > 1:
                model.add_no_overlap(v)
    ub = [unrolled_states(path, m, P) for m in range(2)]
    for (m, p, q), v in pm.sep.items():
        span = range(S) if q - p >= P else [s for s in range(S) if (ub[m][s] % P) in {k % P for k in range(p, q)}]
        model.add(sum(tau[s] for s in span) >= v)
    if fixed is not None:
        for t in dag.tasks:
            want = (fixed.state[t.tid], fixed.copy[t.tid])
            for (j, k), b in w[t.tid].items():
                if opts[t.tid][j][:2] != want or k != fixed.modes[t.tid]:
                    model.add(b == 0)
    model.minimize(sum(tau))
    if hint is not None and tuple(hint.path) == tuple(path):
        for x, v in zip(tau, hint.tau_ns, strict=True):
            model.add_hint(x, v)
        for t in dag.tasks:
            j = next((j for j, o in enumerate(opts[t.tid]) if o[:2] == (hint.state[t.tid], hint.copy[t.tid])),
                     next((j for j, o in enumerate(opts[t.tid]) if o[0] == hint.state[t.tid]), None))
            if j is None:
                continue
            for (jj, k), b in w[t.tid].items():
                model.add_hint(b, jj == j and k == hint.modes[t.tid])
            if hint.offset_ns[t.tid] >= 0:
                model.add_hint(off[t.tid], hint.offset_ns[t.tid])
    solver = make_solver(workers=workers, seed=seed, time_limit_s=time_limit_s, deterministic=deterministic)
    st = solve_by(solver, model)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    state, copy, chosen = [], [], []
    for t in dag.tasks:
        (j, k) = next(key for key, b in w[t.tid].items() if solver.boolean_value(b))
        state.append(opts[t.tid][j][0])
        copy.append(opts[t.tid][j][1])
        chosen.append(k)
    taus = [int(solver.value(x)) for x in tau]
    return StateSolution(tuple(path), taus, state, copy, [int(solver.value(o)) for o in off], tuple(chosen),
                         int(sum(taus)), int(solver.best_objective_bound), solver.status_name(st),
                         time.perf_counter() - t0, {"booleans": sum(len(x) for x in w)})


def schedule_states(problem: PeriodicProblem, pm: PhaseMap, ps: PeriodicSchedule) -> StateSolution:
    """A periodic schedule read as a state solution of the path it follows
    (:func:`schedule_path`): state lengths, per task the state its start lies in (a positive-length
    one), its copy (cycles from the origin) and its offset from the state's start. A hint for
    :func:`solve_states`; tasks that cross a state boundary make it infeasible for the model."""
    path, lengths = schedule_path(pm, ps)
    lam = int(ps.superperiod_ns)
    origin = boundary_times(pm, ps)[0][0]
    T = np.concatenate([[0], np.cumsum(lengths)])
    state, copy, offset = [], [], []
    for x in range(len(ps.modes)):
        rel = int(ps.start_ns[x]) - origin
        c, r = divmod(rel, lam)
        s = next(k for k in range(len(lengths)) if T[k] <= r < T[k + 1])
        state.append(s)
        copy.append(c)
        offset.append(r - int(T[s]))
    return StateSolution(path, [int(v) for v in lengths], state, copy, offset, tuple(ps.modes), lam, 0, "SCHEDULE", 0.0)


def alternating_path(phases: int) -> Path:
    """The path of the phase model's alternating structure: B one phase behind A, every boundary
    of B at one of A's (ties: A crosses first, so every other state has length 0)."""
    out = []
    for a in range(phases):
        out.append((a, (a - 1) % phases))
        out.append((a, a) if a == phases - 1 else (a + 1, (a - 1) % phases))
    return tuple(out)


def phase_states(problem: PeriodicProblem, pm: PhaseMap, modes: Any, phase_ns: Any) -> StateSolution:
    """The phase model's solution (:func:`~sieveopt.periodic_search.phase_balanced_modes`: its
    modes and phase lengths; tasks in :func:`~sieveopt.periodic_search.task_phases`) as a state
    solution of :func:`alternating_path` (shared phase j = state 2j, the states between of length
    0; offsets unknown, -1): a hint for :func:`solve_states` whose value is the phase model's.
    A task the phase model keeps in a dense phase but the classification after the barrier
    (scheduler, dispatch) goes to the first positive-length state it may take, and so do its
    successors (the launch) when they would precede it."""
    from sieveopt.periodic_search import unrolled_phases

    P = pm.phases
    path = alternating_path(P)
    opts = task_options(problem, pm, path)
    u = unrolled_phases(problem)
    S = len(path)
    dag = problem.dag
    n = len(dag.tasks)
    state, copy, rank = [0] * n, [0] * n, [0] * n
    for x in dag.topo_order:
        t = dag.tasks[x]
        own = int(u[x]) - t.microbatch  # the micro-batch's own unrolled phase
        s = 2 * (int(u[x]) % P)
        c = (own - unrolled_states(path, t.microbatch, P)[s]) // P
        need = max((rank[e.src] for e in dag.preds[x] if e.if_mode is None or modes[e.if_mode[0]] == e.if_mode[1]),
                   default=-10 * S)
        if (s, c) not in {o[:2] for o in opts[x]} or s + c * S < need:
            # the phase model keeps the scheduler and the dispatches (so the launch after them)
            # in the dense phase; the classification puts them after the barrier: the next
            # positive-length state at or after every predecessor's
            later = [o for o in opts[x] if o[2] >= max(need, s + c * S)]
            o = min(later, key=lambda o: (o[0] % 2, o[2])) if later else max(opts[x], key=lambda o: o[2])
            s, c = o[0], o[1]
        state[x], copy[x], rank[x] = s, c, s + c * S
    tau = [0] * len(path)
    for j, v in enumerate(phase_ns):
        tau[2 * j] = int(v)
    n = len(problem.dag.tasks)
    return StateSolution(path, tau, state, copy, [-1] * n, tuple(modes), int(sum(tau)), 0, "PHASE MODEL", 0.0)


def state_timeline(problem: PeriodicProblem, sol: StateSolution) -> tuple[np.ndarray, int]:
    """A serial simulation of a state solution (start keys ns, timeline length): states in path
    order, each from its model start ``T[s]``; inside a state the tasks of both micro-batches in
    the order of their model offsets (ties topological), each at its model start ``T[s] + o_x`` or
    later: after its resources are free and
    after its predecessors of the same cycle frame that are already placed (lags included; a
    recurrence's source counts one frame earlier). A task of copy c is then keyed at its
    simulated start plus ``c`` times the timeline length."""
    dag = problem.dag
    n = len(dag.tasks)
    d = _durations(problem, sol.modes).tolist()
    T = np.concatenate([[0], np.cumsum(sol.tau_ns)]).tolist()
    pos = np.empty(n, dtype=np.int64)
    pos[list(dag.topo_order)] = np.arange(n)
    preds: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]  # (src, lag, frame shift)
    for e in dag.edges:
        if e.if_mode is None or sol.modes[e.if_mode[0]] == e.if_mode[1]:
            preds[e.dst].append((e.src, e.lag_ns, 0))
    for e in problem.recurrences:
        preds[e.dst].append((e.src, e.lag_ns, 1))
    res = [dag.tasks[i].modes[sol.modes[i]].resources if d[i] > 0 else () for i in range(n)]
    free = [0] * len(dag.resources)
    start = [0] * n
    placed = [False] * n
    for i in sorted(range(n), key=lambda i: (sol.state[i], sol.offset_ns[i], int(pos[i]))):
        s, c = sol.state[i], sol.copy[i]
        t = T[s] + sol.offset_ns[i]
        for x, lag, h in preds[i]:
            if placed[x] and sol.copy[x] - h == c:
                t = max(t, start[x] + d[x] + lag)
        for r in res[i]:
            t = max(t, free[r])
        start[i] = t
        placed[i] = True
        for r in res[i]:
            free[r] = t + d[i]
    lam = max(sol.value_ns, max(start[i] + d[i] for i in range(n)), 1)
    return np.array([start[i] + sol.copy[i] * lam for i in range(n)], dtype=np.int64), lam


def state_schedule(problem: PeriodicProblem, sol: StateSolution, policy: str = "states") -> PeriodicSchedule | None:
    """The exact periodic schedule of a state solution's orders: the cyclic order of every
    resource read from :func:`state_timeline` (made precedence-consistent inside one iteration by
    longest paths; ties in topological order) and timed by :func:`shortest_superperiod`."""
    dag = problem.dag
    n = len(dag.tasks)
    modes = sol.modes
    d = _durations(problem, modes)
    key, lam = state_timeline(problem, sol)
    e_src, e_dst, e_lag, _, _ = dag.edge_arrays
    on = dag.active_edge_mask(modes)
    dag_longest(n, e_src[on], e_dst[on], d[e_src[on]] + e_lag[on], key)
    pos = np.empty(n, dtype=np.int64)
    pos[list(dag.topo_order)] = np.arange(n)
    fine = key * n + pos  # ties in topological order
    timeline = PeriodicSchedule(modes, fine, fine + d * n, lam * n, problem.window_layers, policy)
    return shortest_superperiod(problem, modes, orders_from_periodic(problem, timeline), rank=key, policy=policy,
                                meta={"method": "states", "state_model_ns": sol.value_ns,
                                      "path": [list(x) for x in sol.path]})


def two_stage(problem: PeriodicProblem, path: Path, *, modes: Any = None, assign_limit_s: float = 2.0,
              sequence_limit_s: float = 2.0, refine_limit_s: float = 0.0, seed: int = 0,
              pm: PhaseMap | None = None, hint: StateSolution | None = None,
              ) -> tuple[StateSolution | None, StateSolution | None]:
    """The state model in stages: the assignment (states, copies, modes) from the chain-only model
    (no resource order inside a state: smaller, solved further), then the per-state order and
    state lengths with that assignment fixed and one task at a time per resource (a real schedule
    of the path). ``hint`` (a solution of the same path, e.g. :func:`phase_states`) is first
    completed with its assignment fixed and then hints the free model (the first stage is never
    worse than the completed hint); its own assignment is sequenced too and the better sequenced
    solution is kept. ``refine_limit_s`` > 0: a third stage, the sequenced model with the
    assignment free (modes as in the first stage), hinted with the kept solution (never worse).
    Returns (assignment, sequenced) solutions."""
    if pm is None:
        pm, _ = phase_map(problem)
        if pm is None:
            return None, None
    seqs: list[StateSolution] = []

    def sequence(sol: StateSolution) -> None:
        out = solve_states(problem, path, modes=sol.modes, time_limit_s=sequence_limit_s, seed=seed, pm=pm,
                           disjunctive=True, fixed=sol, group_order=False)
        if out is not None:
            seqs.append(out)

    if hint is not None and tuple(hint.path) == tuple(path):
        # complete the hint (its offsets, its shortest state lengths) with its assignment fixed, so
        # that the free model starts from a feasible point
        done = solve_states(problem, path, modes=hint.modes, time_limit_s=assign_limit_s, seed=seed, pm=pm,
                            disjunctive=False, fixed=hint, group_order=False)
        hint = done or hint
        sequence(hint)
    first = solve_states(problem, path, modes=modes, time_limit_s=assign_limit_s, seed=seed, pm=pm,
                         disjunctive=False, hint=hint, group_order=hint is None)
    if first is not None and hint is not None and hint.status in ("OPTIMAL", "FEASIBLE") and \
            hint.value_ns < first.value_ns and (modes is None or tuple(modes) == hint.modes):
        first = hint  # CP-SAT did not reach its hint
    if first is None:
        return None, None
    sequence(first)
    if not seqs:
        return first, None
    best = min(seqs, key=lambda x: x.value_ns)
    if refine_limit_s > 0:
        ref = solve_states(problem, path, modes=first.modes if modes is not None else None,
                           time_limit_s=refine_limit_s, seed=seed, pm=pm, disjunctive=True, hint=best,
                           group_order=False)
        if ref is not None and ref.value_ns < best.value_ns:
            best = ref
    return first, best


def best_paths(problem: PeriodicProblem, modes: Any, count: int = 5, pm: PhaseMap | None = None,
               cut_width: int = 2) -> list[tuple[float, Path]]:
    """The ``count`` paths with the smallest path-LP value (us) at fixed ``modes``, best first."""
    if pm is None:
        pm, _ = phase_map(problem)
        if pm is None:
            return []
    md = _model(problem, pm, cut_width)
    u = mode_columns(problem, modes)
    vals = [(path_lp(md, p, u)[0], p) for p in cyclic_paths(pm.phases)]
    vals.sort(key=lambda x: x[0])
    return vals[:count]


__all__ = ["StateSolution", "alternating_path", "best_paths", "phase_states", "schedule_states", "solve_states", "state_schedule", "state_timeline", "task_options", "two_stage", "unrolled_states"]
