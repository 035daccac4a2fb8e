"""Exact placement: CP-SAT minimises the mean (or CVaR) straggler surrogate over a window of steps.

Items: every expert has a *single* item (all its tokens); each of ``R`` candidate experts
(R = the redundant-slot budget) also has a *pair* of replica items, each with half its tokens
(the round-robin split of :mod:`~sieveopt.placement.core`). ``y_e = 1`` replicates expert e.
Candidates (``replica_choice``): ``"loaded"`` (default), the R most loaded experts, the annealing
keeping the best hint's replicas; ``"cheap"``, the R experts whose split costs least
(:func:`split_excess_ns`), the annealing splitting and merging them. Why offer the second: a hot
expert is GPU-side (its cost is the weight stream, which each replica pays again), so the most
loaded experts are the worst to split under the overlap surrogate, while a PIM-side expert splits
for ~200 ns (T_PIM's per-job part); measured on the headline window it lowers the window
objective by 0.15 us (gap 1.63 -> 1.47 %) but not the layer time of the 200 evaluated steps
(dag mean +0.25 %), so it is not the default (design note, round 6). Whichever experts are
replicated, :func:`~sieveopt.placement.lp_bound.replica_free_bound` bounds the objective.
``x[i, g] = 1`` places item i on GPU g.

    minimise    (1/T) sum_t z_t                              (objective "mean")
    subject to  sum_g x[single_e, g] = 1 - y_e               one copy, or
                sum_g x[pair_e, g]   = y_e  (each of the two)  two copies on distinct GPUs
                sum_e y_e <= R                               redundant slots
                sum_i x[i, g] <= capacity                    HBM slots of GPU g
                z_t >= sum_i c[t, i, g] x[i, g]              straggler of step t, every g
                [+ move_weight * M, M >= NVLink time of the weights GPU g must receive]

``c[t, i, g]`` is the surrogate's cost (:mod:`sieveopt.placement.surrogate`) of item i's tokens
at step t on GPU g, rounded to integer ns. With R = 0 the space is GEM's ("each expert sits on
exactly one GPU ... no replication", trimoe_gem.md §2.4); with R > 0 it holds GEM's space and
EPLB placements whose replica counts are <= 2. ``objective="cvar"`` minimises the conditional
value-at-risk of the step time at level ``alpha`` (mean of the worst (1-alpha) share of the
steps; Rockafellar-Uryasev, linear): a quantile-like target, the issue's "a quantile of"
straggler time; it gets the same pipeline as "mean" (annealing and polish on the mean of the k
worst steps, its own LP bound, the bound as a CP-SAT cut). ``objective="balance"`` minimises
the straggler of the *expected* loads, max_g mean_t L[t, g] (what load balancers like EPLB aim at).

Bounds (objective "mean"; "cvar" has the LP bound of its own objective): the model's LP relaxation, solved exactly by HiGHS
(:mod:`sieveopt.placement.lp_bound`: one fractional placement for the whole window, every step
its straggler); Jensen's inequality (mean_t max_g >= max_g mean_t), which makes the "balance"
model's certified bound a bound of the "mean" model too (solved first with ``jensen_share`` of
the time limit: on small windows its integrality makes it the stronger one); and CP-SAT's own.
The best of them is added as a cut and reported. None sees the per-step imbalance a fixed
integral placement cannot avoid (design note, "Measured difficulty"). GEM's paper calls
the space combinatorial and searches it heuristically (trimoe_gem.md §2.4); this model gives a
certified bound and gap on the same surrogate objective, so heuristics can be measured against
it. The best given hint seeds the search and the result is never worse than that hint.

With the overlap-aware surrogate a GPU's work is ``max_k sum_i c[t, i, g, k] x[i, g]`` over
the surrogate's levels k (one level for the serial surrogate), so the straggler rows become
one per (step, GPU, level): the model stays a MILP. Order of work: (1) the best hint is
improved by simulated annealing (moves and swaps over the whole item space, log-sum-exp
smoothing, seeded and step-counted; :mod:`sieveopt.placement.anneal`) and a best-improvement
polish (:mod:`sieveopt.placement.local_search`): on the 32-step DeepSeek-V3 window CP-SAT alone
never improved GEM's hint, the annealing does (8 % on the overlap surrogate); (2) the bounds,
the LP with its level rows generated as cuts from the incumbent's maximal levels; (3) CP-SAT on
the model with the incumbent's maximal levels +-1 (a relaxation: its bound stays valid, its
solutions are scored on every level; small models keep every level), started from the
incumbent (placement and straggler values). On a large model (level rows left out, e.g. the
DeepSeek-V3 window) CP-SAT never improved the incumbent and the Jensen model gave no bound, while
more annealing did: there, after the LP bound, the annealing restarts from the best (full
schedules, new seeds) while a round still fits, Jensen is skipped and CP-SAT gets what is left
(design note, "Round 7 (b)"); small models keep the order above, where CP-SAT proves optimality.
The time limit covers all of it, the hints included (:func:`exact_with_report`): stages stop
at the deadline or are skipped. GPUs
with identical cost columns (no variability) are interchangeable: the model breaks that
symmetry (the p-th heaviest item may only use the first p+1 GPUs of its class; hints are
relabelled to match), skipped when movement from a previous placement is charged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from sieveopt.placement.anneal import PHASES as ANNEAL_PHASES
from sieveopt.placement.anneal import anneal, dense, worst_mean
from sieveopt.placement.core import Placement
from sieveopt.placement.local_search import polish
from sieveopt.placement.lp_bound import lp_bound
from sieveopt.placement.policies import PlacementProblem, eplb, gem, register

#: Annealing steps per placed item (2 M for DeepSeek-V3's 256 experts: ~6 s on one idle core
#: with the overlap surrogate's 32 levels; docs/design-notes/placement.md).
#: The exact placement *policy*'s objective (``sieveopt place``, :class:`~sieveopt.placement.
#: evaluate.EvalConfig`): ``cvar`` at ``alpha`` 0.9, the mean straggler of the window's worst 10 %
#: steps, the issue's "a quantile of straggler time". Why not ``mean`` (the default until round
#: 9): on the headline window the optimiser certifies cvar within 0.8-0.9 % in 60 s (mean: 1.6 %),
#: and the placement it returns has the same dag layer time over the 200 evaluated steps (mean
#: 183.5 vs 183.1-183.6 us) and a lower p99 (189.7 vs 190.2-190.4 us): design note, "Round 9".
#: :func:`solve_exact`'s own default stays ``mean``.
POLICY_OBJECTIVE = "cvar"
#: The ``cvar`` objective's level (``sieveopt place --exact-alpha``): the mean straggler of the
#: window's worst (1 - alpha) share of steps, at least one (:func:`worst_count`); 0.9 is round 9's
#: headline (the worst 4 of 32 steps).
POLICY_ALPHA = 0.9
ANNEAL_ITERS_PER_ITEM = 8_000
#: Models with at most this many (step, GPU, level, item) terms keep every level row; larger
#: ones keep the incumbent's maximal levels and their neighbours (a relaxation: see solve_exact).
FULL_LEVEL_TERMS = 200_000
#: Annealing rounds on a large model (one that does not keep every level row): round 0 from the
#: best hint, then restarts from the best so far (seeds ``seed + r``), each a full schedule of
#: the same step count, started only while a round of the last one's length still fits before the
#: deadline. Why: on the DeepSeek-V3 headline window CP-SAT never improved the incumbent and the
#: Jensen model gave no bound in rounds 4-7, while more annealing does (design note, "Round 7 (b)").
LARGE_ANNEAL_ROUNDS = 6
#: Seconds (at most 2 % of the limit) kept back from the time limit for reading and scoring.
RESERVE_S = 0.5
#: The Jensen model and CP-SAT are skipped when less than this is left (seconds).
MIN_STAGE_S = 0.2
#: On a large model CP-SAT runs only with at least this much left (seconds): building it takes
#: ~0.8 s on the headline window, and it never improved the incumbent there (rounds 4-7).
LARGE_CPSAT_MIN_S = 2.0


@dataclass(frozen=True, eq=False)
class ExactResult:
    placement: Placement
    status: str                    # OPTIMAL / FEASIBLE / HINT (solver found nothing better)
    objective_ns: float            # surrogate objective of the returned placement (float costs)
    bound_ns: float                # certified lower bound (integer-ns model)
    gap: float                     # (objective - bound) / objective in the integer-ns model
    wall_s: float
    hint_objective_ns: float       # best hint after the local search (given: meta["given_hint_objective_ns"])
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class _Items:
    expert: np.ndarray             # [I] expert of each item
    tokens: np.ndarray             # [T, I]
    single: np.ndarray             # [E] item id of each expert's single copy
    pair: dict[int, tuple[int, int]]   # expert -> its two replica items (candidates only)


def split_excess_ns(L: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Mean extra surrogate cost ``[E]`` (ns) of splitting each expert into its two round-robin
    halves, ``c(ceil(n/2)) + c(floor(n/2)) - c(n)``, over the steps of ``L[T, E]`` (token counts)
    and the GPUs and levels of ``table[G, N, K]`` (the surrogate's ``level_ns``)."""
    L = np.asarray(L, dtype=np.int64)
    return (table[:, (L + 1) // 2] + table[:, L // 2] - table[:, L]).mean(axis=(0, 1, 3))


def replica_candidates(L: np.ndarray, table: np.ndarray, budget: int, choice: str = "loaded") -> np.ndarray:
    """The ``budget`` experts that get a replica pair in the model (sorted): ``"loaded"`` the most
    loaded (mean tokens over the window), ``"cheap"`` the smallest :func:`split_excess_ns`."""
    if choice == "loaded":
        key = -np.asarray(L, dtype=float).mean(axis=0)
    elif choice == "cheap":
        key = split_excess_ns(L, table)
    else:
        raise ValueError(f"replica_choice must be 'loaded' or 'cheap', got {choice!r}")
    return np.sort(np.argsort(key, kind="stable")[:budget])


def _items(L: np.ndarray, candidates: np.ndarray) -> _Items:
    T, E = L.shape
    expert = list(range(E))
    tok = [L[:, e] for e in range(E)]
    pair: dict[int, tuple[int, int]] = {}
    for e in candidates.tolist():
        a = len(expert)
        expert += [e, e]
        tok += [L[:, e] // 2 + L[:, e] % 2, L[:, e] // 2]
        pair[e] = (a, a + 1)
    return _Items(np.asarray(expert), np.stack(tok, axis=1), np.arange(E), pair)


def level_loads(cost: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Level loads ``[T, G, K]`` of an item -> GPU assignment (``cost[T, items, G]`` or
    ``[T, items, G, K]``; -1 = unused); a GPU's work is the max over its levels."""
    c = cost[..., None] if cost.ndim == 3 else cost
    return np.stack([c[:, assign == g, g].sum(axis=1) for g in range(c.shape[2])], axis=1)


def objective(cost: np.ndarray, assign: np.ndarray, kind: str = "mean", alpha: float = POLICY_ALPHA) -> float:
    """Surrogate objective of an item -> GPU assignment (``cost[T, items, G]`` or level costs
    ``[T, items, G, K]``; -1 = unused)."""
    T = cost.shape[0]
    L = level_loads(cost, assign)                                  # [T, G, K]
    if kind == "balance":
        return float(L.mean(axis=0).max())
    z = L.max(axis=(1, 2))
    if kind == "mean":
        return float(z.mean())
    return float(worst_mean(z, worst_count(alpha, T)))


def worst_count(alpha: float, steps: int) -> int:
    """How many of ``steps`` step stragglers the ``cvar`` objective at level ``alpha`` averages:
    the worst (1 - alpha) share, at least one."""
    return max(1, int(np.ceil(tail_steps(alpha, steps) - 1e-9)))


def tail_steps(alpha: float, steps: int) -> float:
    """The (1 - alpha) share of ``steps`` the ``cvar`` objective means to average (before
    :func:`worst_count` rounds it up); below 1 the objective is just the worst step."""
    return (1 - alpha) * steps


def _assign_from(p: Placement, it: _Items) -> np.ndarray | None:
    """Item assignment of placement ``p`` if it lies in the model's space, else None."""
    out = np.full(it.expert.size, -1, dtype=np.int64)
    for e, sl in enumerate(p.slots_of):
        gs = np.sort(p.slot_gpu[sl])
        if gs.size == 1:
            out[it.single[e]] = gs[0]
        elif gs.size == 2 and e in it.pair and gs[0] != gs[1]:
            out[list(it.pair[e])] = gs
        else:
            return None
    return out


def identical_gpus(c: np.ndarray) -> list[list[int]]:
    """Classes (size >= 2) of GPUs whose item costs ``c[T, items, G]`` are identical: relabelling
    GPUs inside a class maps placements to placements of equal objective (equal capacity)."""
    G = c.shape[2]
    seen: dict[bytes, list[int]] = {}
    for g in range(G):
        seen.setdefault(np.ascontiguousarray(c[:, :, g]).tobytes(), []).append(g)
    return [k for k in seen.values() if len(k) > 1]


def canonical(assign: np.ndarray, classes: list[list[int]], order: np.ndarray) -> np.ndarray:
    """Relabel GPUs inside each identical class in order of first use along ``order`` (the
    symmetry-breaking form the model requires; objective unchanged)."""
    out = assign.copy()
    for cls in classes:
        first = []
        for i in order.tolist():
            g = int(assign[i])
            if g in cls and g not in first:
                first.append(g)
        first += [g for g in cls if g not in first]
        remap = dict(zip(first, cls, strict=True))
        for i in range(out.size):
            if int(assign[i]) in remap:
                out[i] = remap[int(assign[i])]
    return out


def _model(it: _Items, G: int, cap: int, budget: int):
    """Variables and constraints shared by every objective: (model, x, y)."""
    from ortools.sat.python import cp_model

    n = it.expert.size
    m = cp_model.CpModel()
    x = [[m.NewBoolVar(f"x{i}_{g}") for g in range(G)] for i in range(n)]
    y = {e: m.NewBoolVar(f"y{e}") for e in it.pair}
    for e in range(it.single.size):
        s = int(it.single[e])
        if e in y:
            m.Add(sum(x[s]) == 1 - y[e])
            a, b = it.pair[e]
            m.Add(sum(x[a]) == y[e])
            m.Add(sum(x[b]) == y[e])
            for g in range(G):
                m.AddAtMostOne([x[a][g], x[b][g]])
        else:
            m.AddExactlyOne(x[s])
    if y:
        m.Add(sum(y.values()) <= budget)
    for g in range(G):
        m.Add(sum(x[i][g] for i in range(n)) <= cap)
    return m, x, y


def _solver(limit_s: float, workers: int, seed: int):
    """The toolkit's CP-SAT settings (:func:`sieveopt.solvers._interval_model.make_solver`), wall-clock limited."""
    from sieveopt.solvers._interval_model import make_solver

    return make_solver(workers=workers, seed=seed, time_limit_s=max(0.1, float(limit_s)))


def _read(solver, x, G: int) -> np.ndarray:
    return np.array([next((g for g in range(G) if solver.Value(v[g])), -1) for v in x], dtype=np.int64)


def solve_exact(loads: np.ndarray, prob: PlacementProblem, *, replicate: int | None = None,
                hints: list[Placement] | tuple[Placement, ...] = (), objective_kind: str = "mean",
                alpha: float = POLICY_ALPHA, previous: Placement | None = None, move_weight: float = 0.0,
                time_limit_s: float | None = None, workers: int | None = None,
                seed: int | None = None, gap_limit: float | None = None,
                polish_s: float | None = None, anneal_iters: int | None = None,
                jensen_share: float = 0.1, anneal_share: float = 0.6, space: str = "model",
                started: float | None = None, replica_choice: str = "loaded",
                anneal_rounds: int | None = None) -> ExactResult:
    """CP-SAT placement over the scenario window ``loads[T, E]`` (see module docstring).

    ``replicate``: how many experts may get a second replica (default: the problem's redundant
    slots, capped by HBM); 0 = GEM's space. ``gap_limit``: stop once the relative gap is at
    most this (CP-SAT ``relative_gap_limit``; default the problem's, 0 = prove optimality).
    ``polish_s``: a wall-clock cap on annealing + polish (:func:`~sieveopt.placement.anneal.anneal`)
    of the best hint, which runs first (objectives ``mean`` and ``cvar`` without movement; default: no cap on
    the annealing, whose result then depends on its seed and step count only, and
    ``anneal_share`` of the time left for the polish; 0 = off). ``anneal_iters``: annealing
    steps (default :data:`ANNEAL_ITERS_PER_ITEM` per placed item). The time limit holds for the
    whole call (from ``started``, a :func:`time.perf_counter` value, when the caller spent part of
    the budget already, e.g. on the hints): the annealing is step-counted but stops between
    phases once it has used ``anneal_share`` of the time left (a loaded machine), the LP rounds
    stop at the deadline (the last completed round's bound is kept), and the Jensen model and
    CP-SAT run only in the time left (skipped under :data:`MIN_STAGE_S`), so the result depends
    on the clock only when the machine is too slow for the step counts.
    ``jensen_share``: share of the time limit for the Jensen bound model.
    ``space``: ``"model"`` (HBM capacity, replicas) or ``"gem"`` (GEM's
    published space: "each expert sits on exactly one GPU, with experts per GPU = total experts /
    number of GPUs", trimoe_gem.md §2.4; ceil(E/G) slots per GPU, no replicas). Why offer it: with
    the model's space and the *serial* surrogate the optimiser gave fast GPUs fewer, GPU-side
    experts and slow GPUs more, small ones, which Sieve's overlapped execution does not reward
    (docs/results.md, "Expert placement"; the overlap surrogate removed that effect).
    ``replica_choice``: which experts may be replicated (:func:`replica_candidates`; ``"cheap"``
    also lets the annealing split and merge them). The bounds are those of the model with these
    candidates' pairs, the space searched.
    ``anneal_rounds``: annealing rounds (default: 1 when the CP-SAT model keeps every level row, a
    small model where CP-SAT can prove optimality, and gets the time after the LP and Jensen
    bounds; :data:`LARGE_ANNEAL_ROUNDS` otherwise, where round 0 runs before the LP bound, the
    restarts after it, Jensen's model is skipped and CP-SAT gets only what the rounds leave).
    Each round is step-counted; the clock only decides whether the next round starts (no
    restarts when ``polish_s`` caps the search)."""
    from ortools.sat.python import cp_model

    from sieveopt.solvers.cpsat_run import solve_by

    if objective_kind not in ("mean", "cvar", "balance"):
        raise ValueError(f"objective_kind must be 'mean', 'cvar' or 'balance', got {objective_kind!r}")
    t0 = time.perf_counter() if started is None else float(started)
    limit = float(prob.time_limit_s if time_limit_s is None else time_limit_s)
    deadline = t0 + limit - min(RESERVE_S, 0.02 * limit)        # the rest: reading and scoring

    def left() -> float:
        return deadline - time.perf_counter()

    nw = int(prob.workers if workers is None else workers)
    sd = int(prob.seed if seed is None else seed)
    L = np.rint(np.atleast_2d(np.asarray(loads, dtype=float))).astype(np.int64)
    T, E = L.shape
    G, cap = prob.num_gpus, prob.capacity
    if space not in ("model", "gem"):
        raise ValueError(f"space must be 'model' or 'gem', got {space!r}")
    if space == "gem":                       # GEM: one copy per expert, E/G experts per GPU
        cap, replicate = min(cap, -(-E // G)), 0
    budget = min(prob.redundant if replicate is None else replicate, max(0, cap * G - E), E)
    table = prob.surrogate.level_ns                                 # [G, N, K] slot cost by tokens, level
    it = _items(L, replica_candidates(L, table, budget, replica_choice))
    n = it.expert.size
    cost = dense((it.tokens, table))                                # [T, items, G, K] float ns
    c = np.rint(cost).astype(np.int64)
    K = c.shape[3]
    classes = [] if previous is not None and move_weight > 0 else identical_gpus(cost)
    order = np.argsort(-c.mean(axis=(0, 2, 3)), kind="stable")    # heaviest items first
    move_on = previous is not None and move_weight > 0 and prob.link_GBps > 0

    def total_of(a: np.ndarray) -> float:
        v = objective(cost, a, objective_kind, alpha)
        return v + (move_weight * _move_ns(previous, it, a, prob) if move_on else 0.0)

    def best_of(cands: list, assign: np.ndarray | None, val: float) -> tuple[np.ndarray | None, float]:
        for p in cands:
            a = _assign_from(p, it)
            if a is None or np.bincount(a[a >= 0], minlength=G).max() > cap:
                continue
            v = total_of(a)
            if v < val:
                assign, val = a, v
        return assign, val

    # small models keep every level row (CP-SAT can prove optimality there); large ones give
    # the time to the annealing (restarts after the LP bound) instead of Jensen and CP-SAT
    full_rows = T * G * K * n <= FULL_LEVEL_TERMS
    rounds = (1 if full_rows else LARGE_ANNEAL_ROUNDS) if anneal_rounds is None else max(1, int(anneal_rounds))

    # 1. incumbent: the best hint (staying put when movement is charged), annealed + polished
    hint_assign, hint_obj = best_of(list(hints) + ([previous] if move_on else []), None, np.inf)
    anneal_phases, rounds_run, round_s = 0, 0, 0.0
    given_hint_obj = float(hint_obj) if np.isfinite(hint_obj) else None
    worst = worst_count(alpha, T) if objective_kind == "cvar" else None
    do_anneal = (hint_assign is not None and objective_kind in ("mean", "cvar") and not move_on
                 and (polish_s is None or polish_s > 0))
    twin = np.full(n, -1, dtype=np.int64)
    for a_, b_ in it.pair.values():
        twin[a_], twin[b_] = b_, a_
    prs = None if replica_choice == "loaded" else np.array(
        [(it.single[e], *it.pair[e]) for e in sorted(it.pair)], dtype=np.int64).reshape(-1, 3)
    iters = 0
    if do_anneal:
        iters = ANNEAL_ITERS_PER_ITEM * int((hint_assign >= 0).sum()) if anneal_iters is None else int(anneal_iters)

    def anneal_round(r: int, cap_s: float) -> bool:
        """One annealing round (seed ``sd + r``) + polish from the incumbent, within ``cap_s``
        seconds (cut between phases); True when it ran every phase."""
        nonlocal hint_assign, hint_obj, anneal_phases, rounds_run, round_s
        t_r = time.perf_counter()
        pa, _, ph = anneal((it.tokens, table), hint_assign, cap, twin, iters=iters, seed=sd + r,
                           time_limit_s=cap_s, pairs=prs, budget=budget, worst_steps=worst)
        pa, _, _ = polish(cost, pa, cap, twin, time_limit_s=max(0.0, min(cap_s - (time.perf_counter() - t_r),
                                                                         left())), worst_steps=worst)
        pv = total_of(pa)
        if pv < hint_obj:
            hint_assign, hint_obj = pa, pv
        anneal_phases += ph
        rounds_run += 1
        round_s = time.perf_counter() - t_r
        return ph >= ANNEAL_PHASES

    complete = True
    if do_anneal:
        # seeded and step-counted: the wall-clock cut only catches a machine too slow for the steps
        rest = max(0.0, left())
        complete = anneal_round(0, anneal_share * rest if polish_s is None else min(polish_s, 0.8 * rest))
    stage_s = {"incumbent": time.perf_counter() - t0}
    # levels in the models: those that are a GPU's maximum at the incumbent, and their
    # neighbours (any subset of the level rows is a relaxation; the LP adds violated ones)
    ref = hint_assign if hint_assign is not None else np.where(it.expert == np.arange(n), np.arange(n) % G, -1)
    kmax = level_loads(c, ref).argmax(axis=2)                     # [T, G]

    def near_levels(width: int) -> np.ndarray:
        on = np.zeros((T, G, K), dtype=bool)
        if full_rows:                                              # small: every level row
            on[:] = True
            return on
        tt, gg = np.indices((T, G))
        for d in range(-width, width + 1):
            on[tt, gg, np.clip(kmax + d, 0, K - 1)] = True
        return on

    # the LP starts from +-3 levels (2 cut rounds on the DeepSeek-V3 window, 14 s of CPU; +-1:
    # 5 rounds, 18 s); the CP-SAT model keeps +-1
    on = near_levels(1)

    # 2. bounds (objective "mean"): the LP relaxation (level rows as cuts) and Jensen's
    jensen_lb, jensen_assign, lp_lb, lp_meta = 0.0, None, 0.0, {}
    if objective_kind in ("mean", "cvar"):
        lp_lb = lp_bound(c, it.single, it.pair, cap, budget, levels=near_levels(3), meta=lp_meta,
                         deadline=deadline, worst_steps=worst)
    stage_s["lp_bound"] = time.perf_counter() - t0 - sum(stage_s.values())
    # 1b. restarts from the best (large models): a round starts only while one as long as the
    # last still fits before the deadline, and the polish cap keeps the user's ``polish_s``
    r = 1
    while do_anneal and complete and r < rounds and polish_s is None and left() - round_s >= MIN_STAGE_S:
        complete = anneal_round(r, left() - MIN_STAGE_S)
        r += 1
    if rounds_run > 1:                       # the CP-SAT model's level rows follow the final incumbent
        kmax = level_loads(c, hint_assign).argmax(axis=2)
        on = near_levels(1)
    stage_s["anneal_restarts"] = time.perf_counter() - t0 - sum(stage_s.values())
    if (objective_kind == "mean" and T > 1 and full_rows and min(jensen_share * limit, left()) >= MIN_STAGE_S):
        jm, jx, _ = _model(it, G, cap, budget)
        cb = c.sum(axis=0)                                         # [items, G, K]
        jz = jm.NewIntVar(0, int(cb.max(axis=2).sum()) + 1, "z")
        for g in range(G):
            for k in range(K):
                jm.Add(sum(int(cb[i, g, k]) * jx[i][g] for i in range(n) if cb[i, g, k]) <= jz)
        jm.Minimize(jz)
        js = _solver(min(jensen_share * limit, left()), nw, sd)
        js.parameters.relative_gap_limit = 2e-4      # a bound, not a placement: stop once tight
        if solve_by(js, jm) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            jensen_lb = js.BestObjectiveBound() / T
            jensen_assign = _read(js, jx, G)
            hint_assign, hint_obj = best_of([_placement(it, jensen_assign, E, G, cap, "balance")],
                                            hint_assign, hint_obj)

    stage_s["jensen"] = time.perf_counter() - t0 - sum(stage_s.values())
    # 3. CP-SAT on the model with the incumbent as hint
    run_cpsat = left() >= (MIN_STAGE_S if full_rows else LARGE_CPSAT_MIN_S)   # else incumbent + bounds
    scale, relaxed = T, False
    if run_cpsat:
        m, x, y = _model(it, G, cap, budget)
        for cls in classes:                      # item p (in `order`) opens at most the (p+1)-th GPU
            for p, i in enumerate(order.tolist()):
                for g in cls[p + 1:]:
                    m.Add(x[i][g] == 0)
        ub = int(c.max(axis=3).sum(axis=1).max()) + 1
        if objective_kind == "balance":
            cb = c.sum(axis=0)
            zb = m.NewIntVar(0, int(cb.max(axis=2).sum()) + 1, "z")
            for g in range(G):
                for k in range(K):
                    m.Add(sum(int(cb[i, g, k]) * x[i][g] for i in range(n) if cb[i, g, k]) <= zb)
            obj_terms, scale, relaxed = zb, T, False
        else:
            relaxed = not on.all()
            z = [m.NewIntVar(0, ub, f"z{t}") for t in range(T)]
            for t, g, k in zip(*np.nonzero(on), strict=True):
                nz = np.flatnonzero(c[t, :, g, k])
                m.Add(sum(int(c[t, i, g, k]) * x[int(i)][g] for i in nz) <= z[t])
            if objective_kind == "mean":
                if max(jensen_lb, lp_lb) > 0:
                    m.Add(sum(z) >= int(np.floor(max(jensen_lb, lp_lb) * T)))
                obj_terms, scale = sum(z), T
            else:
                k = worst
                eta = m.NewIntVar(0, ub, "eta")
                u = [m.NewIntVar(0, ub, f"u{t}") for t in range(T)]
                for t in range(T):
                    m.Add(u[t] >= z[t] - eta)
                obj_terms, scale = k * eta + sum(u), k
                if lp_lb > 0:
                    m.Add(obj_terms >= int(np.floor(lp_lb * k)))
        move_scale = 0
        if move_on:
            move_ns = int(np.ceil(prob.expert_bytes / prob.link_GBps))
            held = previous.gpu_sets
            mv = m.NewIntVar(0, n * move_ns + 1, "move")
            for g in range(G):
                new_in = [x[i][g] for i in range(n) if not held[it.expert[i], g]]
                if new_in:
                    m.Add(move_ns * sum(new_in) <= mv)
            move_scale = int(round(move_weight * scale))
            obj_terms = obj_terms + move_scale * mv
        m.Minimize(obj_terms)
        if hint_assign is not None:
            hint_assign = canonical(hint_assign, classes, order)
            for i in range(n):
                for g in range(G):
                    m.AddHint(x[i][g], int(hint_assign[i] == g))
            for e, ye in y.items():              # replica selectors: the start is complete
                m.AddHint(ye, int(hint_assign[it.pair[e][0]] >= 0))
            if objective_kind != "balance":  # the straggler values too: a complete, feasible start
                zh = level_loads(c, hint_assign).max(axis=(1, 2))   # every level: >= the kept rows
                for t in range(T):
                    m.AddHint(z[t], int(zh[t]))

    stage_s["build"] = time.perf_counter() - t0 - sum(stage_s.values())
    if run_cpsat and left() >= MIN_STAGE_S:
        solver = _solver(left(), nw, sd)
        solver.parameters.relative_gap_limit = float(prob.gap_limit if gap_limit is None else gap_limit)
        st = solve_by(solver, m)
        status = solver.StatusName(st)
    else:                                    # no time left for CP-SAT: the incumbent and the bounds
        st, status = cp_model.UNKNOWN, "NO_TIME"
    stage_s["cpsat"] = time.perf_counter() - t0 - sum(stage_s.values())
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign, bound = _read(solver, x, G), solver.BestObjectiveBound() / scale
    else:
        assign, bound, status = hint_assign, 0.0, f"HINT ({status})"
    if objective_kind in ("mean", "cvar"):   # movement >= 0, so both bounds hold with it too
        bound = max(bound, jensen_lb, lp_lb)      # (cvar >= mean >= Jensen's)
    val = np.inf if assign is None else total_of(assign)
    if hint_assign is not None and hint_obj < val:          # never worse than the hint
        assign, val, status = hint_assign, hint_obj, "HINT"
    if assign is None:
        raise RuntimeError(f"exact placement: no solution within the time limit ({status})")
    move_part = move_weight * _move_ns(previous, it, assign, prob) if move_on else 0.0
    val -= move_part                                          # objective_ns: the straggler part
    # the gap is measured in the solved (integer-ns) model, where the bound holds; the reported
    # objective uses the float costs (they differ by < items/2 ns per step)
    total = objective(c.astype(float), assign, objective_kind, alpha) + move_part
    gap = 0.0 if total <= 0 else max(0.0, (total - bound) / total)
    if status == "OPTIMAL" and relaxed and gap > 1e-9:   # optimal for a subset of the level rows only
        status = "FEASIBLE"
    return ExactResult(_placement(it, assign, E, G, cap, "exact"), status, float(val), float(bound), float(gap),
                       time.perf_counter() - t0, float(hint_obj),
                       meta={"items": int(n), "steps": int(T), "objective": objective_kind,
                             "alpha": float(alpha) if worst is not None else None, "worst_steps": worst,
                             "replica_candidates": int(budget), "replica_choice": replica_choice,
                             "replicas_used": int(sum(assign[a_] >= 0 for a_, _ in it.pair.values())),
                             "jensen_bound_ns": float(jensen_lb),
                             "lp_bound_ns": float(lp_lb), "lp_rounds": lp_meta.get("rounds", 0),
                             "lp_level_rows": lp_meta.get("rows", 0), "lp_violated": lp_meta.get("violated", 0),
                             "levels": int(K), "model_level_rows": int(on.sum()) if relaxed else int(T * G * K),
                             "anneal_phases": int(anneal_phases), "anneal_rounds": int(rounds_run),
                             "anneal_iters_per_round": int(iters), "stage_s": stage_s,
                             "space": space, "slots_per_gpu": int(cap),
                             "surrogate": prob.surrogate.name, "move_ns": move_part, "workers": nw,
                             "time_limit_s": limit,
                             "given_hint_objective_ns": given_hint_obj,   # best hint before the polish
                             "identical_gpu_classes": [list(map(int, k)) for k in classes]})


def _placement(it: _Items, assign: np.ndarray, E: int, G: int, cap: int, policy: str) -> Placement:
    used = assign >= 0
    return Placement(it.expert[used], assign[used], E, G, cap, policy)


def _move_ns(prev: Placement, it: _Items, assign: np.ndarray, prob: PlacementProblem) -> float:
    used = assign >= 0
    held = prev.gpu_sets
    new = ~held[it.expert[used], assign[used]]
    per_gpu = np.bincount(assign[used][new], minlength=prob.num_gpus)
    return float(per_gpu.max() * np.ceil(prob.expert_bytes / prob.link_GBps))


def exact_with_report(loads: np.ndarray, prob: PlacementProblem, **kw) -> ExactResult:
    """The exact optimiser with GEM and EPLB on the same window as hints; the time limit covers
    the hints too (the whole decision)."""
    started = time.perf_counter()
    L = np.atleast_2d(np.asarray(loads, dtype=float))
    hints = [gem(L, prob)]
    if prob.redundant > 0:
        hints.append(eplb(L, prob))
    return solve_exact(L, prob, hints=hints, started=started, **kw)


@register("exact")
def exact(loads: np.ndarray, prob: PlacementProblem) -> Placement:
    """The CP-SAT optimum of the surrogate over the window (hints: GEM, EPLB)."""
    return exact_with_report(loads, prob).placement
