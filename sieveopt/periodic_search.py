"""Periodic schedules from cyclic resource orders: the shortest superperiod of fixed modes and
orders (a max cycle ratio), and a descent over orders and modes (issue 11, better incumbents).

Why. Modulo list scheduling fixes a list order and bisects Lambda to 0.1 %; CP-SAT on the full
periodic model often returns its hint unchanged on the paper's multi-GPU configurations. Given the
*order* in which every capacity-1 resource serves its tasks, the best timing is a small problem:

* every constraint is ``s_v >= s_u + w - h * Lambda``: DAG edge ``w = d_u + lag, h = 0``;
  recurrence ``h = 1``; consecutive occurrences (i, k_i), (j, k_j) of a resource's cyclic order
  (copy k_j of j follows copy k_i of i) ``w = d_i, h = k_j - k_i``; the last occurrence precedes
  the first one's next copy;
* a Lambda is feasible iff the graph with weights ``w - h Lambda`` has no positive cycle
  (Bellman-Ford longest paths from 0, compiled), and then the longest paths are valid starts;
* feasibility is monotone in Lambda: a cycle's weight is ``W - H Lambda`` with H its summed
  iteration distance; a cycle with H < 0 or with H = 0 and W > 0 is infeasible at every Lambda,
  and for H >= 1 the weight falls as Lambda grows. So bisection finds the smallest integer
  Lambda of these orders (:func:`shortest_superperiod`) -- the max cycle ratio ``max W / H``.

:func:`compact` re-times any periodic schedule in its own orders (never longer); :func:`local_search`
moves one task at a time (before the task it follows with no slack on a resource, or into its
other mode) and keeps a move when the shortest superperiod of the new orders drops. Every
schedule returned passes :func:`sieveopt.periodic.check_periodic` (checked here; a failure is a
bug and raises). Deterministic: budgets count evaluations, never the clock.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from sieveopt._modulo_numba import dag_longest
from sieveopt.periodic import PeriodicProblem, PeriodicSchedule, check_periodic, resource_loads_ns

#: (task, iteration) occurrences of one resource in cyclic order.
Order = list[tuple[int, int]]


@numba.njit(cache=True)
def _parent_cycle(parent: np.ndarray, stamp: np.ndarray) -> bool:
    """True when the parent pointers of a Bellman-Ford run contain a cycle (which then has
    positive weight: every parent arc holds ``dist[v] <= dist[u] + w`` and the last update on
    the cycle made one strict)."""
    nv = parent.shape[0]
    for i in range(nv):
        stamp[i] = -1
    for i in range(nv):
        v = i
        while v >= 0 and stamp[v] < 0:
            stamp[v] = i
            v = parent[v]
        if v >= 0 and stamp[v] == i:
            return True
    return False


@numba.njit(cache=True)
def _longest_paths(nv: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, h: np.ndarray, lam: int,
                   dist: np.ndarray) -> bool:
    """Longest paths from a virtual source (0 to every node) with arc weights ``w - h * lam``;
    False when a positive cycle exists (Lambda infeasible). A cycle is detected as soon as the
    parent pointers close one (checked every pass, O(nodes)), not after ``nv`` passes."""
    return _longest_paths_parent(nv, src, dst, w, h, lam, dist, np.full(nv, -1, dtype=np.int64))


@numba.njit(cache=True)
def _longest_paths_parent(nv: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, h: np.ndarray, lam: int,
                          dist: np.ndarray, parent: np.ndarray) -> bool:
    """:func:`_longest_paths` that leaves its parent pointers in ``parent`` (a positive cycle
    among them when it returns False)."""
    for i in range(nv):
        parent[i] = -1
    stamp = np.empty(nv, dtype=np.int64)
    for i in range(nv):
        dist[i] = 0
    for _ in range(nv + 1):
        changed = False
        for a in range(src.shape[0]):
            v = dist[src[a]] + w[a] - h[a] * lam
            if v > dist[dst[a]]:
                dist[dst[a]] = v
                parent[dst[a]] = src[a]
                changed = True
        if not changed:
            return True
        if _parent_cycle(parent, stamp):
            return False
    return False


@numba.njit(cache=True)
def _stable_argsort(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")``: a natural merge sort (the ascending runs of ``key``
    merged pairwise, ties to the left run). Arc keys come in long sorted runs (edges in
    topological order, each resource's order by position), so few passes; numba's own stable
    argsort takes about 13 s to compile."""
    n = key.shape[0]
    idx = np.arange(n)
    tmp = np.empty(n, dtype=np.int64)
    bounds = np.empty(n + 1, dtype=np.int64)
    nxt = np.empty(n + 1, dtype=np.int64)
    runs = 0
    for i in range(n):
        if i == 0 or key[i] < key[i - 1]:
            bounds[runs] = i
            runs += 1
    bounds[runs] = n
    while runs > 1:
        merged = 0
        for p in range(0, runs, 2):
            lo = bounds[p]
            hi = bounds[p + 2] if p + 1 < runs else bounds[p + 1]
            mid = bounds[p + 1]
            i, j = lo, mid
            for k in range(lo, hi):
                if j < hi and (i >= mid or key[idx[j]] < key[idx[i]]):
                    tmp[k] = idx[j]
                    j += 1
                else:
                    tmp[k] = idx[i]
                    i += 1
            nxt[merged] = lo
            merged += 1
        nxt[merged] = n
        idx, tmp = tmp, idx
        bounds, nxt = nxt, bounds
        runs = merged
    return idx


@numba.njit(cache=True)
def _cyclic_order_arcs(seq_t: np.ndarray, seq_k: np.ndarray, m: int, d: np.ndarray, src: np.ndarray,
                       dst: np.ndarray, w: np.ndarray, h: np.ndarray, na: int) -> int:
    """Write the arcs of one resource's cyclic order at ``[na, ...)`` and return the new count:
    consecutive occurrences ``(i, k_i)``, ``(j, k_j)`` of ``seq[:m]`` give ``s_j + h Lambda >= s_i + w``
    with ``w = d_i``, ``h = k_j - k_i``; the last occurrence precedes the first one's next copy
    (``h + 1``). No arcs for fewer than two occurrences. The one definition of these constraints
    (:func:`order_arcs`, the descent's move test :func:`_move_feasible`)."""
    if m < 2:
        return na
    for j in range(m):
        b = j + 1 if j + 1 < m else 0
        src[na] = seq_t[j]
        dst[na] = seq_t[b]
        w[na] = d[seq_t[j]]
        h[na] = seq_k[b] + (1 if j == m - 1 else 0) - seq_k[j]
        na += 1
    return na


@numba.njit(cache=True)
def _orders_arcs(r_ptr: np.ndarray, occ_t: np.ndarray, occ_k: np.ndarray,
                 d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arcs of every resource's cyclic order, resource r's occurrences being
    ``occ_*[r_ptr[r]:r_ptr[r+1]]`` (:func:`_cyclic_order_arcs` each)."""
    n = occ_t.shape[0]
    src = np.empty(n, dtype=np.int64)
    dst = np.empty(n, dtype=np.int64)
    w = np.empty(n, dtype=np.int64)
    h = np.empty(n, dtype=np.int64)
    na = 0
    for r in range(r_ptr.shape[0] - 1):
        a, b = r_ptr[r], r_ptr[r + 1]
        na = _cyclic_order_arcs(occ_t[a:b], occ_k[a:b], b - a, d, src, dst, w, h, na)
    return src[:na], dst[:na], w[:na], h[:na]


@numba.njit(cache=True)
def _move_feasible(n: int, e_src: np.ndarray, e_dst: np.ndarray, e_w: np.ndarray, e_h: np.ndarray, d: np.ndarray,
                   r_ptr: np.ndarray, occ_pos: np.ndarray, occ_t: np.ndarray, occ_k: np.ndarray, touch: np.ndarray,
                   insert: np.ndarray, t: int, pos_new: int, k_new: int, rank: np.ndarray, lam: int) -> bool:
    """Whether Lambda = ``lam`` admits the orders after one descent move (:func:`_apply`; the
    same test as :func:`_feasible_at` of them), built from the current orders
    without Python lists: resource r's occurrences (position, task, copy), sorted, are
    ``occ_*[r_ptr[r]:r_ptr[r+1]]`` in the orders' resource order; where ``touch[r]`` task t is
    taken out, where ``insert[r]`` it goes in at (``pos_new``, t, ``k_new``) in sorted place
    (``bisect.insort``). The arcs are those of :func:`_arcs`, in the same order: ``e_*`` (active
    edges and recurrences under the move's modes), then each order's consecutive occurrences,
    sorted stably by ``rank`` of their source."""
    m_arcs = e_src.shape[0] + occ_t.shape[0] + r_ptr.shape[0]
    src = np.empty(m_arcs, dtype=np.int64)
    dst = np.empty(m_arcs, dtype=np.int64)
    w = np.empty(m_arcs, dtype=np.int64)
    h = np.empty(m_arcs, dtype=np.int64)
    na = e_src.shape[0]
    for a in range(na):  # loops, not slice assignment: that alone costs seconds of compile time
        src[a] = e_src[a]
        dst[a] = e_dst[a]
        w[a] = e_w[a]
        h[a] = e_h[a]
    seq_t = np.empty(occ_t.shape[0] + 1, dtype=np.int64)
    seq_k = np.empty(occ_t.shape[0] + 1, dtype=np.int64)
    for r in range(r_ptr.shape[0] - 1):
        m = 0
        placed = not insert[r]
        for q in range(r_ptr[r], r_ptr[r + 1]):
            if touch[r] and occ_t[q] == t:
                continue
            if not placed and (pos_new < occ_pos[q] or (pos_new == occ_pos[q] and (
                    t < occ_t[q] or (t == occ_t[q] and k_new < occ_k[q])))):
                seq_t[m] = t
                seq_k[m] = k_new
                m += 1
                placed = True
            seq_t[m] = occ_t[q]
            seq_k[m] = occ_k[q]
            m += 1
        if not placed:
            seq_t[m] = t
            seq_k[m] = k_new
            m += 1
        na = _cyclic_order_arcs(seq_t, seq_k, m, d, src, dst, w, h, na)
    key = np.empty(na, dtype=np.int64)
    for a in range(na):
        key[a] = rank[src[a]]
    o = _stable_argsort(key)
    s_src = np.empty(na, dtype=np.int64)
    s_dst = np.empty(na, dtype=np.int64)
    s_w = np.empty(na, dtype=np.int64)
    s_h = np.empty(na, dtype=np.int64)
    for a in range(na):
        s_src[a] = src[o[a]]
        s_dst[a] = dst[o[a]]
        s_w[a] = w[o[a]]
        s_h[a] = h[o[a]]
    dist = np.zeros(n, dtype=np.int64)
    return _longest_paths(n, s_src, s_dst, s_w, s_h, lam, dist)


class _MoveBase:
    """The current schedule's orders as arrays for :func:`_move_feasible` (built once per
    descent step)."""

    def __init__(self, problem: PeriodicProblem, best: PeriodicSchedule, occ: dict) -> None:
        self.st = _static(problem)
        self.best = best
        self.lam = int(best.superperiod_ns)
        self.row = {rid: r for r, rid in enumerate(occ)}
        lens = [len(v) for v in occ.values()]
        self.r_ptr = np.zeros(len(lens) + 1, dtype=np.int64)
        self.r_ptr[1:] = np.cumsum(lens)
        flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(occ.values())),
                           dtype=np.int64, count=3 * int(self.r_ptr[-1])).reshape(-1, 3)
        self.occ_pos, self.occ_t, self.occ_k = (np.ascontiguousarray(flat[:, c]) for c in range(3))
        self.rank = np.asarray(best.start_ns, dtype=np.int64)
        self.arcs = self.st.mode_arcs(best.modes)

    def feasible(self, move: tuple[int, str, int], lam: int) -> bool:
        """Whether ``lam`` admits :func:`_apply`'s result for ``move`` (:func:`_move_feasible`)."""
        t, mode, s = move
        st, best = self.st, self.best
        old_k, new_k = st.mode_index[t][best.modes[t]], st.mode_index[t][mode]
        if mode == best.modes[t]:
            d, (e_src, e_dst, e_w, e_h) = self.arcs
        else:
            modes = list(best.modes)
            modes[t] = mode
            d, (e_src, e_dst, e_w, e_h) = st.mode_arcs(modes)
        touch = np.zeros(len(self.row), dtype=np.bool_)
        insert = np.zeros(len(self.row), dtype=np.bool_)
        if st.dur[t, old_k] > 0:
            for rid in st.res[t][old_k]:
                touch[self.row[rid]] = True
        if st.dur[t, new_k] > 0:
            for rid in st.res[t][new_k]:
                r = self.row.get(rid)
                if r is not None:  # a resource held by t alone has no order arcs
                    touch[r] = insert[r] = True
        k = -(s // self.lam)
        rank = self.rank.copy()
        rank[t] = s
        return bool(_move_feasible(len(rank), e_src, e_dst, e_w, e_h, d, self.r_ptr, self.occ_pos, self.occ_t,
                                   self.occ_k, touch, insert, t, s + k * self.lam, k, rank, int(lam)))


class _Static:
    """Arrays of one problem that every evaluation reuses (edges, recurrences, mode tables)."""

    def __init__(self, problem: PeriodicProblem) -> None:
        dag = problem.dag
        self.mode_index = [{m: k for k, m in enumerate(t.modes)} for t in dag.tasks]
        kmax = max(len(t.modes) for t in dag.tasks)
        self.dur = np.zeros((len(dag.tasks), kmax), dtype=np.int64)
        self.res: list[list[tuple[int, ...]]] = []
        for t in dag.tasks:
            self.res.append([c.resources for c in t.modes.values()])
            for k, c in enumerate(t.modes.values()):
                self.dur[t.tid, k] = c.duration_ns
        self.e_src = np.array([e.src for e in dag.edges], dtype=np.int64)
        self.e_dst = np.array([e.dst for e in dag.edges], dtype=np.int64)
        self.e_lag = np.array([e.lag_ns for e in dag.edges], dtype=np.int64)
        self.e_ct = np.array([-1 if e.if_mode is None else e.if_mode[0] for e in dag.edges], dtype=np.int64)
        self.e_cm = np.array([-1 if e.if_mode is None else self.mode_index[e.if_mode[0]].get(e.if_mode[1], -2)
                              for e in dag.edges], dtype=np.int64)
        self.r_src = np.array([r.src for r in problem.recurrences], dtype=np.int64)
        self.r_dst = np.array([r.dst for r in problem.recurrences], dtype=np.int64)
        self.r_lag = np.array([r.lag_ns for r in problem.recurrences], dtype=np.int64)
        self._mode_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._arc_cache: dict[tuple[str, ...], tuple[np.ndarray, tuple[np.ndarray, ...]]] = {}

    def mode_arcs(self, modes: Sequence[str]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """(durations by task, the arcs (src, dst, w, h) of the active edges (h = 0) and the
        recurrences (h = 1)) under ``modes``, cached per mode set."""
        key = tuple(modes)
        out = self._arc_cache.get(key)
        if out is None:
            mi = self.mode_idx(key)
            d = self.dur[np.arange(len(mi)), mi]
            active = (self.e_ct < 0) | (mi[np.maximum(self.e_ct, 0)] == self.e_cm)
            arcs = (np.concatenate([self.e_src[active], self.r_src]),
                    np.concatenate([self.e_dst[active], self.r_dst]),
                    np.concatenate([d[self.e_src[active]] + self.e_lag[active], d[self.r_src] + self.r_lag]),
                    np.concatenate([np.zeros(int(active.sum()), dtype=np.int64),
                                    np.ones(len(self.r_src), dtype=np.int64)]))
            if len(self._arc_cache) > 64:
                self._arc_cache.clear()
            out = self._arc_cache[key] = (d, arcs)
        return out

    def mode_idx(self, modes: Sequence[str]) -> np.ndarray:
        key = tuple(modes)
        out = self._mode_cache.get(key)
        if out is None:
            out = np.array([mi[m] for mi, m in zip(self.mode_index, key, strict=True)], dtype=np.int64)
            if len(self._mode_cache) > 64:
                self._mode_cache.clear()
            self._mode_cache[key] = out
        return out


_STATIC: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _static(problem: PeriodicProblem) -> _Static:
    st = _STATIC.get(problem)
    if st is None:
        st = _STATIC[problem] = _Static(problem)
    return st


def _durations(problem: PeriodicProblem, modes: Sequence[str]) -> np.ndarray:
    st = _static(problem)
    return st.dur[np.arange(st.dur.shape[0]), st.mode_idx(modes)]


def order_arcs(orders: dict[int, Order], d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The difference constraints ``s_dst + h Lambda >= s_src + w`` of fixed cyclic resource
    orders (consecutive occurrences ``(i, k_i)``, ``(j, k_j)``: ``w = d_i``, ``h = k_j - k_i``; the
    last occurrence precedes the first one's next copy, ``h + 1``), as arrays (src, dst, w, h);
    valid at every Lambda for any schedule with those orders. ``d``: durations by task."""
    seqs = list(orders.values())
    r_ptr = np.zeros(len(seqs) + 1, dtype=np.int64)
    r_ptr[1:] = np.cumsum([len(q) for q in seqs])
    q = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(seqs)), dtype=np.int64,
                    count=2 * int(r_ptr[-1])).reshape(-1, 2)
    return _orders_arcs(r_ptr, np.ascontiguousarray(q[:, 0]), np.ascontiguousarray(q[:, 1]),
                        np.asarray(d, dtype=np.int64))


def _arcs(problem: PeriodicProblem, modes: Sequence[str], orders: dict[int, Order],
          rank: np.ndarray | None) -> tuple[np.ndarray, ...]:
    st = _static(problem)
    d, (e_src, e_dst, e_w, e_h) = st.mode_arcs(modes)
    o_src, o_dst, o_w, o_h = order_arcs(orders, d)
    src, dst, w, h = (np.concatenate(p) for p in ((e_src, o_src), (e_dst, o_dst), (e_w, o_w), (e_h, o_h)))
    if rank is not None and len(src):  # relax arcs in (roughly) time order: fewer Bellman-Ford passes
        o = np.argsort(rank[src], kind="stable")
        src, dst, w, h = src[o], dst[o], w[o], h[o]
    return src, dst, w, h


def shortest_superperiod(problem: PeriodicProblem, modes: Sequence[str], orders: dict[int, Order], *,
                         upper_ns: int | None = None, rank: np.ndarray | None = None,
                         policy: str = "", meta: dict | None = None) -> PeriodicSchedule | None:
    """The shortest-superperiod periodic schedule with these modes and cyclic resource orders
    (None when no Lambda up to 64x the load admits them). ``orders`` must list, for every
    capacity-1 resource, each task that holds it (non-zero duration) exactly once."""
    dag = problem.dag
    n = len(dag.tasks)
    src, dst, w, h = _arcs(problem, modes, orders, rank)
    loads = resource_loads_ns(dag, modes)
    lo = max(int(loads.max(initial=0)), 1) - 1           # every Lambda <= lo is infeasible
    dist = np.zeros(n, dtype=np.int64)
    hi = max(int(upper_ns) if upper_ns else 2 * (lo + 1), lo + 1)
    while not _longest_paths(n, src, dst, w, h, hi, dist):
        lo = hi
        hi *= 2
        if hi > 64 * (int(loads.max(initial=0)) + int(w.sum()) + 1):
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _longest_paths(n, src, dst, w, h, mid, dist):
            hi = mid
        else:
            lo = mid
    _longest_paths(n, src, dst, w, h, hi, dist)
    start = dist - dist.min()
    d = _durations(problem, modes)
    ps = PeriodicSchedule(tuple(modes), start.astype(np.int64), (start + d).astype(np.int64), int(hi),
                          problem.window_layers, policy, dict(meta or {}, method="cycle-ratio"))
    rep = check_periodic(ps, problem)
    if not rep.ok:
        raise RuntimeError(f"cycle-ratio schedule failed check_periodic (a bug): {rep.violations[:3]}")
    return ps


def orders_from_periodic(problem: PeriodicProblem, ps: PeriodicSchedule) -> dict[int, Order]:
    """The cyclic order of every capacity-1 resource in a periodic schedule (copy k of task i at
    ``s_i + k Lambda``; each resource's copies inside [0, Lambda) sorted by start)."""
    return _occupancy(problem, ps, positions=False)


def _occupancy(problem: PeriodicProblem, ps: PeriodicSchedule, positions: bool = True) -> dict[int, list]:
    """Per resource the sorted (position in [0, Lambda), task, copy) of :func:`orders_from_periodic`
    (resources in order of first appearance in task order; (task, copy) without ``positions``)."""
    lam = int(ps.superperiod_ns)
    start = np.asarray(ps.start_ns, dtype=np.int64)
    k = -(start // lam)
    pos = start + k * lam
    tid, rid, dur = problem.dag.chosen_resources(ps.modes)
    held = dur > 0
    tid, rid = tid[held], rid[held]
    order = np.lexsort((k[tid], tid, pos[tid], rid))
    tid, rid = tid[order], rid[order]
    cut = np.flatnonzero(np.diff(rid)) + 1
    lo, hi = np.concatenate([[0], cut]).tolist(), np.concatenate([cut, [len(rid)]]).tolist()
    _, first = np.unique(rid[np.argsort(order, kind="stable")], return_index=True)
    cols = [tid.tolist(), k[tid].tolist()]
    if positions:
        cols.insert(0, pos[tid].tolist())
    r_l = rid.tolist()
    return {r_l[lo[g]]: list(zip(*(c[lo[g]:hi[g]] for c in cols), strict=True))
            for g in np.argsort(first, kind="stable").tolist()}


def _moved_orders(problem: PeriodicProblem, occ: dict[int, list[tuple[int, int, int]]], orders: dict[int, Order],
                  modes: Sequence[str], lam: int, t: int, mode: str, s: int) -> dict[int, Order]:
    """``orders`` after task t moves to start s in ``mode`` (only its resources' lists change):
    the same as :func:`orders_from_periodic` of the moved schedule."""
    st = _static(problem)
    out = dict(orders)
    old_k, new_k = st.mode_index[t][modes[t]], st.mode_index[t][mode]
    changed: dict[int, list[tuple[int, int, int]]] = {}
    if st.dur[t, old_k] > 0:
        for rid in st.res[t][old_k]:
            changed[rid] = [x for x in occ[rid] if x[1] != t]
    if st.dur[t, new_k] > 0:
        k = -(s // lam)
        for rid in st.res[t][new_k]:
            lst = changed.get(rid)
            if lst is None:
                lst = changed[rid] = [x for x in occ.get(rid, []) if x[1] != t]
            bisect.insort(lst, (s + k * lam, t, k))
    for rid, lst in changed.items():
        out[rid] = [(i, kk) for _, i, kk in lst]
    return out


def compact(problem: PeriodicProblem, ps: PeriodicSchedule) -> PeriodicSchedule:
    """``ps`` with its own modes and resource orders at their shortest superperiod (never longer)."""
    if any(r.capacity != 1 for r in problem.dag.resources):
        return ps
    rank = np.asarray(ps.start_ns, dtype=np.int64)
    out = shortest_superperiod(problem, ps.modes, orders_from_periodic(problem, ps),
                               upper_ns=int(ps.superperiod_ns), rank=rank, policy=ps.policy,
                               meta=dict(ps.meta, compacted_from_ns=int(ps.superperiod_ns)))
    return ps if out is None or out.superperiod_ns >= ps.superperiod_ns else out


def _feasible_at(problem: PeriodicProblem, modes: Sequence[str], orders: dict[int, Order], lam: int,
                 rank: np.ndarray) -> bool:
    """Whether ``lam`` admits these modes and orders (the reference of :meth:`_MoveBase.feasible`)."""
    src, dst, w, h = _arcs(problem, modes, orders, rank)
    dist = np.zeros(len(problem.dag.tasks), dtype=np.int64)
    return bool(_longest_paths(len(problem.dag.tasks), src, dst, w, h, int(lam), dist))


def _critical_tasks(problem: PeriodicProblem, ps: PeriodicSchedule) -> list[int]:
    """Tasks on a cycle that makes ``Lambda - 1`` infeasible in ``ps``'s own orders (in cycle
    order; empty when none is found): the moves that can shorten the superperiod must break it."""
    orders = orders_from_periodic(problem, ps)
    src, dst, w, h = _arcs(problem, ps.modes, orders, np.asarray(ps.start_ns, dtype=np.int64))
    n = len(problem.dag.tasks)
    parent = np.full(n, -1, dtype=np.int64)
    if _longest_paths_parent(n, src, dst, w, h, int(ps.superperiod_ns) - 1, np.zeros(n, dtype=np.int64), parent):
        return []
    seen: dict[int, int] = {}
    for i in range(n):  # walk parents until a node repeats: it lies on the cycle
        v, path = i, []
        while v >= 0 and v not in seen:
            seen[v] = i
            path.append(v)
            v = int(parent[v])
        if v >= 0 and seen[v] == i:
            return path[path.index(v):][::-1]
    return []


def _tight_pairs(problem: PeriodicProblem, ps: PeriodicSchedule) -> list[tuple[int, int]]:
    """(i, j): j follows i on some resource with no slack (j starts as i ends, modulo Lambda)."""
    lam = int(ps.superperiod_ns)
    out = []
    for seq in orders_from_periodic(problem, ps).values():
        m = len(seq)
        for a in range(m):
            (i, ki), (j, kj) = seq[a], seq[(a + 1) % m]
            kj += 1 if a == m - 1 else 0
            if int(ps.start_ns[j]) + kj * lam == int(ps.end_ns[i]) + ki * lam:
                out.append((i, j))
    return out


def local_search(problem: PeriodicProblem, ps: PeriodicSchedule, *, max_evaluations: int = 300,
                 deadline: float | None = None, seed: int = 0) -> PeriodicSchedule:
    """Iterated descent over (a) moving a task just before its tight predecessor on a resource
    (or just after its tight successor) and (b) switching the mode of a task, each judged by the
    shortest superperiod of the resulting orders (cyclic orders read from the moved start
    times). Moves on the cycle that binds at ``Lambda - 1`` (:func:`_critical_tasks`) are tried
    first. At a local optimum a *kick* (a few random moves on the binding cycle, taken whatever
    they cost, seeded) restarts the descent; the best schedule seen is returned.
    Deterministic with ``deadline=None``: a fixed budget of ``max_evaluations`` feasibility
    tests; ``deadline`` (a ``time.perf_counter()`` value) also stops it, for callers that share
    a wall-clock budget (never longer than its input either way)."""
    if any(r.capacity != 1 for r in problem.dag.resources):
        return ps
    rng = np.random.default_rng(seed)
    state = {"evals": 0, "timed_out": False}
    best = cur = _descend(problem, compact(problem, ps), max_evaluations, deadline, state)
    kicks = failed = 0
    while state["evals"] < max_evaluations and not state["timed_out"] and failed < 8:
        if deadline is not None and time.perf_counter() >= deadline:
            state["timed_out"] = True
            break
        kicked = _kick(problem, cur, rng, state)
        if kicked is None:
            failed += 1
            continue
        failed = 0
        kicks += 1
        cur = _descend(problem, kicked, max_evaluations, deadline, state)
        if cur.superperiod_ns < best.superperiod_ns:
            best = cur
        elif cur.superperiod_ns > best.superperiod_ns:
            cur = best
    return PeriodicSchedule(best.modes, best.start_ns, best.end_ns, best.superperiod_ns, best.window_layers,
                            best.policy, dict(best.meta, local_search_evaluations=state["evals"],
                                              local_search_kicks=kicks, local_search_timed_out=state["timed_out"]))


def _candidates(problem: PeriodicProblem, best: PeriodicSchedule) -> list[tuple[int, str, int]]:
    """Moves (task, mode, new start): mode switches of tasks on the binding cycle, then order
    swaps of tight pairs (pairs on the cycle first) and mode switches of their tasks."""
    dag = problem.dag
    cands: list[tuple[int, str, int]] = []
    seen: set = set()
    crit = _critical_tasks(problem, best)
    on_cycle = set(crit)
    nxt = {a: b for a, b in zip(crit, crit[1:] + crit[:1], strict=True)}
    pairs = _tight_pairs(problem, best)
    pairs.sort(key=lambda p: (nxt.get(p[0]) != p[1], p[0] not in on_cycle and p[1] not in on_cycle))
    for t in crit:
        for mode in dag.tasks[t].modes:
            if mode != best.modes[t]:
                seen.add((t, mode))
                cands.append((t, mode, int(best.start_ns[t])))
    for i, j in pairs:
        for t, mode, s in ((j, best.modes[j], int(best.start_ns[i]) - 1),
                           (i, best.modes[i], int(best.start_ns[j]) + 1)):
            if (t, mode, s) not in seen:
                seen.add((t, mode, s))
                cands.append((t, mode, s))
        for t in (i, j):
            for mode in dag.tasks[t].modes:
                if mode != best.modes[t] and (t, mode) not in seen:
                    seen.add((t, mode))
                    cands.append((t, mode, int(best.start_ns[t])))
    return cands


def _apply(problem: PeriodicProblem, best: PeriodicSchedule, occ: dict, base: dict[int, Order],
           move: tuple[int, str, int]) -> tuple[list[str], np.ndarray, dict[int, Order]]:
    t, mode, s = move
    lam = int(best.superperiod_ns)
    orders = _moved_orders(problem, occ, base, best.modes, lam, t, mode, s)
    modes = list(best.modes)
    modes[t] = mode
    start = best.start_ns.copy()
    start[t] = s
    return modes, start, orders


def _descend(problem: PeriodicProblem, best: PeriodicSchedule, max_evaluations: int, deadline: float | None,
             state: dict) -> PeriodicSchedule:
    """First-improvement descent (see :func:`local_search`); ``state`` counts evaluations."""
    improved = True
    while improved:
        improved = False
        lam = int(best.superperiod_ns)
        occ = _occupancy(problem, best)
        base = {rid: [(i, kk) for _, i, kk in v] for rid, v in occ.items()}
        moves = _MoveBase(problem, best, occ)
        for move in _candidates(problem, best):
            if state["evals"] >= max_evaluations or (deadline is not None and time.perf_counter() >= deadline):
                state["timed_out"] = state["evals"] < max_evaluations
                return best
            state["evals"] += 1
            if not moves.feasible(move, lam - 1):
                continue
            modes, start, orders = _apply(problem, best, occ, base, move)
            new = shortest_superperiod(problem, modes, orders, upper_ns=lam - 1, rank=start, policy=best.policy,
                                       meta=dict(best.meta, local_search=True))
            if new is not None and new.superperiod_ns < lam:
                best = new
                improved = True
                break
    return best


#: Random moves of one kick of :func:`local_search`, and how much longer it may make Lambda.
KICK_MOVES = 3
KICK_SLACK = 0.03


def _kick(problem: PeriodicProblem, cur: PeriodicSchedule, rng: np.random.Generator,
          state: dict) -> PeriodicSchedule | None:
    """``cur`` after up to :data:`KICK_MOVES` random candidate moves (each kept when the result
    exists within ``(1 + KICK_SLACK) Lambda``), at its shortest superperiod."""
    out = cur
    for _ in range(KICK_MOVES):
        cands = _candidates(problem, out)[:40]
        if not cands:
            break
        move = cands[int(rng.integers(len(cands)))]
        occ = _occupancy(problem, out)
        base = {rid: [(i, kk) for _, i, kk in v] for rid, v in occ.items()}
        modes, start, orders = _apply(problem, out, occ, base, move)
        state["evals"] += 1
        new = shortest_superperiod(problem, modes, orders, rank=start, policy=out.policy,
                                   upper_ns=int(out.superperiod_ns * (1 + KICK_SLACK)) + 1,
                                   meta=dict(out.meta, local_search=True))
        if new is not None and new.superperiod_ns <= cur.superperiod_ns * (1 + KICK_SLACK):
            out = new
    return None if out is cur else out


def slot_start_ns(problem: PeriodicProblem, modes: Sequence[str]) -> np.ndarray:
    """Every task's start in its own (layer, micro-batch) slot list-scheduled alone on the machine
    (resource-aware: a GPU's or a PIM's experts run one after another)."""
    from sieveopt.dag import DagOptions, build_layer_dag
    from sieveopt.listsched import list_schedule

    dag = problem.dag
    out = np.zeros(len(dag.tasks), dtype=np.int64)
    for li, row in enumerate(problem.window):
        for m, inst in enumerate(row):
            opts = DagOptions(**{**problem.options.__dict__, "layer": li, "microbatch": m})
            ldag = build_layer_dag(inst, problem.cost, opts)
            ids = [dag.by_name[t.name] for t in ldag.tasks]
            sched = list_schedule(ldag, tuple(modes[i] for i in ids))
            out[ids] = sched.start_ns
    return out


#: Slot spacings tried by :func:`phase_order_schedule`, as fractions of busiest load / (L M).
PHASE_FRACTIONS = (0.95, 1.0, 1.05)
#: Timelines tried: ``solo`` (slot j's tasks at ``j P`` + their solo times) and ``stretched``
#: (slot j's pre-expert tasks spread over [j P, (j+1) P), its experts and what follows them over
#: [(j+1) P, (j+2) P): a micro-batch's dense chain fills one phase, its experts the next).
PHASE_STYLES = ("solo", "stretched")


def _phase_keys(problem: PeriodicProblem, modes: tuple[str, ...], d: np.ndarray, within: np.ndarray,
                P: float, style: str) -> np.ndarray:
    dag = problem.dag
    M = problem.microbatches
    key = np.zeros(len(dag.tasks), dtype=np.int64)
    slots: dict[tuple[int, int], list[int]] = {}
    for t in dag.tasks:
        slots.setdefault((t.layer, t.microbatch), []).append(t.tid)
    for (li, m), ids in slots.items():
        j = li * M + m
        if style == "solo":
            for i in ids:
                key[i] = int(j * P) + int(within[i])
            continue
        experts = [int(within[i]) for i in ids if dag.tasks[i].kind == "expert"]
        t_e = min(experts) if experts else max(int(within[i]) for i in ids)
        t_end = max(int(within[i] + d[i]) for i in ids)
        for i in ids:
            w = int(within[i])
            key[i] = int(j * P + w * P / max(t_e, 1)) if w < t_e else \
                int((j + 1) * P + (w - t_e) * P / max(t_end - t_e, 1))
    # Precedence-consistent: a successor never keys before its predecessor ends (so no resource
    # order contradicts an edge of the iteration).
    e_src, e_dst, e_lag, _, _ = dag.edge_arrays
    on = dag.active_edge_mask(modes)
    dag_longest(len(dag.tasks), e_src[on], e_dst[on], d[e_src[on]] + e_lag[on], key)
    return key


def phase_order_schedule(problem: PeriodicProblem, modes: Sequence[str], *,
                         fractions: Sequence[float] = PHASE_FRACTIONS, styles: Sequence[str] = PHASE_STYLES,
                         policy: str = "phase-order") -> PeriodicSchedule | None:
    """Staggered-slot orders at their shortest superperiod (best over ``fractions`` x ``styles``).

    Slot j = l M + m (layer l, micro-batch m) is released at ``j P`` with ``P = f * busiest load
    / (L M)`` (:data:`PHASE_STYLES` say where its tasks go). With M = 2 the micro-batches
    alternate: one runs its dense chain (QKV, O-proj, router, shared) on the GPUs while the
    other's experts run, and vice versa. Only the resource orders of that timeline are kept
    (tasks may overlap in it); :func:`shortest_superperiod` times them exactly."""
    if any(r.capacity != 1 for r in problem.dag.resources):
        return None
    dag = problem.dag
    L, M = problem.window_layers, problem.microbatches
    modes = tuple(modes)
    d = _durations(problem, modes)
    busiest = int(resource_loads_ns(dag, modes).max(initial=0))
    within = slot_start_ns(problem, modes)
    best: PeriodicSchedule | None = None
    for style in styles:
        for f in fractions:
            P = f * busiest / (L * M)
            key = _phase_keys(problem, modes, d, within, P, style)
            timeline = PeriodicSchedule(modes, key, key + d, max(1, int(L * M * P)), L, policy)
            ps = shortest_superperiod(problem, modes, orders_from_periodic(problem, timeline), rank=key,
                                      policy=policy, meta={"method": "phase-order", "phase_style": style,
                                                           "slot_spacing_fraction": f})
            if ps is not None and (best is None or ps.superperiod_ns < best.superperiod_ns):
                best = ps
    return best




# --------------------------------------------------------------------------------------------
# Phase-balanced staggered schedules (round 4).

_DENSE = frozenset({"qkv", "attn", "prefill_attn", "oproj", "router", "sched", "launch", "allgather", "dispatch"})
_EXPERT = frozenset({"expert", "shared", "combine"})


#: Phase offset between consecutive micro-batches' dense chains of one layer (``offset`` of
#: :func:`task_phases`), the default: 1 = alternating (one micro-batch's dense chain beside the
#: other's experts). ``offset`` = M (one layer) is the synchronized structure, measured and not
#: used (design note, "Round 8": its dense phases leave the PIMs idle).
ALTERNATING = 1


def unrolled_phases(problem: PeriodicProblem, offset: int = ALTERNATING) -> np.ndarray:
    """Every task's *unrolled* phase u in the staggered structure: micro-batch m's dense chain of
    layer l in u = l M + m ``offset``, its experts, shared expert and combines in u + 1, its reduce
    in u + 2; the phase is u mod L M, the copy of the window it runs in u // (L M). A micro-batch
    advances M phases per layer whatever the offset, so every edge and every recurrence (layer
    L - 1 to layer 0 of the next copy) goes forward in u."""
    if offset < 0:
        raise ValueError(f"offset={offset}: the phase offset between micro-batches must be >= 0")
    M = problem.microbatches
    out = np.empty(len(problem.dag.tasks), dtype=np.int64)
    for t in problem.dag.tasks:
        k = str(t.kind)
        out[t.tid] = t.layer * M + t.microbatch * offset + (0 if k in _DENSE else 1 if k in _EXPERT else 2)
    return out


def task_phases(problem: PeriodicProblem, offset: int = ALTERNATING) -> np.ndarray:
    """Phase of every task in the staggered (phase) structure: slot j = l M + m runs its dense
    chain (QKV .. launch, AllGather, dispatch) in phase j, its experts, shared expert and
    combines in phase j + 1, its reduce in phase j + 2 (mod L M): with M = 2 one micro-batch's
    expert phase overlaps the other's dense chain, and a micro-batch's reduce opens its next
    dense phase. ``offset`` (:func:`unrolled_phases`) moves micro-batch m by m ``offset``
    phases instead of m: with M = 2, ``offset`` = 2 is the *synchronized* structure (both
    micro-batches' dense chains in one phase, one layer apart, both their experts in the next)."""
    return unrolled_phases(problem, offset) % (problem.window_layers * problem.microbatches)


def phase_balanced_modes(problem: PeriodicProblem, *, time_limit_s: float = 5.0, workers: int = 2, seed: int = 0,
                         hint_modes: Sequence[Sequence[str]] = (), deterministic: bool = False,
                         offset: int = ALTERNATING) -> tuple[tuple[str, ...], np.ndarray] | None:
    """Modes minimising the sum of phase lengths of the staggered structure (a small CP-SAT model).

    Phase p (:func:`task_phases`) lasts at least every resource's work in it (per GPU, GPU and
    PIM: the dense chain of slot p, the experts of slot p - 1, the reduce of slot p - 2) and the
    chain of its dense micro-batch (reduce -> QKV -> attention -> ... -> launch, lags included).
    Summed over phases this is a per-*phase* balance, not Sieve's per-layer one: one slot's
    expert split must match the other micro-batch's dense chain on every GPU at once (with G
    GPUs each slot synchronises all of them, so a phase lasts as long as its busiest GPU). The
    value is not a bound (the orders may do better); it picks the modes of
    :func:`staggered_schedule`. Returns (modes, phase lengths ns) or None when nothing was
    found; ``hint_modes`` seed the search (the best one by this objective is kept as a floor).
    ``offset``: the phase structure (:func:`task_phases`; with the synchronized one a phase holds
    two dense chains, each bounds it)."""
    from ortools.sat.python import cp_model

    from sieveopt.solvers._interval_model import chosen_modes, make_solver, mode_literals
    from sieveopt.solvers.cpsat_run import solve_by

    dag = problem.dag
    ph = task_phases(problem, offset)
    S = problem.window_layers * problem.microbatches
    model = cp_model.CpModel()
    lit = mode_literals(model, dag)
    dur = [sum(c.duration_ns * lit[t.tid][m] for m, c in t.modes.items()) for t in dag.tasks]
    hi = int(sum(max(c.duration_ns for c in t.modes.values()) for t in dag.tasks) +
             sum(e.lag_ns for e in dag.edges) + 1)
    P = [model.new_int_var(0, hi, f"P{p}") for p in range(S)]
    terms: dict[tuple[int, int], list] = {}
    for t in dag.tasks:
        for m, c in t.modes.items():
            if c.duration_ns:
                for rid in c.resources:
                    terms.setdefault((int(ph[t.tid]), rid), []).append(c.duration_ns * lit[t.tid][m])
    for (p, _), ts in terms.items():
        model.add(P[p] >= sum(ts))
    # The dense micro-batch's chain inside its phase (starts relative to the phase start).
    chain = {t.tid: model.new_int_var(0, hi, f"s{t.tid}") for t in dag.tasks
             if str(t.kind) in _DENSE or str(t.kind) == "reduce"}
    for i, s in chain.items():
        model.add(P[int(ph[i])] >= s + dur[i])
    for e in dag.edges:
        if e.src in chain and e.dst in chain and ph[e.src] == ph[e.dst]:
            c = model.add(chain[e.dst] >= chain[e.src] + dur[e.src] + e.lag_ns)
            if e.if_mode is not None:
                lv = lit[e.if_mode[0]].get(e.if_mode[1])
                if lv is None:
                    continue
                if not isinstance(lv, int):
                    c.only_enforce_if(lv)
    model.minimize(sum(P))
    if hint_modes:
        best = min(hint_modes, key=lambda md: _phase_value(problem, md, ph))
        for t in dag.tasks:
            for m, lv in lit[t.tid].items():
                if not isinstance(lv, int):
                    model.add_hint(lv, best[t.tid] == m)
    solver = make_solver(workers=workers, seed=seed, time_limit_s=time_limit_s, deterministic=deterministic)
    st = solve_by(solver, model)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    modes = chosen_modes(solver, lit)
    return modes, np.array([solver.value(x) for x in P], dtype=np.int64)


def _phase_value(problem: PeriodicProblem, modes: Sequence[str], ph: np.ndarray) -> int:
    """Sum over phases of the busiest resource's work in the phase (the phase model without the
    chain term: a cheap ranking of candidate mode sets)."""
    dag = problem.dag
    S = problem.window_layers * problem.microbatches
    loads = np.zeros((S, len(dag.resources)), dtype=np.int64)
    for t in dag.tasks:
        c = t.modes[modes[t.tid]]
        for rid in c.resources:
            loads[ph[t.tid], rid] += c.duration_ns
    return int(loads.max(axis=1).sum())


#: Where the expert slot's GPU work (shared expert, GPU experts) goes among the dense
#: micro-batch's GPU tasks of a phase (:func:`staggered_schedule`): ``mid`` while the dense
#: micro-batch's attention runs on PIM, ``fill`` as much as the attention hides then after the
#: launch, ``gap`` as much as the attention hides, then as much as the launch's wait for the
#: dispatches (the link lag) hides, the rest mid; ``front`` before its reduce, ``end`` after its
#: launch.
STAGGER_PLACEMENTS = ("mid", "fill", "gap", "front", "end")
#: Fractions of the time until the dense micro-batch's attention is ready that the expert
#: micro-batch's PIM experts may fill before it (less: the attention, on the chain, waits less).
STAGGER_FILLS = (1.0, 0.5)


@dataclass(frozen=True)
class _StaggerGroups:
    """What :func:`_staggered_keys` reads for one mode set, whatever the variant: every task's
    unrolled phase ``u``, the GPU / PIM work of each (phase, GPU) sorted as the construction
    takes it, with the launch's wait for the dispatches, and the arcs of the per-phase
    simulation that do not depend on the variant (edges inside an unrolled phase, recurrences
    from the previous copy)."""

    u: np.ndarray
    # (phase, pre, post, xg, xp, apim, launch wait; None when the last of post is no launch)
    groups: list[tuple[int, list[int], list[int], list[int], list[int], list[int], int | None]]
    arc_src: np.ndarray
    arc_dst: np.ndarray
    arc_w: np.ndarray

    @staticmethod
    def of(problem: PeriodicProblem, modes: tuple[str, ...], d: np.ndarray,
           offset: int = ALTERNATING) -> _StaggerGroups:
        dag = problem.dag
        S = problem.window_layers * problem.microbatches
        n = len(dag.tasks)
        u = unrolled_phases(problem, offset)
        ph = u % S
        pos = np.empty(n, dtype=np.int64)
        pos[list(dag.topo_order)] = np.arange(n)
        remote_in = np.array([any(str(dag.tasks[e.src].kind) == "dispatch" for e in dag.preds[i])
                              for i in range(n)])
        # the GPU / PIM work of each (phase, GPU)
        raw: dict[tuple[int, int], dict[str, list[int]]] = {}
        for t in dag.tasks:
            c = t.modes[modes[t.tid]]
            k = str(t.kind)
            if c.duration_ns <= 0 or not c.resources or k in ("allgather", "dispatch", "combine"):
                continue
            on_pim = modes[t.tid] == "pim"
            g = raw.setdefault((int(ph[t.tid]), t.gpu), {"pre": [], "post": [], "xg": [], "xp": [], "apim": []})
            if k in ("reduce", "qkv") or (k in ("attn", "prefill_attn") and not on_pim):
                g["pre"].append(t.tid)
            elif k in ("attn", "prefill_attn"):
                g["apim"].append(t.tid)
            elif k in ("expert", "shared"):
                g["xp" if on_pim else "xg"].append(t.tid)
            else:  # oproj, router, launch
                g["post"].append(t.tid)
        groups = []
        for (phase, _), grp in raw.items():
            post = sorted(grp["post"], key=lambda i: pos[i])
            wait = None if not post or str(dag.tasks[post[-1]].kind) != "launch" else \
                max((e.lag_ns for e in dag.preds[post[-1]]), default=0)
            groups.append((phase, sorted(grp["pre"], key=lambda i: (str(dag.tasks[i].kind) != "reduce", pos[i])),
                           post,
                           sorted(grp["xg"], key=lambda i: (bool(remote_in[i]), -int(d[i]), i)),
                           sorted(grp["xp"], key=lambda i: (bool(remote_in[i]), -int(d[i]), i)),
                           sorted(grp["apim"], key=lambda i: pos[i]), wait))
        e_src, e_dst, e_lag, _, _ = dag.edge_arrays
        on = dag.active_edge_mask(modes) & (u[e_src] == u[e_dst])
        rec = [r for r in problem.recurrences if u[r.src] == u[r.dst] + S]
        r_src = np.array([r.src for r in rec], dtype=np.int64)
        return _StaggerGroups(u, groups, np.concatenate([e_src[on], r_src]),
                              np.concatenate([e_dst[on], np.array([r.dst for r in rec], dtype=np.int64)]),
                              np.concatenate([d[e_src[on]] + e_lag[on],
                                              d[r_src] + np.array([r.lag_ns for r in rec], dtype=np.int64)]))


def _staggered_keys(problem: PeriodicProblem, d: np.ndarray, variant: Sequence[tuple[str, float]],
                    prep: _StaggerGroups) -> tuple[np.ndarray, np.ndarray]:
    """Start keys and phase lengths of an explicit staggered timeline (see
    :func:`staggered_schedule`; ``variant[p]`` = (placement, PIM fill fraction) of phase p;
    ``prep``: :class:`_StaggerGroups` of the modes).

    Each phase is simulated on its own: its tasks start at the phase start, after their
    predecessors *inside the phase* (lags included, so a launch waits for every GPU's router)
    and after the task before them in their GPU's or PIM's sequence; the phase lasts until its
    last task ends. A task of unrolled phase u >= S (a slot's experts or reduce past the last
    slot) runs in phase u - S of the next copy: its key is shifted by the timeline's length."""
    S = problem.window_layers * problem.microbatches
    n = len(problem.dag.tasks)
    u = prep.u
    ph = u % S
    dl = d.tolist()
    seq_arcs: list[tuple[int, int]] = []
    for phase, pre, post, xg, xp, apim, launch_wait in prep.groups:
        placement, fill = variant[phase]
        hidden = sum(dl[i] for i in apim)
        if placement == "mid":
            seq = pre + xg + post
        elif placement == "front":
            seq = xg + pre + post
        elif placement == "end":
            seq = pre + post + xg
        else:  # fill / gap: what the attention hides, then (gap) what the wait for the dispatch
            a, b = [], []  # before the launch hides, the rest after the launch (fill) or mid (gap)
            for i in xg:
                (a if dl[i] <= hidden else b).append(i)
                hidden -= dl[i] if dl[i] <= hidden else 0
            if placement == "fill" or launch_wait is None:
                seq = pre + a + post + b
            else:
                wait, c, rest = launch_wait, [], []
                for i in b:
                    (c if dl[i] <= wait else rest).append(i)
                    wait -= dl[i] if dl[i] <= wait else 0
                seq = pre + a + rest + post[:-1] + c + post[-1:]
        ready = sum(dl[i] for i in seq[:seq.index(pre[-1]) + 1]) if pre else 0
        part1, part2, used = [], [], 0
        for i in xp:  # PIM: experts until the attention is ready, the attention, the rest
            if apim and used + dl[i] <= fill * ready:
                part1.append(i)
                used += dl[i]
            else:
                part2.append(i)
        for sq in (seq, part1 + apim + part2):
            seq_arcs += list(zip(sq, sq[1:], strict=False))
    # per-phase simulation: the sequences' arcs and the variant-free ones (edges inside an
    # unrolled phase; recurrences from a task of the previous copy), longest paths from 0
    sa = np.array(seq_arcs, dtype=np.int64).reshape(-1, 2)
    local = np.zeros(n, dtype=np.int64)
    done = dag_longest(n, np.concatenate([sa[:, 0], prep.arc_src]), np.concatenate([sa[:, 1], prep.arc_dst]),
                        np.concatenate([d[sa[:, 0]], prep.arc_w]), local)
    if done != n:
        raise RuntimeError("staggered phase sequences contradict a precedence (a bug)")
    length = np.ones(S, dtype=np.int64)
    np.maximum.at(length, ph, local + d)
    T = np.concatenate([[0], np.cumsum(length)])
    return T[ph] + local + int(T[-1]) * (u // S), length


def staggered_schedule(problem: PeriodicProblem, modes: Sequence[str], *,
                       placements: Sequence[str] = STAGGER_PLACEMENTS, fills: Sequence[float] = STAGGER_FILLS,
                       exact_uniform: int = 2, policy: str = "staggered",
                       offset: int = ALTERNATING) -> PeriodicSchedule | None:
    """The explicit staggered (phase) construction for these modes at its shortest superperiod.

    Phase p (:func:`task_phases`): on every GPU the dense micro-batch's reduce and QKV, then
    (``placement``, :data:`STAGGER_PLACEMENTS`) the other micro-batch's GPU experts and shared
    expert, then the dense micro-batch's O-proj, router and launch; on every PIM the expert
    micro-batch's PIM experts, the subset that fits before the dense micro-batch's attention is
    ready (times a fill fraction, :data:`STAGGER_FILLS`) first, then the attention, then the
    rest. With the four phases of one GPU and the per-phase balanced split both resources are
    busy all the time (the design note's construction). Each phase is simulated on its own
    (:func:`_staggered_keys`) under every (placement, fill) pair; the combination of each
    phase's shortest pair and the ``exact_uniform`` best uniform choices are timed exactly (the
    shortest superperiod of their cyclic orders; only the orders are kept from the simulation).
    ``offset`` (:func:`task_phases`): with the synchronized structure a dense phase holds two
    micro-batches' chains (on each GPU both reduces and QKVs, then both O-proj / router /
    launch; on each PIM both attentions: the chains pipeline) and an expert phase both
    micro-batches' experts. None for M < 2 or resources of capacity > 1."""
    if problem.microbatches < 2 or any(r.capacity != 1 for r in problem.dag.resources):
        return None
    modes = tuple(modes)
    d = _durations(problem, modes)
    S = problem.window_layers * problem.microbatches
    # every uniform variant simulated; the best variant of each phase combined; the combination
    # and the best uniform ones timed exactly
    uniform = [(pl, f) for pl in placements for f in fills]
    prep = _StaggerGroups.of(problem, modes, d, offset)
    sims = {v: _staggered_keys(problem, d, [v] * S, prep) for v in uniform}
    lengths = np.array([sims[v][1] for v in uniform])
    mixed = tuple(uniform[int(k)] for k in lengths.argmin(axis=0))
    trials = [(mixed, *_staggered_keys(problem, d, mixed, prep))]
    for k in np.argsort(lengths.sum(axis=1), kind="stable")[:exact_uniform]:
        if uniform[int(k)] * S != mixed:
            trials.append(((uniform[int(k)],) * S, *sims[uniform[int(k)]]))
    best: PeriodicSchedule | None = None
    for variant, key, length in trials:
        lam = int(length.sum())
        timeline = PeriodicSchedule(modes, key, key + d, lam, problem.window_layers, policy)
        ps = shortest_superperiod(problem, modes, orders_from_periodic(problem, timeline), rank=key, policy=policy,
                                  upper_ns=lam, meta={"method": "staggered", "variant": [list(v) for v in variant],
                                                     **({} if offset == ALTERNATING else {"phase_offset": offset})})
        if ps is not None and (best is None or ps.superperiod_ns < best.superperiod_ns):
            best = ps
    return best


#: Share of :func:`search_incumbent`'s wall-clock budget for the constructions (the descent
#: gets the rest).
CONSTRUCTION_SHARE = 0.4


def search_incumbent(problem: PeriodicProblem, cands: Sequence[PeriodicSchedule], *, deadline: float | None = None,
                     max_evaluations: int = 1500, phase_model_s: float = 5.0, workers: int = 2, seed: int = 0,
                     extra_modes: Sequence[tuple[Sequence[str], str]] = (),
                     ) -> tuple[PeriodicSchedule, dict]:
    """The best periodic schedule from ``cands`` (e.g. the heuristics' modulo list schedules) and
    the constructions of this module, then the descent; never longer than the best of ``cands``.

    Constructions, in order: the staggered construction of the phase-balanced modes
    (:func:`phase_balanced_modes`, ``phase_model_s`` of CP-SAT), then the staggered
    construction and the staggered-slot orders (:func:`phase_order_schedule`) of every distinct
    mode set among ``cands`` (best first), then of the ``extra_modes`` ((modes, label) pairs with
    no schedule, e.g. the load optimum's); then :func:`local_search` from the best
    (``max_evaluations``, and the deadline) raced from the :data:`RACE_STARTS` best distinct
    schedules (:func:`_race`). With a ``deadline`` the constructions stop after
    :data:`CONSTRUCTION_SHARE` of the time (the phase model and the first construction always
    run) and the descent gets the rest. Returns (schedule, info: the value of each step)."""
    t0 = time.perf_counter()
    if not cands:
        raise ValueError("search_incumbent needs at least one candidate schedule")
    build_end = None if deadline is None else t0 + CONSTRUCTION_SHARE * max(0.0, deadline - t0)

    def late() -> bool:
        return build_end is not None and time.perf_counter() >= build_end

    pool = sorted(cands, key=lambda c: c.superperiod_ns)
    info: dict = {"candidates_ns": int(pool[0].superperiod_ns)}
    mode_sets: list[tuple[tuple[str, ...], str]] = []
    phase = None
    if problem.microbatches >= 2:
        limit = phase_model_s if build_end is None else max(0.5, min(phase_model_s, build_end - time.perf_counter()))
        phase = phase_balanced_modes(problem, time_limit_s=limit, workers=workers, seed=seed,
                                     hint_modes=[c.modes for c in pool], deterministic=deadline is None)
    if phase is not None:
        mode_sets.append((phase[0], "phase-balanced"))
        info["phase_model_ns"] = int(phase[1].sum())
    seen: set[tuple[str, ...]] = set()
    for c in pool:
        if c.modes not in seen:
            seen.add(c.modes)
            mode_sets.append((c.modes, c.policy))
    for modes, label in extra_modes:
        if tuple(modes) not in seen:
            seen.add(tuple(modes))
            mode_sets.append((tuple(modes), label))
    built: list[PeriodicSchedule] = []
    for k, (modes, policy) in enumerate(mode_sets):
        if k > 0 and late():
            break
        st = staggered_schedule(problem, modes, policy=policy)
        if st is not None:
            built.append(st)
        if policy != "phase-balanced" and not late():
            po = phase_order_schedule(problem, modes, policy=policy)
            if po is not None:
                built.append(po)
    if built:
        info["constructed_ns"] = int(min(b.superperiod_ns for b in built))
    starts: list[PeriodicSchedule] = []
    for c in sorted(list(pool) + built, key=lambda s: (s.superperiod_ns, s.latency_ns(problem.dag))):
        if not any(c.superperiod_ns == o.superperiod_ns and c.modes == o.modes for o in starts):
            starts.append(c)
    info["before_descent_ns"] = int(starts[0].superperiod_ns)
    best, evals = _race(problem, starts[:RACE_STARTS], max_evaluations, deadline, seed)
    info.update(after_descent_ns=int(best.superperiod_ns), wall_s=time.perf_counter() - t0,
                descent_evaluations=evals, descent_starts=min(len(starts), RACE_STARTS),
                best_start_ns=best.meta.get("race_start_ns"))
    return best, info


#: Starting schedules of the multi-start descent (:func:`_race`).
RACE_STARTS = 4


def _race(problem: PeriodicProblem, starts: list[PeriodicSchedule], max_evaluations: int, deadline: float | None,
          seed: int) -> tuple[PeriodicSchedule, int]:
    """Multi-start descent by successive halving: every start descends (:func:`local_search`)
    for an equal slice, the better half goes on with a larger slice, until one is left. Slices
    split the time to ``deadline`` (or ``max_evaluations``) evenly over the rounds. The best
    start is rarely the best end point (measured on GPT-OSS x4 B = 64: the shortest start
    descends to 91.7 us per superperiod, a modulo list start to 88.2 us), hence the race."""
    alive = [PeriodicSchedule(s.modes, s.start_ns, s.end_ns, s.superperiod_ns, s.window_layers, s.policy,
                              dict(s.meta, race_start_ns=int(s.superperiod_ns))) for s in starts]
    rounds = max(1, int(math.ceil(math.log2(len(alive)))) + 1)
    used = 0
    for r in range(rounds):
        per_evals = max(1, (max_evaluations - used) // ((rounds - r) * len(alive)))
        nxt = []
        for k, st in enumerate(alive):
            dl = None
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    nxt.append(st)
                    continue
                dl = time.perf_counter() + left / ((rounds - r) * (len(alive) - k) if r < rounds - 1 else
                                                   (len(alive) - k))
            out = local_search(problem, st, max_evaluations=per_evals, deadline=dl, seed=seed + 7919 * r + k)
            used += int(out.meta.get("local_search_evaluations", 0))
            nxt.append(out)
        nxt.sort(key=lambda s: s.superperiod_ns)
        alive = nxt[:max(1, (len(nxt) + 1) // 2)] if r < rounds - 1 else nxt
        if len(alive) == 1 and r < rounds - 1 and (deadline is None or time.perf_counter() < deadline):
            out = local_search(problem, alive[0], max_evaluations=max(1, max_evaluations - used), deadline=deadline,
                               seed=seed + 104729)
            used += int(out.meta.get("local_search_evaluations", 0))
            alive = [out] if out.superperiod_ns <= alive[0].superperiod_ns else alive
            break
    return min(alive, key=lambda s: s.superperiod_ns), used


__all__ = ["ALTERNATING", "PHASE_FRACTIONS", "PHASE_STYLES", "STAGGER_PLACEMENTS", "compact", "local_search", "orders_from_periodic",
           "phase_balanced_modes", "phase_order_schedule", "search_incumbent", "shortest_superperiod", "slot_start_ns",
           "staggered_schedule", "task_phases", "unrolled_phases"]
