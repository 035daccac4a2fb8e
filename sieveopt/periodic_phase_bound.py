"""Joint-phase path relaxation: a lower bound on the superperiod of two micro-batches (issue 11).

The load bound sums each resource over the whole superperiod; it does not see *when* in the
cycle a micro-batch's work can run. This relaxation gives each micro-batch a common time line
of 2L phases and lets the two micro-batches share every resource state by state.

Boundaries (per micro-batch m, positions p = 0 .. 2L-1 of its cycle, on two consecutive
iterations so the last layer runs into the next iteration's first; proofs inline):

* ``b_{2l}   = min start of qkv[*]@(l, m)``  (``Q``-type: the earliest start of a set),
* ``b_{2l+1} = max end of router[*]@(l, m)`` (``R``-type: the latest end of a set),

and ``b_{p + 2L} = b_p + Lambda`` (copy 1 of a periodic schedule is copy 0 shifted by Lambda).
Phase p is ``[b_p, b_{p+1})``: phase 2l is the *dense* phase of layer l (every qkv .. router
of layer l lies in it), phase 2l+1 the *expert* phase after the AllGather barrier (every
scheduler, dispatch, expert, combine of layer l starts in it or later).

Classification (:func:`phase_map`). With ``D(a, b)`` the longest unconditional path from the
start of a to the start of b (shortest modes, lags included; edges hold under every mode and
durations are at least the shortest mode's):

* a task x that is, or descends from, *some* node of a Q-set starts at or after its min start;
  one that strictly descends from *every* node of an R-set starts at or after its max end;
* a task that is, or precedes, *some* node of an R-set ends at or before its max end; one that
  strictly precedes *every* node of a Q-set ends at or before its min start.

So with ``lo`` the largest position of the first kind and ``hi`` the smallest later position
of the second kind, x runs inside ``[b_lo, b_hi]``: in phases lo .. hi-1 (mod 2L); when
``hi - lo >= 2L`` (or either is unknown) it may lie in any phase. Every micro-batch's cycle is
the 2L consecutive phases (their lengths are >= 0 when ``sep`` below proves each boundary
after the previous one, else the construction reports it does not apply).

Separations ``b_q - b_p >= sep(p, q)`` for ``p < q <= p + 2L`` (one micro-batch): with a* the
node realising ``b_p`` (argmin start or argmax end) and every node of the other set bounded
through a* by its longest path:

* Q -> R: ``min_a max_b (D(a, b) + dmin_b)``; R -> Q: ``min_{a,b} (D(a, b) - dmin_a)``;
* R -> R: ``min_a max_b (D(a, b) - dmin_a + dmin_b)``; Q -> Q: ``min_{a,b} D(a, b)``
  (a min over pairs only when every pair has a path, a max over those b that have one).

Joint states (:func:`cyclic_paths`). Put the origin of the circle [0, Lambda) at micro-batch
A's boundary 0. In (0, Lambda] A crosses its boundaries 1 .. 2L (the last one at Lambda) and B
crosses exactly 2L boundaries (its boundaries repeat every Lambda), in some order; between two
consecutive crossings the pair (phase of A, phase of B) is constant. So a periodic schedule
defines a *path*: B's phase at the origin (2L choices) and an interleaving of the first 4L - 1
crossings, 2L - 1 of A's and 2L of B's (ties in any order, the states between them of length 0):
``2L * C(4L-1, 2L-1)`` paths (140 for L = 2), each of 4L states.

LP of a path (:func:`path_lp`): every periodic schedule following the path gives a feasible
point with objective ``Lambda``:

* ``tau_s >= 0`` the length of state s, ``Lambda = sum_s tau_s``; phase k of m lasts
  ``sum of tau_s over the states where m is in phase k``;
* ``u_{x,k}`` the mode of x (1 for the chosen mode, relaxed to [0, 1]);
* per micro-batch m, group of tasks with the same allowed phases, and resource r, ``y_{g,r,s}``
  the part of the group's work on r processed in state s (only states in its allowed phases:
  the classification), ``sum_s y_{g,r,s} = sum_{x in g} sum_k d_{x,k} u_{x,k} [r held in k]``;
* capacity: in each state, ``sum_g y_{g,r,s} <= capacity_r tau_s`` over both micro-batches
  (copies of one iteration never overlap modulo Lambda; splitting a task's work over states is
  preemption, a relaxation);
* ``sum of the phase lengths p .. q-1 >= sep(p, q)``;
* window loads (:func:`window_cuts`): the tasks of m whose phases lie in p .. q-1 and hold r
  run one at a time in ``[b_p + head, b_q - tail]`` (head: least longest path from the
  boundary set p to their start, tail: from their end to the set q, as in the chain-load
  cuts), so ``phases p .. q-1 >= head + their work on r + tail``, for a few head/tail levels.

The bound is ``min over all paths`` of the LP optimum (rounded down, 1e-6 relative slack for
HiGHS's tolerances); a path whose LP is infeasible admits no schedule. It is valid for M = 2;
for any other M (or a DAG whose boundaries are not provably ordered) it reports that it does
not apply and returns no bound.

Measured (``benchmarks/phase_path_bound.py``, docs/design-notes/overlap.md "Round 7"): on the
four multi-GPU target rows it is at or below the load bound, and so is its integer variant
(an integral mode set is a feasible point of every path's MIP, and at Sieve's or the
load-optimal modes the path LP equals their busiest load). Most experts, every combine and
reduce may run in the next dense phase (no global barrier on the combine side), and
preemption lets the other micro-batch fill every state. It is an API, not part of the 60 s
exact pipeline.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from sieveopt.periodic import PeriodicProblem, PeriodicSchedule
from sieveopt.periodic_bounds import _levels, _Twice
from sieveopt.solvers.interruptible import run_interruptible

#: relative slack taken off an LP optimum before rounding (HiGHS's feasibility tolerances)
LP_REL_SLACK = 1e-6



@dataclass(frozen=True)
class PhaseMap:
    """Phase boundaries, each task's allowed phases and the boundary separations (module doc).

    ``boundary[(m, p)]`` for p in 0 .. 4L-1: (twice-graph nodes, "Q" min start | "R" max end);
    ``mb[t]`` task t's micro-batch; ``lo[t]``, ``hi[t]``: positions (``-1`` unknown);
    ``allowed[t]``: phases of task t (all 2L when unconstrained); ``sep[(m, p, q)]``: lower bound
    on ``b_q - b_p`` (ns); ``head[t]`` / ``tail[t]``: least time from ``b_lo`` to t's start /
    from t's end to ``b_hi``."""

    phases: int
    boundary: dict[tuple[int, int], tuple[tuple[int, ...], str]]
    mb: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    allowed: tuple[tuple[int, ...], ...]
    sep: dict[tuple[int, int, int], int]
    head: tuple[int, ...]
    tail: tuple[int, ...]

    def constrained(self, t: int) -> bool:
        return len(self.allowed[t]) < self.phases


def _boundary_sets(problem: PeriodicProblem, n: int, gpu: int | None = None,
                   ) -> dict[tuple[int, int], tuple[tuple[int, ...], str]] | None:
    dag, L = problem.dag, problem.window_layers
    sets: dict[tuple[str, int, int], list[int]] = {}
    for t in dag.tasks:
        if t.kind == "router" or (t.kind == "qkv" and (gpu is None or t.gpu == gpu)):
            sets.setdefault((str(t.kind), t.layer, t.microbatch), []).append(t.tid)
    out = {}
    for m in range(problem.microbatches):
        for p in range(4 * L):
            c, k = divmod(p, 2 * L)
            kind = "qkv" if k % 2 == 0 else "router"
            nodes = sets.get((kind, k // 2, m))
            if not nodes:
                return None
            out[(m, p)] = (tuple(x + c * n for x in nodes), "Q" if k % 2 == 0 else "R")
    return out


def _separation(dist: dict[int, dict[int, int]], dmin: list[int], src: tuple[tuple[int, ...], str],
                dst: tuple[tuple[int, ...], str]) -> int | None:
    """Lower bound on ``b_dst - b_src`` (module docstring), None when the DAG gives none."""
    (a_nodes, ta), (b_nodes, tb) = src, dst
    vals = []
    for a in a_nodes:
        off = dmin[a] if ta == "R" else 0  # D is measured from a's start; R-sets from their ends
        if tb == "R":  # the node a* realising b_src reaches some b: b_dst >= e_b
            reach = [dist[a][b] + dmin[b] - off for b in b_nodes if b in dist[a]]
            if not reach:
                return None
            vals.append(max(reach))
        else:  # b_dst is the start of some b: every b must be reached
            if any(b not in dist[a] for b in b_nodes):
                return None
            vals.append(min(dist[a][b] - off for b in b_nodes))
    return min(vals)


def phase_map(problem: PeriodicProblem, gpu: int | None = None) -> tuple[PhaseMap | None, str]:
    """The phase classification of ``problem`` (module docstring), or (None, why it does not apply).
    ``gpu``: the Q-sets hold that GPU's qkv only (its own dense start; the proofs hold for any
    non-empty Q-set)."""
    if problem.microbatches != 2:
        return None, f"the joint-phase path relaxation needs M = 2 micro-batches (M = {problem.microbatches})"
    if any(e.lag_ns < 0 for e in (*problem.dag.edges, *problem.recurrences)):
        return None, "an edge has a negative lag (a descendant could start before its ancestor ends)"
    tw = _Twice(problem)
    n, P = tw.n, 2 * problem.window_layers
    bset = _boundary_sets(problem, n, gpu)
    if bset is None:
        return None, "a slot has no qkv or router task"
    dist: dict[int, dict[int, int]] = {}
    for (_m, p), (nodes, _) in bset.items():
        if p < P:
            for a in nodes:
                dist[a] = {k: v[0] for k, v in tw.from_sources([a]).items()}
    sep: dict[tuple[int, int, int], int] = {}
    for m in range(2):
        for p in range(P):
            for q in range(p + 1, p + P + 1):
                s = _separation(dist, tw.dmin, bset[(m, p)], bset[(m, q)])
                if q == p + 1 and (s is None or s < 0):
                    return None, f"boundary {p + 1} of micro-batch {m} is not provably after boundary {p}"
                if s is not None and s > 0:
                    sep[(m, p, q)] = s
    lo, hi, allowed, head, tail = [], [], [], [], []
    for t in problem.dag.tasks:
        m, x = t.microbatch, t.tid
        lo_x = -1
        for p in range(P):
            nodes, kind = bset[(m, p)]
            if kind == "Q":
                ok = any(a == x or (tw.desc[a] >> x) & 1 for a in nodes)
            else:
                ok = all(a != x and (tw.desc[a] >> x) & 1 for a in nodes)
            if ok:
                lo_x = p
        hi_x = -1
        if lo_x >= 0:
            for q in range(lo_x + 1, lo_x + P + 1):
                nodes, kind = bset[(m, q)]
                if kind == "R":
                    ok = any(b == x or (tw.anc[b] >> x) & 1 for b in nodes)
                else:
                    ok = all(b != x and (tw.anc[b] >> x) & 1 for b in nodes)
                if ok:
                    hi_x = q
                    break
        if lo_x < 0 or hi_x < 0 or hi_x - lo_x >= P:
            lo.append(-1)
            hi.append(-1)
            allowed.append(tuple(range(P)))
            head.append(0)
            tail.append(0)
            continue
        lo.append(lo_x)
        hi.append(hi_x)
        allowed.append(tuple(sorted({k % P for k in range(lo_x, hi_x)})))
        nodes, kind = bset[(m, lo_x)]
        if all(x in dist[a] for a in nodes):  # s_x >= s_a + D(a, x) (Q) or e_a + D(a, x) - dmin_a (R)
            head.append(max(0, min(dist[a][x] - (tw.dmin[a] if kind == "R" else 0) for a in nodes)))
        else:
            head.append(0)
        nodes, kind = bset[(m, hi_x)]
        if kind == "R":  # b_hi >= e_b >= e_x + D(x, b) - dmin_x + dmin_b for every b that x precedes
            vals = [0 if b == x else tw.to_sink(b)[x] - tw.dmin[x] + tw.dmin[b] for b in nodes
                    if b == x or x in tw.to_sink(b)]
            tail.append(max(0, max(vals)))
        else:  # b_hi = min_b s_b, every b preceded: s_b >= e_x + D(x, b) - dmin_x
            tail.append(max(0, min(tw.to_sink(b)[x] - tw.dmin[x] for b in nodes)))
    pm = PhaseMap(P, bset, tuple(t.microbatch for t in problem.dag.tasks), tuple(lo), tuple(hi),
                  tuple(allowed), sep, tuple(head), tuple(tail))
    return pm, ""


def cyclic_paths(phases: int) -> list[tuple[tuple[int, int], ...]]:
    """Every joint-state path of two micro-batches with ``phases`` phases each (module docstring):
    2 * phases states (phase of A, phase of B), the first with A entering phase 0."""
    n_ev = 2 * phases - 1
    out = []
    for b0 in range(phases):
        for a_pos in itertools.combinations(range(n_ev), phases - 1):
            a, b, states = 0, b0, [(0, b0)]
            aset = set(a_pos)
            for i in range(n_ev):
                if i in aset:
                    a += 1
                else:
                    b = (b + 1) % phases
                states.append((a, b))
            out.append(tuple(states))
    return out


def boundary_times(pm: PhaseMap, ps: PeriodicSchedule) -> list[list[int]]:
    """``b[m][p]`` (ns) for p in 0 .. 2L of a periodic schedule (copy 1 = copy 0 + Lambda)."""
    n, lam = len(ps.modes), int(ps.superperiod_ns)
    out = []
    for m in range(2):
        row = []
        for p in range(pm.phases + 1):
            nodes, kind = pm.boundary[(m, p)]
            if kind == "Q":
                row.append(min(int(ps.start_ns[x % n]) + (x // n) * lam for x in nodes))
            else:
                row.append(max(int(ps.end_ns[x % n]) + (x // n) * lam for x in nodes))
        out.append(row)
    return out


def path_of_boundaries(a_ns: list[int], b_ns: list[int], lam: int) -> tuple[tuple[tuple[int, int], ...], list[int]]:
    """The joint-state path (origin at A's boundary 0) and its state lengths (ns) of two
    micro-batches whose boundaries are ``a_ns[p]``, ``b_ns[p]`` (p = 0 .. 2L-1, non-decreasing,
    ``b[p + 2L] = b[p] + lam``). Ties: A's crossing first, B's in its own cyclic order."""
    P = len(a_ns)
    origin = a_ns[0]
    crossings = sorted(((b_ns[p] + k * lam - origin, k, p) for k in range(-2, 3) for p in range(P)),
                       key=lambda c: (c[1], c[2]))  # cyclic order; time-monotone
    b0 = [p for t, _, p in crossings if t <= 0][-1]  # B's phase at the origin
    events = [(a_ns[p] - origin, 0, 0, p) for p in range(1, P)]
    events += [(t, 1, k, p) for t, k, p in crossings if 0 < t <= lam]
    events.sort()
    states, lengths, last, a, bp = [(0, b0)], [], 0, 0, b0
    for t, who, _, p in events:
        lengths.append(t - last)
        last = t
        if who == 0:
            a = p
        else:
            bp = p
        states.append((a, bp))
    lengths.append(lam - last)
    return tuple(states), lengths


def schedule_path(pm: PhaseMap, ps: PeriodicSchedule) -> tuple[tuple[tuple[int, int], ...], list[int]]:
    """The path a periodic schedule follows and its state lengths (ns), origin at A's boundary 0."""
    b = boundary_times(pm, ps)
    return path_of_boundaries(b[0][:pm.phases], b[1][:pm.phases], int(ps.superperiod_ns))


def classification_violations(pm: PhaseMap, ps: PeriodicSchedule,
                              allowed: tuple[tuple[int, ...], ...] | None = None) -> list[str]:
    """Tasks of ``ps`` outside the union of their allowed phases (``allowed`` overrides the map's):
    empty when the classification holds on this schedule. A task of iteration 0 may lie in its
    phases of any cycle (boundaries shifted by multiples of Lambda)."""
    allowed = pm.allowed if allowed is None else allowed
    lam, P = int(ps.superperiod_ns), pm.phases
    b = boundary_times(pm, ps)
    bad = []
    for x, ph in enumerate(allowed):
        s, e = int(ps.start_ns[x]), int(ps.end_ns[x])
        if e == s or len(ph) == P:
            continue
        m, ok = pm.mb[x], False
        runs = [k for k in ph if (k - 1) % P not in ph]  # starts of maximal runs of allowed phases
        for k in runs:
            j = k
            while (j + 1) % P in ph:
                j += 1
            lo_t = b[m][k]
            hi_t = b[m][(j + 1) % P] + ((j + 1) // P) * lam
            if hi_t < lo_t:
                hi_t += lam
            for c in range(-2, 3):
                if lo_t + c * lam <= s and e <= hi_t + c * lam:
                    ok = True
        if not ok:
            bad.append(f"task {x} in [{s}, {e}) outside phases {ph} of micro-batch {m}")
    return bad


# --------------------------------------------------------------------------------------------
# The LP of one path.


@dataclass
class _Model:
    """Path-independent data of the LP (us, floats): mode variables, work groups, windows."""

    phases: int
    n_u: int
    u_rows: list[list[int]]                                   # per multi-mode task: its u columns
    groups: list[tuple[int, tuple[int, ...], int, float, dict[int, float]]]  # (m, phases, r, const, {u: coeff})
    caps: dict[int, int]
    sep: list[tuple[int, int, int, float]]                    # (m, p, q, us)
    cuts: list[tuple[int, int, int, float, dict[int, float]]]  # (m, p, q, const us, {u: coeff}) <= window


US = 1e-3  # the LP works in microseconds (better scaled than ns)


def _work_terms(dag: Any, t: Any, u_of: dict[tuple[int, str], int]) -> dict[int, tuple[float, dict[int, float]]]:
    """Resource -> (constant us, {u column: us}) of task t's work (modes relaxed)."""
    out: dict[int, tuple[float, dict[int, float]]] = {}
    for mode, c in t.modes.items():
        if c.duration_ns <= 0:
            continue
        for r in c.resources:
            const, coef = out.get(r, (0.0, {}))
            if t.has_choice:
                coef = dict(coef)
                coef[u_of[(t.tid, mode)]] = coef.get(u_of[(t.tid, mode)], 0.0) + c.duration_ns * US
                out[r] = (const, coef)
            else:
                out[r] = (const + c.duration_ns * US, coef)
    return out


def window_cuts(pm: PhaseMap, dag: Any, work: list[dict[int, tuple[float, dict[int, float]]]],
                max_width: int = 2, levels: int = 3) -> list[tuple[int, int, int, float, dict[int, float]]]:
    """Window loads (module docstring): for every micro-batch m, window of phases p .. q-1
    (``q - p <= max_width``) and capacity-1 resource r, the tasks of m inside the window that can
    hold r, for the subsets {head >= h, tail >= t} over a few levels: ``h + work + t <= window``.
    Head of x from ``b_p``: its own head plus ``sep(p, lo)`` when lo > p (``b_lo >= b_p + sep``);
    tail likewise."""
    P = pm.phases
    cap1 = {r.rid for r in dag.resources if r.capacity == 1}
    out = []
    for m in range(2):
        for p in range(P):
            for q in range(p + 1, p + max_width + 1):
                inside: list[tuple[int, int, int]] = []  # (task, head, tail)
                for x in range(len(pm.lo)):
                    if pm.mb[x] != m or not pm.constrained(x):
                        continue
                    for c in (0, 1):
                        lo, hi = pm.lo[x] + c * P, pm.hi[x] + c * P
                        if p <= lo and hi <= q:
                            h = pm.head[x] + (pm.sep.get((m, p, lo), 0) if lo > p else 0)
                            t = pm.tail[x] + (pm.sep.get((m, hi % P, q - (hi - hi % P)), 0) if hi < q else 0)
                            inside.append((x, h, t))
                            break
                for r in sorted(cap1):
                    on_r = [(x, h, t) for x, h, t in inside if r in work[x]]
                    if not on_r:
                        continue
                    seen: set[frozenset[int]] = set()
                    for th in _levels([h for _, h, _ in on_r], levels):
                        for tt in _levels([t for _, _, t in on_r], levels):
                            sub = [x for x, h, t in on_r if h >= th and t >= tt]
                            key = frozenset(sub)
                            if not sub or key in seen or th + tt == 0:
                                continue
                            seen.add(key)
                            const, coef = (th + tt) * US, {}
                            for x in sub:
                                c0, cf = work[x][r]
                                const += c0
                                for k, v in cf.items():
                                    coef[k] = coef.get(k, 0.0) + v
                            out.append((m, p, q, const, coef))
    return out


def window_cut_slacks_ns(problem: PeriodicProblem, pm: PhaseMap, ps: PeriodicSchedule,
                         max_width: int = 2) -> list[float]:
    """``b_q - b_p - (head + work + tail)`` of every window cut evaluated on the periodic schedule
    ``ps`` (its boundaries and modes): all >= 0 when the cuts hold for it (a test aid)."""
    md = _model(problem, pm, max_width)
    u = mode_columns(problem, ps.modes)
    b = boundary_times(pm, ps)
    lam, P = int(ps.superperiod_ns), pm.phases
    out = []
    for m, p, q, c0, cf in md.cuts:
        span = b[m][q % P] + (q // P) * lam - b[m][p]
        out.append(span - (c0 + sum(v * u[k] for k, v in cf.items())) / US)
    return out


def _model(problem: PeriodicProblem, pm: PhaseMap, cut_width: int) -> _Model:
    dag = problem.dag
    u_of: dict[tuple[int, str], int] = {}
    u_rows = []
    for t in dag.tasks:
        if t.has_choice:
            u_rows.append([])
            for mode in t.modes:
                u_of[(t.tid, mode)] = len(u_of)
                u_rows[-1].append(u_of[(t.tid, mode)])
    work = [_work_terms(dag, t, u_of) for t in dag.tasks]
    caps = {r.rid: r.capacity for r in dag.resources}
    agg: dict[tuple[int, tuple[int, ...], int], tuple[float, dict[int, float]]] = {}
    for t in dag.tasks:
        for r, (c0, cf) in work[t.tid].items():
            key = (pm.mb[t.tid], pm.allowed[t.tid], r)
            const, coef = agg.get(key, (0.0, {}))
            coef = dict(coef)
            for k, v in cf.items():
                coef[k] = coef.get(k, 0.0) + v
            agg[key] = (const + c0, coef)
    groups = [(m, ph, r, c0, cf) for (m, ph, r), (c0, cf) in sorted(agg.items())]
    sep = [(m, p, q, v * US) for (m, p, q), v in sorted(pm.sep.items())]
    cuts = window_cuts(pm, dag, work, max_width=cut_width) if cut_width > 0 else []
    return _Model(pm.phases, len(u_of), u_rows, groups, caps, sep, cuts)


def _path_columns(md: _Model, path: tuple[tuple[int, int], ...]) -> tuple[list[list[list[int]]],
                                                                         list[list[tuple[int, int]]], int]:
    """Column layout of :func:`path_lp`: ``in_phase[m][k]`` (the states where m is in phase k),
    per group its (state, y column) pairs, and the column count (tau: 0 .. S-1, u: S .. S+nu-1,
    then the y columns)."""
    S, P = len(path), md.phases
    in_phase = [[[s for s in range(S) if path[s][m] == k] for k in range(P)] for m in range(2)]
    y_cols: list[list[tuple[int, int]]] = []
    col = S + md.n_u
    for m, ph, _r, _c, _cf in md.groups:
        states = sorted(s for k in ph for s in in_phase[m][k])
        y_cols.append(list(zip(states, range(col, col + len(states)), strict=True)))
        col += len(states)
    return in_phase, y_cols, col


@dataclass(frozen=True)
class PathPrimal:
    """The optimal point of one path's LP (:func:`path_lp_primal`), in microseconds:
    ``tau_us[s]`` the length of state s, ``work_us[g]`` the (state, work) pairs of group g of
    ``groups`` (``(micro-batch, allowed phases, resource)``, the order of the model's groups)."""

    path: tuple[tuple[int, int], ...]
    value_us: float
    tau_us: tuple[float, ...]
    groups: tuple[tuple[int, tuple[int, ...], int], ...]
    work_us: tuple[tuple[tuple[int, float], ...], ...]


def path_lp_primal(md: _Model, path: tuple[tuple[int, int], ...],
                   u_fixed: dict[int, float] | None = None) -> PathPrimal | None:
    """:func:`path_lp` (the LP, not the MIP) with its optimal point decoded (None when the path
    is infeasible): the *fluid timeline* of the relaxation (state lengths and each group's work
    per state), read by :mod:`sieveopt.periodic_fluid`."""
    v, res = path_lp(md, path, u_fixed)
    if math.isinf(v):
        return None
    x = np.asarray(res.x, dtype=float)
    S = len(path)
    _, y_cols, _ = _path_columns(md, path)
    return PathPrimal(path, v, tuple(float(t) for t in x[:S]),
                      tuple((m, ph, r) for m, ph, r, _c, _cf in md.groups),
                      tuple(tuple((s, float(x[c])) for s, c in cols) for cols in y_cols))


def path_lp(md: _Model, path: tuple[tuple[int, int], ...], u_fixed: dict[int, float] | None = None,
            integral_s: float | None = None) -> tuple[float, Any]:
    """Optimum (us, ``inf`` when infeasible) of the LP of ``path`` (module docstring) and its
    ``linprog`` result. ``integral_s``: binary modes instead (HiGHS MIP via ``milp``, that many
    seconds); the value is then the MIP's dual bound, valid for this path even when time ran out."""
    S, P, nu = len(path), md.phases, md.n_u
    in_phase, y_cols, n = _path_columns(md, path)
    eq_r, eq_c, eq_v, b_eq = [], [], [], []
    ub_r, ub_c, ub_v, b_ub = [], [], [], []
    row = 0
    for cols in md.u_rows:
        for c in cols:
            eq_r.append(row)
            eq_c.append(S + c)
            eq_v.append(1.0)
        b_eq.append(1.0)
        row += 1
    cap_rows: dict[tuple[int, int], list[int]] = {}
    for gi, (_m, _ph, r, c0, cf) in enumerate(md.groups):
        for s, c in y_cols[gi]:
            eq_r.append(row)
            eq_c.append(c)
            eq_v.append(1.0)
            cap_rows.setdefault((r, s), []).append(c)
        for k, v in cf.items():
            eq_r.append(row)
            eq_c.append(S + k)
            eq_v.append(-v)
        b_eq.append(c0)
        row += 1
    urow = 0
    for (r, s), cols in cap_rows.items():
        for c in cols:
            ub_r.append(urow)
            ub_c.append(c)
            ub_v.append(1.0)
        ub_r.append(urow)
        ub_c.append(s)
        ub_v.append(-float(md.caps[r]))
        b_ub.append(0.0)
        urow += 1

    def window(m: int, p: int, q: int) -> list[int]:
        if q - p >= P:
            return list(range(S))
        return sorted(s for k in range(p, q) for s in in_phase[m][k % P])

    for m, p, q, v in md.sep:
        for s in window(m, p, q):
            ub_r.append(urow)
            ub_c.append(s)
            ub_v.append(-1.0)
        b_ub.append(-v)
        urow += 1
    for m, p, q, c0, cf in md.cuts:
        for s in window(m, p, q):
            ub_r.append(urow)
            ub_c.append(s)
            ub_v.append(-1.0)
        for k, v in cf.items():
            ub_r.append(urow)
            ub_c.append(S + k)
            ub_v.append(v)
        b_ub.append(-c0)
        urow += 1
    cost = np.zeros(n)
    cost[:S] = 1.0
    bounds = [(0, None)] * S + [(0, 1)] * nu + [(0, None)] * (n - S - nu)
    for k, v in (u_fixed or {}).items():
        bounds[S + k] = (v, v)
    a_eq = coo_matrix((eq_v, (eq_r, eq_c)), shape=(row, n)).tocsr() if row else None
    a_ub = coo_matrix((ub_v, (ub_r, ub_c)), shape=(urow, n)).tocsr() if urow else None
    if integral_s is not None:
        integrality = np.zeros(n)
        integrality[S:S + nu] = 1
        cons = [LinearConstraint(a, lb, ub) for a, lb, ub in
                ((a_eq, b_eq, b_eq), (a_ub, -np.inf, np.array(b_ub))) if a is not None]
        box = Bounds([b[0] for b in bounds], [np.inf if b[1] is None else b[1] for b in bounds])
        res = run_interruptible(lambda: milp(cost, integrality=integrality, bounds=box, constraints=cons,  # Ctrl-C
                                             options={"time_limit": integral_s}))
        if res.status == 2:  # infeasible
            return math.inf, res
        dual = getattr(res, "mip_dual_bound", None)
        if dual is None or not np.isfinite(dual):
            raise RuntimeError(f"phase-path MIP: no dual bound (status {res.status}: {res.message})")
        return float(dual), res
    res = run_interruptible(lambda: linprog(cost, A_ub=a_ub, b_ub=np.array(b_ub) if urow else None,  # Ctrl-C
                                            A_eq=a_eq, b_eq=np.array(b_eq) if row else None, bounds=bounds,
                                            method="highs"))
    if res.status == 2:
        return math.inf, res
    if res.status != 0:
        raise RuntimeError(f"phase-path LP: HiGHS ended with status {res.status}: {res.message}")
    return float(res.fun), res


def mode_columns(problem: PeriodicProblem, modes: Any) -> dict[int, float]:
    """The LP's mode columns fixed to ``modes`` (1 for the chosen mode, 0 for the others)."""
    out, k = {}, 0
    for t in problem.dag.tasks:
        if t.has_choice:
            for mode in t.modes:
                out[k] = 1.0 if modes[t.tid] == mode else 0.0
                k += 1
    return out


def phase_path_bound(problem: PeriodicProblem, *, cut_width: int = 2, deadline: float | None = None,
                     modes: Any = None, paths: Any = None, gpu: int | None = None,
                     mip_s: float | None = None) -> tuple[int | None, dict[str, Any]]:
    """Min over every joint-state path of its LP optimum: a lower bound (ns) on the superperiod of
    every periodic schedule of ``problem`` (module docstring), or None with ``info["reason"]`` when
    the construction does not apply (M != 2, boundaries not provably ordered) or ``deadline``
    (``time.perf_counter()``) passed before every path was solved (a partial min is no bound).
    ``modes`` fixes the modes (then it bounds only the schedules in those modes), ``paths``
    restricts the paths (then it bounds only the schedules following one of them): analysis and
    test aids, not a bound on the problem. ``mip_s``: every path's integer variant (binary modes,
    its MIP dual bound after at most that many seconds) instead of its LP; ``gpu``: the
    boundaries of :func:`phase_map` for that GPU."""
    t0 = time.perf_counter()
    pm, why = phase_map(problem, gpu)
    if pm is None:
        return None, {"reason": why, "wall_s": time.perf_counter() - t0}
    md = _model(problem, pm, cut_width)
    u_fixed = None if modes is None else mode_columns(problem, modes)
    build_s = time.perf_counter() - t0
    best, arg, values = math.inf, None, []
    for path in (cyclic_paths(pm.phases) if paths is None else paths):
        if deadline is not None and time.perf_counter() > deadline:
            return None, {"reason": f"deadline: {len(values)} of the paths solved", "wall_s": time.perf_counter() - t0}
        v, _ = path_lp(md, path, u_fixed, integral_s=mip_s)
        values.append(v)
        if v < best:
            best, arg = v, path
    bound = None if math.isinf(best) else int(math.floor(best / US * (1 - LP_REL_SLACK)))
    info = {"reason": "", "paths": len(values), "best_path": arg, "wall_s": time.perf_counter() - t0,
            "build_s": build_s, "cuts": len(md.cuts), "groups": len(md.groups), "mode_columns": md.n_u,
            "path_values_us": sorted(values)[:5]}
    return bound, info


__all__ = ["PathPrimal", "PhaseMap", "boundary_times", "classification_violations", "cyclic_paths", "mode_columns", "path_lp", "path_lp_primal", "phase_map",
           "path_of_boundaries", "phase_path_bound", "schedule_path", "window_cut_slacks_ns", "window_cuts"]
