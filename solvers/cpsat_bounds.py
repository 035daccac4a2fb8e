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

from dataclasses import dataclass

import numpy as np

from sieveopt.dag import EXPERT, RES_GPU, RES_PIM, TaskDAG
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM

NEG = -(1 << 60)


@dataclass(frozen=True)
class HeadsTails:
    """Per (task, mode): earliest start (head) and minimal time from its end to the makespan (tail)."""

    head: dict[tuple[int, str], int]
    tail: dict[tuple[int, str], int]
    critical_path_ns: int   # max over tasks/modes of head + duration + tail (a lower bound)


def heads_tails(dag: TaskDAG, durations: list[dict[str, int]], lags: dict[int, int] | None = None) -> HeadsTails:
    """Heads/tails with the given per-task mode durations (``lags``: edge index -> lag override)."""
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
        for m in durations[t]:
            tail[(t, m)] = base
        tail_t[t] = min(durations[t][m] + base for m in durations[t])
    cp = max(min(head[(t, m)] + d + tail[(t, m)] for m, d in durations[t].items())
             for t in range(len(dag.tasks)))
    return HeadsTails(head, tail, cp)


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
        cg, cg0 = _side_constant(dag, durations, ht, gpu_rid, [(t.tid, MODE_GPU) for t in ex])
        cp, cp0 = _side_constant(dag, durations, ht, pim_rid, [(t.tid, MODE_PIM) for t in ex])
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


def _side_constant(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, rid: int,
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
