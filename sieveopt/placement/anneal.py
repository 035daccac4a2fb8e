"""Simulated annealing on the exact model's item space: the exact optimiser's incumbent search.

Placing experts so that *every* step of a window is balanced is a multi-way, multi-dimensional
number-partitioning problem (one dimension per step): each GPU's load vector over the window is
the sum of its experts' cost vectors, and the objective ``mean_t max_g L[t, g]`` charges every
step's straggler. With the overlap-aware surrogate (:mod:`~sieveopt.placement.surrogate`) a GPU's
work is itself a maximum over K levels, ``L[t, g] = max_k sum_i cost[t, i, g, k]``: the search
keeps the level sums and finds the maximum of a proposal by hill-climbing from the current level
(the level values are a concave function sampled at increasing lambda, hence unimodal), so a
proposal costs a few level evaluations per step, not K. Best-improvement moves and swaps
(:mod:`~sieveopt.placement.local_search`) stop at local optima ~1 % above GEM's hint on the 32-step DeepSeek-V3 window; CP-SAT did not
improve any hint there (docs/design-notes/placement.md). Annealing does (1.1 % below the
iterated polish on that window, same CPU time).

Moves: move one item to another GPU with a free slot, or swap the GPUs of two items; the two
replicas of an expert never share a GPU; unused items (``assign == -1``) stay unused, unless
``pairs`` lists experts whose single item may be *split* into its two replica items (one stays
on the single's GPU, the other goes to a GPU with a free slot) or whose pair may be *merged*
back, with at most ``budget`` pairs in use (off by default; the exact optimiser turns them on
with ``replica_choice="cheap"``, round 6, design note). Acceptance
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
def _loads(tok, tab, a):  # noqa: ANN001, ANN202 (numba)
    """Level loads ``[T, G, K]`` of assignment ``a`` (item i at step t costs ``tab[g, tok[t, i], k]``)."""
    T, n = tok.shape
    G, _, K = tab.shape
    L = np.zeros((T, G, K))
    for i in range(n):
        g = a[i]
        if g >= 0:
            for t in range(T):
                for k in range(K):
                    L[t, g, k] += tab[g, tok[t, i], k]
    return L


@njit(cache=True, nogil=True)
def _true_objective(L):  # noqa: ANN001, ANN202 (numba)
    T = L.shape[0]
    s = 0.0
    for t in range(T):
        s += L[t].max()
    return s / T


@njit(cache=True, nogil=True, inline="always")
def _climb(L, tab, t, g, rem, add, k0):  # noqa: ANN001, ANN202, PLR0913 (numba)
    """GPU g's work at step t without a slot of ``rem`` tokens and with one of ``add`` tokens
    (table row 0 costs nothing: "none"): the max over levels of the updated level loads, found
    by hill-climbing from level ``k0`` (the level values are a concave function sampled at
    increasing lambda, so unimodal)."""
    K = L.shape[2]
    k = k0
    best = L[t, g, k] - tab[g, rem, k] + tab[g, add, k]
    up = False
    while k + 1 < K:
        v = L[t, g, k + 1] - tab[g, rem, k + 1] + tab[g, add, k + 1]
        if v <= best:
            break
        best, k, up = v, k + 1, True
    if not up:
        while k > 0:
            v = L[t, g, k - 1] - tab[g, rem, k - 1] + tab[g, add, k - 1]
            if v <= best:
                break
            best, k = v, k - 1
    return best


@njit(cache=True, nogil=True, inline="always")
def _tk(tok, t, i):  # noqa: ANN001, ANN202 (numba)
    return tok[t, i] if i >= 0 else 0


@njit(cache=True, nogil=True)
def softmax_state(V, beta):  # noqa: ANN001, ANN202 (numba)
    """Log-sum-exp state of per-step GPU works ``V[T, G]`` at smoothing ``beta``: the step's max
    ``ref[t]``, ``X[t, g] = exp((V - ref) / beta)`` and ``S[t] = sum_g X`` (the annealings'
    acceptance works on it; one definition for the item and the sized annealing)."""
    T, G = V.shape
    ref = np.empty(T)
    X = np.empty((T, G))
    S = np.empty(T)
    for t in range(T):
        ref[t] = V[t].max()
        S[t] = 0.0
        for q in range(G):
            X[t, q] = np.exp((V[t, q] - ref[t]) / beta)
            S[t] += X[t, q]
    return ref, X, S


@njit(cache=True, nogil=True)
def _phase(tok, tab, a, cnt, L, used, pos, nu_s, twin, capacity, iters, temp0, temp1, beta, state, near, p_near,  # noqa: ANN001, ANN202, PLR0913
           prs, budget, nrep_s, p_split, w):
    """``iters`` annealing steps at smoothing ``beta`` with the temperature going temp0 -> temp1
    (geometric); updates ``a``, ``cnt``, ``L`` and the used-item list in place. ``state``: the
    RNG seed in, out. ``near[i]``: items with cost vectors closest to item i's (swap partners
    with ``p_near``). ``prs[p] = (single, half a, half b)``: experts that may be split into
    their replica pair or merged back (with probability ``p_split`` per step), at most
    ``budget`` pairs in use. ``w[T]``: step weights summing to 1 (empty: the plain mean, 1/T)."""
    np.random.seed(state[0])
    T = tok.shape[0]
    G, _, K = tab.shape
    V = np.empty((T, G))                                   # GPU work: max over levels
    kk = np.zeros((T, G), dtype=np.int64)                  # its level
    for t in range(T):
        for q in range(G):
            kk[t, q] = np.argmax(L[t, q])
            V[t, q] = L[t, q, kk[t, q]]
    ref, X, S = softmax_state(V, beta)
    e_g = np.empty(T)
    e_h = np.empty(T)
    nu = nu_s[0]
    nrep = nrep_s[0]
    P = prs.shape[0]
    ratio = temp1 / temp0
    for it in range(iters):
        temp = temp0 * ratio ** (it / iters)
        kind = 0                                           # 0 move/swap, 1 split, 2 merge
        if P > 0 and np.random.random() < p_split:
            p = np.random.randint(P)
            s, pa, pb = prs[p, 0], prs[p, 1], prs[p, 2]
            if np.random.random() < 0.5:                   # which half stays on g
                pa, pb = pb, pa
            if a[s] >= 0:                                  # split s (on g) -> pa on g, pb on h
                if nrep >= budget:
                    continue
                g = a[s]
                h = np.random.randint(G)
                if h == g or cnt[h] >= capacity:
                    continue
                rg, ag, rh, ah = s, pa, -1, pb
                kind = 1
            else:                                          # merge pa (g), pb (h) -> s on g
                g = a[pa]
                h = a[pb]
                rg, ag, rh, ah = pa, s, pb, -1
                kind = 2
        else:
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
            rg, ag, rh, ah = i, j, j, i
        delta = 0.0
        for t in range(T):
            vg = _climb(L, tab, t, g, _tk(tok, t, rg), _tk(tok, t, ag), kk[t, g])
            vh = _climb(L, tab, t, h, _tk(tok, t, rh), _tk(tok, t, ah), kk[t, h])
            eg = np.exp((vg - ref[t]) / beta)
            eh = np.exp((vh - ref[t]) / beta)
            e_g[t] = eg
            e_h[t] = eh
            lt = np.log(max(S[t] - X[t, g] - X[t, h] + eg + eh, 1e-300) / S[t])
            delta += lt if w.size == 0 else w[t] * T * lt
        delta *= beta / T
        if delta <= 0.0 or np.random.random() < np.exp(-delta / temp):
            for t in range(T):
                n_rg, n_ag = _tk(tok, t, rg), _tk(tok, t, ag)
                n_rh, n_ah = _tk(tok, t, rh), _tk(tok, t, ah)
                for k in range(K):
                    L[t, g, k] += tab[g, n_ag, k] - tab[g, n_rg, k]
                    L[t, h, k] += tab[h, n_ah, k] - tab[h, n_rh, k]
                kg = np.argmax(L[t, g])
                kh = np.argmax(L[t, h])
                kk[t, g], kk[t, h] = kg, kh
                V[t, g], V[t, h] = L[t, g, kg], L[t, h, kh]
                X[t, g] = e_g[t]
                X[t, h] = e_h[t]
                s_ = 0.0                                   # re-summed: no cancellation drift
                for q in range(G):
                    s_ += X[t, q]
                S[t] = max(s_, 1e-300)
            if kind == 0:
                a[rg] = h
                if ag >= 0:
                    a[ag] = g
                else:
                    cnt[g] -= 1
                    cnt[h] += 1
            elif kind == 1:                                # s out; pa on g, pb on h
                a[rg] = -1
                a[ag] = g
                a[ah] = h
                cnt[h] += 1
                nrep += 1
                q = pos[rg]                                # pa takes s's place in the used list
                used[q] = ag
                pos[ag] = q
                pos[rg] = -1
                used[nu] = ah
                pos[ah] = nu
                nu += 1
            else:                                          # pa, pb out; s on g
                a[rg] = -1
                a[rh] = -1
                a[ag] = g
                cnt[h] -= 1
                nrep -= 1
                q = pos[rg]
                used[q] = ag
                pos[ag] = q
                pos[rg] = -1
                q = pos[rh]                                # pb's place: the last used item
                last = used[nu - 1]
                used[q] = last
                pos[last] = q
                pos[rh] = -1
                nu -= 1
    nu_s[0] = nu
    nrep_s[0] = nrep
    state[0] = np.random.randint(2**31 - 1)


def as_levels(cost: np.ndarray) -> np.ndarray:
    """``cost[T, items, G]`` (one level, additive loads) or ``[T, items, G, K]`` -> 4-D float64."""
    c = np.asarray(cost, dtype=np.float64)
    return np.ascontiguousarray(c[..., None] if c.ndim == 3 else c)


def as_table(cost) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Item costs as ``(tok[T, items], tab[G, N, K])`` with ``cost[t, i, g, k] = tab[g, tok[t, i], k]``
    and ``tab[:, 0] = 0`` (row 0 stands for "no item").

    ``cost`` is such a pair already (the exact optimiser passes the items' token counts and the
    surrogate's level table: a few hundred KiB that stay in cache, where the dense 4-D array of
    a 32-step window is ~17 MiB) or a dense 3-D/4-D array (one table row per (step, item))."""
    if isinstance(cost, tuple):
        tok, tab = cost
        tab = np.ascontiguousarray(tab, dtype=np.float64)
        if np.any(tab[:, 0] != 0):
            raise ValueError("anneal: table row 0 (no tokens) must cost nothing")
        return np.ascontiguousarray(tok, dtype=np.int64), tab
    c = as_levels(cost)
    T, n, G, K = c.shape
    tab = np.zeros((G, T * n + 1, K))
    tab[:, 1:] = c.transpose(2, 0, 1, 3).reshape(G, T * n, K)
    return 1 + np.arange(T * n, dtype=np.int64).reshape(T, n), tab


def dense(cost) -> np.ndarray:  # noqa: ANN001
    """Dense ``[T, items, G, K]`` costs of a pair or array (see :func:`as_table`)."""
    if isinstance(cost, tuple):
        tok, tab = cost
        return np.ascontiguousarray(np.asarray(tab, dtype=np.float64)[:, tok].transpose(1, 2, 0, 3))
    return as_levels(cost)


#: Phases of one annealing schedule (``anneal``'s default; the exact optimiser reads it to tell a
#: complete round from one cut by the clock).
PHASES = 20
WORST_WIDTH = 1e-2    # cvar annealing: logistic width of the step weights, x the start objective
WORST_FLOOR = 0.5     # cvar annealing: share of the uniform weights in the mix


def worst_mean(z: np.ndarray, k: int | None) -> np.ndarray:
    """Mean over axis 0 (the steps) of the ``k`` largest entries of ``z`` (the ``cvar``
    objective of step stragglers); ``k`` None (or >= the steps): the plain mean."""
    T = z.shape[0]
    if k is None or k >= T:
        return z.mean(axis=0)
    k = max(1, int(k))
    return np.partition(z, T - k, axis=0)[T - k:].mean(axis=0)


def worst_weights(z: np.ndarray, k: int, width: float, floor: float = 0.0) -> np.ndarray:
    """Step weights (summing to 1) that focus an annealing phase on the ``k`` largest of ``z``:
    a logistic of ``(z_t - k-th largest) / width``, so steps near the threshold count too,
    mixed with the uniform weights at share ``floor``."""
    k = min(max(1, int(k)), z.size)
    thr = np.sort(z)[-k]
    w = 1.0 / (1.0 + np.exp(-np.clip((z - thr) / max(width, 1e-12), -50, 50)))
    return (1.0 - floor) * w / w.sum() + floor / z.size


def anneal(cost, assign: np.ndarray, capacity: int, twin: np.ndarray, *, iters: int,
           seed: int = 0, phases: int = PHASES, temp: tuple[float, float] = (6e-4, 2e-6),
           beta: tuple[float, float] = (2e-2, 1.3e-3),
           time_limit_s: float | None = None, near_k: int = 16,
           p_near: float = 0.5, pairs: np.ndarray | None = None, budget: int = 0,
           p_split: float = 0.05, worst_steps: int | None = None,
           worst_width: float = WORST_WIDTH, worst_floor: float = WORST_FLOOR) -> tuple[np.ndarray, float, int]:
    """Anneal ``assign`` (item -> GPU, -1 = unused; ``cost[T, items, G]``, level costs
    ``[T, items, G, K]`` or a ``(tokens, table)`` pair, :func:`as_table`) for ``iters`` steps in
    ``phases`` phases; returns (best assignment, its objective ``mean_t max_g``, phases run).

    ``temp`` and ``beta`` (start, end) are fractions of the start's objective, so the schedule
    does not depend on the cost unit (defaults tuned on the DeepSeek-V3 window: 0.1 -> 0.0003 us
    and 3 -> 0.2 us at ~159 us). ``twin[i]``: the other replica item of item i's expert (-1 when
    none). ``time_limit_s``: stop after the phase in which it is reached. Swaps pick with
    probability ``p_near`` a partner among the ``near_k`` items with the closest mean cost vectors
    (small perturbations stay acceptable at low temperature; on the DeepSeek-V3 window, 5 M
    steps: 157.9-158.3 us over three runs against 158.1-158.3 us without, within the spread
    between seeds), otherwise any item. ``pairs[p] = (single, replica a, replica b)``: items of
    experts that may switch between one copy and a replica pair (split / merge proposals with
    probability ``p_split`` per step, at most ``budget`` pairs in use at a time; a start over
    the budget only loses pairs); None = the item set stays that of ``assign``, with the same
    random stream as without the option. ``worst_steps`` = k: minimise the mean of the k largest
    step stragglers instead (the ``cvar`` objective); each phase then weighs step t by a logistic
    of its straggler's distance to the k-th largest, in units of ``worst_width`` x the start's
    objective (the subgradient of the top-k mean, 1/k on the k worst steps, smoothed so that the
    steps next to the threshold count too and the worst set does not flip between phases)."""
    t0 = time.perf_counter()
    tok, tab = as_table(cost)
    a = np.asarray(assign, dtype=np.int64).copy()
    tw = np.asarray(twin, dtype=np.int64)
    G = tab.shape[0]
    n = tok.shape[1]
    prs = np.zeros((0, 3), dtype=np.int64) if pairs is None else np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    used0 = np.flatnonzero(a >= 0).astype(np.int64)
    used = np.full(n, -1, dtype=np.int64)
    used[:used0.size] = used0
    pos = np.full(n, -1, dtype=np.int64)
    pos[used0] = np.arange(used0.size)
    nu_s = np.array([used0.size], dtype=np.int64)
    nrep_s = np.array([int(sum(a[r[1]] >= 0 for r in prs))], dtype=np.int64)
    L = _loads(tok, tab, a)

    def value(L_: np.ndarray) -> float:
        return float(_true_objective(L_)) if worst_steps is None else float(
            worst_mean(L_.max(axis=2).max(axis=1), worst_steps))

    start = best_val = value(L)
    best = a.copy()
    if used0.size < 2 or G < 2 or iters <= 0 or start <= 0:
        return best, best_val, 0
    cnt = np.bincount(a[used0], minlength=G).astype(np.int64)
    state = np.array([int(seed) % (2**31 - 1)], dtype=np.int64)
    cand = used0 if prs.size == 0 else np.unique(np.r_[used0, prs.ravel()])   # items that may be used
    V = tab[:, tok[:, cand]].mean(axis=(0, 3)).T             # [cand, T] GPU-mean cost vectors
    k = min(int(near_k), cand.size - 1)
    near = np.zeros((n, max(k, 1)), dtype=np.int64)
    if k > 0:
        D = ((V[:, None, :] - V[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(D, np.inf)
        near[cand] = cand[np.argsort(D, axis=1, kind="stable")[:, :k]]
    per = max(1, int(iters) // max(1, phases))
    no_weights = np.zeros(0)
    done = 0
    for p in range(phases):
        f0, f1 = p / phases, (p + 1) / phases
        t_hi = temp[0] * (temp[1] / temp[0]) ** f0
        t_lo = temp[0] * (temp[1] / temp[0]) ** f1
        b = beta[0] * (beta[1] / beta[0]) ** (p / max(1, phases - 1))
        w = no_weights if worst_steps is None else worst_weights(L.max(axis=2).max(axis=1), worst_steps,
                                                                   worst_width * start, worst_floor)
        _phase(tok, tab, a, cnt, L, used, pos, nu_s, tw, int(capacity), per, t_hi * start, t_lo * start, b * start,
               state, near, float(p_near) if k > 0 else 0.0, prs, int(budget), nrep_s, float(p_split), w)
        L = _loads(tok, tab, a)                    # refresh: no drift from incremental updates
        v = value(L)
        done += 1
        if v < best_val:
            best, best_val = a.copy(), v
        if time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s:
            break
    return best, best_val, done
