"""Constructive repairs of a pipeline runtime's periodic schedule (issue 11, round 6).

Why. The pipeline runtime (:func:`sieveopt.overlap.pipeline_schedule`) builds a heuristic's
periodic schedule from the modes alone: modulo list scheduling, staggered-slot orders and the
explicit staggered construction. The staggered phases synchronise all GPUs once per slot: a
micro-batch's expert ``launch`` waits for the dispatches of *every* GPU (the paper's step 5,
"Dispatch (all-to-all) in parallel with Sieve scheduling", papers.md §1.5-1.6), and in the
constructions the GPU sits idle through that wait although the other micro-batch's ``reduce``
and next ``qkv`` are already ready (GPT-OSS x4, B = 256, M = 2, sieve-pipe's modes: a 14 us hole
per phase on GPU 0; docs/design-notes/overlap.md, "Round 6"). A serving runtime does not leave
such a hole: work that is ready runs while the blocked kernel waits for its inputs.

:func:`left_shift` is that rule applied to a periodic schedule, once per pass: every task, in
order of start, moves to the earliest time at which its inputs are ready (precedences with their
lags, and recurrences from the previous iteration) and its resources are idle modulo the
superperiod, if that is earlier than where it is. Every move goes into idle time, so the moved
schedule stays valid at the same superperiod; its cyclic resource orders are then timed exactly
(:func:`sieveopt.periodic_search.compact`, the shortest superperiod of those orders), which is
never longer. Repeated while the superperiod falls (at most :data:`LEFT_SHIFT_PASSES` passes).

Two issue rules change orders where a left shift cannot (it never delays a task):
:func:`defer_launch` (a ``launch`` lets the other micro-batch's ``reduce``/``qkv`` that follow it
go first) and :func:`chain_first` (a PIM attention goes before the expert jobs that would hold
its micro-batch's dense chain). :func:`repaired_schedules` applies the rules, alone and together,
to each construction and left-shifts each result: a fixed number of exact timings, no search,
no clock, deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from sieveopt._modulo_numba import left_shift_pass, table_capacity
from sieveopt.periodic import PeriodicProblem, PeriodicSchedule

#: Left-shift passes at most (each: one sweep and one exact timing); it stops earlier when a
#: pass does not shorten the superperiod.
LEFT_SHIFT_PASSES = 4


def _inputs(problem: PeriodicProblem, modes: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Per task its inputs: active edges (iteration distance 0), then recurrences from the
    previous iteration (1), as arrays (row pointers by destination task, sources, lags ns,
    iteration distances); task i's are ``[ptr[i], ptr[i+1])``."""
    dag = problem.dag
    e_src, e_dst, e_lag, _, _ = dag.edge_arrays
    on = dag.active_edge_mask(modes)
    rec = problem.recurrences
    src = np.concatenate([e_src[on], np.array([r.src for r in rec], dtype=np.int64)])
    dst = np.concatenate([e_dst[on], np.array([r.dst for r in rec], dtype=np.int64)])
    lag = np.concatenate([e_lag[on], np.array([r.lag_ns for r in rec], dtype=np.int64)])
    dist = np.concatenate([np.zeros(int(on.sum()), dtype=np.int64), np.ones(len(rec), dtype=np.int64)])
    o = np.argsort(dst, kind="stable")
    ptr = np.zeros(len(dag.tasks) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(dst, minlength=len(dag.tasks)))
    return ptr, src[o], lag[o], dist[o]


def _shift_pass(problem: PeriodicProblem, ps: PeriodicSchedule, inputs: tuple[np.ndarray, ...],
                rank: np.ndarray) -> PeriodicSchedule | None:
    """One left-shift sweep at ``ps``'s superperiod (None when no task moved); ``rank``: the
    tie-break of equal starts (a topological position); ``inputs``: :func:`_inputs`. The
    sweep itself is compiled (:func:`sieveopt._modulo_numba.left_shift_pass`)."""
    dag = problem.dag
    start = np.array(ps.start_ns, dtype=np.int64)
    end = np.array(ps.end_ns, dtype=np.int64)
    tid, rid, _ = dag.chosen_resources(ps.modes)
    held = (end - start)[tid] > 0
    tid, res_idx = tid[held], rid[held]
    res_ptr = np.zeros(len(dag.tasks) + 1, dtype=np.int64)
    res_ptr[1:] = np.cumsum(np.bincount(tid, minlength=len(dag.tasks)))
    order = np.lexsort((rank, start))
    if not left_shift_pass(order, start, end, res_ptr, res_idx, *inputs, int(ps.superperiod_ns),
                           len(dag.resources), table_capacity(res_idx, len(dag.resources))):
        return None
    shift = int(start.min())
    return dataclasses.replace(ps, start_ns=start - shift, end_ns=end - shift, meta=dict(ps.meta, left_shift=True))


def left_shift(problem: PeriodicProblem, ps: PeriodicSchedule, *, passes: int = LEFT_SHIFT_PASSES
               ) -> PeriodicSchedule:
    """``ps`` with ready work moved into idle time, then timed exactly in its new cyclic orders,
    repeated while the superperiod falls (see the module docstring). Never longer than ``ps``;
    ``ps`` itself for resources of capacity > 1."""
    from sieveopt.periodic_search import compact

    if any(r.capacity != 1 for r in problem.dag.resources):
        return ps
    best = ps
    inputs = _inputs(problem, ps.modes)
    rank = np.empty(len(problem.dag.tasks), dtype=np.int64)
    rank[list(problem.dag.topo_order)] = np.arange(len(problem.dag.tasks))
    for k in range(passes):
        moved = _shift_pass(problem, best, inputs, rank)
        if moved is None:
            break
        out = compact(problem, moved)
        if out.superperiod_ns >= best.superperiod_ns:
            break
        best = dataclasses.replace(out, meta=dict(out.meta, left_shift_passes=k + 1,
                                                  left_shift_from_ns=int(ps.superperiod_ns)))
    return best


def _single(problem: PeriodicProblem, ps: PeriodicSchedule, i: int, rid: int) -> bool:
    """Task i holds resource ``rid`` alone in its mode (moving it in that one order keeps every
    other resource's order consistent)."""
    return tuple(problem.dag.tasks[i].modes[ps.modes[i]].resources) == (rid,)


def _retimed(problem: PeriodicProblem, ps: PeriodicSchedule, orders: dict[int, list[tuple[int, int]]],
             changed: bool, rule: str) -> PeriodicSchedule | None:
    from sieveopt.periodic_search import shortest_superperiod

    if not changed:
        return None
    return shortest_superperiod(problem, ps.modes, orders, rank=np.asarray(ps.start_ns, dtype=np.int64),
                                policy=ps.policy, meta=dict(ps.meta, runtime_rule=rule))


def defer_launch(problem: PeriodicProblem, ps: PeriodicSchedule) -> PeriodicSchedule | None:
    """``ps``'s orders with every expert ``launch`` on a GPU moved behind the ``reduce`` and
    ``qkv`` tasks that directly follow it there (another micro-batch's dense chain goes first),
    timed exactly; None when nothing moved or the orders admit no schedule."""
    from sieveopt.periodic_search import orders_from_periodic

    dag = problem.dag
    orders = orders_from_periodic(problem, ps)
    changed = False
    for rid, seq in orders.items():
        if dag.resources[rid].kind != "gpu":
            continue
        q = 0
        while q < len(seq):
            i = seq[q][0]
            if str(dag.tasks[i].kind) == "launch" and _single(problem, ps, i, rid):
                r = q + 1
                while r < len(seq) and str(dag.tasks[seq[r][0]].kind) in DEFER_BEHIND:
                    r += 1
                if r > q + 1:
                    seq.insert(r - 1, seq.pop(q))
                    changed = True
                    q = r
                    continue
            q += 1
    return _retimed(problem, ps, orders, changed, "defer-launch")


def chain_first(problem: PeriodicProblem, ps: PeriodicSchedule) -> PeriodicSchedule | None:
    """``ps``'s orders with every attention on a PIM moved before the tasks there that end after
    it is ready (its ``qkv`` done): the micro-batch's dense chain is not held behind expert jobs
    (Schrage's rule with the chain first), timed exactly; None when nothing moved or the orders
    admit no schedule."""
    from sieveopt.periodic_search import _occupancy

    dag = problem.dag
    lam = int(ps.superperiod_ns)
    end = np.asarray(ps.end_ns, dtype=np.int64)
    ptr, src, lag, dist = _inputs(problem, ps.modes)
    occ = _occupancy(problem, ps)
    orders: dict[int, list[tuple[int, int]]] = {}
    changed = False
    for rid, seq in occ.items():
        seq = list(seq)
        if dag.resources[rid].kind == "pim":
            for q in range(len(seq)):
                _, u, ku = seq[q]
                if str(dag.tasks[u].kind) not in CHAIN_FIRST or not _single(problem, ps, u, rid):
                    continue
                a, b = int(ptr[u]), int(ptr[u + 1])
                if a == b:
                    continue
                ready = int((end[src[a:b]] + lag[a:b] - dist[a:b] * lam).max())
                ready += ku * lam  # in the frame of the positions in [0, lam)
                p = q
                while p > 0 and str(dag.tasks[seq[p - 1][1]].kind) not in CHAIN_FIRST and \
                        seq[p - 1][0] + int(end[seq[p - 1][1]] - ps.start_ns[seq[p - 1][1]]) > ready:
                    p -= 1
                if p < q:
                    seq.insert(p, seq.pop(q))
                    changed = True
        orders[rid] = [(i, k) for _, i, k in seq]
    return _retimed(problem, ps, orders, changed, "chain-first")


#: Kinds a deferred launch lets go first (:func:`defer_launch`), and the PIM tasks that go before
#: expert jobs once ready (:func:`chain_first`).
DEFER_BEHIND = frozenset({"reduce", "qkv"})
CHAIN_FIRST = frozenset({"attn", "prefill_attn"})


def repaired_schedules(problem: PeriodicProblem, cands: Sequence[PeriodicSchedule]) -> list[PeriodicSchedule]:
    """The pipeline runtime's repairs of its constructions (round 6): for every candidate its
    orders as built, with launches deferred (:func:`defer_launch`), with the chain first on PIM
    (:func:`chain_first`) and both, each left-shifted (:func:`left_shift`). Rules, not a search:
    a fixed number of exact timings per candidate, each schedule checked by
    :func:`sieveopt.periodic.check_periodic` where it is timed."""
    out: list[PeriodicSchedule] = []
    if any(r.capacity != 1 for r in problem.dag.resources):
        return out
    for c in cands:
        d = defer_launch(problem, c)
        variants = [c, d, chain_first(problem, c), None if d is None else chain_first(problem, d)]
        out += [left_shift(problem, v) for v in variants if v is not None]
    return out


__all__ = ["CHAIN_FIRST", "DEFER_BEHIND", "LEFT_SHIFT_PASSES", "chain_first", "defer_launch", "left_shift",
           "repaired_schedules"]
