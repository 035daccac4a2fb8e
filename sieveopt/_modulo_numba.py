"""Compiled modulo reservation table and the two placement loops that use it (issue 11, round 7).

Why. The pipeline runtime (:func:`sieveopt.overlap.pipeline_schedule`) places every task of a
window tens of times per call: modulo list scheduling (:func:`sieveopt.periodic.modulo_list_schedule`,
one placement per trial Lambda) and the left shift of its repairs
(:func:`sieveopt.pipeline_construct.left_shift`). In Python these loops were 70 % of a runtime call
on Qwen3.5 x8, B = 256, M = 2 (2,214 tasks; docs/design-notes/overlap.md, "Round 7"). Here they
run compiled (``cache=True``, like :mod:`sieveopt.periodic_search`'s Bellman-Ford), on plain
int64 arrays built once per mode set. The rules are those of round 4-6, unchanged: the schedules
are bit for bit the same (``tests/test_runtime_golden.py``).

Table. Per resource r, ``cnt[r]`` busy pieces of one period [0, lam): ``st[r, :cnt[r]]`` sorted,
disjoint and non-wrapping, with their ends ``en`` (sorted too) and owning task ``ow`` (so one
task's occupancy can be released again). A task of duration d starting at t occupies
``[t mod lam, t mod lam + d)``, split in two pieces when it wraps. Python's ``%`` semantics
(numba's too): ``t mod lam`` is in [0, lam) for negative t.
"""

from __future__ import annotations

import numba
import numpy as np

#: "No start found" (a start is never this small: times are ns within a few periods of 0).
NO_START = -(1 << 62)


@numba.njit(cache=True)
def _bisect_right(a: np.ndarray, n: int, x: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True)
def _bisect_left(a: np.ndarray, n: int, x: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def table_shift(st: np.ndarray, en: np.ndarray, cnt: np.ndarray, rid: int, lam: int, x: int, d: int) -> int:
    """0 if [x, x+d) mod lam is free on ``rid``, else how far forward the start must move
    (past the end of the last piece it hits)."""
    n = cnt[rid]
    s, e = st[rid], en[rid]
    need = 0
    nparts = 1 if x + d <= lam else 2
    for p in range(nparts):
        if p == 0:
            u, w, wrap = x, (x + d if nparts == 1 else lam), 0
        else:
            u, w, wrap = 0, x + d - lam, lam
        i = _bisect_right(e, n, u)  # pieces are disjoint and sorted: ends sorted too
        if i < n and s[i] < w:
            j = _bisect_left(s, n, w) - 1
            v = e[j] + wrap - x
            if v > need:
                need = v
    return need


@numba.njit(cache=True)
def table_earliest(st: np.ndarray, en: np.ndarray, cnt: np.ndarray, rids: np.ndarray, lam: int, t: int, d: int,
                   limit: int) -> int:
    """Earliest start in [t, limit) at which [start, start+d) is free on every resource of
    ``rids`` (:data:`NO_START`: no room)."""
    while t < limit:
        x = t % lam
        need = 0
        for k in range(rids.shape[0]):
            v = table_shift(st, en, cnt, rids[k], lam, x, d)
            if v > need:
                need = v
        if need == 0:
            return t
        t += need
    return NO_START


@numba.njit(cache=True)
def table_occupy(st: np.ndarray, en: np.ndarray, ow: np.ndarray, cnt: np.ndarray, rids: np.ndarray, lam: int,
                 t: int, d: int, owner: int) -> None:
    x = t % lam
    nparts = 1 if x + d <= lam else 2
    for p in range(nparts):
        if p == 0:
            u, w = x, (x + d if nparts == 1 else lam)
        else:
            u, w = 0, x + d - lam
        for k in range(rids.shape[0]):
            r = rids[k]
            n = cnt[r]
            i = _bisect_left(st[r], n, u)
            for q in range(n, i, -1):
                st[r, q] = st[r, q - 1]
                en[r, q] = en[r, q - 1]
                ow[r, q] = ow[r, q - 1]
            st[r, i] = u
            en[r, i] = w
            ow[r, i] = owner
            cnt[r] = n + 1


@numba.njit(cache=True)
def table_release(st: np.ndarray, en: np.ndarray, ow: np.ndarray, cnt: np.ndarray, rids: np.ndarray, lam: int,
                  t: int, d: int, owner: int) -> None:
    """Take out the pieces :func:`table_occupy` put for ``owner`` at start ``t``, duration ``d``."""
    x = t % lam
    nparts = 1 if x + d <= lam else 2
    for p in range(nparts):
        u = x if p == 0 else 0
        for k in range(rids.shape[0]):
            r = rids[k]
            n = cnt[r]
            i = _bisect_left(st[r], n, u)
            while ow[r, i] != owner:  # equal starts only occur for zero-length pieces
                i += 1
            for q in range(i, n - 1):
                st[r, q] = st[r, q + 1]
                en[r, q] = en[r, q + 1]
                ow[r, q] = ow[r, q + 1]
            cnt[r] = n - 1


def table_capacity(res_idx: np.ndarray, nres: int) -> int:
    """Pieces one resource can hold: two per task that uses it (a wrapping task has two)."""
    per = np.bincount(np.asarray(res_idx, dtype=np.int64), minlength=nres) if len(res_idx) else np.zeros(1)
    return 2 * int(per.max(initial=0)) + 2


def new_table(nres: int, cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, owners, counts) of an empty table."""
    return (np.zeros((nres, cap), dtype=np.int64), np.zeros((nres, cap), dtype=np.int64),
            np.full((nres, cap), -1, dtype=np.int64), np.zeros(nres, dtype=np.int64))


@numba.njit(cache=True)
def place_in_order(order: np.ndarray, dur: np.ndarray, res_ptr: np.ndarray, res_idx: np.ndarray,
                   succ_ptr: np.ndarray, succ_dst: np.ndarray, succ_lag: np.ndarray, ready: np.ndarray,
                   rec_src: np.ndarray, rec_dst: np.ndarray, rec_lag: np.ndarray, lam: int, nres: int, cap: int,
                   start: np.ndarray, end: np.ndarray) -> bool:
    """Modulo list scheduling at one Lambda: every task in ``order`` at its earliest ready time
    free modulo ``lam`` on its resources (``ready``: release times, updated in place as
    predecessors are placed); False when a task finds no room within one period of its ready
    time, or a recurrence is violated. Fills ``start``/``end``."""
    st = np.zeros((nres, cap), dtype=np.int64)
    en = np.zeros((nres, cap), dtype=np.int64)
    ow = np.zeros((nres, cap), dtype=np.int64)  # owners are read only below cnt
    cnt = np.zeros(nres, dtype=np.int64)
    for k in range(order.shape[0]):
        t = order[k]
        d = dur[t]
        rs = res_idx[res_ptr[t]:res_ptr[t + 1]]
        if d > 0 and rs.shape[0] > 0:
            if d > lam:
                return False
            s = table_earliest(st, en, cnt, rs, lam, ready[t], d, ready[t] + lam)
            if s == NO_START:
                return False
            table_occupy(st, en, ow, cnt, rs, lam, s, d, -1)
        else:
            s = ready[t]
        start[t] = s
        end[t] = s + d
        for a in range(succ_ptr[t], succ_ptr[t + 1]):
            v = end[t] + succ_lag[a]
            if v > ready[succ_dst[a]]:
                ready[succ_dst[a]] = v
    for a in range(rec_src.shape[0]):
        if start[rec_dst[a]] + lam < end[rec_src[a]] + rec_lag[a]:
            return False
    return True


@numba.njit(cache=True)
def left_shift_pass(order: np.ndarray, start: np.ndarray, end: np.ndarray, res_ptr: np.ndarray,
                    res_idx: np.ndarray, in_ptr: np.ndarray, in_src: np.ndarray, in_lag: np.ndarray,
                    in_dist: np.ndarray, lam: int, nres: int, cap: int) -> bool:
    """One left-shift sweep at superperiod ``lam`` (:func:`sieveopt.pipeline_construct.left_shift`):
    every task, in ``order`` (of start), moves to the earliest time its inputs are ready (source,
    lag, iteration distance: ``end[src] + lag - dist * lam``, never more than a period earlier)
    and its resources are idle modulo ``lam``, if that is earlier. ``start``/``end`` are updated
    in place; returns whether a task moved. ``res_*``: the resources a task holds (none for
    zero-length tasks)."""
    n = start.shape[0]
    st = np.zeros((nres, cap), dtype=np.int64)
    en = np.zeros((nres, cap), dtype=np.int64)
    ow = np.zeros((nres, cap), dtype=np.int64)  # owners are read only below cnt
    cnt = np.zeros(nres, dtype=np.int64)
    for i in range(n):
        if res_ptr[i + 1] > res_ptr[i]:
            table_occupy(st, en, ow, cnt, res_idx[res_ptr[i]:res_ptr[i + 1]], lam, start[i], end[i] - start[i], i)
    moved = False
    for k in range(order.shape[0]):
        i = order[k]
        s0 = start[i]
        d = end[i] - s0
        ready = s0 - lam + 1  # never more than a superperiod earlier
        for a in range(in_ptr[i], in_ptr[i + 1]):
            v = end[in_src[a]] + in_lag[a] - in_dist[a] * lam
            if v > ready:
                ready = v
        if ready >= s0:
            continue
        s = ready
        if res_ptr[i + 1] > res_ptr[i]:
            rs = res_idx[res_ptr[i]:res_ptr[i + 1]]
            table_release(st, en, ow, cnt, rs, lam, s0, d, i)
            t = table_earliest(st, en, cnt, rs, lam, ready, d, s0)
            s = s0 if t == NO_START else t
            table_occupy(st, en, ow, cnt, rs, lam, s, d, i)
        if s < s0:
            start[i] = s
            end[i] = s + d
            moved = True
    return moved


@numba.njit(cache=True)
def dag_longest(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, value: np.ndarray) -> int:
    """Longest paths over an acyclic arc set, in place: ``value[j] = max(value[j], value[i] + w)``
    for every arc i -> j, each node once all its predecessors are final (Kahn). Returns the
    number of nodes reached (< n: the arcs contain a cycle). The values are the unique fixed
    point, whatever order the ready nodes are taken in."""
    indeg = np.zeros(n, dtype=np.int64)
    cnt = np.zeros(n + 1, dtype=np.int64)
    for a in range(src.shape[0]):
        indeg[dst[a]] += 1
        cnt[src[a] + 1] += 1
    for i in range(n):
        cnt[i + 1] += cnt[i]
    fill = np.empty(n, dtype=np.int64)
    for i in range(n):
        fill[i] = cnt[i]
    out = np.empty(src.shape[0], dtype=np.int64)
    for a in range(src.shape[0]):
        out[fill[src[a]]] = a
        fill[src[a]] += 1
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for i in range(n):
        if indeg[i] == 0:
            stack[top] = i
            top += 1
    done = 0
    while top > 0:
        top -= 1
        i = stack[top]
        done += 1
        for q in range(cnt[i], cnt[i + 1]):
            a = out[q]
            j = dst[a]
            v = value[i] + w[a]
            if v > value[j]:
                value[j] = v
            indeg[j] -= 1
            if indeg[j] == 0:
                stack[top] = j
                top += 1
    return done


@numba.njit(cache=True)
def reach_longest(n: int, topo: np.ndarray, ptr: np.ndarray, dst: np.ndarray, w: np.ndarray, d: np.ndarray,
                  source: int) -> np.ndarray:
    """Longest paths from ``source`` over the arcs ``ptr``/``dst``/``w`` (CSR by source task; an
    arc i -> j lasts ``d[i] + w``), nodes taken in ``topo`` order; -1 where a node is not reached
    (:func:`sieveopt.periodic.recurrence_bound_ns`)."""
    dist = np.empty(n, dtype=np.int64)
    for i in range(n):
        dist[i] = -1
    dist[source] = 0
    for q in range(topo.shape[0]):
        t = topo[q]
        if dist[t] < 0:
            continue
        for a in range(ptr[t], ptr[t + 1]):
            v = dist[t] + d[t] + w[a]
            if v > dist[dst[a]]:
                dist[dst[a]] = v
    return dist
