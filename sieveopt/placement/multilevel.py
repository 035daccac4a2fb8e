"""Multilevel coarsening on the exact placement model: a constructive, global search class (measured, loses).

A fixed placement of a window is a multi-way, multi-dimensional number partition
(:mod:`~sieveopt.placement.anneal`): each GPU's load vector over the steps is the sum of its
items' cost vectors. Every *local* search tried on it (annealing, LNS, cyclic exchanges,
tempering) stops ~1.4 % above the known optimum of a planted instance (design note, rounds 5-7).
Multilevel coarsening beats flat local search in graph partitioning (METIS, KaHIP: contract,
partition the small graph, refine while uncontracting); this module is its vector-balancing
analogue:

1. *Deviation vectors* (:func:`deviation_vectors`): item i's GPU-mean costs over the steps at
   each step's level of maximal total work (+-``width`` levels), minus the mean item's vector.
   GPU-mean, not per-GPU: coarsening only balances work; the annealing at every level uses the
   true per-GPU costs, so it places work by GPU speed.
2. *Coarsening* (:func:`coarsen`, :func:`hierarchy`): a matching with small total weight
   ``||d_i + d_j||^2`` (random-order greedy, then 2-opt over pairs of pairs), so the members'
   deviations cancel; pairs become super-items (deviation the sum, size the member count).
   Group sizes stay compatible with an equal count per GPU: the ``G * 2^m`` items with the
   largest deviations form a binary tree coarsened into G super-items of 2^m, the rest stay
   single (the small ones, kept for fine tuning as in differencing).
3. *Initial solution*: the coarsest super-items, largest first, on the GPU with the most free
   slots, annealed at that level (:func:`anneal_sized`: moves and swaps of super-items, slot
   capacity by size, log-sum-exp acceptance as :func:`~sieveopt.placement.anneal.anneal`).
4. *Uncoarsening*: each level inherits its parent's GPUs and is annealed on its own super-items
   (a cooler schedule: a refinement, not a restart); the items themselves are left to the caller
   (the exact optimiser's annealing).

:func:`vcycle` is the iterated form (KaHIP's V-cycles): coarsen an incumbent with matches only
inside each GPU, so every coarse level represents it exactly, and anneal cluster moves level by
level.

Measured (design note, "Round 8"; ``benchmarks/placement_multilevel_study.py``): the matchings
cancel deviations (a group of 32 items: mean norm 18.9 us against 66.2 us for random pairs) but
not nearly enough: the construction lands +2.2-2.6 % above the planted optimum, where the
annealing given the same time reaches +1.6-2.2 %; the annealing from it ends in the annealing's
own band and on average 0.10 points above the annealing given the same total time (6 seeds),
and on the headline window 84.53-84.58 us against 84.44-84.50 us; V-cycles on annealed
incumbents find no improving cluster move. Not used by the exact optimiser. Deterministic for a
seed (no clock inside).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sieveopt.placement.anneal import softmax_state


def deviation_vectors(cost: np.ndarray, width: int = 0) -> np.ndarray:
    """``[items, T * (2 width + 1)]`` deviation vectors of level costs ``cost[T, items, G, K]``:
    GPU-mean costs at each step's level of maximal total work +-``width`` (clipped), minus the
    mean over items."""
    c = np.asarray(cost, dtype=np.float64)
    c = c[..., None] if c.ndim == 3 else c
    T, n, G, K = c.shape
    cm = c.mean(axis=2)                                       # [T, items, K]
    kstar = cm.sum(axis=1).argmax(axis=1)                     # [T] level where work peaks
    ks = np.clip(kstar[:, None] + np.arange(-width, width + 1)[None, :], 0, K - 1)   # [T, W]
    v = cm[np.arange(T)[:, None, None], np.arange(n)[None, :, None], ks[:, None, :]]  # [T, n, W]
    v = v.transpose(1, 0, 2).reshape(n, -1)
    return v - v.mean(axis=0)


@njit(cache=True, nogil=True)
def _match(W, seed, passes):  # noqa: ANN001, ANN202 (numba)
    """Matching of ``W.shape[0]`` nodes with small total weight ``W[i, j]`` (perfect when every
    weight is finite and the count even; ``inf`` forbids a pair): greedy in a random order (each
    free node takes its lightest free partner), then 2-opt
    (re-pair two pairs when that lowers the sum) until no pair of pairs improves or ``passes``
    sweeps. Returns ``mate``."""
    m = W.shape[0]
    np.random.seed(seed)
    order = np.random.permutation(m)
    mate = np.full(m, -1, dtype=np.int64)
    for i in order:
        if mate[i] >= 0:
            continue
        best, bj = np.inf, -1
        for j in range(m):
            if j != i and mate[j] < 0 and W[i, j] < best:
                best, bj = W[i, j], j
        if bj >= 0:                                    # no finite partner: stays alone
            mate[i], mate[bj] = bj, i
    P = 0
    for i in range(m):
        if i < mate[i]:
            P += 1
    pa = np.empty(P, dtype=np.int64)
    pb = np.empty(P, dtype=np.int64)
    q = 0
    for i in range(m):
        if i < mate[i]:
            pa[q], pb[q] = i, mate[i]
            q += 1
    for _ in range(passes):
        improved = False
        for p in range(P):
            for r in range(p + 1, P):
                a, b, c, d = pa[p], pb[p], pa[r], pb[r]
                cur = W[a, b] + W[c, d]
                x1 = W[a, c] + W[b, d]
                x2 = W[a, d] + W[b, c]
                if x1 < cur - 1e-12 and x1 <= x2:
                    pb[p], pa[r], pb[r] = c, b, d
                    improved = True
                elif x2 < cur - 1e-12:
                    pb[p], pa[r], pb[r] = d, b, c
                    improved = True
        if not improved:
            break
    for p in range(P):
        mate[pa[p]], mate[pb[p]] = pb[p], pa[p]
    return mate


def coarsen(dev: np.ndarray, seed: int, tree: np.ndarray | None = None, group: np.ndarray | None = None,
            passes: int = 50) -> np.ndarray:
    """One coarsening level: ``parent[i]`` of each super-item (deviations ``dev[m, D]``), parents
    numbered 0.. in order of their first child. The super-items with ``tree`` set (default all)
    are matched in pairs whose deviations cancel (weight ``||d_i + d_j||^2``; with an odd count
    the one matched to a zero dummy stays alone); the others stay alone. ``group[i]``: only
    super-items of one group pair (a V-cycle keeps its incumbent's GPUs; no dummy then)."""
    m = dev.shape[0]
    on = np.flatnonzero(np.ones(m, dtype=bool) if tree is None else tree)
    d = dev[on]
    if on.size % 2 and group is None:
        d = np.vstack([d, np.zeros((1, dev.shape[1]))])
    nrm = (d * d).sum(axis=1)
    W = nrm[:, None] + nrm[None, :] + 2.0 * (d @ d.T)
    np.fill_diagonal(W, np.inf)
    if group is not None:
        gr = np.asarray(group)[on]
        W[gr[:, None] != gr[None, :]] = np.inf
    mate_on = _match(np.ascontiguousarray(W), int(seed) % (2**31 - 1), int(passes))[:on.size]
    mate = np.full(m, -1, dtype=np.int64)
    ok = (mate_on >= 0) & (mate_on < on.size)
    mate[on[ok]] = on[mate_on[ok]]
    parent = np.full(m, -1, dtype=np.int64)
    k = 0
    for i in range(m):
        if parent[i] < 0:
            parent[i] = k
            if mate[i] >= 0:
                parent[mate[i]] = k
            k += 1
    return parent


def hierarchy(dev: np.ndarray, G: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Coarsening levels ``parents[l][i]`` (level l's super-items -> level l+1's; level 0: the
    items) and the *tree* mask of the items. Sizes are kept compatible with an equal count per
    GPU: the ``G * 2^m`` items with the largest deviations (m = floor(log2(n / G))) form the tree,
    coarsened m times into G super-items of 2^m; the rest (the smallest deviations, left for fine
    tuning as in differencing) stay single at every level."""
    n = dev.shape[0]
    m = int(np.floor(np.log2(max(1, n // G)))) if n >= G else 0
    nt = G * 2**m if n >= G else 0
    tree = np.zeros(n, dtype=bool)
    tree[np.argsort(-np.linalg.norm(dev, axis=1), kind="stable")[:nt]] = True
    parents: list[np.ndarray] = []
    t = tree.copy()
    for lvl in range(m):
        par = coarsen(dev, seed * 1_000 + lvl, t)
        k = int(par.max()) + 1
        ndev = np.zeros((k, dev.shape[1]))
        np.add.at(ndev, par, dev)
        nt_ = np.zeros(k, dtype=bool)
        nt_[par[t]] = True
        parents.append(par)
        dev, t = ndev, nt_
    return parents, tree


@njit(cache=True, nogil=True)
def _sa_sized(c, size, a, cap, iters, temp0, temp1, beta, seed):  # noqa: ANN001, ANN202, PLR0913 (numba)
    """``iters`` annealing steps on super-items (``c[T, m, G, K]`` their level costs, ``size``
    their slots): move one to a GPU with room, or swap two; log-sum-exp acceptance at ``beta``,
    temperature ``temp0 -> temp1``. Updates ``a`` in place."""
    T, m, G, K = c.shape
    np.random.seed(seed)
    L = np.zeros((T, G, K))
    cnt = np.zeros(G, dtype=np.int64)
    for i in range(m):
        cnt[a[i]] += size[i]
        for t in range(T):
            for k in range(K):
                L[t, a[i], k] += c[t, i, a[i], k]
    V = np.empty((T, G))
    for t in range(T):
        for g in range(G):
            V[t, g] = L[t, g].max()
    ref, X, S = softmax_state(V, beta)
    vg = np.empty(T)
    vh = np.empty(T)
    ratio = temp1 / temp0
    for it in range(iters):
        temp = temp0 * ratio ** (it / iters)
        i = np.random.randint(m)
        g = a[i]
        if np.random.random() < 0.3:
            h = np.random.randint(G)
            if h == g or cnt[h] + size[i] > cap:
                continue
            j = -1
        else:
            j = np.random.randint(m)
            h = a[j]
            if h == g or cnt[h] - size[j] + size[i] > cap or cnt[g] - size[i] + size[j] > cap:
                continue
        delta = 0.0
        for t in range(T):
            bg = -np.inf
            bh = -np.inf
            for k in range(K):
                xg = L[t, g, k] - c[t, i, g, k]
                xh = L[t, h, k] + c[t, i, h, k]
                if j >= 0:
                    xg += c[t, j, g, k]
                    xh -= c[t, j, h, k]
                bg = max(bg, xg)
                bh = max(bh, xh)
            vg[t], vh[t] = bg, bh
            eg = np.exp((bg - ref[t]) / beta)
            eh = np.exp((bh - ref[t]) / beta)
            delta += np.log(max(S[t] - X[t, g] - X[t, h] + eg + eh, 1e-300) / S[t])
        delta *= beta / T
        if delta <= 0.0 or np.random.random() < np.exp(-delta / temp):
            for t in range(T):
                for k in range(K):
                    L[t, g, k] -= c[t, i, g, k]
                    L[t, h, k] += c[t, i, h, k]
                    if j >= 0:
                        L[t, g, k] += c[t, j, g, k]
                        L[t, h, k] -= c[t, j, h, k]
                V[t, g], V[t, h] = vg[t], vh[t]
                X[t, g] = np.exp((vg[t] - ref[t]) / beta)
                X[t, h] = np.exp((vh[t] - ref[t]) / beta)
                s_ = 0.0
                for q in range(G):
                    s_ += X[t, q]
                S[t] = max(s_, 1e-300)
            a[i] = h
            cnt[g] -= size[i]
            cnt[h] += size[i]
            if j >= 0:
                a[j] = g
                cnt[h] -= size[j]
                cnt[g] += size[j]


def _true(c: np.ndarray, a: np.ndarray) -> float:
    G = c.shape[2]
    L = np.stack([c[:, a == g, g].sum(axis=1) for g in range(G)], axis=1)      # [T, G, K]
    return float(L.max(axis=(1, 2)).mean())


def anneal_sized(c: np.ndarray, size: np.ndarray, a: np.ndarray, capacity: int, *, iters: int, seed: int,
                 phases: int = 10, temp: tuple[float, float] = (2e-4, 2e-6),
                 beta: tuple[float, float] = (1e-2, 1.3e-3)) -> tuple[np.ndarray, float]:
    """Anneal super-items (level costs ``c[T, m, G, K]``, ``size[m]`` slots each) from ``a``; the
    schedule's ``temp`` / ``beta`` are fractions of the start's objective (as
    :func:`~sieveopt.placement.anneal.anneal`). Returns the best assignment seen at a phase
    boundary by the true objective ``mean_t max_g`` (never worse than ``a``) and its value."""
    c = np.ascontiguousarray(c, dtype=np.float64)
    a = np.asarray(a, dtype=np.int64).copy()
    size = np.asarray(size, dtype=np.int64)
    start = best_v = _true(c, a)
    best = a.copy()
    if c.shape[1] < 2 or c.shape[2] < 2 or iters <= 0 or start <= 0:
        return best, best_v
    per = max(1, int(iters) // phases)
    for p in range(phases):
        f0, f1 = p / phases, (p + 1) / phases
        t_hi = temp[0] * (temp[1] / temp[0]) ** f0
        t_lo = temp[0] * (temp[1] / temp[0]) ** f1
        b = beta[0] * (beta[1] / beta[0]) ** (p / max(1, phases - 1))
        _sa_sized(c, size, a, int(capacity), per, t_hi * start, t_lo * start, b * start,
                  (int(seed) * 7919 + p) % (2**31 - 1))
        v = _true(c, a)
        if v < best_v:
            best, best_v = a.copy(), v
    return best, best_v


def _levels(ci: np.ndarray, parents: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Level costs ``[T, m, G, K]`` and sizes of every level (sums over the children)."""
    T, _, G, K = ci.shape
    costs, sizes = [ci], [np.ones(ci.shape[1], dtype=np.int64)]
    for par in parents:
        k = int(par.max()) + 1
        cc = np.zeros((T, k, G, K))
        np.add.at(cc, (slice(None), par), costs[-1])
        costs.append(np.ascontiguousarray(cc))
        sizes.append(np.bincount(par, weights=sizes[-1], minlength=k).astype(np.int64))
    return costs, sizes


def _uncoarsen(a: np.ndarray, costs: list[np.ndarray], sizes: list[np.ndarray], parents: list[np.ndarray],
               capacity: int, iters_per_item: int, seed: int, temp: tuple[float, float],
               objs: list[float]) -> np.ndarray:
    """From the coarsest level's assignment ``a`` down to the items: children inherit their
    parent's GPU, every level above the items is annealed (``temp``); values appended to ``objs``."""
    for lvl in range(len(parents) - 1, 0, -1):
        a = a[parents[lvl]]
        a, v = anneal_sized(costs[lvl], sizes[lvl], a, capacity, iters=iters_per_item * sizes[lvl].size,
                            seed=seed + 101 * lvl, temp=temp)
        objs.append(v)
    return a[parents[0]] if parents else a


def vcycle(cost: np.ndarray, assign: np.ndarray, capacity: int, *, levels: int = 3, seed: int = 0,
           width: int = 0, iters_per_item: int = 2_000,
           temp: tuple[float, float] = (5e-5, 2e-6)) -> tuple[np.ndarray, dict]:
    """One V-cycle on an incumbent (iterated multilevel, as KaHIP refines a partition): items
    are matched only with items on their own GPU (deviations cancelling, as :func:`coarsen`),
    ``levels`` times, so every coarse level represents ``assign`` exactly; each coarse level is
    annealed from it (moves and swaps of whole clusters: exchanges of up to 2^levels items
    that a move or swap of single items cannot make), then the next finer one. Returns (the
    assignment at the items, not refined there; stats). Items with ``assign == -1`` stay
    unused."""
    c = np.asarray(cost, dtype=np.float64)
    c = c[..., None] if c.ndim == 3 else c
    a0 = np.asarray(assign, dtype=np.int64)
    idx = np.flatnonzero(a0 >= 0)
    ci = np.ascontiguousarray(c[:, idx])
    dev = deviation_vectors(ci, width)
    grp = a0[idx]
    parents: list[np.ndarray] = []
    for lvl in range(levels):
        par = coarsen(dev, seed * 1_000 + lvl, group=grp)
        k = int(par.max()) + 1
        if k == par.size:
            break
        ndev = np.zeros((k, dev.shape[1]))
        np.add.at(ndev, par, dev)
        ng = np.empty(k, dtype=np.int64)
        ng[par] = grp
        parents.append(par)
        dev, grp = ndev, ng
    costs, sizes = _levels(ci, parents)
    objs: list[float] = []
    a = grp
    if parents:
        a, v = anneal_sized(costs[-1], sizes[-1], a, capacity, iters=iters_per_item * sizes[-1].size,
                            seed=seed, temp=temp)
        objs.append(v)
        a = _uncoarsen(a, costs, sizes, parents, capacity, iters_per_item, seed, temp, objs)
    out = np.full(a0.size, -1, dtype=np.int64)
    out[idx] = a
    objs.append(_true(ci, a))
    return out, {"levels": [int(x.size) for x in sizes], "objective_ns": objs}


def multilevel(cost: np.ndarray, capacity: int, *, seed: int = 0, width: int = 0,
               iters_per_item: int = 2_000, coarse_temp: tuple[float, float] = (2e-4, 2e-6),
               refine_temp: tuple[float, float] = (5e-5, 2e-6), items: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """A placement of the items by multilevel coarsening (module docstring): returns (assignment
    item -> GPU, -1 for items not in ``items``; stats). ``cost[T, n, G, K]`` (or ``[T, n, G]``)
    level costs; ``items``: the items to place (default all); ``capacity``: slots per GPU.
    Annealing at every coarse level: ``iters_per_item`` steps per super-item, the coarsest level
    with ``coarse_temp``, the finer ones with ``refine_temp`` (fractions of the objective); the
    finest level (the items) is not refined here. Deterministic for a seed."""
    c = np.asarray(cost, dtype=np.float64)
    c = c[..., None] if c.ndim == 3 else c
    T, n, G, K = c.shape
    idx = np.arange(n) if items is None else np.asarray(items, dtype=np.int64)
    if idx.size > G * capacity:
        raise ValueError(f"multilevel: {idx.size} items do not fit {G} GPUs x {capacity} slots")
    ci = np.ascontiguousarray(c[:, idx])
    dev = deviation_vectors(ci, width)
    parents, _ = hierarchy(dev, G, seed)
    costs, sizes = _levels(ci, parents)
    # initial solution at the coarsest level: first fit decreasing by deviation norm
    top, sz = costs[-1], sizes[-1]
    dtop = deviation_vectors(top, width)
    order = np.lexsort((-np.linalg.norm(dtop, axis=1), -sz))
    a = np.full(sz.size, -1, dtype=np.int64)
    free = np.full(G, capacity, dtype=np.int64)
    for i in order.tolist():
        ok = np.flatnonzero(free >= sz[i])
        g = int(ok[np.argmax(free[ok])])                       # most room first
        a[i] = g
        free[g] -= sz[i]
    stats = {"levels": [int(s.size) for s in sizes], "objective_ns": []}
    a, v = anneal_sized(top, sz, a, capacity, iters=iters_per_item * max(sz.size, 50), seed=seed, temp=coarse_temp)
    stats["objective_ns"].append(v)
    a = _uncoarsen(a, costs, sizes, parents, capacity, iters_per_item, seed, refine_temp, stats["objective_ns"])
    out = np.full(n, -1, dtype=np.int64)
    out[idx] = a
    stats["objective_ns"].append(_true(ci, a))
    return out, stats
