"""Compiled TriMoE planner: the serving-path twin of :func:`sieveopt.solvers.trimoe_ref.trimoe_plan_ref`.

``trimoe_plan(data, ints, out, loads) -> makespan`` makes exactly the reference's decisions
(same integer arithmetic, same order and tie-breaking) and allocates nothing; four arguments
keep numba's dispatch cost down. ``data`` int64[4 or 5, E] = rows t_gpu, t_cpu, t_ndp (ns), tokens and optionally each expert's
home DIMM (-1: any engine);
``ints`` = [n_warm, base_gpu_ns, num_dimms, refine (1 = bottleneck moves, 0 = the greedy pass
alone)]; ``out`` int64[2, >= E] receives the unit
(0 GPU, 1 CPU, 2+d NDP engine d) and the class (0 hot, 1 warm, 2 cold); ``loads`` is
an int64 workspace of length >= 2 + num_dimms + 2 P + experts + max tokens + 2 (loads, a
tournament tree over the P >= num_dimms engine slots, the sort order, the counting-sort
buckets). Returns the predicted makespan, or -1 when the workspace is too small.

Speed (identical decisions): the greedy pass asks "which NDP engine is least loaded (lowest
index on ties)?" once per expert; a tournament tree answers at its root and is repaired along
one leaf-to-root path (log2 P steps) when the chosen engine's load grows, instead of a scan of
all D engines per expert. Its comparison (strictly smaller load wins, the left -- lower-index --
child on ties) selects the same engine as the reference's ``min`` over ``(load, index)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, boundscheck=False)
def _dur(kind, i, t_gpu, t_cpu, t_ndp):  # noqa: ANN001, ANN202
    if kind == 0:
        return t_gpu[i]
    if kind == 1:
        return t_cpu[i]
    return t_ndp[i]


@njit(cache=True, nogil=True, boundscheck=False)
def _winner(a, b, loads):  # noqa: ANN001, ANN202
    """Tournament match: the engine with the smaller load, ``a`` (the lower index) on ties; -1 = empty."""
    if b < 0:
        return a
    if a < 0:
        return b
    return b if loads[b] < loads[a] else a


@njit(cache=True, nogil=True, boundscheck=False)
def trimoe_plan(data, ints, out, loads):  # noqa: ANN001, ANN201, C901
    t_gpu, t_cpu, t_ndp, tokens = data[0], data[1], data[2], data[3]
    homes = data[4] if data.shape[0] > 4 else data[3, :0]
    has_homes = homes.shape[0] > 0
    unit, cls = out[0], out[1]
    n = tokens.shape[0]
    n_warm, base_gpu, D, refine = ints[0], ints[1], ints[2], ints[3]
    U = 2 + D
    for i in range(n):
        if t_gpu[i] <= t_cpu[i]:
            cls[i] = 0
        elif tokens[i] >= n_warm:
            cls[i] = 1
        else:
            cls[i] = 2
    loads[0] = base_gpu
    for u in range(1, U):
        loads[u] = 0
    P = 1
    while P < D:
        P *= 2
    tmax = 0
    for j in range(n):
        if tokens[j] > tmax:
            tmax = tokens[j]
    if U + 2 * P + n + tmax + 2 > loads.shape[0]:
        return -1
    tree = loads[U:U + 2 * P]               # node i: the winning engine (unit id) of its leaves
    for j in range(P):
        tree[P + j] = 2 + j if j < D else -1
    for i in range(P - 1, 0, -1):
        tree[i] = _winner(tree[2 * i], tree[2 * i + 1], loads)
    # stable descending counting sort of expert indices by tokens (buckets after `order`)
    order = loads[U + 2 * P:U + 2 * P + n]
    cnt = loads[U + 2 * P + n:]
    for v in range(tmax + 2):
        cnt[v] = 0
    for j in range(n):
        cnt[tmax - tokens[j] + 1] += 1
    for v in range(1, tmax + 2):
        cnt[v] += cnt[v - 1]
    for j in range(n):
        k = tmax - tokens[j]
        order[cnt[k]] = j
        cnt[k] += 1
    for j in range(n):
        i = order[j]
        k = tree[1]                          # least-loaded NDP engine, lowest index on ties
        if has_homes and homes[i] >= 0:
            k = 2 + homes[i]                 # its home DIMM only
        best_f = loads[0] + t_gpu[i]
        best_r = 0 if cls[i] == 0 else 1
        best_u = 0
        f = loads[1] + t_cpu[i]
        r = 0 if cls[i] == 1 else 2
        if f < best_f or (f == best_f and r < best_r):
            best_f, best_r, best_u = f, r, 1
        f = loads[k] + t_ndp[i]
        r = 0 if cls[i] == 2 else 3
        if f < best_f or (f == best_f and r < best_r):
            best_f, best_r, best_u = f, r, k
        unit[i] = best_u
        loads[best_u] = best_f
        if best_u >= 2:                      # repair the engine's path to the root
            x = (P + best_u - 2) >> 1
            while x >= 1:
                tree[x] = _winner(tree[2 * x], tree[2 * x + 1], loads)
                x >>= 1
    for _ in range(2 * n if refine != 0 else 0):
        # bottleneck (first argmax) and the three largest loads (ties: lower unit first)
        t0 = -1
        t1 = -1
        t2 = -1
        for u in range(U):
            if t0 < 0 or loads[u] > loads[t0]:
                t2, t1, t0 = t1, t0, u
            elif t1 < 0 or loads[u] > loads[t1]:
                t2, t1 = t1, u
            elif t2 < 0 or loads[u] > loads[t2]:
                t2 = u
        b = t0
        ndp_min = -1
        for d in range(2, U):
            if d != b and (ndp_min < 0 or loads[d] < loads[ndp_min]):
                ndp_min = d
        bkind = b if b < 2 else 2
        best_new = loads[b]
        best_i = -1
        best_u = -1
        for i in range(n):
            if unit[i] != b:
                continue
            for kind in range(3):
                u = kind if kind < 2 else ndp_min
                if kind == 2 and has_homes and homes[i] >= 0:
                    u = 2 + homes[i]
                if u == b or u < 0:
                    continue
                if t0 != b and t0 != u:
                    other = loads[t0]
                elif t1 != b and t1 != u:
                    other = loads[t1]
                else:
                    other = loads[t2]
                a = loads[b] - _dur(bkind, i, t_gpu, t_cpu, t_ndp)
                c = loads[u] + _dur(kind, i, t_gpu, t_cpu, t_ndp)
                new = a if a > c else c
                if other > new:
                    new = other
                if new < best_new:
                    best_new, best_i, best_u = new, i, u
        if best_i < 0:
            break
        loads[b] -= _dur(bkind, best_i, t_gpu, t_cpu, t_ndp)
        loads[best_u] += _dur(best_u if best_u < 2 else 2, best_i, t_gpu, t_cpu, t_ndp)
        unit[best_i] = best_u
    m = loads[0]
    for u in range(1, U):
        if loads[u] > m:
            m = loads[u]
    return m


def make_workspace(max_experts: int, num_dimms: int, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(out, loads) int64 buffers for up to ``max_experts`` experts with at most ``max_tokens``
    tokens each and ``num_dimms`` DIMMs."""
    e = max(1, max_experts)
    p = 1
    while p < num_dimms:
        p *= 2
    return np.zeros((2, e), np.int64), np.zeros(2 + num_dimms + 2 * p + e + max_tokens + 2, np.int64)


_WARM = False


def warm_up() -> None:
    """Compile once (cached on disk) so no decision pays the JIT."""
    global _WARM
    if _WARM:
        return
    a = np.array([5, 3, 9], np.int64)
    out, loads = make_workspace(3, 2, 9)
    trimoe_plan(np.stack([a, a + 1, a + 2, a]), np.array([2, 0, 2, 1], np.int64), out, loads)
    _WARM = True
