"""Chain-load cuts: valid inequalities that combine a micro-batch's critical path with the load
its own tasks put on one resource (issue 11, "bounds that make the load bound tight").

The load bound (``Lambda >= load_r``) counts every micro-batch's work on a resource but no
precedence; the recurrence bound counts one micro-batch's longest path but lets the tasks that
are parallel in the DAG (a slot's experts) run at once even when they share a GPU or a PIM. A
*chain-load cut* does both for one stretch of one micro-batch's chain.

Backbone. For a recurrence (head ``h = qkv[g]@L0 m``, tail ``t = reduce[g]@L{L-1} m``), let P be
the tasks on an unconditional path h -> t. A task of P is on the *backbone* when every other
task of P is its ancestor or descendant. Consecutive backbone tasks (a, b) bound the *stretch*
S(a, b) = descendants of a that are ancestors of b (for a slot: sched, the experts, launch,
the AllGather/dispatch/combine transfers, other GPUs' experts feeding this GPU's reduce).

Cut (for every stretch and every capacity-1 resource r some task of S can use)::

    s_b >= e_a + head_r + sum_{i in S} sum_{modes k of i using r} d_{i,k} x_{i,k} + tail_r

with ``head_r = min_{i in S, r usable by i} dist(a -> i)`` and ``tail_r = min_i dist(i -> b)``,
where ``dist(a -> i)`` is the longest unconditional path from a's end to i's start and
``dist(i -> b)`` from i's end to b's start (shortest modes, lags included).

Proof of validity. Every task of S starts at or after ``e_a + dist(a -> i)`` and ends at or
before ``s_b - dist(i -> b)`` (unconditional edges hold under every mode; durations are at least
the shortest mode's). The tasks of S whose chosen mode holds r are pairwise disjoint in time
(copy 0 of each: copies of one iteration never overlap on a capacity-1 resource), so they occupy
a stretch of length at least the sum of their durations, which starts no earlier than
``e_a + head_r`` and ends no later than ``s_b - tail_r``. If none of them holds r the sum is 0
and the cut is implied by any single i of S (``s_b >= e_a + dist(a->i) + d_i + dist(i->b)``).
Chained along the backbone and closed by the recurrence ``s_h + Lambda >= e_t``, the cuts give
``Lambda >= sum over stretches of max_r(head_r + sum_r + tail_r) + backbone durations``: the
micro-batch's cycle with its experts serialised per GPU/PIM, together with every resource's
load of all micro-batches in one linear relaxation. They cut no periodic schedule (tested against
exact optima on tiny instances, ``tests/test_periodic_bounds.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sieveopt.periodic import PeriodicProblem, PeriodicSchedule


@dataclass(frozen=True)
class ChainCut:
    """``s[b] >= e[a] + offset_ns + sum of durations of ``tasks`` in modes that hold ``resource``."""

    a: int
    b: int
    resource: int
    tasks: tuple[int, ...]
    offset_ns: int


def _reach(n: int, adj: list[list[int]], order: list[int]) -> list[int]:
    """Bitset of strict descendants of every task along ``adj`` (``order`` lists sinks first)."""
    bits = [0] * n
    for t in order:
        b = 0
        for j in adj[t]:
            b |= (1 << j) | bits[j]
        bits[t] = b
    return bits


def _members(bits: int) -> list[int]:
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def chain_cuts(problem: PeriodicProblem) -> list[ChainCut]:
    """Every chain-load cut of every recurrence's backbone (see the module docstring)."""
    dag = problem.dag
    n = len(dag.tasks)
    succ = [[e.dst for e in dag.succs[t] if e.if_mode is None] for t in range(n)]
    pred = [[e.src for e in dag.preds[t] if e.if_mode is None] for t in range(n)]
    topo = list(dag.topo_order)
    desc = _reach(n, succ, topo[::-1])
    anc = _reach(n, pred, topo)
    pos = {t: i for i, t in enumerate(topo)}
    dmin = [min(c.duration_ns for c in t.modes.values()) for t in dag.tasks]
    usable = [{r for c in t.modes.values() for r in c.resources if c.duration_ns > 0} for t in dag.tasks]
    cap1 = {r.rid for r in dag.resources if r.capacity == 1}
    cuts: dict[tuple[int, int, int], ChainCut] = {}
    for rec in problem.recurrences:
        h, t = rec.dst, rec.src
        if not (desc[h] >> t) & 1:
            continue
        p_bits = (desc[h] & anc[t]) | (1 << h) | (1 << t)
        backbone = sorted((i for i in _members(p_bits) if (desc[i] | anc[i] | (1 << i)) & p_bits == p_bits),
                          key=pos.__getitem__)
        for a, b in zip(backbone, backbone[1:], strict=False):
            s_bits = desc[a] & anc[b]
            if not s_bits:
                continue
            stretch = _members(s_bits)
            # longest unconditional paths a -> i (start) and i -> b (end), shortest modes
            fwd = {a: 0}
            for i in sorted(stretch, key=pos.__getitem__):
                fwd[i] = max(fwd[e.src] + (dmin[e.src] if e.src != a else 0) + e.lag_ns
                             for e in dag.preds[i] if e.if_mode is None and e.src in fwd)
            bwd: dict[int, int] = {}
            for i in sorted(stretch, key=pos.__getitem__, reverse=True):
                bwd[i] = max((bwd[e.dst] + dmin[e.dst] if e.dst != b else 0) + e.lag_ns
                             for e in dag.succs[i] if e.if_mode is None and (e.dst in bwd or e.dst == b))
            for r in sorted(set().union(*(usable[i] for i in stretch)) & cap1):
                on_r = tuple(i for i in stretch if r in usable[i])
                off = min(fwd[i] for i in on_r) + min(bwd[i] for i in on_r)
                key = (a, b, r)
                if key not in cuts or cuts[key].offset_ns < off:
                    cuts[key] = ChainCut(a, b, r, on_r, off)
    return list(cuts.values())




def cut_slack_ns(cut: ChainCut, ps: PeriodicSchedule, problem: PeriodicProblem) -> int:
    """``s_b - e_a - offset - work`` of ``cut`` in the periodic schedule ``ps`` (>= 0 when it holds)."""
    dag = problem.dag
    work = sum(dag.tasks[i].modes[ps.modes[i]].duration_ns for i in cut.tasks
               if cut.resource in dag.tasks[i].modes[ps.modes[i]].resources)
    return int(ps.start_ns[cut.b] - ps.end_ns[cut.a] - cut.offset_ns - work)


def stretch(ps: PeriodicSchedule, superperiod_ns: int) -> PeriodicSchedule:
    """The schedule moved to a longer superperiod by ``q Lambda + r -> q Lambda' + r`` (the map of
    the monotonicity proof in :func:`sieveopt.solvers.cpsat_periodic.probe_superperiod`)."""
    lam, new = int(ps.superperiod_ns), int(superperiod_ns)
    if new < lam:
        raise ValueError(f"stretch: superperiod {new} ns is shorter than {lam} ns")
    q, r = np.divmod(ps.start_ns.astype(np.int64), lam)
    start = q * new + r
    return PeriodicSchedule(ps.modes, start, start + (ps.end_ns - ps.start_ns), new, ps.window_layers,
                            ps.policy, dict(ps.meta, stretched_from_ns=lam))


__all__ = ["ChainCut", "chain_cuts", "cut_slack_ns", "stretch"]
