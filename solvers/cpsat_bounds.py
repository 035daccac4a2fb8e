"""Static analysis of a layer DAG for the exact solver: heads, tails, load cuts, partition bound.

Everything here is a *relaxation* of the scheduling problem, so each number is a valid lower bound
on the optimal makespan (used as redundant cuts in CP-SAT and to certify its bound):

* ``heads``/``tails``: longest paths into / out of each task with every task at its shortest mode,
  skipping conditional edges (they may be inactive) except those conditioned on the task's own mode.
* resource load cuts: for a resource r and thresholds (h, q), every task-mode on r with head >= h
  and tail >= q runs inside [h, M - q], so ``M >= h + q + sum(lit * duration)``.
* the per-GPU partition bound: the GPU-mode experts of GPU g run one after another on ``gpu[g]``
  after the grouped-GEMM launch, the PIM-mode experts one after another on ``pim[g]``; the best
  split of that two-machine relaxation (solved exactly by a subset-sum DP) is a lower bound, and
  its argmin is a strong schedule hint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sieveopt.dag import EXPERT, RES_GPU, RES_PIM, TaskDAG
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.solvers.interruptible import run_interruptible

NEG = -(1 << 60)


@dataclass(frozen=True)
class HeadsTails:
    """Per (task, mode): earliest start (head) and minimal time from its end to the makespan (tail)."""

    head: dict[tuple[int, str], int]
    tail: dict[tuple[int, str], int]
    critical_path_ns: int   # max over tasks/modes of head + duration + tail (a lower bound)


def heads_tails(dag: TaskDAG, durations: list[dict[str, int]], lags: dict[int, int] | None = None, *,
                resource_aware: bool = True) -> HeadsTails:
    """Heads/tails with the given per-task mode durations (``lags``: edge index -> lag override).

    ``resource_aware``: also lift a task's head by its predecessors that share a unary resource
    (they run one after another before it, see :func:`_serial_head`) and its tail likewise by its
    successors (:func:`_serial_tail`)."""
    edges = dag.edges
    lag = [lags.get(i, e.lag_ns) if lags else e.lag_ns for i, e in enumerate(edges)]
    preds: list[list[int]] = [[] for _ in dag.tasks]
    succs: list[list[int]] = [[] for _ in dag.tasks]
    for i, e in enumerate(edges):
        preds[e.dst].append(i)
        succs[e.src].append(i)
    head_t = [0] * len(dag.tasks)          # min over modes of the mode head
    head: dict[tuple[int, str], int] = {}
    for t in dag.topo_order:
        base = 0
        own: dict[str, int] = {}
        for i in preds[t]:
            e = edges[i]
            val = head_t[e.src] + min(durations[e.src].values()) + lag[i]
            if e.if_mode is None:
                base = max(base, val)
            elif e.if_mode[0] == t:
                own[e.if_mode[1]] = max(own.get(e.if_mode[1], 0), val)
        if resource_aware:
            base = max(base, _serial_head(dag, durations, head_t, lag, [i for i in preds[t] if edges[i].if_mode is None]))
        for m in durations[t]:
            head[(t, m)] = max(base, own.get(m, 0))
        head_t[t] = min(head[(t, m)] for m in durations[t])
    tail_t = [0] * len(dag.tasks)          # min over modes of (duration + tail)
    tail: dict[tuple[int, str], int] = {}
    for t in reversed(dag.topo_order):
        base = 0
        for i in succs[t]:
            e = edges[i]
            if e.if_mode is not None:
                continue  # conditional edges may be inactive (heads keep those on the task's own mode)
            val = lag[i] + tail_t[e.dst]
            base = max(base, val)
        if resource_aware:
            base = max(base, _serial_tail(dag, durations, tail, lag, [i for i in succs[t] if edges[i].if_mode is None]))
        for m in durations[t]:
            tail[(t, m)] = base
        tail_t[t] = min(durations[t][m] + base for m in durations[t])
    cp = max(min(head[(t, m)] + d + tail[(t, m)] for m, d in durations[t].items())
             for t in range(len(dag.tasks)))
    return HeadsTails(head, tail, cp)


def _unary_groups(dag: TaskDAG, durations: list[dict[str, int]], edges_idx: list[int], other_end: str):
    """Edges grouped by a capacity-1 resource held by their single-mode, non-zero-length far task."""
    groups: dict[int, list[int]] = {}
    for i in edges_idx:
        u = getattr(dag.edges[i], other_end)
        task = dag.tasks[u]
        if task.has_choice:
            continue
        (m, mc), = task.modes.items()
        if durations[u][m] <= 0:
            continue
        for rid in mc.resources:
            if dag.resources[rid].capacity == 1:
                groups.setdefault(rid, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _chain_bound(items: list[tuple[int, int, int]]) -> int:
    """Tasks (release-or-tail ``r``, duration ``d``, lag) that run one after another on one unary
    resource: for every threshold, those with ``r`` at least the threshold give
    ``threshold + sum(d) + min(lag)``; the largest over thresholds."""
    best, total, min_lag = 0, 0, None
    for r, d, lg in sorted(items, reverse=True):
        total += d
        min_lag = lg if min_lag is None else min(min_lag, lg)
        best = max(best, r + total + min_lag)
    return best


def _serial_head(dag: TaskDAG, durations: list[dict[str, int]], head_t: list[int], lag: list[int],
                 edges_idx: list[int]) -> int:
    """Predecessors on one unary resource with head >= h all run inside [h, start - min lag]:
    ``start >= h + sum(their durations) + min(their lags)`` for every threshold h."""
    best = 0
    for grp in _unary_groups(dag, durations, edges_idx, "src"):
        best = max(best, _chain_bound([(head_t[dag.edges[i].src], min(durations[dag.edges[i].src].values()), lag[i])
                                       for i in grp]))
    return best


def _serial_tail(dag: TaskDAG, durations: list[dict[str, int]], tail: dict[tuple[int, str], int], lag: list[int],
                 edges_idx: list[int]) -> int:
    """Successors on one unary resource with tail >= q all start after ``end + min lag`` and run one
    after another: ``tail >= min(their lags) + sum(their durations) + q`` for every threshold q."""
    best = 0
    for grp in _unary_groups(dag, durations, edges_idx, "dst"):
        items = []
        for i in grp:
            u = dag.edges[i].dst
            (m,) = durations[u]
            items.append((tail[(u, m)], durations[u][m], lag[i]))
        best = max(best, _chain_bound(items))
    return best


@dataclass(frozen=True)
class LoadCut:
    """``M >= const + sum(coef * [task t runs in mode m])``, valid when at least one term is present
    (``mandatory``: some task has all its modes among the terms, so that always holds)."""

    resource: int
    const: int
    terms: tuple[tuple[int, str, int], ...]   # (task, mode, duration)
    mandatory: bool = True


def load_cuts(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, max_pairs: int = 64) -> list[LoadCut]:
    """Energy cuts per resource over (head >= h, tail >= q) threshold pairs."""
    items: dict[int, list[tuple[int, str, int, int, int]]] = {}
    for t in dag.tasks:
        for m, mc in t.modes.items():
            d = durations[t.tid][m]
            if d <= 0:
                continue
            for rid in mc.resources:
                items.setdefault(rid, []).append((t.tid, m, d, ht.head[(t.tid, m)], ht.tail[(t.tid, m)]))
    cuts: list[LoadCut] = []
    for rid, its in items.items():
        cap = dag.resources[rid].capacity
        hs = sorted({x[3] for x in its})
        qs = sorted({x[4] for x in its})
        pairs = [(h, q) for h in hs for q in qs]
        if len(pairs) > max_pairs:
            pairs = [(h, qs[0]) for h in hs] + [(hs[0], q) for q in qs[1:]]
        seen: set[tuple] = set()
        for h, q in pairs:
            sub = tuple((t, m, d) for t, m, d, hh, qq in its if hh >= h and qq >= q)
            if not sub or sub in seen:
                continue
            seen.add(sub)
            if cap > 1:  # energy / capacity, rounded down: still valid
                continue
            modes_in: dict[int, int] = {}
            for t, _m, _d in sub:
                modes_in[t] = modes_in.get(t, 0) + 1
            mandatory = any(k == len(durations[t]) for t, k in modes_in.items())
            cuts.append(LoadCut(rid, h + q, sub, mandatory))
    return cuts


@dataclass(frozen=True)
class EnergyCut:
    """``capacity * M >= capacity * const + sum(duration * [task t runs in mode m])``."""

    resource: int
    capacity: int
    const: int
    terms: tuple[tuple[int, str, int], ...]   # (task, mode, duration)


def choice_energy_cuts(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails) -> list[EnergyCut]:
    """Energy cuts over the mode-choice experts of each GPU, valid without any enforcement.

    Every expert task of GPU g runs in *some* mode, so with H (Q) the smallest head (tail) over
    all its modes, ``M >= H + Q`` and each of its intervals lies in ``[H, M - Q]``: a resource of
    capacity c can hold at most ``c (M - H - Q)`` of their durations. One cut per resource the
    experts' modes hold (any target, any capacity); together they give the LP the fractional
    assignment bound of the three-way (or n-way) choice, which per-resource cuts enforced only
    when some term is present do not. Experts with exactly the GPU/PIM modes are left to the
    split bounds (:func:`partition_bound`), so two-sided models are unchanged."""
    cuts: list[EnergyCut] = []
    for g in range(dag.num_gpus):
        ex = [t for t in dag.tasks if t.kind == EXPERT and t.gpu == g and t.has_choice
              and set(t.modes) != {MODE_GPU, MODE_PIM}]   # two-sided ones: the split bounds below
        if not ex:
            continue
        H = min(ht.head[(t.tid, m)] for t in ex for m in t.modes)
        Q = min(ht.tail[(t.tid, m)] for t in ex for m in t.modes)
        terms: dict[int, list[tuple[int, str, int]]] = {}
        for t in ex:
            for m, mc in t.modes.items():
                d = durations[t.tid][m]
                if d > 0:
                    for rid in mc.resources:
                        terms.setdefault(rid, []).append((t.tid, m, d))
        for rid, ts in terms.items():
            cuts.append(EnergyCut(rid, dag.resources[rid].capacity, H + Q, tuple(ts)))
    return cuts


def choice_lp_bound(cuts: list[EnergyCut]) -> int:
    """LP relaxation of the energy cuts (per constant, i.e. per GPU): the fractional n-way
    assignment bound ``const + min T`` s.t. every resource's share fits ``capacity x T`` and
    every task's modes sum to 1 (GLOP; rounded down with a safety margin, so still valid)."""
    from ortools.linear_solver import pywraplp

    best = 0
    for const in sorted({c.const for c in cuts}):
        group = [c for c in cuts if c.const == const]
        lp = pywraplp.Solver.CreateSolver("GLOP")
        if lp is None:
            return 0
        T = lp.NumVar(0, lp.infinity(), "T")
        x: dict[tuple[int, str], object] = {}
        for c in group:
            for t, m, _d in c.terms:
                if (t, m) not in x:
                    x[(t, m)] = lp.NumVar(0, 1, "")
        for t in {t for t, _ in x}:
            lp.Add(sum(v for (tt, _), v in x.items() if tt == t) == 1)
        for c in group:
            lp.Add(sum(d * x[(t, m)] for t, m, d in c.terms) <= c.capacity * T)
        lp.Minimize(T)
        if run_interruptible(lp.Solve, stop=lp.InterruptSolve) == pywraplp.Solver.OPTIMAL:  # Ctrl-C
            best = max(best, const + int(math.floor(T.solution_value() * (1 - 1e-9) - 1)))
    return best


def evaluate_cut(cut: LoadCut, modes: list[str] | tuple[str, ...]) -> int:
    return cut.const + sum(d for t, m, d in cut.terms if modes[t] == m)


def static_lower_bound(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails,
                       cuts: list[LoadCut]) -> int:
    """Best bound from the critical path and each load cut at its cheapest mode choice."""
    lb = ht.critical_path_ns
    for c in cuts:
        # Minimum over mode choices of a cut: tasks with another mode outside the cut contribute 0.
        per_task: dict[int, list[int]] = {}
        for t, _m, d in c.terms:
            per_task.setdefault(t, []).append(d)
        total, present = c.const, False
        for t, ds in per_task.items():
            if len(ds) == len(durations[t]):  # every mode of t is on this resource: it is present
                total += min(ds)
                present = True
        if present:  # with every task possibly absent the constant alone is no bound
            lb = max(lb, total)
    return lb


@dataclass(frozen=True)
class PartitionBound:
    """Per-GPU two-machine relaxation: lower bound and the argmin split (expert task -> mode)."""

    bound_ns: int
    per_gpu_ns: dict[int, int]
    modes: dict[int, str]       # expert task id -> mode of the relaxation's best split


def _split_experts(dag: TaskDAG, durations: list[dict[str, int]], g: int, min_count: int) -> tuple[list[int], int, int] | None:
    """GPU ``g``'s two-mode experts, if the split bounds apply to them: at least ``min_count`` of
    them, every one on the GPU's ``gpu`` resource in GPU mode and its ``pim`` resource in PIM mode,
    all with positive durations. Returns (task ids, gpu resource id, pim resource id)."""
    ex = [t.tid for t in dag.tasks if t.kind == EXPERT and t.gpu == g and set(t.modes) == {MODE_GPU, MODE_PIM}]
    if len(ex) < min_count:
        return None
    gpu_rid = dag.resource_id.get((RES_GPU, g))
    pim_rid = dag.resource_id.get((RES_PIM, g))
    if any(gpu_rid not in dag.tasks[t].modes[MODE_GPU].resources or
           pim_rid not in dag.tasks[t].modes[MODE_PIM].resources for t in ex):
        return None
    if min(min(durations[t][MODE_GPU], durations[t][MODE_PIM]) for t in ex) <= 0:
        return None
    return ex, gpu_rid, pim_rid


def partition_bound(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails,
                    max_cells: int = 400_000) -> PartitionBound | None:
    """Exact subset-sum DP over the GPU/PIM split of each GPU's experts (see module docstring).

    PIM durations are rounded *down* to a resolution that keeps the DP under ``max_cells`` cells,
    so the bound stays valid; GPU durations are exact. Returns None when the DAG has no
    gpu|pim experts."""
    per_gpu: dict[int, int] = {}
    split: dict[int, str] = {}
    for g in range(dag.num_gpus):
        ex = [t for t in dag.tasks if t.kind == EXPERT and t.gpu == g and set(t.modes) == {MODE_GPU, MODE_PIM}]
        if not ex:
            continue
        gpu_rid = dag.resource_id.get((RES_GPU, g))
        pim_rid = dag.resource_id.get((RES_PIM, g))
        if any(gpu_rid not in t.modes[MODE_GPU].resources or pim_rid not in t.modes[MODE_PIM].resources
               for t in ex):
            continue
        cg, cg0 = side_constant(dag, durations, ht, gpu_rid, [(t.tid, MODE_GPU) for t in ex])
        cp, cp0 = side_constant(dag, durations, ht, pim_rid, [(t.tid, MODE_PIM) for t in ex])
        gd = np.array([durations[t.tid][MODE_GPU] for t in ex], dtype=np.int64)
        pd = np.array([durations[t.tid][MODE_PIM] for t in ex], dtype=np.int64)
        total_p = int(pd.sum())
        if int(pd.min()) <= 0:
            continue
        res = min(max(1, -(-total_p // max_cells)), int(pd.min()))  # every item keeps a positive size
        pq = pd // res
        cap = int(pq.sum())
        best = np.full(cap + 1, NEG, dtype=np.int64)
        best[0] = 0
        took = np.zeros((len(ex), cap + 1), dtype=bool)
        for i in range(len(ex)):
            p, gval = int(pq[i]), int(gd[i])
            cand = np.full(cap + 1, NEG, dtype=np.int64)
            if p == 0:
                cand[:] = best + gval
            else:
                cand[p:] = best[:-p] + gval
            better = cand > best
            took[i] = better
            best = np.where(better, cand, best)
        feas = best > NEG // 2
        s_idx = np.flatnonzero(feas)
        gpu_end = np.maximum(cg + int(gd.sum()) - best[s_idx], cg0)
        pim_end = np.maximum(cp + s_idx * res, cp0)
        # Empty sides: all items positive, so S = 0 is exactly "all on GPU", S = cap "all on PIM".
        if s_idx[0] == 0:
            pim_end[0] = cp0
        if s_idx[-1] == cap:
            gpu_end[-1] = cg0
        val = np.maximum(gpu_end, pim_end)
        k = int(np.argmin(val))
        per_gpu[g] = int(val[k])
        s = int(s_idx[k])
        for i in range(len(ex) - 1, -1, -1):
            if took[i, s]:
                split[ex[i].tid] = MODE_PIM
                s -= int(pq[i])
            else:
                split[ex[i].tid] = MODE_GPU
    if not per_gpu:
        return None
    return PartitionBound(max(per_gpu.values()), per_gpu, split)


def side_constant(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, rid: int,
                  experts: list[tuple[int, str]]) -> tuple[int, int]:
    """The side's finish time before any expert load, as (with >= 1 expert, with none); a side
    with experts ends at ``max(first + load, second)``.

    With >= 1 expert: the largest ``h + q + (fixed load on rid with head >= h, tail >= q)`` over
    thresholds every expert satisfies (head >= h, tail >= q). With none: the same over the fixed
    tasks' own thresholds (0 if the side holds no fixed task)."""
    h_max = min(ht.head[x] for x in experts)
    q_max = min(ht.tail[x] for x in experts)
    fixed = []
    for t in dag.tasks:
        if t.has_choice:
            continue  # multi-mode tasks other than these experts are dropped (a relaxation)
        (m, mc), = t.modes.items()
        if rid in mc.resources and durations[t.tid][m] > 0:
            fixed.append((ht.head[(t.tid, m)], ht.tail[(t.tid, m)], durations[t.tid][m]))

    def val(h: int, q: int) -> int:
        return h + q + sum(d for hh, qq, d in fixed if hh >= h and qq >= q)

    hs = {h for h, _, _ in fixed if h <= h_max} | {h_max}
    qs = {q for _, q, _ in fixed if q <= q_max} | {q_max}
    nonempty = max(val(h, q) for h in hs for q in qs)
    empty = max((val(h, q) for h, _, _ in fixed for _, q, _ in fixed
                 if any(hh >= h and qq >= q for hh, qq, _ in fixed)), default=0)
    return nonempty, empty


@dataclass(frozen=True)
class CountBound:
    """Per-GPU split relaxation with release dates and delivery times (see :func:`count_bound`)."""

    bound_ns: int
    per_gpu_ns: dict[int, int]
    gpu_count: dict[int, int]   # argmin number of GPU-mode experts per GPU


def count_bound(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails,
                max_sets: int = 400) -> CountBound | None:
    """Split bound that keeps each expert's head (dispatch arrival) and tail (combine + reduce).

    For GPU g with m gpu|pim experts, let j be the number of them in GPU mode. For every threshold
    pair (h, q) the experts A with PIM-mode head >= h and tail >= q that run on PIM all lie inside
    [h, M - q] on ``pim[g]``, together with the fixed PIM work there; at least ``|A| - j`` of them
    are on PIM, so ``M >= c(A) + (sum of the |A| - j smallest PIM durations in A)`` where ``c(A)``
    is :func:`side_constant` of A (or the side's no-expert constant when |A| <= j). The GPU side
    is the same with GPU-mode thresholds and at least ``j - (m - |B|)`` experts of B on the GPU.
    Every term holds for every schedule with exactly j GPU-mode experts, so
    ``min over j of max(all terms)`` is a valid lower bound (each term may pick its own experts,
    which is the relaxation). It is cheap (no subset-sum) and complements :func:`partition_bound`,
    whose sides start at the *earliest* head and *smallest* tail of all experts."""
    per_gpu: dict[int, int] = {}
    counts: dict[int, int] = {}
    for g in range(dag.num_gpus):
        split = _split_experts(dag, durations, g, min_count=1)
        if split is None:
            continue
        ex, gpu_rid, pim_rid = split
        m = len(ex)
        js = np.arange(m + 1)
        gpu_lb = _side_terms(dag, durations, ht, gpu_rid, ex, MODE_GPU, js, max_sets)
        pim_lb = _side_terms(dag, durations, ht, pim_rid, ex, MODE_PIM, m - js, max_sets)
        val = np.maximum(gpu_lb, pim_lb)
        k = int(np.argmin(val))
        per_gpu[g], counts[g] = int(val[k]), k
    if not per_gpu:
        return None
    return CountBound(max(per_gpu.values()), per_gpu, counts)


def _side_terms(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, rid: int, ex: list[int],
                mode: str, n_side: np.ndarray, max_sets: int) -> np.ndarray:
    """Lower bound on the side's finish time for each number ``n_side[j]`` of experts on that side."""
    pts = sorted({(ht.head[(t, mode)], ht.tail[(t, mode)]) for t in ex})
    hs = sorted({h for h, _ in pts})
    qs = sorted({q for _, q in pts})
    pairs = [(h, q) for h in hs for q in qs]
    if len(pairs) > max_sets:
        pairs = sorted(set(pts) | {(hs[0], q) for q in qs} | {(h, qs[0]) for h in hs})
    m = len(ex)
    out = np.zeros(len(n_side), dtype=np.int64)
    seen: set[tuple[int, ...]] = set()
    empty = None
    for h, q in pairs:
        members = tuple(t for t in ex if ht.head[(t, mode)] >= h and ht.tail[(t, mode)] >= q)
        if not members or members in seen:
            continue
        seen.add(members)
        const, const0 = side_constant(dag, durations, ht, rid, [(t, mode) for t in members])
        empty = const0
        d = np.sort(np.array([durations[t][mode] for t in members], dtype=np.int64))
        csum = np.concatenate([[0], np.cumsum(d)])
        need = n_side - (m - len(members))          # members that must be on this side
        val = np.where(need >= 1, const + csum[np.clip(need, 0, len(members))], const0)
        out = np.maximum(out, np.maximum(val, const0))
    if empty is not None:
        out = np.maximum(out, empty)
    return out


def _max_saved(gd: np.ndarray, pd: np.ndarray, max_cells: int) -> tuple[np.ndarray, int]:
    """Subset-sum DP: ``best[s]`` = the largest GPU load moved off the GPU by a subset of PIM load
    ``s * res`` (PIM sizes rounded down to ``res``, so every value stays a valid relaxation)."""
    total_p = int(pd.sum())
    res = min(max(1, -(-total_p // max_cells)), int(pd.min()))
    pq = pd // res
    cap = int(pq.sum())
    best = np.full(cap + 1, NEG, dtype=np.int64)
    best[0] = 0
    for p, gval in zip(pq.tolist(), gd.tolist(), strict=True):
        cand = np.full(cap + 1, NEG, dtype=np.int64)
        cand[p:] = best[:cap + 1 - p] + gval
        np.maximum(best, cand, out=best)
    return best, res


def class_partition_bound(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails,
                          max_loose: int = 8, max_cells: int = 400_000) -> dict[int, int]:
    """Per-GPU split bound with two classes of experts: *loose* ones (those at the smallest PIM head,
    PIM tail or GPU tail of the GPU: typically experts fed only by local tokens) and the rest R.

    Every subset of the loose experts on the GPU is enumerated; R's split is the exact DP. For a
    split, each side ends no earlier than (a) its side constant over the loose experts placed on it
    and R, plus its whole load, and (b) its side constant over R alone plus R's load there (R's
    experts have later heads and longer tails, so that window is tighter). Returns {gpu: bound}; GPUs with no loose expert,
    too many, or no R are left out (use :func:`partition_bound` there)."""
    out: dict[int, int] = {}
    for g in range(dag.num_gpus):
        split = _split_experts(dag, durations, g, min_count=2)
        if split is None:
            continue
        ex, gpu_rid, pim_rid = split
        h0 = min(ht.head[(t, MODE_PIM)] for t in ex)
        q0 = min(ht.tail[(t, MODE_PIM)] for t in ex)
        g0 = min(ht.tail[(t, MODE_GPU)] for t in ex)
        loose = [t for t in ex if ht.head[(t, MODE_PIM)] == h0 or ht.tail[(t, MODE_PIM)] == q0
                 or ht.tail[(t, MODE_GPU)] == g0]
        rest = [t for t in ex if t not in loose]
        if not loose or not rest or len(loose) > max_loose:
            continue
        _, cg0 = side_constant(dag, durations, ht, gpu_rid, [(t, MODE_GPU) for t in ex])
        _, cp0 = side_constant(dag, durations, ht, pim_rid, [(t, MODE_PIM) for t in ex])
        r_gpu_items = [(t, MODE_GPU) for t in rest]
        r_pim_items = [(t, MODE_PIM) for t in rest]
        rg, _ = side_constant(dag, durations, ht, gpu_rid, r_gpu_items)
        rp, _ = side_constant(dag, durations, ht, pim_rid, r_pim_items)
        gd = np.array([durations[t][MODE_GPU] for t in rest], dtype=np.int64)
        pd = np.array([durations[t][MODE_PIM] for t in rest], dtype=np.int64)
        best, res = _max_saved(gd, pd, max_cells)
        feas = best > NEG // 2
        s = np.flatnonzero(feas)
        r_gpu = int(gd.sum()) - best[s]              # R's GPU load at each reachable PIM load
        r_pim = s * res                              # R's PIM load (rounded down)
        lg_all = [durations[t][MODE_GPU] for t in loose]
        lp_all = [durations[t][MODE_PIM] for t in loose]
        val_best = None
        for mask in range(1 << len(loose)):
            lg = sum(d for i, d in enumerate(lg_all) if mask >> i & 1)
            lp = sum(d for i, d in enumerate(lp_all) if not mask >> i & 1)
            # Side constants over the experts that may be on each side under this mask (the loose
            # ones placed there, and R): a superset of the side's experts, so still valid.
            cg, _ = side_constant(dag, durations, ht, gpu_rid,
                                   [(t, MODE_GPU) for i, t in enumerate(loose) if mask >> i & 1] + r_gpu_items)
            cp, _ = side_constant(dag, durations, ht, pim_rid,
                                   [(t, MODE_PIM) for i, t in enumerate(loose) if not mask >> i & 1] + r_pim_items)
            g_load, p_load = r_gpu + lg, r_pim + lp
            gpu_end = np.where(g_load > 0, cg + g_load, cg0)
            gpu_end = np.maximum(gpu_end, np.where(r_gpu > 0, rg + r_gpu, 0))
            pim_end = np.where(p_load > 0, cp + p_load, cp0)
            pim_end = np.maximum(pim_end, np.where(r_pim > 0, rp + r_pim, 0))
            v = int(np.min(np.maximum(np.maximum(gpu_end, cg0), np.maximum(pim_end, cp0))))
            val_best = v if val_best is None else min(val_best, v)
        out[g] = val_best
    return out
