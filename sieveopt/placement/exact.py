"""Exact placement: CP-SAT minimises the mean (or CVaR) straggler surrogate over a window of steps.

Decision: ``x[i, g] = 1`` when item i (a slot: one replica of an expert) sits on GPU g.

    minimise    (1/T) sum_t z_t  [+ move_weight * M]        (objective "mean")
    subject to  sum_g x[i, g] = 1                            every item placed once
                sum_i x[i, g] <= capacity                    HBM slots of GPU g
                sum_{i of expert e} x[i, g] <= 1             replicas on distinct GPUs
                z_t >= sum_i c[t, i, g] x[i, g]              straggler of step t (every g)
                M >= bytes moved into / out of GPU g / link bandwidth   (when a previous
                                                             placement is given; NVLink)

``c[t, i, g]`` is the surrogate's cost (:mod:`sieveopt.placement.surrogate`) of item i's
tokens at step t on GPU g, rounded to integer ns. Replica counts are inputs (1 per expert =
GEM's space; EPLB's replicate step for the same redundant-slot budget). ``objective="cvar"``
minimises the conditional value-at-risk of the step time at level ``alpha`` (the mean of the
worst (1-alpha) share of steps; Rockafellar-Uryasev, linear), a quantile-like target.

GEM's paper calls the mapping space combinatorial and uses "a heuristic iterative search"
(trimoe_gem.md §2.4); this model gives the certified optimum (or bound and gap) of the same
surrogate objective, so heuristics can be measured against it. The best of the given hints
seeds the search, and the result is never worse than that hint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from sieveopt.placement.core import Placement
from sieveopt.placement.policies import (
    PlacementProblem,
    eplb,
    eplb_slots,
    gem,
    register,
    replicate_experts,
)


@dataclass(frozen=True, eq=False)
class ExactResult:
    placement: Placement
    status: str                    # OPTIMAL / FEASIBLE / HINT (solver found nothing better)
    objective_ns: float            # surrogate objective of the returned placement (float costs)
    bound_ns: float                # certified lower bound on the objective
    gap: float                     # (objective - bound) / objective
    wall_s: float
    hint_objective_ns: float
    meta: dict = field(default_factory=dict)


def _items(loads: np.ndarray, replicas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(expert of each item [I], tokens of each item per step [T, I]) with the round-robin split."""
    expert = np.repeat(np.arange(replicas.size), replicas)
    rank = np.concatenate([np.arange(r) for r in replicas])
    n = loads[:, expert]
    r = replicas[expert]
    return expert, n // r + (rank < n % r)


def objective(cost: np.ndarray, assign: np.ndarray, kind: str = "mean", alpha: float = 0.9) -> float:
    """Surrogate objective of an item -> GPU assignment (``cost[T, items, G]``)."""
    T, _, G = cost.shape
    loads = np.stack([cost[:, assign == g, g].sum(axis=1) for g in range(G)], axis=1)
    if kind == "balance":
        return float(loads.mean(axis=0).max())
    z = loads.max(axis=1)
    if kind == "mean":
        return float(z.mean())
    k = max(1, int(np.ceil((1 - alpha) * T - 1e-9)))
    return float(np.sort(z)[-k:].mean())


def _assign_from(p: Placement, expert: np.ndarray) -> np.ndarray | None:
    """Item assignment matching placement ``p`` (same replica counts), else None."""
    if not np.array_equal(p.replicas, np.bincount(expert, minlength=p.num_experts)):
        return None
    out = np.empty(expert.size, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(p.replicas)[:-1]])
    for e, sl in enumerate(p.slots_of):
        gs = np.sort(p.slot_gpu[sl])
        if np.unique(gs).size != gs.size:
            return None                      # replicas sharing a GPU: not in the exact model's space
        out[start[e]: start[e] + gs.size] = gs
    return out


def solve_exact(loads: np.ndarray, prob: PlacementProblem, *, replicas: np.ndarray | None = None,
                hints: list[Placement] | tuple[Placement, ...] = (), objective_kind: str = "mean",
                alpha: float = 0.9, previous: Placement | None = None, move_weight: float = 0.0,
                time_limit_s: float | None = None, workers: int | None = None,
                seed: int | None = None) -> ExactResult:
    """CP-SAT placement over the scenario window ``loads[T, E]`` (see module docstring)."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    L = np.rint(np.atleast_2d(np.asarray(loads, dtype=float))).astype(np.int64)
    T, E = L.shape
    G, cap = prob.num_gpus, prob.capacity
    reps = np.ones(E, dtype=np.int64) if replicas is None else np.asarray(replicas, dtype=np.int64)
    expert, tok = _items(L, reps)
    n_items = expert.size
    cost = prob.surrogate.item_costs(tok)                          # [T, items, G] float ns
    c = np.rint(cost).astype(np.int64)

    jensen_lb, jensen_assign = 0.0, None
    if objective_kind == "mean" and T > 1:
        # Jensen: mean_t max_g L >= max_g mean_t L, so the balance problem's certified bound is
        # a bound of this one (the LP bound of the per-step model alone is far weaker)
        jb = _balance_model(c.sum(axis=0), expert, reps, G, cap)
        js = cp_model.CpSolver()
        js.parameters.max_time_in_seconds = 0.25 * float(prob.time_limit_s if time_limit_s is None else time_limit_s)
        js.parameters.num_workers = int(prob.workers if workers is None else workers)
        js.parameters.random_seed = int(prob.seed if seed is None else seed)
        jst = js.Solve(jb[0])
        if jst in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            jensen_lb = js.BestObjectiveBound() / T
            jensen_assign = np.array([next(g for g in range(G) if js.Value(jb[1][i][g])) for i in range(n_items)])
    m, x = _base_model(expert, reps, G, cap)
    ub = int(c.sum(axis=1).max()) + 1
    if objective_kind == "balance":
        cb = c.sum(axis=0)                                          # [I, G] window totals
        zb = m.NewIntVar(0, int(cb.sum()) + 1, "z")
        for g in range(G):
            m.Add(sum(int(cb[i, g]) * x[i][g] for i in range(n_items)) <= zb)
        obj_terms, scale = zb, T
    else:
        lb_t = c.min(axis=2).max(axis=1)                            # the heaviest item anywhere
        lb_t = np.maximum(lb_t, -(-c.min(axis=2).sum(axis=1) // G))  # perfect balance
        z = [m.NewIntVar(int(lb_t[t]), ub, f"z{t}") for t in range(T)]
        for t in range(T):
            for g in range(G):
                nz = np.flatnonzero(c[t, :, g])
                m.Add(sum(int(c[t, i, g]) * x[int(i)][g] for i in nz) <= z[t])
        if objective_kind == "mean":
            if jensen_lb > 0:
                m.Add(sum(z) >= int(np.floor(jensen_lb * T)))
            obj_terms, scale = sum(z), T
        elif objective_kind == "cvar":
            k = max(1, int(np.ceil((1 - alpha) * T - 1e-9)))
            eta = m.NewIntVar(0, ub, "eta")
            u = [m.NewIntVar(0, ub, f"u{t}") for t in range(T)]
            for t in range(T):
                m.Add(u[t] >= z[t] - eta)
            obj_terms, scale = k * eta + sum(u), k
        else:
            raise ValueError(f"objective_kind must be 'mean', 'cvar' or 'balance', got {objective_kind!r}")
    move_scale = 0
    if previous is not None and move_weight > 0 and prob.link_GBps > 0:
        move_ns = prob.expert_bytes / prob.link_GBps
        held = previous.gpu_sets                                   # [E, G]
        mv = m.NewIntVar(0, int(np.ceil(n_items * move_ns)) + 1, "move")
        for g in range(G):
            new_in = [x[i][g] for i in range(n_items) if not held[expert[i], g]]
            if new_in:
                m.Add(int(np.ceil(move_ns)) * sum(new_in) <= mv)
        move_scale = int(round(move_weight * scale))
        obj_terms = obj_terms + move_scale * mv
    m.Minimize(obj_terms)

    # hints: the best of the given placements (and GEM / EPLB on the same window) in this space
    cands = list(hints)
    if jensen_assign is not None:
        cands.append(Placement(expert, jensen_assign, E, G, cap, "balance"))
    hint_assign, hint_obj = None, np.inf
    for p in cands:
        a = _assign_from(p, expert)
        if a is None or np.bincount(a, minlength=G).max() > cap:
            continue
        v = objective(cost, a, objective_kind, alpha)
        if v < hint_obj:
            hint_assign, hint_obj = a, v
    if hint_assign is not None:
        for i in range(n_items):
            for g in range(G):
                m.AddHint(x[i][g], int(hint_assign[i] == g))

    solver = cp_model.CpSolver()
    limit = float(prob.time_limit_s if time_limit_s is None else time_limit_s)
    solver.parameters.max_time_in_seconds = max(0.1, limit - (time.perf_counter() - t0))
    solver.parameters.num_workers = int(prob.workers if workers is None else workers)
    solver.parameters.random_seed = int(prob.seed if seed is None else seed)
    st = solver.Solve(m)
    wall = time.perf_counter() - t0
    status = solver.StatusName(st)
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = np.array([next(g for g in range(G) if solver.Value(x[i][g])) for i in range(n_items)])
        bound = solver.BestObjectiveBound() / scale
    else:
        assign, bound = hint_assign, 0.0
    if objective_kind == "mean" and not move_scale:
        bound = max(bound, jensen_lb)
    val = np.inf if assign is None else objective(cost, assign, objective_kind, alpha)
    if hint_assign is not None and hint_obj < val:          # never worse than the hint
        assign, val, status = hint_assign, hint_obj, "HINT"
    if assign is None:
        raise RuntimeError(f"exact placement: no solution within the time limit ({status})")
    move_part = 0.0
    if move_scale:
        move_part = move_weight * _move_ns(previous, expert, assign, prob) if previous is not None else 0.0
    # the gap is measured in the solved (integer-ns) model, where the bound holds; the
    # reported objective uses the float costs (they differ by < n_items/2 ns per step)
    val_int = objective(c.astype(float), assign, objective_kind, alpha)
    total = val_int + move_part
    gap = 0.0 if total <= 0 else max(0.0, (total - bound) / total)
    pl = Placement(expert, assign, E, G, cap, "exact")
    return ExactResult(pl, status, float(val), float(bound), float(gap), wall, float(hint_obj),
                       meta={"items": int(n_items), "steps": int(T), "objective": objective_kind,
                             "jensen_bound_ns": float(jensen_lb),
                             "surrogate": prob.surrogate.name, "move_ns": move_part,
                             "workers": solver.parameters.num_workers,
                             "time_limit_s": solver.parameters.max_time_in_seconds})


def _base_model(expert: np.ndarray, reps: np.ndarray, G: int, cap: int):
    """Assignment variables and constraints shared by every objective."""
    from ortools.sat.python import cp_model

    n_items = expert.size
    m = cp_model.CpModel()
    x = [[m.NewBoolVar(f"x{i}_{g}") for g in range(G)] for i in range(n_items)]
    for i in range(n_items):
        m.AddExactlyOne(x[i])
    for g in range(G):
        m.Add(sum(x[i][g] for i in range(n_items)) <= cap)
    for e in np.flatnonzero(reps > 1):
        its = np.flatnonzero(expert == e)
        for g in range(G):
            m.AddAtMostOne(x[int(i)][g] for i in its)
    return m, x


def _balance_model(cb: np.ndarray, expert: np.ndarray, reps: np.ndarray, G: int, cap: int):
    """min max_g sum_i cb[i, g] x[i, g] (window totals): the Jensen bound model."""
    m, x = _base_model(expert, reps, G, cap)
    z = m.NewIntVar(0, int(cb.sum()) + 1, "z")
    for g in range(G):
        m.Add(sum(int(cb[i, g]) * x[i][g] for i in range(expert.size)) <= z)
    m.Minimize(z)
    return m, x


def _move_ns(prev: Placement, expert: np.ndarray, assign: np.ndarray, prob: PlacementProblem) -> float:
    held = prev.gpu_sets
    new_in = np.bincount(assign[~held[expert, assign]], minlength=prob.num_gpus)
    return float(new_in.max() * np.ceil(prob.expert_bytes / prob.link_GBps))


@register("exact")
def exact(loads: np.ndarray, prob: PlacementProblem) -> Placement:
    """The CP-SAT optimum of the surrogate over the window, GEM's space (one replica each)
    unless redundant slots are given, then EPLB's replica counts; hints: GEM and EPLB."""
    res = exact_with_report(loads, prob)
    return res.placement


def exact_with_report(loads: np.ndarray, prob: PlacementProblem, **kw) -> ExactResult:
    L = np.atleast_2d(np.asarray(loads, dtype=float))
    E = prob.num_experts
    hints = [gem(L, prob)]
    if prob.redundant > 0:
        _, reps = replicate_experts(L.mean(axis=0), eplb_slots(prob))
        hints.append(eplb(L, prob))
    else:
        reps = np.ones(E, dtype=np.int64)
    return solve_exact(L, prob, replicas=reps, hints=hints, **kw)
