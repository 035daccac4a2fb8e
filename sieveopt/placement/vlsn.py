"""Cyclic-exchange very-large-scale neighbourhood search (VLSN) on the exact model's item space.

A fixed placement of a window is a multi-way, multi-dimensional number partition
(:mod:`~sieveopt.placement.anneal`). Moves and swaps touch two GPUs; the incumbents of the
annealing are provably 2-GPU optimal to within 0.1 % on the DeepSeek-V3 window (design note,
round 5), so an improvement must change three or more GPUs at once. The cyclic-exchange
neighbourhood of Ahuja, Orlin and Sharma ("Very large-scale neighborhood search", Int. Trans.
Oper. Res. 7, 2000; "A composite very large-scale neighborhood structure for the capacitated
minimum spanning tree problem", Oper. Res. Lett. 31, 2003) does: item i1 goes to GPU(i2), i2 to
GPU(i3), ..., ik to GPU(i1), every GPU at most once (each gives one item and takes one: HBM
slot counts kept), or a *path* (one GPU gains an item, one loses one), up to all G GPUs in one
move. Exchanges are found as negative *subset-disjoint* cycles (no GPU twice) in the
improvement graph whose arc ``u -> v`` costs the change of a GPU-separable objective on
GPU(v) when u enters it and v leaves; paths are cycles through a dummy node per GPU (a free
slot / nothing). The separable objective is a convex penalty of each (step, GPU) work:
``exp((V[t, g] - ref_t) / beta)`` with ``ref_t`` the step's straggler (the terms inside the
annealing's log-sum-exp) or ``((V[t, g] - mean_t) / beta)^2`` (the step's variance), so a
cycle's cost is the sum of its arcs. Cycles are found by label correcting: one label per (GPU
subset, last node) keeps the cheapest path with negative prefix sums (every negative cycle has a
rotation whose partial sums are all negative), at most 2^G x nodes labels per run; either one
run per start node (exact: the most negative cycle) or Ahuja, Orlin and Sharma's heuristic (one
run, a label keeps only its cheapest start). The candidate cycles found are then scored on the
*acceptance* objective (the separable penalty itself, the log-sum-exp of each step's GPU work at
``beta``, or the true ``mean_t max_g``) and the best improving one is applied.

Measured (design note, round 7): from an annealed optimum it finds almost nothing (the annealed
placements are cyclic-exchange optimal to within a few ns), and it loses to annealing on equal
time on the planted instance and the headline window, so the exact optimiser does not use it.

Deterministic (no clock inside a descent; the Python driver checks the clock only between
descents), never worse than its start.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from sieveopt.placement.anneal import _climb, _loads, _tk, _true_objective, as_table

#: Candidate cycles kept per search (the most negative on the separable objective).
CANDIDATES = 24
_EPS = 1e-9


@njit(cache=True, nogil=True)
def _work(L, tab, t, g, rem, add, k0):  # noqa: ANN001, ANN202, PLR0913 (numba)
    """The annealing's level climb (:func:`~sieveopt.placement.anneal._climb`), called, not
    inlined: one copy of its IR keeps the compile time down."""
    return _climb(L, tab, t, g, rem, add, k0)


@njit(cache=True, nogil=True)
def _phi(v, ref, ib, sq):  # noqa: ANN001, ANN202 (numba)
    """Separable penalty of one (step, GPU) work: exp((v - ref) / beta), or ((v - ref) / beta)^2."""
    if sq:
        x = (v - ref) * ib
        return x * x
    return np.exp((v - ref) * ib)


@njit(cache=True, nogil=True)
def _arcs(tok, tab, L, kk, P, ref, ib, sq, nitem, ngpu, C):  # noqa: ANN001, ANN202, PLR0913
    """Arc costs ``C[u, v]``: the penalty change of GPU(v) when it takes u's tokens and gives
    v's (steps outer, entering nodes inner: the table rows of one step are read in order)."""
    T = tok.shape[0]
    M = nitem.size
    for v in range(M):
        h = ngpu[v]
        iv = nitem[v]
        for u in range(M):
            C[u, v] = np.inf if (nitem[u] < 0 and iv < 0) else 0.0
        for t in range(T):
            rem = _tk(tok, t, iv)
            k0 = kk[t, h]
            p0 = P[t, h]
            for u in range(M):
                iu = nitem[u]
                if iu < 0 and iv < 0:
                    continue
                nv = _work(L, tab, t, h, rem, _tk(tok, t, iu), k0)
                C[u, v] += _phi(nv, ref[t], ib, sq) - p0


@njit(cache=True, nogil=True)
def _valid(u, w, nitem, ngpu, a, twin, cnt, cap):  # noqa: ANN001, ANN202, PLR0913
    """Arc u -> w allowed: u enters GPU(w) (w leaves it); dummies: a free slot / nothing."""
    iu, iw = nitem[u], nitem[w]
    if iu < 0:
        return iw >= 0
    h = ngpu[w]
    if iw < 0 and cnt[h] >= cap:
        return False
    tw = twin[iu]
    return not (tw >= 0 and a[tw] == h)


@njit(cache=True, nogil=True)
def _trace(S, v, ngpu, pr, seq):  # noqa: ANN001, ANN202
    """Nodes of the cycle ending at label (S, v), first to last, into ``seq``; returns its length."""
    k = 0
    while v >= 0:
        seq[k] = v
        k += 1
        u = pr[S, v]
        S ^= 1 << ngpu[v]
        v = u
    for q in range(k // 2):
        seq[q], seq[k - 1 - q] = seq[k - 1 - q], seq[q]
    return k


@njit(cache=True, nogil=True)
def _keep(tot, S, v, ngpu, pr, cval, cS, cseq, clen, nc):  # noqa: ANN001, ANN202, PLR0913
    """Insert the cycle closed at label (S, v) into the candidate buffer (the most negative
    kept, its nodes traced now: later starts overwrite the labels); returns the count."""
    NC = cval.size
    for q in range(nc):                       # the same cycle found from another start
        if cS[q] == S and abs(cval[q] - tot) <= 1e-9 * max(1.0, abs(tot)):
            return nc
    slot = nc
    if nc == NC:
        slot = 0
        for q in range(1, NC):
            if cval[q] > cval[slot]:
                slot = q
        if tot >= cval[slot]:
            return nc
    cval[slot], cS[slot] = tot, S
    clen[slot] = _trace(S, v, ngpu, pr, cseq[slot])
    return nc + 1 if nc < NC else nc


@njit(cache=True, nogil=True)
def _cycles(C, order, nitem, ngpu, a, twin, cnt, cap, G, cval, cS, cseq, clen, d, pr, exact):  # noqa: ANN001, ANN202, PLR0913
    """Negative subset-disjoint cycles (paths: through a dummy node) in the improvement graph
    ``C`` (``order[v]``: v's arcs by increasing cost); fills the candidate buffer (value, GPU subset, nodes, length) and returns
    how many. Labels (GPU subset, last node) keep the cheapest path with negative prefix sums.
    ``exact``: one label-correcting run per start node, which finds the most negative cycle
    (every negative cycle has a rotation with all partial sums negative); else one run for all
    starts at once, a label keeping only its cheapest start (Ahuja, Orlin and Sharma's
    heuristic: faster, misses cycles)."""
    M = nitem.size
    nc = 0
    cur = np.empty((M * (1 << G), 2), dtype=np.int64)
    nxt = np.empty_like(cur)
    st = np.empty(d.shape, dtype=np.int64)
    runs = M if exact else 1
    d[:, :] = np.inf
    for r in range(runs):
        n_cur = 0
        for v in range(M):
            if exact and v != r:
                continue
            b = 1 << ngpu[v]
            d[b, v] = 0.0
            st[b, v] = v
            pr[b, v] = -1
            cur[n_cur, 0], cur[n_cur, 1] = b, v
            n_cur += 1
        while n_cur > 0:
            n_nxt = 0
            for e in range(n_cur):
                S, v = cur[e, 0], cur[e, 1]
                dv = d[S, v]
                s = st[S, v]
                if (S & (S - 1)) != 0 and _valid(v, s, nitem, ngpu, a, twin, cnt, cap):
                    tot = dv + C[v, s]
                    if tot < -_EPS:
                        nc = _keep(tot, S, v, ngpu, pr, cval, cS, cseq, clen, nc)
                for q in range(M):                    # arcs out of v, cheapest first
                    w = order[v, q]
                    nd = dv + C[v, w]
                    if nd >= -_EPS:
                        break
                    bw = 1 << ngpu[w]
                    if S & bw:
                        continue
                    S2 = S | bw
                    if nd >= d[S2, w]:
                        continue
                    if not _valid(v, w, nitem, ngpu, a, twin, cnt, cap):
                        continue
                    if d[S2, w] == np.inf:
                        nxt[n_nxt, 0], nxt[n_nxt, 1] = S2, w
                        n_nxt += 1
                    d[S2, w] = nd
                    st[S2, w] = s
                    pr[S2, w] = v
            if exact:                                 # reset for the next start
                for e in range(n_cur):
                    d[cur[e, 0], cur[e, 1]] = np.inf
            cur, nxt = nxt, cur
            n_cur = n_nxt
        if not exact:
            break
    return nc


@njit(cache=True, nogil=True)
def _score(tok, tab, L, kk, V, seq, k, nitem, ngpu, acc_ib, newV):  # noqa: ANN001, ANN202, PLR0913
    """Change of the acceptance objective (sum over steps; log-sum-exp at 1/acc_ib, or the
    straggler when acc_ib = 0) if the cycle ``seq[:k]`` is applied; ``newV[t, q]``: the new work
    of the cycle's q-th GPU."""
    T, G = V.shape
    for q in range(k):
        v = seq[q]
        u = seq[q - 1] if q > 0 else seq[k - 1]       # u enters GPU(v), v leaves
        h = ngpu[v]
        for t in range(T):
            newV[t, q] = _work(L, tab, t, h, _tk(tok, t, nitem[v]), _tk(tok, t, nitem[u]), kk[t, h])
    delta = 0.0
    for t in range(T):
        if acc_ib == 0.0:
            old = 0.0
            new = -np.inf
            for g in range(G):
                old = max(old, V[t, g])
                touched = False
                for q in range(k):
                    if ngpu[seq[q]] == g:
                        touched = True
                        new = max(new, newV[t, q])
                if not touched:
                    new = max(new, V[t, g])
            delta += new - old
        else:
            ref = 0.0
            for g in range(G):
                ref = max(ref, V[t, g])
            so = 0.0
            sn = 0.0
            for g in range(G):
                x = np.exp((V[t, g] - ref) * acc_ib)
                so += x
                touched = False
                for q in range(k):
                    if ngpu[seq[q]] == g:
                        touched = True
                        sn += np.exp((newV[t, q] - ref) * acc_ib)
                if not touched:
                    sn += x
            delta += np.log(sn / so) / acc_ib
    return delta


@njit(cache=True, nogil=True)
def _apply(tok, tab, L, seq, k, nitem, ngpu, a, cnt):  # noqa: ANN001, ANN202
    """Apply the cycle ``seq[:k]``: each item node moves to the GPU of the node after it."""
    T, G, K = L.shape
    gs = np.empty(k, dtype=np.int64)
    for q in range(k):
        gs[q] = ngpu[seq[q]]
    for q in range(k):
        u = seq[q]
        h = gs[(q + 1) % k]
        iu = nitem[u]
        if iu < 0:
            continue
        g = gs[q]
        for t in range(T):
            n = tok[t, iu]
            for kq in range(K):
                L[t, g, kq] -= tab[g, n, kq]
                L[t, h, kq] += tab[h, n, kq]
        a[iu] = h
        ngpu[u] = h
        cnt[g] -= 1
        cnt[h] += 1


@njit(cache=True, nogil=True)
def _descend(tok, tab, a, cnt, L, twin, cap, beta, sq, acc_beta, max_moves, exact):  # noqa: ANN001, ANN202, PLR0913
    """Cyclic-exchange descent: apply the best improving candidate cycle (acceptance objective)
    until none is found or ``max_moves``; returns the number of cycles applied."""
    T, G, K = L.shape
    n = a.size
    m = 0
    for i in range(n):
        if a[i] >= 0:
            m += 1
    M = m + G
    nitem = np.empty(M, dtype=np.int64)
    ngpu = np.empty(M, dtype=np.int64)
    q = 0
    for i in range(n):
        if a[i] >= 0:
            nitem[q] = i
            ngpu[q] = a[i]
            q += 1
    for g in range(G):
        nitem[m + g] = -1
        ngpu[m + g] = g
    ib = 1.0 / beta
    acc_ib = 0.0 if acc_beta <= 0.0 else 1.0 / acc_beta       # < 0: the separable objective itself
    C = np.zeros((M, M))
    order = np.empty((M, M), dtype=np.int64)
    NS = 1 << G
    d = np.empty((NS, M))
    pr = np.empty((NS, M), dtype=np.int64)
    cval = np.empty(CANDIDATES)
    cS = np.empty(CANDIDATES, dtype=np.int64)
    cseq = np.empty((CANDIDATES, G + 1), dtype=np.int64)
    clen = np.empty(CANDIDATES, dtype=np.int64)
    best_seq = np.empty(G + 1, dtype=np.int64)
    newV = np.empty((T, G + 1))
    V = np.empty((T, G))
    kk = np.empty((T, G), dtype=np.int64)
    P = np.empty((T, G))
    ref = np.empty(T)
    moves = 0
    while moves < max_moves:
        for t in range(T):
            ref[t] = 0.0 if sq else -np.inf
            for g in range(G):
                kk[t, g] = np.argmax(L[t, g])
                V[t, g] = L[t, g, kk[t, g]]
                ref[t] = ref[t] + V[t, g] / G if sq else max(ref[t], V[t, g])
            for g in range(G):
                P[t, g] = _phi(V[t, g], ref[t], ib, sq)
        _arcs(tok, tab, L, kk, P, ref, ib, sq, nitem, ngpu, C)
        for v in range(M):
            order[v] = np.argsort(C[v])
        nc = _cycles(C, order, nitem, ngpu, a, twin, cnt, cap, G, cval, cS, cseq, clen, d, pr, exact)
        best, bk = -_EPS * T, 0
        for c in range(nc):
            k = clen[c]
            dl = cval[c] if acc_beta < 0.0 else _score(tok, tab, L, kk, V, cseq[c], k, nitem, ngpu, acc_ib, newV)
            if dl < best:
                best, bk = dl, k
                best_seq[:k] = cseq[c, :k]
        if bk == 0:
            break
        _apply(tok, tab, L, best_seq, bk, nitem, ngpu, a, cnt)
        moves += 1
    return moves


def _kick(a: np.ndarray, G: int, twin: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """Random cyclic exchange over ``size`` distinct GPUs (one random item each; counts kept;
    skipped if it would put two replicas of an expert on one GPU)."""
    gs = rng.permutation(G)[:size]
    items = []
    for g in gs:
        on = np.flatnonzero(a == g)
        if on.size == 0:
            return
        items.append(int(on[rng.integers(on.size)]))
    new = {items[q]: int(gs[(q + 1) % len(gs)]) for q in range(len(gs))}
    for i, h in new.items():
        tw = twin[i]
        if tw >= 0 and new.get(int(tw), a[tw]) == h:
            return
    for i, h in new.items():
        a[i] = h


#: Default descent stages: (penalty, beta as a fraction of the start objective, acceptance).
STAGES = (("square", 1e-2, "self"), ("exp", 2e-3, "lse"), ("exp", 5e-4, "lse"), ("exp", 5e-4, "true"))


def vlsn(cost, assign: np.ndarray, capacity: int, twin: np.ndarray, *, seed: int = 0,
         stages: tuple = STAGES, kicks: int = 0, kick_size: int = 4,
         max_moves: int = 100_000, time_limit_s: float | None = None,
         exact: bool | None = None) -> tuple[np.ndarray, float, dict]:
    """Cyclic-exchange descent from ``assign`` (see the module docstring), optionally iterated
    with ``kicks`` random cyclic exchanges of ``kick_size`` GPUs (iterated local search: a kicked
    descent replaces the current assignment only if better on the true objective). Returns (best
    assignment, its ``mean_t max_g`` objective, stats).

    ``cost``: as :func:`~sieveopt.placement.anneal.anneal` (``[T, items, G]``, ``[T, items, G, K]``
    or a ``(tokens, table)`` pair). ``stages``: descents run in turn, each ``(penalty, beta,
    acceptance)``: arcs from the separable penalty ``"exp"`` (``exp((V - straggler_t) / beta)``)
    or ``"square"`` (``((V - mean_t) / beta)^2``, the step's variance), ``beta`` a fraction of the
    start's objective; a cycle is accepted on ``"self"`` (the separable penalty: exact), ``"lse"``
    (log-sum-exp of each step's works at ``beta``) or ``"true"`` (``mean_t max_g``). ``twin[i]``:
    the other replica item of item i's expert (-1: none); the two never share a GPU.
    ``time_limit_s``: no descent starts after it (the result then depends on the clock; without
    it, on the seed only). ``exact``: the exact cycle search (one label run per start node) or
    the heuristic one; None: exact for the ``"exp"`` stages, heuristic for ``"square"`` (where
    both found the same best cycles at 1/25-1/100 of the time, planted instance)."""
    t0 = time.perf_counter()
    tok, tab = as_table(cost)
    a = np.asarray(assign, dtype=np.int64).copy()
    tw = np.asarray(twin, dtype=np.int64)
    G = tab.shape[0]
    L = _loads(tok, tab, a)
    start = best_val = float(_true_objective(L))
    best = a.copy()
    stats = {"moves": 0, "kicks": 0, "accepted": 0, "descents": 0, "stage_ns": []}
    if G < 2 or G > 16 or start <= 0:
        return best, best_val, stats

    def out_of_time() -> bool:
        return time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s

    def descend(x: np.ndarray) -> float:
        cnt = np.bincount(x[x >= 0], minlength=G).astype(np.int64)
        Lx = _loads(tok, tab, x)
        for pen, b, acc in stages:
            if out_of_time():
                break
            acc_b = {"self": -1.0, "lse": b * start, "true": 0.0}[acc]
            stats["moves"] += int(_descend(tok, tab, x, cnt, Lx, tw, int(capacity), b * start, pen == "square",
                                           acc_b, max_moves, pen == "exp" if exact is None else exact))
            stats["descents"] += 1
            stats["stage_ns"].append(float(_true_objective(Lx)))
        return float(_true_objective(_loads(tok, tab, x)))

    cur_val = descend(a)
    if cur_val < best_val:
        best, best_val = a.copy(), cur_val
    cur = a
    rng = np.random.default_rng(seed)
    for _ in range(kicks):
        if out_of_time():
            break
        x = cur.copy()
        _kick(x, G, tw, rng, min(kick_size, G))
        v = descend(x)
        stats["kicks"] += 1
        if v < cur_val:
            cur, cur_val = x, v
            stats["accepted"] += 1
            if v < best_val:
                best, best_val = x.copy(), v
    return best, best_val, stats
