"""Multi-way, multi-dimensional differencing (Karmarkar-Karp family) on the exact model's item space.

A fixed placement of a window is a multi-way, multi-dimensional number partition
(:mod:`~sieveopt.placement.anneal`): each GPU's load vector over the window's steps is the sum of
its items' cost vectors. For one-dimensional number partitioning the differencing method of
Karmarkar and Karp ("The differencing method of set partitioning", UC Berkeley, 1982; the
largest differencing method, LDM) and its balanced version (BLDM: Michiels, Korst and Aarts,
"Performance ratios for the differencing method", Acta Informatica 2007) beat local search by
orders of magnitude on random instances. This module builds their vector analogue:

* A *tuple* is a G-way partition of a subset of the items: per part its item count, its members
  and its load vectors. Start: one tuple per item (LDM), or (balanced) the items sorted by size
  and cut into consecutive groups of G, one item per part, so every merge keeps equal counts.
* Repeatedly the two tuples of largest *spread* are merged by the part-to-part pairing that
  minimises the merged spread: the sum of squared deviations of the parts' loads from their
  step mean. For that spread the pairing is exactly a linear assignment (the squared norms of
  the two tuples' deviations are fixed; only the cross terms ``a_i . b_j`` depend on the pairing),
  solved by ``scipy.optimize.linear_sum_assignment``; pairings that overfill a part (HBM slots)
  are forbidden. The spread that picks the tuples is ``"l2"`` (the Frobenius norm of the
  deviations) or ``"max"`` (the objective's own excess, mean over steps of max over parts minus
  the mean).
* Levels: a GPU's work is a maximum over the surrogate's levels of linear sums; differencing
  needs a linear load, so each (step, GPU) uses one *reference level*, the maximising level of the
  average part (the total cost of all items on that GPU divided by G).
* GPU speeds (``labels``): ``"end"`` balances GPU-mean cost vectors with unlabelled parts and maps
  parts to GPUs at the end; ``"gpu"`` identifies part p with GPU p from the start and costs every
  part on every GPU, so a merge pairs part j of the second tuple with GPU i at its cost *on GPU i*
  (speed-scaled loads, unequal counts where the capacity allows). In both, the final parts-to-GPUs
  map is the best of all G! relabellings on the true objective (G <= 8; else an assignment on the
  squared work).
* Diversity (``noise`` > 0, seeded): the spreads that order the tuples and the pairing costs get
  multiplicative log-normal noise, so each seed follows other merge choices (second-largest
  tuple, second-best pairing): a randomised, limited-discrepancy version of the complete
  differencing search, whose complete form is exponential at 256 items.

Deterministic for a seed. The result is an assignment ``item -> GPU`` (-1 for items not placed),
a start for :func:`~sieveopt.placement.local_search.polish` or
:func:`~sieveopt.placement.anneal.anneal`. Measured (docs/design-notes/placement.md, "Round 8:
differencing"): on the 32-step DeepSeek-V3 window it lands at 85.8-87.1 us in < 0.5 s (GEM
91.8, random 100.3, the annealing 84.5), on the planted instance 4.0-6.5 % above the optimum
(the annealing 1.25-1.46 %), and the annealing started from it ends no better than from GEM or
round-robin: the exact optimiser does not use it. Why it stalls: merging two tuples by the best
of the G! pairings cancels far less of a 32-step deviation than of a one-dimensional one.
"""

from __future__ import annotations

import functools
import heapq
import itertools

import numpy as np
from scipy.optimize import linear_sum_assignment

from sieveopt.placement.anneal import dense
from sieveopt.placement.exact import objective

_BIG = 1e30


def reference_levels(cost: np.ndarray, G: int) -> np.ndarray:
    """``[T, G]`` level of each (step, GPU) at which the average part of a G-way split of all the
    items' costs ``cost[T, items, G, K]`` has its maximum."""
    return (cost.sum(axis=1) / G).argmax(axis=2)


def item_vectors(cost: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``[items, G, T]`` item costs at each (step, GPU)'s reference level."""
    T, n, G, _ = cost.shape
    tt, gg = np.meshgrid(np.arange(T), np.arange(G), indexing="ij")           # [T, G]
    return np.ascontiguousarray(cost[tt[:, None, :], np.arange(n)[None, :, None], gg[:, None, :],
                                     levels[:, None, :]].transpose(1, 2, 0))


def _spread(dev: np.ndarray, kind: str) -> float:
    """Spread of a tuple from its deviations ``[parts, T]``."""
    if kind == "l2":
        return float(np.sqrt((dev * dev).sum()))
    return float(dev.max(axis=0).mean())


def best_relabelling(W: np.ndarray) -> np.ndarray:
    """``perm[p]`` = GPU of part p minimising ``mean_t max_p W[p, perm[p], t]`` (``W[parts, G, T]``
    the true work of each part on each GPU): all G! maps for G <= 8, else an assignment on the
    squared work."""
    G = W.shape[0]
    if G > 8:
        return linear_sum_assignment((W ** 2).sum(axis=2))[1].astype(np.int64)
    perms = _perms(G)
    best, best_v = perms[0], np.inf
    rows = np.arange(G)[None, :]
    for lo in range(0, perms.shape[0], 5040):
        P = perms[lo:lo + 5040]
        v = W[rows, P].max(axis=1).mean(axis=1)                              # [chunk]
        k = int(np.argmin(v))
        if v[k] < best_v - 1e-9:
            best, best_v = P[k], float(v[k])
    return best.copy()


@functools.cache
def _perms(G: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(G))), dtype=np.int64)


def _best_pairing(A: np.ndarray, PB: np.ndarray, ca: np.ndarray, cb: np.ndarray, capacity: int,
                  sigma: np.ndarray, W: int = 1) -> np.ndarray:
    """The pairing ``sigma`` (part i of A with part sigma[i] of B) of all G! minimising the merged
    ``mean_t max_i`` load at the reference levels within the capacity; ``sigma`` (the assignment's)
    when none is better."""
    G, D = A.shape
    P = _perms(G)
    rows = np.arange(G)[None, :]
    ok = (ca[None, :] + cb[P] <= capacity).all(axis=1)

    def val(M: np.ndarray) -> np.ndarray:                                  # [..., G, W*T] -> mean_t max
        return M.reshape(*M.shape[:-1], W, D // W).max(axis=-2).max(axis=-2).mean(axis=-1)

    fits = bool((ca + cb[sigma] <= capacity).all())
    best, best_v = sigma, float(val(A + PB[sigma, np.arange(G)])) if fits else np.inf
    for lo in range(0, P.shape[0], 5040):
        S = P[lo:lo + 5040]
        v = val(A[None] + PB[S, rows])                                     # [chunk]
        v[~ok[lo:lo + 5040]] = np.inf
        k = int(np.argmin(v))
        if v[k] < best_v - 1e-9:
            best, best_v = S[k].copy(), float(v[k])
    return best


def _true_work(cost: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """``[parts, G, T]`` true work (max over levels) of each part's items on each GPU."""
    return np.stack([cost[:, p].sum(axis=1).max(axis=2).T for p in parts])


def _repair(mem: list[list[int]], X: np.ndarray, capacity: int) -> None:
    """Move the smallest items of overfull parts to the part with the fewest items (LDM can meet
    two tuples no pairing of which respects the capacity; BLDM never does)."""
    size = X.mean(axis=1).sum(axis=1)
    while max(len(p) for p in mem) > capacity:
        src = max(range(len(mem)), key=lambda p: len(mem[p]))
        dst = min(range(len(mem)), key=lambda p: len(mem[p]))
        i = min(mem[src], key=lambda i: (size[i], i))
        mem[src].remove(i)
        mem[dst].append(i)


def differencing(cost, capacity: int, *, use: np.ndarray | None = None, balanced: bool = True,
                 spread: str = "l2", labels: str = "gpu", noise: float = 0.0,
                 seed: int = 0, exact_last: int = 0, partners: int = 1,
                 level_width: int = 0) -> np.ndarray:
    """One differencing run; returns the assignment ``item -> GPU`` (-1 = not placed).

    ``cost``: ``[T, items, G]``, level costs ``[T, items, G, K]`` or a ``(tokens, table)`` pair
    (:func:`~sieveopt.placement.anneal.as_table`). ``use``: items to place (default all; e.g. the
    exact model's single copies, its budget-0 space). ``capacity``: items per GPU at most.
    ``balanced``: BLDM (equal counts, ceil(n / G) <= capacity needed) or LDM from single items.
    ``spread``: ``"l2"`` or ``"max"`` (module docstring). ``labels``: ``"gpu"`` or ``"end"``.
    ``noise``: log-normal noise (sigma) on spreads and pairing costs, 0 = plain differencing.
    ``exact_last``: the last this many merges pick their pairing among all G! (G <= 8) on the
    merged ``mean_t max`` load at the reference levels (the objective's own shape) instead of
    the squared deviations. ``partners``: the largest tuple is merged with the one of the next
    ``partners`` largest whose merge leaves the smallest spread (1 = the second largest, as in
    Karmarkar-Karp; in many dimensions two large tuples cancel only when their deviations are
    aligned). ``level_width``: besides each (step, GPU)'s reference level, its ``level_width``
    neighbours on each side enter the load vectors (the pairing's squared deviations) and a part's
    work per step is their maximum (0 = the reference level only)."""
    if spread not in ("l2", "max"):
        raise ValueError(f"spread must be 'l2' or 'max', got {spread!r}")
    if labels not in ("gpu", "end"):
        raise ValueError(f"labels must be 'gpu' or 'end', got {labels!r}")
    c = dense(cost)
    T, n, G, _ = c.shape
    items = np.arange(n) if use is None else np.flatnonzero(np.asarray(use, dtype=bool))
    if items.size > G * capacity:
        raise ValueError(f"capacity: {items.size} items do not fit {G} GPUs x {capacity} slots; raise capacity")
    if balanced and -(-items.size // G) > capacity:
        raise ValueError(f"capacity: balanced differencing needs ceil({items.size} / {G}) <= {capacity} slots")
    rng = np.random.default_rng(seed)
    kref = reference_levels(c[:, items], G)
    K = c.shape[3]
    W = 2 * int(level_width) + 1                                             # levels per step kept
    X = np.concatenate([item_vectors(c, np.clip(kref + d, 0, K - 1))[items]
                        for d in range(-int(level_width), int(level_width) + 1)], axis=2)   # [m, G, W*T]
    if labels == "end":                                                      # GPU-mean vectors
        X = np.repeat(X.mean(axis=1, keepdims=True), G, axis=1)

    def diag(P: np.ndarray) -> np.ndarray:                                   # [G, T] part p on GPU p
        return P[np.arange(G), np.arange(G)]

    def jitter() -> float:
        return float(np.exp(noise * rng.standard_normal())) if noise > 0 else 1.0

    # a tuple: (loads [parts, G, T], counts [parts], members: list of item-index lists)
    tuples: list[tuple[np.ndarray, np.ndarray, list[list[int]]]] = []
    if balanced:
        size = X.mean(axis=1).sum(axis=1)
        order = np.argsort(-size, kind="stable")
        for lo in range(0, order.size, G):
            grp = order[lo:lo + G]
            P = np.zeros((G, G, W * T))
            P[:grp.size] = X[grp]
            cnt = np.zeros(G, dtype=np.int64)
            cnt[:grp.size] = 1
            tuples.append((P, cnt, [[int(i)] for i in grp] + [[] for _ in range(G - grp.size)]))
    else:
        for i in range(X.shape[0]):
            P = np.zeros((G, G, W * T))
            P[0] = X[i]
            cnt = np.zeros(G, dtype=np.int64)
            cnt[0] = 1
            tuples.append((P, cnt, [[i]] + [[] for _ in range(G - 1)]))

    def key(P: np.ndarray) -> float:
        d = diag(P).reshape(G, W, T).max(axis=1)                             # a part's work per step
        return _spread(d - d.mean(axis=0), spread) * jitter()

    heap = [(-key(tp[0]), k) for k, tp in enumerate(tuples)]
    heapq.heapify(heap)
    store = dict(enumerate(tuples))
    nxt = len(tuples)

    def pairing(PA: np.ndarray, ca: np.ndarray, PB: np.ndarray, cb: np.ndarray, last: bool) -> np.ndarray:
        A = diag(PA)                                                         # [G(i), T]
        m = A.mean(axis=0) + PB.mean(axis=(0, 1))                            # merged step mean
        # C[i, j]: squared deviation of part i of A joined by part j of B, on GPU i
        D = A[:, None, :] + PB.transpose(1, 0, 2) - m                        # [i, j, T]
        C = (D * D).sum(axis=2)
        if noise > 0:
            C = C * np.exp(noise * rng.standard_normal(C.shape))
        C[ca[:, None] + cb[None, :] > capacity] = _BIG
        sigma = linear_sum_assignment(C)[1]
        if last and G <= 8:                                                  # one of the last merges
            sigma = _best_pairing(A, PB, ca, cb, capacity, sigma, W)
        return sigma

    while len(heap) > 1:
        _, ka = heapq.heappop(heap)
        PA, ca, ma = store.pop(ka)
        last = len(heap) - 1 < exact_last
        cands = [heapq.heappop(heap) for _ in range(min(max(1, int(partners)), len(heap)))]
        best = None
        for c_ in cands:                 # the partner whose merge leaves the smallest spread
            PB, cb, _ = store[c_[1]]
            sg = pairing(PA, ca, PB, cb, last)
            v = key(PA + PB[sg]) if len(cands) > 1 else 0.0
            if best is None or v < best[0]:
                best = (v, c_, sg)
        _, (_, kb), sigma = best
        for c_ in cands:
            if c_[1] != kb:
                heapq.heappush(heap, c_)
        PB, cb, mb = store.pop(kb)
        P = PA + PB[sigma]
        store[nxt] = (P, ca + cb[sigma], [ma[i] + mb[int(sigma[i])] for i in range(G)])
        heapq.heappush(heap, (-key(P), nxt))
        nxt += 1
    mem = store[heap[0][1]][2]
    _repair(mem, X, capacity)
    parts = [items[np.asarray(p, dtype=np.int64)] for p in mem]
    perm = best_relabelling(_true_work(c, parts))
    out = np.full(n, -1, dtype=np.int64)
    for p, its in enumerate(parts):
        out[its] = perm[p]
    return out


def differencing_starts(cost, capacity: int, *, runs: int, seed: int = 0, noise: float = 0.1,
                        keep: int = 1, **kw) -> list[tuple[np.ndarray, float]]:
    """``runs`` differencing runs (run 0 plain, the others with ``noise`` and seeds ``seed + r``);
    returns the ``keep`` best as (assignment, true objective ``mean_t max_g``), best first.
    Deterministic for ``seed``."""
    c = dense(cost)
    out = []
    for r in range(int(runs)):
        a = differencing(c, capacity, noise=0.0 if r == 0 else noise, seed=seed + r, **kw)
        out.append((a, objective(c, a)))
    out.sort(key=lambda x: x[1])
    return out[:max(1, int(keep))]
