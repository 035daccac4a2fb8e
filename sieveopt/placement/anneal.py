"""Simulated annealing on the exact model's item space: the exact optimiser's incumbent search.

Placing experts so that *every* step of a window is balanced is a multi-way, multi-dimensional
number-partitioning problem (one dimension per step): each GPU's load vector over the window is
the sum of its experts' cost vectors, and the objective ``mean_t max_g L[t, g]`` charges every
step's straggler. Best-improvement moves and swaps (:mod:`~sieveopt.placement.local_search`)
stop at local optima ~1 % above GEM's hint on the 32-step DeepSeek-V3 window; CP-SAT did not
improve any hint there (docs/design-notes/placement.md). Annealing does (1.1 % below the
iterated polish on that window, same CPU time).

Moves: move one item to another GPU with a free slot, or swap the GPUs of two items; the two
replicas of an expert never share a GPU; unused items (``assign == -1``) stay unused. Acceptance
uses a smoothed objective, the log-sum-exp of each step's GPU loads,
``mean_t beta * log sum_g exp(L[t, g] / beta)`` (>= the true objective, within
``beta * log G``), with ``beta`` and the temperature lowered geometrically over ``phases``
(continuation: a large ``beta`` sees every GPU above the pack, a small one only the straggler).
The best assignment by the *true* objective seen at a phase boundary is returned, never worse
than the start. Deterministic for a seed and an iteration count; the Python loop checks the wall
clock only between phases (an early stop ends the schedule, it does not change the iterations
of the phases already run).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _loads(cost, a):  # noqa: ANN001, ANN202 (numba)
    T, n, G = cost.shape
    L = np.zeros((T, G))
    for i in range(n):
        g = a[i]
        if g >= 0:
            for t in range(T):
                L[t, g] += cost[t, i, g]
    return L


@njit(cache=True, nogil=True)
def _true_objective(L):  # noqa: ANN001, ANN202 (numba)
    T = L.shape[0]
    s = 0.0
    for t in range(T):
        s += L[t].max()
    return s / T


@njit(cache=True, nogil=True)
def _phase(cost, a, cnt, L, used, twin, capacity, iters, temp0, temp1, beta, state, near, p_near):  # noqa: ANN001, ANN202, PLR0913
    """``iters`` annealing steps at smoothing ``beta`` with the temperature going temp0 -> temp1
    (geometric); updates ``a``, ``cnt`` and ``L`` in place. ``state``: the RNG seed in, out.
    ``near[i]``: items with cost vectors closest to item i's (swap partners with ``p_near``)."""
    np.random.seed(state[0])
    T, _, G = cost.shape
    ref = np.empty(T)
    X = np.empty((T, G))
    S = np.empty(T)
    e_g = np.empty(T)
    e_h = np.empty(T)
    n_g = np.empty(T)
    n_h = np.empty(T)
    for t in range(T):
        ref[t] = L[t].max()
        S[t] = 0.0
        for q in range(G):
            X[t, q] = np.exp((L[t, q] - ref[t]) / beta)
            S[t] += X[t, q]
    nu = used.shape[0]
    ratio = temp1 / temp0
    for k in range(iters):
        temp = temp0 * ratio ** (k / iters)
        i = used[np.random.randint(nu)]
        g = a[i]
        if np.random.random() < 0.3:                       # move i -> h
            h = np.random.randint(G)
            if h == g or cnt[h] >= capacity or (twin[i] >= 0 and a[twin[i]] == h):
                continue
            j = -1
        else:                                              # swap i <-> j
            if np.random.random() < p_near:
                j = near[i, np.random.randint(near.shape[1])]
            else:
                j = used[np.random.randint(nu)]
            h = a[j]
            if h < 0:
                continue
            if h == g or (twin[i] >= 0 and a[twin[i]] == h) or (twin[j] >= 0 and a[twin[j]] == g):
                continue
        delta = 0.0
        for t in range(T):
            vg = L[t, g] - cost[t, i, g]
            vh = L[t, h] + cost[t, i, h]
            if j >= 0:
                vg += cost[t, j, g]
                vh -= cost[t, j, h]
            n_g[t] = vg
            n_h[t] = vh
            eg = np.exp((vg - ref[t]) / beta)
            eh = np.exp((vh - ref[t]) / beta)
            e_g[t] = eg
            e_h[t] = eh
            delta += np.log(max(S[t] - X[t, g] - X[t, h] + eg + eh, 1e-300) / S[t])
        delta *= beta / T
        if delta <= 0.0 or np.random.random() < np.exp(-delta / temp):
            for t in range(T):
                X[t, g] = e_g[t]
                X[t, h] = e_h[t]
                L[t, g] = n_g[t]
                L[t, h] = n_h[t]
                s = 0.0                                    # re-summed: no cancellation drift
                for q in range(G):
                    s += X[t, q]
                S[t] = max(s, 1e-300)
            a[i] = h
            if j >= 0:
                a[j] = g
            else:
                cnt[g] -= 1
                cnt[h] += 1
    state[0] = np.random.randint(2**31 - 1)


def anneal(cost: np.ndarray, assign: np.ndarray, capacity: int, twin: np.ndarray, *, iters: int,
           seed: int = 0, phases: int = 20, temp: tuple[float, float] = (6e-4, 2e-6),
           beta: tuple[float, float] = (2e-2, 1.3e-3),
           time_limit_s: float | None = None, near_k: int = 16,
           p_near: float = 0.5) -> tuple[np.ndarray, float, int]:
    """Anneal ``assign`` (item -> GPU, -1 = unused; ``cost[T, items, G]``) for ``iters`` steps in
    ``phases`` phases; returns (best assignment, its objective ``mean_t max_g``, phases run).

    ``temp`` and ``beta`` (start, end) are fractions of the start's objective, so the schedule
    does not depend on the cost unit (defaults tuned on the DeepSeek-V3 window: 0.1 -> 0.0003 us
    and 3 -> 0.2 us at ~159 us). ``twin[i]``: the other replica item of item i's expert (-1 when
    none). ``time_limit_s``: stop after the phase in which it is reached. Swaps pick with
    probability ``p_near`` a partner among the ``near_k`` items with the closest mean cost vectors
    (small perturbations stay acceptable at low temperature; on the DeepSeek-V3 window, 5 M
    steps: 157.9-158.3 us over three runs against 158.1-158.3 us without, within the spread
    between seeds), otherwise any item."""
    t0 = time.perf_counter()
    c = np.ascontiguousarray(cost, dtype=np.float64)
    a = np.asarray(assign, dtype=np.int64).copy()
    tw = np.asarray(twin, dtype=np.int64)
    G = c.shape[2]
    used = np.flatnonzero(a >= 0).astype(np.int64)
    L = _loads(c, a)
    start = best_val = float(_true_objective(L))
    best = a.copy()
    if used.size < 2 or G < 2 or iters <= 0 or start <= 0:
        return best, best_val, 0
    cnt = np.bincount(a[used], minlength=G).astype(np.int64)
    state = np.array([int(seed) % (2**31 - 1)], dtype=np.int64)
    V = c[:, used, :].mean(axis=2).T                         # [used, T] GPU-mean cost vectors
    k = min(int(near_k), used.size - 1)
    near = np.zeros((c.shape[1], max(k, 1)), dtype=np.int64)
    if k > 0:
        D = ((V[:, None, :] - V[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(D, np.inf)
        near[used] = used[np.argsort(D, axis=1, kind="stable")[:, :k]]
    per = max(1, int(iters) // max(1, phases))
    done = 0
    for p in range(phases):
        f0, f1 = p / phases, (p + 1) / phases
        t_hi = temp[0] * (temp[1] / temp[0]) ** f0
        t_lo = temp[0] * (temp[1] / temp[0]) ** f1
        b = beta[0] * (beta[1] / beta[0]) ** (p / max(1, phases - 1))
        _phase(c, a, cnt, L, used, tw, int(capacity), per, t_hi * start, t_lo * start, b * start, state, near, float(p_near) if k > 0 else 0.0)
        L = _loads(c, a)                           # refresh: no drift from incremental updates
        v = float(_true_objective(L))
        done += 1
        if v < best_val:
            best, best_val = a.copy(), v
        if time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s:
            break
    return best, best_val, done
