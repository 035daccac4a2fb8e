"""Optimal makespan of a tiny DAG by enumeration, independent of the CP-SAT code (the oracle
``sieveopt validate`` and ``tests/test_cpsat.py`` hold CP-SAT against)."""

from __future__ import annotations

import itertools

from sieveopt.dag import TaskDAG


def brute_force(dag: TaskDAG) -> int:
    """Optimal makespan by enumeration: every mode assignment, and for each a depth-first search
    over the serial schedule-generation orders (an order sorted by any optimal schedule's start
    times reproduces it, so the minimum over all orders is optimal), with memoised states and
    critical-path pruning. Independent of the CP-SAT code."""
    choice = [t.tid for t in dag.tasks if t.has_choice]
    best = [1 << 62]
    for combo in itertools.product(*[list(dag.tasks[t].modes) for t in choice]):
        modes = [next(iter(t.modes)) for t in dag.tasks]
        for t, m in zip(choice, combo, strict=True):
            modes[t] = m
        best[0] = min(best[0], _best_for_modes(dag, modes, best[0]))
    return best[0]


def _best_for_modes(dag: TaskDAG, modes: list[str], incumbent: int) -> int:
    n = len(dag.tasks)
    dur = [dag.tasks[t].modes[modes[t]].duration_ns for t in range(n)]
    res = [dag.tasks[t].modes[modes[t]].resources if dur[t] > 0 else () for t in range(n)]
    preds = [[(e.src, e.lag_ns) for e in dag.preds[t] if dag.edge_active(e, modes)] for t in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for t in range(n):
        for s, _ in preds[t]:
            succs[s].append(t)
    tail = [0] * n  # longest duration+lag path from a task's start to the end
    for t in reversed(dag.topo_order):
        tail[t] = dur[t] + max((lag + tail[d] for d in succs[t] for s, lag in preds[d] if s == t), default=0)
    best = [incumbent]
    seen: set = set()
    end = [0] * n

    def dfs(done: frozenset, free: dict, span: int) -> None:
        if len(done) == n:
            best[0] = min(best[0], span)
            return
        key = (done, tuple(sorted(free.items())),
               tuple(end[t] for t in sorted(done) if any(s not in done for s in succs[t])))
        if key in seen:
            return
        seen.add(key)
        for t in range(n):
            if t in done or any(s not in done for s, _ in preds[t]):
                continue
            st = max([0] + [end[s] + lag for s, lag in preds[t]] + [free.get(r, 0) for r in res[t]])
            if st + tail[t] >= best[0]:
                continue  # cannot beat the incumbent
            old = end[t]
            end[t] = st + dur[t]
            nf = dict(free)
            for r in res[t]:
                nf[r] = end[t]
            dfs(done | {t}, nf, max(span, end[t]))
            end[t] = old

    dfs(frozenset(), {}, 0)
    return best[0]


def brute_force_energy_pJ(dag: TaskDAG, mode_pJ: list[dict[str, float]], constant_pJ_per_ns: float,
                          limit_ns: int) -> float | None:
    """Least ``sum_t mode_pJ[t][mode] + P x makespan`` with makespan <= ``limit_ns`` by
    enumeration (for fixed modes the energy grows with the makespan, so each mode assignment's
    shortest schedule is its best); None when no assignment fits the limit."""
    choice = [t.tid for t in dag.tasks if t.has_choice]
    best = None
    for combo in itertools.product(*[list(dag.tasks[t].modes) for t in choice]):
        modes = [next(iter(t.modes)) for t in dag.tasks]
        for t, m in zip(choice, combo, strict=True):
            modes[t] = m
        span = _best_for_modes(dag, modes, limit_ns + 1)
        if span > limit_ns:
            continue
        e = sum(mode_pJ[t][modes[t]] for t in range(len(modes))) + constant_pJ_per_ns * span
        best = e if best is None else min(best, e)
    return best
