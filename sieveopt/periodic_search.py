"""Periodic schedules from cyclic resource orders: the shortest superperiod of fixed modes and
orders (a max cycle ratio), and a descent over orders and modes (issue 11, better incumbents).

Why. Modulo list scheduling fixes a list order and bisects Lambda to 0.1 %; CP-SAT on the full
periodic model often returns its hint unchanged on the paper's multi-GPU configurations. Given the
*order* in which every capacity-1 resource serves its tasks, the best timing is a small problem:

* every constraint is ``s_v >= s_u + w - h * Lambda``: DAG edge ``w = d_u + lag, h = 0``;
  recurrence ``h = 1``; consecutive occurrences (i, k_i), (j, k_j) of a resource's cyclic order
  (copy k_j of j follows copy k_i of i) ``w = d_i, h = k_j - k_i``; the last occurrence precedes
  the first one's next copy;
* a Lambda is feasible iff the graph with weights ``w - h Lambda`` has no positive cycle
  (Bellman-Ford longest paths from 0, compiled), and then the longest paths are valid starts;
* feasibility is monotone in Lambda: a cycle's weight is ``W - H Lambda`` with H its summed
  iteration distance; a cycle with H < 0 or with H = 0 and W > 0 is infeasible at every Lambda,
  and for H >= 1 the weight falls as Lambda grows. So bisection finds the smallest integer
  Lambda of these orders (:func:`shortest_superperiod`) -- the max cycle ratio ``max W / H``.

:func:`compact` re-times any periodic schedule in its own orders (never longer); :func:`local_search`
moves one task at a time (before the task it follows with no slack on a resource, or into its
other mode) and keeps a move when the shortest superperiod of the new orders drops. Every
schedule returned passes :func:`sieveopt.periodic.check_periodic` (checked here; a failure is a
bug and raises). Deterministic: budgets count evaluations, never the clock.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from sieveopt.periodic import PeriodicProblem, PeriodicSchedule, check_periodic, resource_loads_ns

#: (task, iteration) occurrences of one resource in cyclic order.
Order = list[tuple[int, int]]


@numba.njit(cache=True)
def _longest_paths(nv: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, h: np.ndarray, lam: int,
                   dist: np.ndarray) -> bool:
    """Longest paths from a virtual source (0 to every node) with arc weights ``w - h * lam``;
    False when a positive cycle exists (Lambda infeasible)."""
    for i in range(nv):
        dist[i] = 0
    for _ in range(nv + 1):
        changed = False
        for a in range(src.shape[0]):
            v = dist[src[a]] + w[a] - h[a] * lam
            if v > dist[dst[a]]:
                dist[dst[a]] = v
                changed = True
        if not changed:
            return True
    return False


def _durations(problem: PeriodicProblem, modes: Sequence[str]) -> np.ndarray:
    return np.array([t.modes[modes[t.tid]].duration_ns for t in problem.dag.tasks], dtype=np.int64)


def _arcs(problem: PeriodicProblem, modes: Sequence[str], orders: dict[int, Order],
          rank: np.ndarray | None) -> tuple[np.ndarray, ...]:
    dag = problem.dag
    d = _durations(problem, modes)
    arcs: list[tuple[int, int, int, int]] = []
    for e in dag.edges:
        if dag.edge_active(e, modes):
            arcs.append((e.src, e.dst, int(d[e.src]) + e.lag_ns, 0))
    for r in problem.recurrences:
        arcs.append((r.src, r.dst, int(d[r.src]) + r.lag_ns, 1))
    for seq in orders.values():
        for (i, ki), (j, kj) in zip(seq, seq[1:], strict=False):
            arcs.append((i, j, int(d[i]), kj - ki))
        if len(seq) > 1:
            (i, ki), (j, kj) = seq[-1], seq[0]
            arcs.append((i, j, int(d[i]), kj + 1 - ki))
    a = np.array(arcs, dtype=np.int64).reshape(-1, 4)
    if rank is not None and len(a):  # relax arcs in (roughly) time order: fewer Bellman-Ford passes
        a = a[np.argsort(rank[a[:, 0]], kind="stable")]
    return a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy()


def shortest_superperiod(problem: PeriodicProblem, modes: Sequence[str], orders: dict[int, Order], *,
                         upper_ns: int | None = None, rank: np.ndarray | None = None,
                         policy: str = "", meta: dict | None = None) -> PeriodicSchedule | None:
    """The shortest-superperiod periodic schedule with these modes and cyclic resource orders
    (None when no Lambda up to 64x the load admits them). ``orders`` must list, for every
    capacity-1 resource, each task that holds it (non-zero duration) exactly once."""
    dag = problem.dag
    n = len(dag.tasks)
    src, dst, w, h = _arcs(problem, modes, orders, rank)
    loads = resource_loads_ns(dag, modes)
    lo = max(int(loads.max(initial=0)), 1) - 1           # every Lambda <= lo is infeasible
    dist = np.zeros(n, dtype=np.int64)
    hi = max(int(upper_ns) if upper_ns else 2 * (lo + 1), lo + 1)
    while not _longest_paths(n, src, dst, w, h, hi, dist):
        lo = hi
        hi *= 2
        if hi > 64 * (int(loads.max(initial=0)) + int(w.sum()) + 1):
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _longest_paths(n, src, dst, w, h, mid, dist):
            hi = mid
        else:
            lo = mid
    _longest_paths(n, src, dst, w, h, hi, dist)
    start = dist - dist.min()
    d = _durations(problem, modes)
    ps = PeriodicSchedule(tuple(modes), start.astype(np.int64), (start + d).astype(np.int64), int(hi),
                          problem.window_layers, policy, dict(meta or {}, method="cycle-ratio"))
    rep = check_periodic(ps, problem)
    if not rep.ok:
        raise RuntimeError(f"cycle-ratio schedule failed check_periodic (a bug): {rep.violations[:3]}")
    return ps


def orders_from_periodic(problem: PeriodicProblem, ps: PeriodicSchedule) -> dict[int, Order]:
    """The cyclic order of every capacity-1 resource in a periodic schedule (copy k of task i at
    ``s_i + k Lambda``; each resource's copies inside [0, Lambda) sorted by start)."""
    dag, lam = problem.dag, int(ps.superperiod_ns)
    occ: dict[int, list[tuple[int, int, int]]] = {}
    for t in dag.tasks:
        c = t.modes[ps.modes[t.tid]]
        if c.duration_ns <= 0:
            continue
        s = int(ps.start_ns[t.tid])
        k = -(s // lam)
        for rid in c.resources:
            occ.setdefault(rid, []).append((s + k * lam, t.tid, k))
    return {rid: [(i, k) for _, i, k in sorted(v)] for rid, v in occ.items()}


def compact(problem: PeriodicProblem, ps: PeriodicSchedule) -> PeriodicSchedule:
    """``ps`` with its own modes and resource orders at their shortest superperiod (never longer)."""
    if any(r.capacity != 1 for r in problem.dag.resources):
        return ps
    rank = np.asarray(ps.start_ns, dtype=np.int64)
    out = shortest_superperiod(problem, ps.modes, orders_from_periodic(problem, ps),
                               upper_ns=int(ps.superperiod_ns), rank=rank, policy=ps.policy,
                               meta=dict(ps.meta, compacted_from_ns=int(ps.superperiod_ns)))
    return ps if out is None or out.superperiod_ns >= ps.superperiod_ns else out


def _feasible_at(problem: PeriodicProblem, modes: Sequence[str], orders: dict[int, Order], lam: int,
                 rank: np.ndarray) -> bool:
    src, dst, w, h = _arcs(problem, modes, orders, rank)
    dist = np.zeros(len(problem.dag.tasks), dtype=np.int64)
    return bool(_longest_paths(len(problem.dag.tasks), src, dst, w, h, int(lam), dist))


def _tight_pairs(problem: PeriodicProblem, ps: PeriodicSchedule) -> list[tuple[int, int]]:
    """(i, j): j follows i on some resource with no slack (j starts as i ends, modulo Lambda)."""
    lam = int(ps.superperiod_ns)
    out = []
    for seq in orders_from_periodic(problem, ps).values():
        m = len(seq)
        for a in range(m):
            (i, ki), (j, kj) = seq[a], seq[(a + 1) % m]
            kj += 1 if a == m - 1 else 0
            if int(ps.start_ns[j]) + kj * lam == int(ps.end_ns[i]) + ki * lam:
                out.append((i, j))
    return out


def local_search(problem: PeriodicProblem, ps: PeriodicSchedule, *, max_evaluations: int = 300,
                 ) -> PeriodicSchedule:
    """First-improvement descent over (a) moving a task just before its tight predecessor on a
    resource and (b) switching the mode of a task on a tight pair, each judged by the shortest
    superperiod of the resulting orders (cyclic orders read from the moved start times).
    Deterministic: a fixed budget of ``max_evaluations`` feasibility tests, no clock."""
    if any(r.capacity != 1 for r in problem.dag.resources):
        return ps
    dag = problem.dag
    best = compact(problem, ps)
    evals = 0
    improved = True
    while improved and evals < max_evaluations:
        improved = False
        lam = int(best.superperiod_ns)
        cands: list[tuple[int, str, int]] = []  # (task, mode, new start)
        seen = set()
        for i, j in _tight_pairs(problem, best):
            for t, mode, s in ((j, best.modes[j], int(best.start_ns[i]) - 1),
                               (i, best.modes[i], int(best.start_ns[j]) + 1)):
                key = (t, mode, s)
                if key not in seen:
                    seen.add(key)
                    cands.append(key)
            for t in (i, j):
                for mode in dag.tasks[t].modes:
                    if mode != best.modes[t] and (t, mode) not in seen:
                        seen.add((t, mode))
                        cands.append((t, mode, int(best.start_ns[t])))
        for t, mode, s in cands:
            if evals >= max_evaluations:
                break
            modes = list(best.modes)
            modes[t] = mode
            start = best.start_ns.copy()
            start[t] = s
            d = dag.tasks[t].modes[mode].duration_ns
            end = best.end_ns.copy()
            end[t] = s + d
            trial = PeriodicSchedule(tuple(modes), start, end, lam, best.window_layers, best.policy, best.meta)
            orders = orders_from_periodic(problem, trial)
            evals += 1
            if not _feasible_at(problem, modes, orders, lam - 1, start):
                continue
            new = shortest_superperiod(problem, modes, orders, upper_ns=lam - 1, rank=start, policy=best.policy,
                                       meta=dict(best.meta, local_search=True))
            if new is not None and new.superperiod_ns < lam:
                best = new
                improved = True
                break
    return PeriodicSchedule(best.modes, best.start_ns, best.end_ns, best.superperiod_ns, best.window_layers,
                            best.policy, dict(best.meta, local_search_evaluations=evals))


def slot_start_ns(problem: PeriodicProblem, modes: Sequence[str]) -> np.ndarray:
    """Every task's start in its own (layer, micro-batch) slot list-scheduled alone on the machine
    (resource-aware: a GPU's or a PIM's experts run one after another)."""
    from sieveopt.dag import DagOptions, build_layer_dag
    from sieveopt.listsched import list_schedule

    dag = problem.dag
    out = np.zeros(len(dag.tasks), dtype=np.int64)
    for li, row in enumerate(problem.window):
        for m, inst in enumerate(row):
            opts = DagOptions(**{**problem.options.__dict__, "layer": li, "microbatch": m})
            ldag = build_layer_dag(inst, problem.cost, opts)
            ids = [dag.by_name[t.name] for t in ldag.tasks]
            sched = list_schedule(ldag, tuple(modes[i] for i in ids))
            out[ids] = sched.start_ns
    return out


#: Slot spacings tried by :func:`phase_order_schedule`, as fractions of busiest load / (L M).
PHASE_FRACTIONS = (0.95, 1.0, 1.05)
#: Timelines tried: ``solo`` (slot j's tasks at ``j P`` + their solo times) and ``stretched``
#: (slot j's pre-expert tasks spread over [j P, (j+1) P), its experts and what follows them over
#: [(j+1) P, (j+2) P): a micro-batch's dense chain fills one phase, its experts the next).
PHASE_STYLES = ("solo", "stretched")


def _phase_keys(problem: PeriodicProblem, modes: tuple[str, ...], d: np.ndarray, within: np.ndarray,
                P: float, style: str) -> np.ndarray:
    dag = problem.dag
    M = problem.microbatches
    key = np.zeros(len(dag.tasks), dtype=np.int64)
    slots: dict[tuple[int, int], list[int]] = {}
    for t in dag.tasks:
        slots.setdefault((t.layer, t.microbatch), []).append(t.tid)
    for (li, m), ids in slots.items():
        j = li * M + m
        if style == "solo":
            for i in ids:
                key[i] = int(j * P) + int(within[i])
            continue
        experts = [int(within[i]) for i in ids if dag.tasks[i].kind == "expert"]
        t_e = min(experts) if experts else max(int(within[i]) for i in ids)
        t_end = max(int(within[i] + d[i]) for i in ids)
        for i in ids:
            w = int(within[i])
            key[i] = int(j * P + w * P / max(t_e, 1)) if w < t_e else \
                int((j + 1) * P + (w - t_e) * P / max(t_end - t_e, 1))
    # Precedence-consistent: a successor never keys before its predecessor ends (so no resource
    # order contradicts an edge of the iteration).
    for t in dag.topo_order:
        for e in dag.succs[t]:
            if dag.edge_active(e, modes):
                key[e.dst] = max(key[e.dst], key[t] + d[t] + e.lag_ns)
    return key


def phase_order_schedule(problem: PeriodicProblem, modes: Sequence[str], *,
                         fractions: Sequence[float] = PHASE_FRACTIONS, styles: Sequence[str] = PHASE_STYLES,
                         policy: str = "phase-order") -> PeriodicSchedule | None:
    """Staggered-slot orders at their shortest superperiod (best over ``fractions`` x ``styles``).

    Slot j = l M + m (layer l, micro-batch m) is released at ``j P`` with ``P = f * busiest load
    / (L M)`` (:data:`PHASE_STYLES` say where its tasks go). With M = 2 the micro-batches
    alternate: one runs its dense chain (QKV, O-proj, router, shared) on the GPUs while the
    other's experts run, and vice versa. Only the resource orders of that timeline are kept
    (tasks may overlap in it); :func:`shortest_superperiod` times them exactly."""
    if any(r.capacity != 1 for r in problem.dag.resources):
        return None
    dag = problem.dag
    L, M = problem.window_layers, problem.microbatches
    modes = tuple(modes)
    d = _durations(problem, modes)
    busiest = int(resource_loads_ns(dag, modes).max(initial=0))
    within = slot_start_ns(problem, modes)
    best: PeriodicSchedule | None = None
    for style in styles:
        for f in fractions:
            P = f * busiest / (L * M)
            key = _phase_keys(problem, modes, d, within, P, style)
            timeline = PeriodicSchedule(modes, key, key + d, max(1, int(L * M * P)), L, policy)
            ps = shortest_superperiod(problem, modes, orders_from_periodic(problem, timeline), rank=key,
                                      policy=policy, meta={"method": "phase-order", "phase_style": style,
                                                           "slot_spacing_fraction": f})
            if ps is not None and (best is None or ps.superperiod_ns < best.superperiod_ns):
                best = ps
    return best


__all__ = ["PHASE_FRACTIONS", "PHASE_STYLES", "compact", "local_search", "orders_from_periodic", "phase_order_schedule",
           "shortest_superperiod", "slot_start_ns"]
