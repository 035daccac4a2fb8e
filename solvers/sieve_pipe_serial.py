"""sieve-pipe's serial planner: sieve-plus's split decision at Sieve's cost.

Under the ``serial`` execution model sieve-pipe makes sieve-plus's decision
(:mod:`sieveopt.solvers.sieve_plus`, ``max_passes = 0``): per GPU, the experts sorted by token
count (descending, stable), the h hottest on the GPU, h minimising the finish estimate

    max(GPU side, PIM side),
    GPU side = max(cg + GPU load, cg0)                      (cg0 alone when h = 0)
    PIM side = max(cp + PIM load, cp0, max_k lv_k + qp + S_k)  (cp0 alone when h = E)

(side constants ``cg, cg0, cp, cp0``, PIM tail ``qp`` and release levels ``lv_k`` from the DAG,
:func:`sieveopt.solvers.sieve_plus.plan_arrays`; ``S_k`` the PIM load released at level >= k),
ties to the smallest h. sieve-plus's kernel searches every h with a union-find and a Fenwick
tree over the levels and receives its experts already sorted; this kernel makes the identical
decision (tested) in Sieve's shape: it sorts inside the timed call with Sieve's counting sort
(:func:`sieveopt.solvers._sieve_numba.sort_desc`), takes five arguments and **stops early**.

Why stopping early is exact: sweeping h from E down (experts join the PIM side coldest first),
the GPU side never grows (its load only shrinks) and the PIM side never shrinks (its loads only
grow, so every ``S_k`` and the top loaded level only grow). The estimate is the max of a
non-increasing and a non-decreasing sequence, so once it exceeds the best value so far it is the
PIM side that does, and every smaller h is at least as large: the first strict increase ends the
search, as Sieve's "move while max(T) strictly decreases" does. The release term ``max_k U_k``
(``U_k = lv_k + qp + S_k`` over the loaded levels) is kept with its argmax c: an expert joining
at level l >= c raises U_c with every U_k, k <= l, so c stays the argmax (O(1)); a new top level
adds its own U (O(1)); only l < c rescans the levels <= l. On the paper's configurations a GPU
has 1-34 levels.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from sieveopt.dag import TaskDAG
from sieveopt.solvers._sieve_numba import sort_desc
from sieveopt.solvers.sieve_plus import plan_arrays

#: Layout of ``side`` (int64): side constants, then the level count, then ``nl`` level times,
#: then ``nl`` per-level PIM loads (the kernel's scratch).
S_CG, S_CG0, S_CP, S_CP0, S_QP, S_NL, S_LV = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, nogil=True, boundscheck=False)
def serial_sweep(tokens, items, side, ws, order):  # noqa: ANN001, ANN201 (numba signature)
    """The number h of hottest experts (``order[:h]``) to run on the GPU, or -1 when a token count
    is outside ``ws``. ``tokens`` int32 [E] in expert order; ``items`` int32 [E, 3]: GPU ns, PIM ns and
    the local release level of each expert (one row per expert: the sweep visits them in sorted
    order, so a row is one cache line); ``side`` int64 (see ``S_*``); ``ws`` int32 counting-
    sort buckets; ``order`` int32 [E] output. Allocates nothing."""
    m = tokens.shape[0]
    if sort_desc(tokens, ws.shape[0] - 1, ws, order) < 0:
        return -1
    if m == 0:
        return 0
    cg, cg0, cp, cp0, qp, nl = side[S_CG], side[S_CG0], side[S_CP], side[S_CP0], side[S_QP], side[S_NL]
    ld = S_LV + nl
    for k in range(nl):
        side[ld + k] = 0
    sg = 0
    for i in range(m):
        sg += items[i, 0]
    best = cg + sg
    if cg0 > best:
        best = cg0
    if cp0 > best:
        best = cp0
    best_h = m
    sp = 0
    top = -1   # highest loaded level
    c = -1     # a level k <= top with the largest U_k = lv_k + qp + S_k, and that value uc
    uc = 0
    for h in range(m - 1, -1, -1):
        e = order[h]
        pd = items[e, 1]
        sg -= items[e, 0]
        sp += pd
        if pd > 0:
            lvk = items[e, 2]
            side[ld + lvk] += pd
            if lvk > top:  # every U_k, k <= lvk, grows by pd; the new levels' best is lvk's own
                top = lvk
                uc += pd
                v = side[S_LV + lvk] + qp + pd
                if c < 0 or v > uc:
                    c, uc = lvk, v
            elif lvk >= c:  # U_c and every U_k, k <= lvk, grow by pd: c stays the argmax
                uc += pd
            else:  # only the levels <= lvk < c grow: rescan them (S_0 = sp, S_k+1 = S_k - load_k)
                acc = sp
                for k in range(lvk + 1):
                    v = side[S_LV + k] + qp + acc
                    if v > uc:
                        c, uc = k, v
                    acc -= side[ld + k]
        est = cp + sp
        if cp0 > est:
            est = cp0
        if c >= 0 and uc > est:
            est = uc
        gpu_end = cg + sg if h > 0 else 0
        if cg0 > gpu_end:
            gpu_end = cg0
        if gpu_end > est:
            est = gpu_end
        if est <= best:
            best, best_h = est, h
        else:
            break
    return best_h


SerialArgs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def serial_args(dag: TaskDAG) -> tuple[list[SerialArgs], list[np.ndarray]]:
    """Per GPU the kernel's arguments (prepared before the timed call, as for Sieve's planner)
    and the task ids of its experts in argument order (the DAG's order, unsorted)."""
    pa = plan_arrays(dag)
    args, tids = [], []
    # one workspace and output array per layer, as a serving GPU keeps them (Sieve's make_workspace)
    ws = np.zeros(max((dag.tasks[int(t)].tokens for t in pa.tids), default=0) + 2, dtype=np.int32)
    order = np.zeros(max(1, int(np.diff(pa.off).max(initial=1))), dtype=np.int32)
    for g in range(len(pa.off) - 1):
        a, b = int(pa.off[g]), int(pa.off[g + 1])
        idx = a + np.argsort(pa.tids[a:b], kind="stable")  # back to the DAG's expert order
        tid = pa.tids[idx]
        tok = np.array([dag.tasks[int(t)].tokens for t in tid], dtype=np.int32)
        items = np.stack([pa.gpu_ns[idx], pa.pim_ns[idx], pa.level[idx] - pa.lv_off[g]], axis=1)
        if items.size and int(items.max()) >= 2**31:
            raise ValueError("sieve-pipe (serial): an expert duration does not fit the kernel's int32 inputs")
        lv = pa.lv_ns[pa.lv_off[g]:pa.lv_off[g + 1]]
        side = np.concatenate([pa.side[g], [len(lv)], lv, np.zeros(len(lv), dtype=np.int64)]).astype(np.int64)
        args.append((tok, np.ascontiguousarray(items, dtype=np.int32), side, ws, order))
        tids.append(tid)
    return args, tids


def warm_up() -> None:
    """Compile (or load from numba's cache) outside any timed region."""
    side = np.array([0, 0, 0, 0, 0, 1, 0, 0], dtype=np.int64)
    serial_sweep(np.array([2, 1], dtype=np.int32), np.zeros((2, 3), dtype=np.int32), side,
                 np.zeros(4, dtype=np.int32), np.zeros(2, dtype=np.int32))


def decide_serial(dag: TaskDAG) -> tuple[dict[int, bool], list[int]]:
    """{expert task id: runs on the GPU} and each GPU's planning time (ns, the kernel call only)."""
    args, tids = serial_args(dag)
    warm_up()  # right before the timed calls, as Sieve's solver does (the inputs' extraction is Python)
    on_gpu: dict[int, bool] = {}
    times = []
    for a, tid in zip(args, tids, strict=True):
        t0 = time.perf_counter_ns()
        h = serial_sweep(*a)
        times.append(time.perf_counter_ns() - t0)
        if h < 0:
            raise ValueError("sieve-pipe (serial): a token count is outside the workspace")
        gpu = set(a[4][:h].tolist())
        on_gpu.update({int(t): i in gpu for i, t in enumerate(tid.tolist())})
    return on_gpu, times
