"""Best-improvement local search on the exact model's item space (the exact optimiser's polisher).

An assignment ``assign[i]`` puts item i (an expert's single copy or one of its two replicas,
:mod:`~sieveopt.placement.exact`) on a GPU (-1 = item unused). Neighbourhood: *move* one item
to another GPU with a free slot, or *swap* the GPUs of two items; replicas of one expert stay on
distinct GPUs. Each round applies the best move or swap over all items (by the objective: the
mean over the window of the per-step straggler, ``mean_t max_g L[t, g]``) and stops at a local
optimum, after ``max_rounds`` or ``time_limit_s``. Why: CP-SAT's search never improved GEM's
hint on the 32-step DeepSeek-V3 window (docs/results.md); GEM's own search only swaps off the
straggler GPU at a fixed expert count per GPU, while the exact model lets fast GPUs hold more
experts (up to the HBM capacity), so one search over the model's whole space starts the
solver from a better incumbent. The exact optimiser runs it after the annealing
(:mod:`~sieveopt.placement.anneal`), which replaced the iterated version of this search (seeded
kicks + re-polish: 159.4-159.8 us on the window against the annealing's 157.9-158.5 us).
Deterministic (ties broken by the lowest item, then GPU index).
"""

from __future__ import annotations

import time

import numpy as np

from sieveopt.placement.anneal import worst_mean


def gpu_loads(cost: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """``[T, G]`` surrogate work per step and GPU of ``assign`` (``cost[T, items, G]`` or level
    costs ``[T, items, G, K]``: a GPU's work is the max over its levels)."""
    c = cost[..., None] if cost.ndim == 3 else cost
    return np.stack([c[:, assign == g, g].sum(axis=1) for g in range(c.shape[2])], axis=1).max(axis=2)


def polish(cost: np.ndarray, assign: np.ndarray, capacity: int, twin: np.ndarray, *,
           max_rounds: int = 2000, time_limit_s: float = 10.0,
           worst_steps: int | None = None) -> tuple[np.ndarray, float, int]:
    """Local search minimising ``mean_t max_g`` work (with ``worst_steps`` = k: the mean of the k
    largest step stragglers, the ``cvar`` objective); returns (assignment, objective, rounds).

    ``cost``: ``[T, items, G]`` or level costs ``[T, items, G, K]``. ``twin[i]``: the other
    replica item of item i's expert (-1 when none); the two may not share a GPU. The result is
    never worse than ``assign``. Each round scores every move and swap in blocks of GPU pairs
    (g, h), vectorised over the items of g and h and the levels."""
    c = cost[..., None] if cost.ndim == 3 else cost
    T, n, G, K = c.shape
    a = np.asarray(assign, dtype=np.int64).copy()
    twin = np.asarray(twin, dtype=np.int64)
    L = np.stack([c[:, a == g, g].sum(axis=1) for g in range(G)], axis=1)        # [T, G, K]
    V = L.max(axis=2)
    cur = float(worst_mean(V.max(axis=1), worst_steps))
    t0 = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and time.perf_counter() - t0 < time_limit_s:
        on = [np.flatnonzero(a == g) for g in range(G)]
        tw_gpu = np.where(twin >= 0, a[np.maximum(twin, 0)], -1)     # GPU of each item's twin
        best = (cur - 1e-9, -1, -1, -1)                             # (objective, kind, i, j/h)
        for g in range(G):
            cg = c[:, :, g, :].transpose(0, 2, 1)                  # [T, K, items] on g
            for h in range(G):
                if h == g:
                    continue
                ch = c[:, :, h, :].transpose(0, 2, 1)
                rest = np.delete(V, [g, h], axis=1).max(axis=1) if G > 2 else np.zeros(T)
                ig = on[g][tw_gpu[on[g]] != h]                     # items of g allowed onto h
                if ig.size and on[h].size < capacity:              # moves g -> h
                    vg = (L[:, g, :, None] - cg[:, :, ig]).max(axis=1)
                    vh = (L[:, h, :, None] + ch[:, :, ig]).max(axis=1)
                    obj = worst_mean(np.maximum(np.maximum(vg, vh), rest[:, None]), worst_steps)
                    k = int(np.argmin(obj))
                    if obj[k] < best[0]:
                        best = (float(obj[k]), 0, int(ig[k]), h)
                if h < g:
                    continue
                jh = on[h][tw_gpu[on[h]] != g]                     # items of h allowed onto g
                if ig.size and jh.size:                            # swaps i (g) <-> j (h)
                    new_g = (L[:, g, :, None, None] - cg[:, :, ig, None] + cg[:, :, None, jh]).max(axis=1)
                    new_h = (L[:, h, :, None, None] - ch[:, :, None, jh] + ch[:, :, ig, None]).max(axis=1)
                    obj = worst_mean(np.maximum(np.maximum(new_g, new_h), rest[:, None, None]), worst_steps)
                    k = int(np.argmin(obj))
                    if obj.flat[k] < best[0]:
                        best = (float(obj.flat[k]), 1, int(ig[k // jh.size]), int(jh[k % jh.size]))
        if best[1] < 0:
            break
        _, kind, i, j = best
        g = int(a[i])
        if kind == 0:
            L[:, g] -= c[:, i, g]
            L[:, j] += c[:, i, j]
            a[i] = j
        else:
            h = int(a[j])
            L[:, g] += c[:, j, g] - c[:, i, g]
            L[:, h] += c[:, i, h] - c[:, j, h]
            a[i], a[j] = h, g
        V = L.max(axis=2)
        cur = float(worst_mean(V.max(axis=1), worst_steps))
        rounds += 1
    return a, cur, rounds
