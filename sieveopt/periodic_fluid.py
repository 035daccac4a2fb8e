"""Fluid-guided construction: periodic schedules from the joint-phase path LP's timeline (issue 11).

What. For one integral mode set, the joint-phase path relaxation
(:mod:`sieveopt.periodic_phase_bound`) solves, per path of the two micro-batches' phase
boundaries on the circle, an LP whose optimal point is a *fluid timeline*: the length of every
joint state (phase of A, phase of B) and, for every group of tasks (micro-batch, allowed phases,
resource), how much of the group's work runs in each state. This module rounds that timeline to
a real schedule: every task gets a target time on the micro-batch's unrolled time line, each
capacity-1 resource serves its tasks in the cyclic order of their targets, and
:func:`~sieveopt.periodic_search.shortest_superperiod` times those orders exactly (the max cycle
ratio; :func:`~sieveopt.periodic.check_periodic` holds by construction).

Why. Every incumbent so far keeps the *phase structure* (whole phases, one micro-batch's dense
chain beside the other's experts) and stays 4-6 % above the load bound on the multi-GPU rows,
while the path LP reaches the load bound at fixed modes ("Round 7", design note) thanks to
fractional offsets between the micro-batches and partially overlapping expert phases. If the
load bound is (nearly) attainable, a schedule following the relaxation's timeline should get
closer to it than the phase constructions; if not, where the rounding loses says which side
(bound or incumbent) is loose.

Targets (:data:`TARGETS`), per group on resource r with its tasks in topological order and its
LP work spread over its states in the micro-batch's chronological order:

* ``prop-start`` / ``prop-centre``: the group's tasks are laid out back to back over the
  group's fluid work (a task of work w at cumulative work c covers [c, c + w)); the target is
  the fluid time at which the group's work reaches c (its start) or c + w / 2 (its centre),
  the group running at a uniform rate inside each state;
* ``first``: every task of the group at the start of the group's first state with work;
* ``heaviest``: every task of the group at the start of the group's heaviest state;
* ``phase``: every task at the start of its first allowed phase (the LP's boundary times only,
  not its per-state work split: the path and the fractional offsets between the micro-batches).

A per-task LP (:func:`task_plan`: one work group per (task, resource), the same optimum) gives
``task-first`` / ``task-centre`` (:data:`TASK_TARGETS`): the task's first state with work, or
the centre of mass of its work.

A task holding several resources takes the mean of its groups' targets; a task whose phase is
not constrained (no allowed phases known) gets none and is placed by precedence alone. Targets
then go through the DAG and the recurrences (:func:`_precedence_lift`): with ``eps`` spacing a
successor is at least 1 ns after its predecessor's target, so the resource orders never
contradict an edge; with ``full`` spacing after its predecessor's target plus duration and lag
(a resource-free timing). Rounding: the cyclic orders of the targets timed exactly
(:func:`fluid_schedule`), or modulo list scheduling in target order with the LP's release
offsets (:func:`fluid_list_schedule`). The best few paths (lowest LP value) are tried.

Measured (docs/design-notes/overlap.md, "Round 9"; ``benchmarks/periodic_fluid.py``): on
GPT-OSS-120B x4, B = 64 the best construction is 27 % above the load bound and 4.5 % above
the phase construction after the same descent. The LP's timeline violates ~40 % of the DAG's
edges inside phases (experts before their dispatch, reduces before their experts), and even a
real schedule's own timeline (:func:`schedule_timeline`) rounds 9 % longer than the schedule:
the state-level timeline does not determine the orders. An analysis API, not wired into the
incumbent search.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sieveopt._modulo_numba import dag_longest, place_in_order
from sieveopt.periodic import (
    PeriodicProblem,
    PeriodicSchedule,
    _order,
    _PlacementData,
    period_floor_ns,
    smallest_period,
)
from sieveopt.periodic_phase_bound import (
    US,
    PathPrimal,
    PhaseMap,
    _model,
    boundary_times,
    cyclic_paths,
    mode_columns,
    path_lp,
    path_lp_primal,
    phase_map,
    schedule_path,
)
from sieveopt.periodic_search import _durations, compact, orders_from_periodic, shortest_superperiod

#: Target rules (module docstring).
TARGETS = ("prop-start", "prop-centre", "first", "heaviest", "phase")
#: Precedence spacing of the targets (module docstring).
SPACINGS = ("eps", "full")


@dataclass(frozen=True)
class FluidPlan:
    """The LP side of one mode set: the phase map, every path's LP value (us, ``inf`` when
    infeasible) and the optimal points of the ``best`` lowest paths (ascending value)."""

    pm: PhaseMap
    values_us: tuple[float, ...]
    primals: tuple[PathPrimal, ...]


def fluid_plan(problem: PeriodicProblem, modes: Any, *, best_paths: int = 3, cut_width: int = 2,
               paths: Any = None) -> tuple[FluidPlan | None, str]:
    """Solve the path LP at fixed ``modes`` for every path (or ``paths``) and keep the primal
    points of the ``best_paths`` lowest ones; (None, why) when the relaxation does not apply."""
    pm, why = phase_map(problem)
    if pm is None:
        return None, why
    md = _model(problem, pm, cut_width)
    u = mode_columns(problem, modes)
    all_paths = cyclic_paths(pm.phases) if paths is None else list(paths)
    values = [path_lp(md, p, u)[0] for p in all_paths]
    order = sorted((v, i) for i, v in enumerate(values) if not math.isinf(v))[:best_paths]
    prim = [path_lp_primal(md, all_paths[i], u) for _, i in order]
    return FluidPlan(pm, tuple(values), tuple(p for p in prim if p is not None)), ""


def schedule_primal(problem: PeriodicProblem, modes: Any, pm: PhaseMap, ps: PeriodicSchedule) -> PathPrimal:
    """:func:`schedule_timeline` per (micro-batch, allowed phases, resource) group."""
    return schedule_timeline(problem, modes, pm, ps)[0]


def schedule_timeline(problem: PeriodicProblem, modes: Any, pm: PhaseMap, ps: PeriodicSchedule,
                      per_task: bool = False) -> tuple[PathPrimal, list[int]]:
    """The fluid timeline of a real periodic schedule, in the LP's terms: its path and state
    lengths (:func:`~sieveopt.periodic_phase_bound.schedule_path`) and each group's work per
    state (the overlap of its tasks' intervals with the state, on the circle whose origin is A's
    boundary 0). Rounding it (:func:`fluid_schedule`) tests the rounding alone: what is lost
    from a timeline known to be feasible. ``modes``: the groups' modes (those of ``ps``).
    ``per_task``: one group per (task, resource), as :func:`task_plan`; returns the timeline and
    each group's task (empty unless ``per_task``)."""
    path, lengths = schedule_path(pm, ps)
    lam = int(ps.superperiod_ns)
    origin = boundary_times(pm, ps)[0][0]
    T = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tid, rid, dur = problem.dag.chosen_resources(tuple(modes))
    work: dict[tuple[int, tuple[int, ...], int, int], dict[int, int]] = {}
    keys: list[tuple[int, tuple[int, ...], int, int]] = []
    for t, r, d in zip(tid.tolist(), rid.tolist(), dur.tolist(), strict=True):
        if per_task and d <= 0:
            continue
        key = (pm.mb[t], pm.allowed[t], r, t if per_task else -1)
        if key not in work:
            work[key] = {}
            keys.append(key)
        if d <= 0:
            continue
        a = (int(ps.start_ns[t]) - origin) % lam
        for lo, hi in ((a, min(a + d, lam)), (0, max(0, a + d - lam))):  # the interval, wrapped once
            for st in range(len(path)):
                ov = min(hi, int(T[st + 1])) - max(lo, int(T[st]))
                if ov > 0:
                    work[key][st] = work[key].get(st, 0) + ov
    if not per_task:
        keys.sort()
    return (PathPrimal(path, lam * US, tuple(x * US for x in lengths), tuple(k[:3] for k in keys),
                       tuple(tuple((st, v * US) for st, v in sorted(work[k].items())) for k in keys)),
            [k[3] for k in keys] if per_task else [])


#: Target rules of the per-task LP (:func:`task_plan`): the start of the first state holding
#: the task's work, or the centre of mass of its work (both unrolled, on its micro-batch's line).
TASK_TARGETS = ("task-first", "task-centre")


def task_plan(problem: PeriodicProblem, modes: Any, pm: PhaseMap, paths: Any, *, cut_width: int = 2
              ) -> tuple[list[PathPrimal], list[int]]:
    """The path LP with one work group per (task, resource) instead of per (micro-batch, allowed
    phases, resource), at fixed ``modes``: the same optimum (a group's work per state splits over
    its tasks in any proportion), but its optimal point says where each *task* runs. Returns the
    optimal points of ``paths`` (infeasible ones left out) and each group's task."""
    md = _model(problem, pm, cut_width)
    tid, rid, dur = problem.dag.chosen_resources(tuple(modes))
    groups, owners = [], []
    for t, r, d in zip(tid.tolist(), rid.tolist(), dur.tolist(), strict=True):
        if d > 0:
            groups.append((pm.mb[t], pm.allowed[t], r, d * US, {}))
            owners.append(t)
    md = dataclasses.replace(md, groups=groups)
    u = mode_columns(problem, modes)
    out = [path_lp_primal(md, p, u) for p in paths]
    return [p for p in out if p is not None], owners


def _mean_target_ns(acc: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Per task the mean of its accumulated fluid times (us) in ns; -1 where it has none."""
    out = np.full(acc.size, -1, dtype=np.int64)
    has = cnt > 0
    out[has] = np.round(acc[has] / cnt[has] / US).astype(np.int64)
    return out


def task_targets_ns(problem: PeriodicProblem, pm: PhaseMap, primal: PathPrimal, owners: list[int],
                    target: str = "task-first") -> np.ndarray:
    """Every task's target start (ns, unrolled; ``-1`` when none) from a per-task optimal point
    (:func:`task_plan`), ``target`` in :data:`TASK_TARGETS`; a task on several resources takes
    the mean over them."""
    if target not in TASK_TARGETS:
        raise ValueError(f"target={target!r}: choose one of {', '.join(TASK_TARGETS)}")
    n, P = len(problem.dag.tasks), pm.phases
    tau = np.asarray(primal.tau_us, dtype=float)
    lam = float(tau.sum())
    entries = [_phase_entries(primal.path, tau, m, P) for m in range(2)]
    acc, cnt = np.zeros(n), np.zeros(n)
    for t, (m, _ph, _r), work in zip(owners, primal.groups, primal.work_us, strict=True):
        if not pm.constrained(t):
            continue
        w = dict(work)
        seq = [(st + (k // P) * lam, float(tau[s]), w.get(s, 0.0))
               for k in range(pm.lo[t], pm.hi[t]) for s, st in entries[m][k % P]]
        seq = [x for x in seq if x[2] > 1e-9]
        if not seq:
            continue
        if target == "task-first":
            v = seq[0][0]
        else:
            v = sum(x[2] * (x[0] + x[1] / 2) for x in seq) / sum(x[2] for x in seq)
        acc[t] += v
        cnt[t] += 1
    return _mean_target_ns(acc, cnt)


def _phase_entries(path: tuple[tuple[int, int], ...], tau: np.ndarray, m: int, P: int
                   ) -> list[list[tuple[int, float]]]:
    """Per phase k of micro-batch m, its states in chronological order with their unrolled start
    times (us) on m's own time line: phase 0 entered in [0, Lambda), later phases after it."""
    S = len(path)
    T = np.concatenate([[0.0], np.cumsum(tau)])
    lam = float(T[-1])
    out: list[list[tuple[int, float]]] = []
    prev = None
    for k in range(P):
        entry = [s for s in range(S) if path[s][m] == k and path[(s - 1) % S][m] != k]
        if not entry:  # m is in phase k in every state (cannot happen with P >= 2)
            entry = [0]
        e = entry[0]
        t0 = float(T[e])
        if prev is not None:
            t0 = prev + ((t0 - prev) % lam if lam > 0 else 0.0)
        prev = t0
        run, s, t = [], e, t0
        while path[s][m] == k:
            run.append((s, t))
            t += float(tau[s])
            s = (s + 1) % S
            if s == e:
                break
        out.append(run)
    return out


def fluid_targets_ns(problem: PeriodicProblem, modes: Any, pm: PhaseMap, primal: PathPrimal,
                     target: str = "prop-start") -> np.ndarray:
    """Every task's target start (ns, unrolled: may exceed Lambda; ``-1`` when none) under the
    rule ``target`` (:data:`TARGETS`)."""
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: choose one of {', '.join(TARGETS)}")
    dag = problem.dag
    n, P = len(dag.tasks), pm.phases
    tau = np.asarray(primal.tau_us, dtype=float)
    lam = float(tau.sum())
    entries = [_phase_entries(primal.path, tau, m, P) for m in range(2)]
    pos = np.empty(n, dtype=np.int64)
    pos[list(dag.topo_order)] = np.arange(n)
    tid, rid, dur = dag.chosen_resources(tuple(modes))
    on: dict[tuple[int, tuple[int, ...], int], list[tuple[int, int]]] = {}
    for t, r, d in zip(tid.tolist(), rid.tolist(), dur.tolist(), strict=True):
        if d > 0 and pm.constrained(t):
            on.setdefault((pm.mb[t], pm.allowed[t], r), []).append((t, d))
    acc = np.zeros(n)
    cnt = np.zeros(n)
    for gi, key in enumerate(primal.groups):
        tasks = on.get(key)
        if not tasks:
            continue
        m, _ph, _r = key
        t0 = tasks[0][0]
        lo, hi = pm.lo[t0], pm.hi[t0]
        work = dict(primal.work_us[gi])
        # the group's states in m's chronological order: (unrolled start us, length us, work us)
        seq = [(t + (k // P) * lam, float(tau[s]), work.get(s, 0.0))
               for k in range(lo, hi) for s, t in entries[m][k % P]]
        seq = [x for x in seq if x[2] > 1e-9]
        if not seq:
            continue
        tasks.sort(key=lambda x: pos[x[0]])
        if target == "phase":
            k0 = entries[m][lo % P][0]
            tt = {t: k0[1] + (lo // P) * lam for t, _ in tasks}
        elif target == "first":
            tt = {t: seq[0][0] for t, _ in tasks}
        elif target == "heaviest":
            h = max(seq, key=lambda x: x[2])[0]
            tt = {t: h for t, _ in tasks}
        else:
            total = sum(d for _, d in tasks) * US
            scale = sum(x[2] for x in seq) / total if total > 0 else 1.0
            tt, c = {}, 0.0
            for t, d in tasks:
                w = d * US * scale
                at = c + (w / 2 if target == "prop-centre" else 0.0)
                tt[t] = _fluid_time(seq, at)
                c += w
        for t, v in tt.items():
            acc[t] += v
            cnt[t] += 1
    return _mean_target_ns(acc, cnt)


def _fluid_time(seq: list[tuple[float, float, float]], at: float) -> float:
    """The time (us) at which a group processing ``seq`` (start, length, work per state, uniform
    rate inside a state) has done ``at`` of its work."""
    c = 0.0
    for start, length, w in seq:
        if at < c + w:
            return start + (max(at - c, 0.0) / w) * length
        c += w
    return seq[-1][0] + seq[-1][1]


def _precedence_lift(problem: PeriodicProblem, modes: tuple[str, ...], d: np.ndarray, key: np.ndarray, lam: int,
                     spacing: str, max_rounds: int = 64) -> bool:
    """Raise ``key`` in place until it keeps every edge of one iteration and every recurrence
    (the next iteration's copy at ``key + lam``) with the ``spacing`` weights: then no cyclic
    resource order read from it contradicts a precedence. False when it does not settle (the
    recurrences need more than ``lam``)."""
    dag = problem.dag
    n = len(dag.tasks)
    e_src, e_dst, e_lag, _, _ = dag.edge_arrays
    act = dag.active_edge_mask(modes)
    src, dst = e_src[act], e_dst[act]
    w = np.ones(len(src), dtype=np.int64) if spacing == "eps" else d[src] + e_lag[act]
    r_src = np.array([r.src for r in problem.recurrences], dtype=np.int64)
    r_dst = np.array([r.dst for r in problem.recurrences], dtype=np.int64)
    r_w = (np.ones(len(r_src), dtype=np.int64) if spacing == "eps" else
           d[r_src] + np.array([r.lag_ns for r in problem.recurrences], dtype=np.int64)) - lam
    for _ in range(max_rounds):
        if dag_longest(n, src, dst, w, key) != n:
            raise RuntimeError("the DAG has a cycle (a bug)")
        if not len(r_src):
            return True
        need = key[r_src] + r_w
        if np.all(key[r_dst] >= need):
            return True
        np.maximum.at(key, r_dst, need)
    return False


def fluid_schedule(problem: PeriodicProblem, modes: Any, pm: PhaseMap, primal: PathPrimal, *,
                   target: str = "prop-start", spacing: str = "eps",
                   policy: str = "fluid", key_ns: np.ndarray | None = None) -> PeriodicSchedule | None:
    """The resource orders of the fluid targets (:func:`fluid_targets_ns`, ``spacing`` in
    :data:`SPACINGS`) at their shortest superperiod (None when no superperiod admits them)."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing={spacing!r}: choose one of {', '.join(SPACINGS)}")
    if any(r.capacity != 1 for r in problem.dag.resources):
        return None
    modes = tuple(modes)
    d = _durations(problem, modes)
    key = fluid_targets_ns(problem, modes, pm, primal, target) if key_ns is None else np.array(key_ns)
    key = np.where(key < 0, 0, key).astype(np.int64)
    lam = max(1, int(round(primal.value_us / US)))
    if not _precedence_lift(problem, modes, d, key, lam, spacing):
        return None
    timeline = PeriodicSchedule(modes, key, key + d, lam, problem.window_layers, policy)
    return shortest_superperiod(problem, modes, orders_from_periodic(problem, timeline), rank=key, policy=policy,
                                meta={"method": "fluid", "fluid_target": target, "fluid_spacing": spacing,
                                      "path_lp_us": primal.value_us})


#: Release rules of :func:`fluid_list_schedule`: ``heads`` releases only each micro-batch's first
#: tasks (recurrence heads) at its LP boundary 0, ``targets`` every task at its fluid target
#: (both scaled from the LP's superperiod to the trial one).
RELEASES = ("heads", "targets")


def fluid_list_schedule(problem: PeriodicProblem, modes: Any, pm: PhaseMap, primal: PathPrimal, *,
                        target: str = "prop-start", release: str = "heads", rel_tol: float = 1e-3,
                        policy: str = "fluid-list", key_ns: np.ndarray | None = None) -> PeriodicSchedule | None:
    """Modulo list scheduling in the order of the fluid targets (ties topological), released as
    ``release`` (:data:`RELEASES`) says, at the smallest Lambda (bisection to ``rel_tol``) that
    places every task; then re-timed in its own resource orders
    (:func:`~sieveopt.periodic_search.compact`). Unlike :func:`fluid_schedule`, a resource with
    negligible work (a link) serves its tasks in the order they become ready, so it adds no
    synchronisation the relaxation did not see. None when no Lambda up to 64x the load works."""

    if release not in RELEASES:
        raise ValueError(f"release={release!r}: choose one of {', '.join(RELEASES)}")
    dag = problem.dag
    modes = tuple(modes)
    n = len(dag.tasks)
    d = _durations(problem, modes)
    lam_lp = max(1, int(round(primal.value_us / US)))
    key = fluid_targets_ns(problem, modes, pm, primal, target) if key_ns is None else np.array(key_ns)
    key = np.where(key < 0, 0, key).astype(np.int64)
    if not _precedence_lift(problem, modes, d, key, lam_lp, "eps"):
        return None
    order = _order(problem, key)
    data = _PlacementData.of(problem, modes)
    tau = np.asarray(primal.tau_us, dtype=float)
    b_entry = _phase_entries(primal.path, tau, 1, pm.phases)[0][0][1] / US  # B's boundary 0 (ns)
    heads = np.zeros(n, dtype=np.int64)
    for h, m in data.heads:
        heads[h] = int(round(b_entry)) if m == 1 else 0
    lb, _ = period_floor_ns(problem, modes)

    def place(lam: int) -> tuple[np.ndarray, np.ndarray] | None:
        ready = (heads if release == "heads" else key) * (lam / lam_lp)
        ready = np.round(ready).astype(np.int64)
        start, end = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        ok = place_in_order(order, data.duration_ns, data.res_ptr, data.res_idx, data.succ_ptr, data.succ_dst,
                            data.succ_lag, ready, data.rec_src, data.rec_dst, data.rec_lag, int(lam), data.nres,
                            data.capacity, start, end)
        return (start, end) if ok else None

    res = smallest_period(lb, place, rel_tol)
    if res is None:
        return None
    hi, (s, e) = res
    shift = int(s.min())
    ps = PeriodicSchedule(modes, s - shift, e - shift, int(hi), problem.window_layers, policy,
                          {"method": "fluid-list", "fluid_target": target, "fluid_release": release,
                           "path_lp_us": primal.value_us})
    return compact(problem, ps)


def fluid_constructions(problem: PeriodicProblem, modes: Any, *, best_paths: int = 3,
                        targets: tuple[str, ...] = TARGETS, spacings: tuple[str, ...] = SPACINGS,
                        releases: tuple[str, ...] = RELEASES,
                        policy: str = "fluid", plan: FluidPlan | None = None, paths: Any = None,
                        task_targets: tuple[str, ...] = TASK_TARGETS,
                        task_primals: tuple[list[PathPrimal], list[int]] | None = None
                        ) -> tuple[list[PeriodicSchedule], dict[str, Any]]:
    """Every fluid construction of one mode set (the ``best_paths`` lowest paths, or those of
    ``paths``, or the timelines of ``plan``; x ``targets`` x (``spacings`` of
    :func:`fluid_schedule` and ``releases`` of :func:`fluid_list_schedule`)), and the same with
    the per-task LP's ``task_targets`` (:func:`task_plan` of those paths, or ``task_primals``),
    sorted by superperiod, and info (the lowest path LP value in ns, every variant's superperiod)."""
    if plan is None:
        plan, why = fluid_plan(problem, modes, best_paths=best_paths, paths=paths)
        if plan is None:
            return [], {"reason": why}
    out, variants = [], {}
    if task_primals is None and task_targets:
        task_primals = task_plan(problem, modes, plan.pm, [p.path for p in plan.primals])
    tp, owners = task_primals if task_targets else ([], [])
    jobs = [(k, pr, tg, None) for k, pr in enumerate(plan.primals) for tg in targets]
    jobs += [(k, pr, tg, task_targets_ns(problem, plan.pm, pr, owners, tg))
             for k, pr in enumerate(tp) for tg in task_targets]
    for k, pr, tg, key in jobs:
        for sp in (*spacings, *(f"list-{r}" for r in releases)):
            if sp.startswith("list-"):
                ps = fluid_list_schedule(problem, modes, plan.pm, pr, target=tg if key is None else "prop-start",
                                         release=sp[5:], policy=policy, key_ns=key)
            else:
                ps = fluid_schedule(problem, modes, plan.pm, pr, target=tg if key is None else "prop-start",
                                    spacing=sp, policy=policy, key_ns=key)
            if ps is not None and key is not None:
                ps = PeriodicSchedule(ps.modes, ps.start_ns, ps.end_ns, ps.superperiod_ns, ps.window_layers,
                                      ps.policy, dict(ps.meta, fluid_target=tg))
            variants[f"path{k}/{tg}/{sp}"] = None if ps is None else int(ps.superperiod_ns)
            if ps is not None:
                out.append(PeriodicSchedule(ps.modes, ps.start_ns, ps.end_ns, ps.superperiod_ns,
                                            ps.window_layers, ps.policy, dict(ps.meta, fluid_path_rank=k)))
    out.sort(key=lambda s: s.superperiod_ns)
    lp = min(plan.values_us) if plan.values_us else math.inf
    return out, {"reason": "", "path_lp_ns": None if math.isinf(lp) else int(math.floor(lp / US)),
                 "variants_ns": variants}


__all__ = ["RELEASES", "SPACINGS", "TARGETS", "TASK_TARGETS", "task_plan", "task_targets_ns", "FluidPlan", "fluid_constructions", "fluid_list_schedule", "fluid_plan",
           "fluid_schedule",
           "fluid_targets_ns", "schedule_primal", "schedule_timeline"]
