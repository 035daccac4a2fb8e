"""Lower-bound machinery of the periodic problem (issue 11, "bounds that make the load bound
tight"): chain-load cuts (below), the slot relaxation (:func:`slot_bounds`: every slot
synchronises all GPUs) and the stretch map behind the fixed-Lambda probes.

Chain-load cuts: valid inequalities that combine a micro-batch's critical path with the load
its own tasks put on one resource.

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
from typing import Any

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


# --------------------------------------------------------------------------------------------
# Slot bounds (issue 11, fourth pass): every slot synchronises all GPUs.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotTerm:
    """``var >= offset_ns + sum of durations of ``tasks`` in modes that hold ``resource`` + sum over
    ``gates`` (task, duration, literals): its duration when any literal (task, mode) is chosen.
    ``var`` is ``("D", l, m)`` (sync to sync of slot (l, m)) or ``("W", l, m, g)`` (GPU g's window)."""

    var: tuple[Any, ...]
    resource: int
    tasks: tuple[int, ...]
    offset_ns: int
    gates: tuple[tuple[int, int, tuple[tuple[int, str], ...]], ...] = ()


@dataclass(frozen=True)
class SlotBounds:
    """Data of the slot relaxation (proofs in :func:`slot_bounds`).

    * ``terms``: lower bounds on the variables D[(l, m)] and W[(l, m, g)];
    * ``gaps[(l, m, g)] = (offset_ns, ((task, mode, extra_ns), ...))``: ``C >= offset + extras``,
      and ``D[(l, m)] >= W[(l, m, g)] + C[(l, m, g)]``;
    * ``cycles``: per micro-batch the slots (l, m) of its cycle: ``Lambda >= sum_l D[(l, m)]``;
    * ``dense[(g, resource)]``: tasks in GPU g's gap arcs (of their micro-batch) that can hold
      ``resource``: ``M Lambda >= their load + sum over all slots of W[(l, m, g)]``.
    """

    terms: tuple[SlotTerm, ...]
    gaps: dict[tuple[int, int, int], tuple[int, tuple[tuple[int, str, int], ...]]]
    cycles: tuple[tuple[tuple[int, int], ...], ...]
    dense: dict[tuple[int, int], tuple[int, ...]]
    microbatches: int


class _Twice:
    """Two consecutive iterations as one DAG: node ``k n + i`` is copy k of task i; edges of the
    iteration in each copy and every recurrence from copy 0 to copy 1. Copy 1 of a periodic
    schedule is copy 0 shifted by Lambda, so every precedence of this graph holds in it."""

    def __init__(self, problem: PeriodicProblem) -> None:
        dag = problem.dag
        self.n = n = len(dag.tasks)
        self.dmin = [min(c.duration_ns for c in t.modes.values()) for t in dag.tasks] * 2
        self.succ: list[list[tuple[int, int]]] = [[] for _ in range(2 * n)]
        self.pred: list[list[tuple[int, int]]] = [[] for _ in range(2 * n)]
        self.cond: list[list[tuple[int, tuple[int, str]]]] = [[] for _ in range(2 * n)]  # (dst, literal)
        arcs = [(e.src + k * n, e.dst + k * n, e.lag_ns, e.if_mode) for k in (0, 1) for e in dag.edges]
        arcs += [(r.src, r.dst + n, r.lag_ns, None) for r in problem.recurrences]
        for u, v, lag, cond in arcs:
            if cond is None:
                self.succ[u].append((v, lag))
                self.pred[v].append((u, lag))
            else:
                self.cond[u].append((v, cond))
        self.usable = [{r for c in t.modes.values() if c.duration_ns > 0 for r in c.resources} for t in dag.tasks] * 2
        self.always = [set.intersection(*(set(c.resources) for c in t.modes.values())) for t in dag.tasks] * 2
        self._sink_cache: dict[int, dict[int, int]] = {}
        self.topo = list(dag.topo_order) + [t + n for t in dag.topo_order]
        self.desc = _reach(2 * n, [[v for v, _ in a] for a in self.succ], self.topo[::-1])
        self.anc = _reach(2 * n, [[u for u, _ in a] for a in self.pred], self.topo)

    def from_sources(self, sources: list[int]) -> dict[int, tuple[int, int]]:
        """Longest path from the start of any source to the start of each descendant (shortest
        modes, lags included): node -> (distance, predecessor on one longest path, -1 at a source)."""
        dist: dict[int, tuple[int, int]] = {s: (0, -1) for s in sources}
        for t in self.topo:
            for u, lag in self.pred[t]:
                if u in dist:
                    v = dist[u][0] + self.dmin[u] + lag
                    if t not in dist or v > dist[t][0]:
                        dist[t] = (v, u)
        return dist

    def to_sink(self, sink: int) -> dict[int, int]:
        """Longest path from the start of each ancestor of ``sink`` to its start."""
        if sink in self._sink_cache:
            return self._sink_cache[sink]
        dist = {sink: 0}
        for t in reversed(self.topo):
            for v, lag in self.succ[t]:
                if v in dist:
                    dist[t] = max(dist.get(t, -1), self.dmin[t] + lag + dist[v])
        self._sink_cache[sink] = dist
        return dist


def _levels(values: list[int], k: int = 6) -> list[int]:
    """At most ``k`` thresholds among ``values`` (all distinct values when there are few)."""
    vals = sorted(set(values))
    if len(vals) <= k:
        return vals
    return sorted({vals[round(i * (len(vals) - 1) / (k - 1))] for i in range(k)})


def _terms(tw: _Twice, dag, var: tuple[Any, ...], head: dict[int, tuple[int, int]], sinks: list[int],
           inside: list[int], cap1: set[int]) -> list[SlotTerm]:
    """Chain-load terms of the nodes ``inside`` (between the sources of ``head`` and all ``sinks``)
    on every capacity-1 resource, for the subsets {head >= h, tail >= t} over a few thresholds
    (a task far from both ends adds its distance to the offset instead of the least one). Gates:
    nodes after the sources that precede members only through conditional edges (``launch[g]``
    before its GPU-mode experts)."""
    n = tw.n
    tails = [tw.to_sink(s) for s in sinks]
    gated = [y for y in head if tw.cond[y] and tw.dmin[y] > 0]
    out = []
    for r in sorted(set().union(*(tw.usable[x] for x in inside)) & cap1):
        on_r = [x for x in inside if r in tw.usable[x]]
        if not on_r:
            continue
        hd = {x: head[x][0] for x in on_r}
        tl = {x: min(t[x] for t in tails) - tw.dmin[x] for x in on_r}
        cand = [y for y in gated if y not in hd and r in tw.always[y]]
        best: dict[frozenset[int], SlotTerm] = {}
        for th in _levels(list(hd.values())):
            for tt in _levels(list(tl.values())):
                sub = [x for x in on_r if hd[x] >= th and tl[x] >= tt]
                if not sub:
                    continue
                key = frozenset(sub)
                h0 = min(hd[x] for x in sub)
                gates = []
                for y in cand:
                    lits = tuple(sorted({lit for v, lit in tw.cond[y] if v in key}))
                    if lits and head[y][0] >= h0:
                        gates.append((y % n, tw.dmin[y], lits))
                off = h0 + min(tl[x] for x in sub)
                if key not in best or best[key].offset_ns < off:
                    best[key] = SlotTerm(var, r, tuple(x % n for x in sub), off, tuple(gates))
        out += best.values()
    return out


def _gap(tw: _Twice, dag, start: int, sinks: list[int]) -> tuple[int, tuple[tuple[int, str, int], ...]]:
    """``min_{s in sinks} dist(start -> s)`` and the multi-mode tasks on one longest path to every
    sink (their extra duration in a longer mode lengthens every one of those paths)."""
    fwd = tw.from_sources([start])
    common: set[int] | None = None
    for s in sinks:
        on, t = set(), fwd[s][1]
        while t != -1:
            on.add(t)
            t = fwd[t][1]
        common = on if common is None else common & on
    n = tw.n
    extras = tuple((i % n, m, c.duration_ns - tw.dmin[i]) for i in sorted(common or ()) if dag.tasks[i % n].has_choice
                   for m, c in dag.tasks[i % n].modes.items() if c.duration_ns > tw.dmin[i])
    return min(fwd[s][0] for s in sinks), extras


def slot_bounds(problem: PeriodicProblem) -> SlotBounds:
    """The slot relaxation's constraints; each holds in every periodic schedule, whatever the modes.

    Notation (on two consecutive iterations, :class:`_Twice`). Slot j = (layer l, micro-batch m);
    S_j its ``sched`` tasks (every sched[g] waits for every router's AllGather) and ``a_j`` their
    earliest start; j+1 the micro-batch's next slot (layer l+1, or layer 0 of the next iteration,
    ``a`` shifted by Lambda); R_{j,g} = ``reduce[g]`` of slot j, ``r_{j,g}`` its start.

    1. *Sync to sync* ``D_j = a_{j+1} - a_j``. Every task x that descends from some s in S_j and
       precedes every s' in S_{j+1} starts at or after ``a_j + head(x)`` (longest path from its
       ancestors in S_j) and ends at or before ``a_{j+1} - tail(x)`` (the least, over s', longest
       path to s'). Those holding a capacity-1 resource run one at a time (copies of one
       iteration never overlap modulo Lambda), so ``D_j >= min head + their durations + min tail``.
       On ``pim[g]`` that is all of the slot's PIM experts on g; on ``gpu[g]`` the GPU experts
       and the next slot's reduce, QKV, O-proj and router: the busiest GPU of *each slot*, not
       of the sum over slots. A task y reaching them only by conditional edges (``launch[g]``
       before GPU-mode experts) joins the set when one of those edges is active.
    2. *Cycle.* ``sum_l D_{(l, m)} = a_{(0, m)} + Lambda - a_{(0, m)} = Lambda`` for every m.
    3. *GPU windows.* The same on ``[a_j, r_{j,g})`` (tasks that descend from S_j and precede
       R_{j,g}: the experts holding GPU g's tokens) bounds ``W_{j,g} = r_{j,g} - a_j`` (>= 0: R
       must descend from S_j), and ``C_{j,g} = a_{j+1} - r_{j,g} >= min_{s'} dist(R -> s')``, with the
       chosen modes of the multi-mode tasks on every such longest path; ``D_j = W + C``.
    4. *Overlap.* A task that descends from (or is) R_{j,g} and precedes every s' in S_{j+1}
       lies in the arc ``[r_{j,g}, a_{j+1})``: outside every window of its micro-batch on GPU g
       modulo Lambda (windows and gaps of one micro-batch tile the superperiod). Let k(t) count
       the micro-batches whose GPU-g window holds t (mod Lambda). A capacity-1 resource runs such
       *dense* tasks only where k(t) < M, and ``sum_m |W^m| = int k dt <= M Lambda - |{k < M}|``;
       so ``dense load <= M Lambda - sum_j W_{j,g}``: with M = 2, where both micro-batches are
       in their expert phases GPU g runs no attention, projection, router or reduce work.

    Only unconditional edges and shortest modes enter the constants; chosen modes enter as the
    explicit mode terms above. Tested against proven optima (``tests/test_periodic_bounds.py``).
    """
    dag = problem.dag
    tw = _Twice(problem)
    n = tw.n
    cap1 = {r.rid for r in dag.resources if r.capacity == 1}
    L, M = problem.window_layers, problem.microbatches
    sched: dict[tuple[int, int], list[int]] = {}
    reduce: dict[tuple[int, int], list[int]] = {}
    for t in dag.tasks:
        if t.kind == "sched":
            sched.setdefault((t.layer, t.microbatch), []).append(t.tid)
        elif t.kind == "reduce":
            reduce.setdefault((t.layer, t.microbatch), []).append(t.tid)
    terms: list[SlotTerm] = []
    gaps: dict[tuple[int, int, int], tuple[int, tuple[tuple[int, str, int], ...]]] = {}
    cycles: list[tuple[tuple[int, int], ...]] = []
    dense: dict[tuple[int, int], set[int]] = {}
    windows: dict[int, set[tuple[int, int]]] = {}
    for m in range(M):
        slots = [(li, m) for li in range(L)]
        if any(not sched.get(j) for j in slots):
            continue
        complete = True
        for li, j in enumerate(slots):
            src = sched[j]
            nxt = sched[slots[li + 1]] if li + 1 < L else [s + n for s in sched[slots[0]]]
            head = tw.from_sources(src)
            inside = [x for x in head if x not in src and all((tw.anc[s] >> x) & 1 for s in nxt)]
            dterms = _terms(tw, dag, ("D", *j), head, nxt, inside, cap1)
            complete &= bool(dterms)
            terms += dterms
            for R in reduce.get(j, []):
                g = dag.tasks[R].gpu
                if R not in head or not all((tw.anc[s] >> R) & 1 for s in nxt):
                    continue  # the window needs r >= a, the gap r <= a_{j+1}
                win = [x for x in head if x not in src and x != R and (tw.anc[R] >> x) & 1]
                terms += _terms(tw, dag, ("W", *j, g), head, [R], win, cap1)
                gaps[(*j, g)] = _gap(tw, dag, R, nxt)
                windows.setdefault(g, set()).add(j)
                arc = [x for x in range(2 * n) if (x == R or (tw.desc[R] >> x) & 1) and all((tw.anc[s] >> x) & 1 for s in nxt)]
                for x in arc:
                    for r in {r for c in dag.tasks[x % n].modes.values() for r in c.resources if c.duration_ns > 0} & cap1:
                        dense.setdefault((g, r), set()).add(x % n)
        if complete:
            cycles.append(tuple(slots))
    all_slots = {(li, m) for li in range(L) for m in range(M)}
    dense_out = {k: tuple(sorted(v)) for k, v in dense.items() if windows.get(k[0]) == all_slots}
    return SlotBounds(tuple(terms), gaps, tuple(cycles), dense_out, M)



def slot_slacks_ns(sb: SlotBounds, ps: PeriodicSchedule, problem: PeriodicProblem) -> list[tuple[str, int]]:
    """Every constraint of ``sb`` evaluated on the periodic schedule ``ps`` with its own arcs
    (``a_j``: earliest scheduler start of slot j; D, W, C as in :func:`slot_bounds`): a list of
    (constraint, slack ns), every slack >= 0 when the constraints hold for ``ps``."""
    dag = problem.dag
    lam = int(ps.superperiod_ns)
    d = {t.tid: t.modes[ps.modes[t.tid]].duration_ns for t in dag.tasks}
    holds = {t.tid: t.modes[ps.modes[t.tid]].resources for t in dag.tasks}
    a: dict[tuple[int, int], int] = {}
    start_r: dict[tuple[int, int, int], int] = {}
    for t in dag.tasks:
        if t.kind == "sched":
            j = (t.layer, t.microbatch)
            a[j] = min(a.get(j, 1 << 62), int(ps.start_ns[t.tid]))
        elif t.kind == "reduce":
            start_r[(t.layer, t.microbatch, t.gpu)] = int(ps.start_ns[t.tid])
    L = problem.window_layers
    val: dict[tuple[Any, ...], int] = {}
    for (li, mb) in a:
        nxt = a[(li + 1, mb)] if li + 1 < L else a[(0, mb)] + lam
        val[("D", li, mb)] = nxt - a[(li, mb)]
    for k, r in start_r.items():
        if k[:2] in a:
            val[("W", *k)] = r - a[k[:2]]
    out: list[tuple[str, int]] = []
    for term in sb.terms:
        work = sum(d[i] for i in term.tasks if term.resource in holds[i])
        work += sum(dy for _, dy, lits in term.gates if any(ps.modes[i] == m for i, m in lits))
        out.append((f"{term.var} on {dag.resources[term.resource].name}", val[term.var] - term.offset_ns - work))
    for (li, mb, g), (off, extras) in sb.gaps.items():
        c = off + sum(x for i, m, x in extras if ps.modes[i] == m)
        out.append((f"C{(li, mb, g)}", val[("D", li, mb)] - val[("W", li, mb, g)] - c))
        out.append((f"W{(li, mb, g)} >= 0", val[("W", li, mb, g)]))
    for slots in sb.cycles:
        out.append((f"cycle {slots}", lam - sum(val[("D", *j)] for j in slots)))
    for (g, r), tasks in sb.dense.items():
        load = sum(d[i] for i in tasks if r in holds[i])
        wins = sum(val[("W", li, mb, gg)] for (li, mb, gg) in sb.gaps if gg == g)
        out.append((f"overlap gpu {g} on {dag.resources[r].name}", sb.microbatches * lam - load - wins))
    return out


__all__ = ["ChainCut", "SlotBounds", "SlotTerm", "chain_cuts", "cut_slack_ns", "slot_bounds", "slot_slacks_ns", "stretch"]
