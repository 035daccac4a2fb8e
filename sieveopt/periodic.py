"""Steady-state pipelined decode as a periodic (modulo) schedule.

Problem. Decode runs the MoE layers one after another, step after step; with M micro-batches in
flight, each *period* every micro-batch advances one layer. Routing differs layer to layer, so
the period is defined over sampled layers: L consecutive sampled layers form a *cyclic window*
(one *iteration* = L layers x M micro-batches, the DAG of :func:`sieveopt.dag.build_window_dag`)
and the schedule repeats that iteration every ``superperiod_ns`` (Lambda). The period reported
(time per layer for the whole batch) is ``Lambda / L``, the average over the window's layers.

A periodic schedule gives every task of iteration 0 a mode and a start ``s_i``; copy k of task i
runs at ``s_i + k * Lambda``. It is valid when

* every edge of the window DAG holds (``s_dst >= e_src + lag``);
* every *recurrence* holds: micro-batch m's next iteration starts after this one leaves the
  window (``s[qkv[g]@L0 m] + Lambda >= e[reduce[g]@L{L-1} m]``, iteration distance 1);
* every resource is used by at most ``capacity`` tasks at once *modulo Lambda* (the copies of
  all iterations do not overlap).

:func:`check_periodic` verifies exactly that; :func:`unroll` turns a periodic schedule into an
ordinary schedule of a K-iteration window (the same cyclic window repeated K times, built by
``build_window_dag``), which :func:`sieveopt.check.check` must accept: the validation the
issue asks for. Its makespan is ``(K - 1) * Lambda + span``, so long unrolled windows converge
to the period (``makespan / (K L) -> Lambda / L``).

Bounds. Every resource is busy for its load ``sum of durations in the chosen modes`` every
Lambda, so ``Lambda >= max_r load_r`` (the ideal-overlap time: Sieve's ``max(T_comm, T_GPU,
T_PIM)`` with every task counted); and by the recurrence ``Lambda >=`` the longest path from
``qkv[g]@L0`` to ``reduce[g]@L{L-1}`` of one micro-batch.

Heuristic: :func:`modulo_list_schedule` (iterative modulo scheduling without backtracking,
Rau 1994): for a trial Lambda, tasks in list-schedule order are placed at the earliest
precedence-ready time at which all their resources are free modulo Lambda; Lambda is searched
upward from the bound, then bisected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt._modulo_numba import (
    NO_START,
    new_table,
    place_in_order,
    reach_longest,
    table_capacity,
    table_earliest,
    table_occupy,
    table_release,
)
from sieveopt.check import (
    CheckReport,
    check,
    check_precedences,
    check_resource_events,
    check_task_times,
    mode_resources,
)
from sieveopt.dag import DagOptions, Edge, TaskDAG, build_window_dag
from sieveopt.execution_model import ExecutionModel
from sieveopt.instance import LayerInstance
from sieveopt.listsched import list_schedule
from sieveopt.models.costmodel import CostModel
from sieveopt.schedule import Schedule

FUSION_NOTE = "none: every micro-batch's GPU GEMMs stream their weights; PIM jobs pay their overhead per micro-batch"


@dataclass(frozen=True, eq=False)
class PeriodicProblem:
    """One iteration (L layers x M micro-batches) and its recurrences."""

    dag: TaskDAG
    window: list[list[LayerInstance]]
    recurrences: tuple[Edge, ...]
    execution: ExecutionModel
    cost: CostModel
    options: DagOptions

    @property
    def window_layers(self) -> int:
        return len(self.window)

    @property
    def microbatches(self) -> int:
        return len(self.window[0])


def _tag(layer: int, mb: int) -> str:
    return f"@L{layer}" + (f"m{mb}" if mb else "")


def build_periodic_problem(window: list[list[LayerInstance]], cost: CostModel, execution: ExecutionModel,
                           options: DagOptions | None = None) -> PeriodicProblem:
    """The cyclic window ``window[l][m]`` as a periodic scheduling problem."""
    opts = options or DagOptions.for_system(window[0][0].system)
    dag = build_window_dag(window, cost, opts)
    L, M, G = len(window), len(window[0]), window[0][0].num_gpus
    rec = []
    for m in range(M):
        for g in range(G):
            src = dag.by_name[f"reduce[{g}]{_tag(L - 1, m)}"]
            dst = dag.by_name[f"qkv[{g}]{_tag(0, m)}"]
            rec.append(Edge(src, dst, 0))
    dag.meta.update({"execution_model": execution.label, "fusion": FUSION_NOTE,
                     "cyclic_window_layers": L, "microbatches": M})
    return PeriodicProblem(dag, window, tuple(rec), execution, cost, opts)


@dataclass(frozen=True, eq=False)
class PeriodicSchedule:
    """Modes and iteration-0 start times; copy k of task i starts at ``start_ns[i] + k * superperiod_ns``."""

    modes: tuple[str, ...]
    start_ns: np.ndarray
    end_ns: np.ndarray
    superperiod_ns: int
    window_layers: int
    policy: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def period_ns(self) -> float:
        """Steady-state time per layer for the whole batch (``Lambda / L``)."""
        return self.superperiod_ns / self.window_layers

    def slot_spans_ns(self, dag: TaskDAG) -> dict[tuple[int, int], int]:
        """(layer, micro-batch) -> time from its first task's start to its last task's end."""
        keys, slot = dag.slot_index
        lo = np.full(len(keys), 1 << 62, dtype=np.int64)
        hi = np.zeros(len(keys), dtype=np.int64)
        np.minimum.at(lo, slot, np.asarray(self.start_ns, dtype=np.int64))
        np.maximum.at(hi, slot, np.asarray(self.end_ns, dtype=np.int64))
        return dict(zip(keys, (hi - lo).tolist(), strict=True))

    def latency_ns(self, dag: TaskDAG) -> float:
        """Mean per-micro-batch layer latency: a token's layer entry (qkv) to its exit (reduce)."""
        spans = self.slot_spans_ns(dag)
        return float(np.mean(list(spans.values())))

    def utilisation(self, dag: TaskDAG) -> dict[str, float]:
        loads = resource_loads_ns(dag, self.modes)
        return {r.name: float(loads[r.rid]) / self.superperiod_ns for r in dag.resources}

    def span_ns(self) -> int:
        return int(self.end_ns.max() - self.start_ns.min()) if len(self.end_ns) else 0

    def to_dict(self, dag: TaskDAG | None = None) -> dict[str, Any]:
        d = {"policy": self.policy, "superperiod_ns": self.superperiod_ns, "period_ns": self.period_ns,
             "window_layers": self.window_layers, "modes": list(self.modes),
             "start_ns": self.start_ns.tolist(), "end_ns": self.end_ns.tolist(), "meta": self.meta}
        if dag is not None:
            d["latency_ns"] = self.latency_ns(dag)
            d["task_names"] = [t.name for t in dag.tasks]
        return d


def resource_loads_ns(dag: TaskDAG, modes: Sequence[str]) -> np.ndarray:
    """Busy ns of every resource in one iteration under ``modes``."""
    _, rid, dur = dag.chosen_resources(modes)
    loads = np.zeros(len(dag.resources), dtype=np.int64)
    np.add.at(loads, rid, dur)
    return loads


def recurrence_bound_ns(problem: PeriodicProblem, durations: Sequence[dict[str, int]] | None = None) -> int:
    """Longest path qkv[g]@L0 -> reduce[g]@L{L-1} of one micro-batch (shortest modes, unconditional
    edges only): a lower bound on Lambda under any modes (or under ``durations`` when given)."""
    dag = problem.dag
    d = [min(c.duration_ns for c in t.modes.values()) for t in dag.tasks] if durations is None else \
        [min(x.values()) for x in durations]
    best = 0
    e_src, e_dst, e_lag, e_cond, _ = dag.edge_arrays
    plain = np.flatnonzero(e_cond < 0)
    o = plain[np.argsort(e_src[plain], kind="stable")]   # unconditional edges by source
    ptr = np.zeros(len(dag.tasks) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(e_src[o], minlength=len(dag.tasks)))
    topo = np.array(dag.topo_order, dtype=np.int64)
    dd = np.array(d, dtype=np.int64)
    for rec in problem.recurrences:
        src, dst = rec.dst, rec.src  # path from the next-iteration head back to the tail
        dist = reach_longest(len(dag.tasks), topo, ptr, e_dst[o], e_lag[o], dd, src)
        if dist[dst] >= 0:
            best = max(best, int(dist[dst] + d[dst] + rec.lag_ns))
    return best


def check_periodic(ps: PeriodicSchedule, problem: PeriodicProblem) -> CheckReport:
    """Durations, precedences, recurrences and resource capacity modulo Lambda (every violation)."""
    dag, lam = problem.dag, int(ps.superperiod_ns)
    v: list[str] = []
    if len(ps.modes) != len(dag.tasks):
        return CheckReport((f"schedule has {len(ps.modes)} tasks, the iteration has {len(dag.tasks)}",))
    if lam <= 0:
        return CheckReport((f"superperiod {lam} ns must be positive",))
    s, e = np.asarray(ps.start_ns), np.asarray(ps.end_ns)
    check_task_times(dag, ps.modes, s, e, v, longest_ns=lam)
    if v:
        return CheckReport(tuple(v))
    check_precedences(dag, ps.modes, s, e, v)
    for r in problem.recurrences:
        if s[r.dst] + lam < e[r.src] + r.lag_ns:
            v.append(f"recurrence {dag.tasks[r.src].name} -> next {dag.tasks[r.dst].name}: starts at "
                     f"{s[r.dst]} + {lam} before {e[r.src]}")
    # Occupancy modulo Lambda: [x, x + d) with x = s mod Lambda, split in two when it wraps; per
    # (task, resource) the events start, end of the first piece, then of the second.
    tid, rid = mode_resources(dag, ps.modes, e != s)
    x = s[tid] % lam
    y = x + e[tid] - s[tid]
    wraps = y > lam
    time = np.column_stack([x, np.minimum(y, lam), np.zeros_like(x), y - lam]).reshape(-1)
    keep = np.column_stack([np.ones_like(wraps), np.ones_like(wraps), wraps, wraps]).reshape(-1)
    delta = np.tile(np.array([1, -1, 1, -1], dtype=np.int64), len(tid))
    check_resource_events(dag, np.repeat(rid, 4)[keep], time[keep], delta[keep], np.repeat(tid, 4)[keep], v,
                          where=f" (mod {lam})")
    return CheckReport(tuple(v))


def unroll(problem: PeriodicProblem, ps: PeriodicSchedule, iterations: int) -> tuple[TaskDAG, Schedule]:
    """The periodic schedule as an ordinary schedule of ``iterations`` consecutive iterations
    (the cyclic window repeated; micro-batch m's layer l+1 after its layer l, as in serving)."""
    if iterations < 1:
        raise ValueError("unroll: iterations must be >= 1")
    layers = [row for _ in range(iterations) for row in problem.window]
    big = build_window_dag(layers, problem.cost, problem.options)
    n = len(problem.dag.tasks)
    if len(big.tasks) != n * iterations:
        raise AssertionError("unrolled window does not repeat the iteration's tasks")
    lam = int(ps.superperiod_ns)
    start = np.concatenate([ps.start_ns + k * lam for k in range(iterations)]).astype(np.int64)
    end = np.concatenate([ps.end_ns + k * lam for k in range(iterations)]).astype(np.int64)
    shift = int(start.min())
    sched = Schedule(tuple(ps.modes) * iterations, start - shift, end - shift, ps.policy,
                     {"unrolled_iterations": iterations, "superperiod_ns": lam})
    return big, sched


def retime(problem: PeriodicProblem, ps: PeriodicSchedule) -> PeriodicSchedule | None:
    """``ps``'s modes and starts with ``problem``'s durations (e.g. the same iteration with another
    scheduler charge): the same superperiod, and valid whenever no duration grew, since shorter
    tasks never break a precedence, recurrence or capacity. None when the result fails
    :func:`check_periodic` (a duration grew, or another iteration)."""
    dag = problem.dag
    if len(ps.modes) != len(dag.tasks) or any(ps.modes[t.tid] not in t.modes for t in dag.tasks):
        return None
    d = np.array([t.modes[ps.modes[t.tid]].duration_ns for t in dag.tasks], dtype=np.int64)
    if np.array_equal(ps.end_ns - ps.start_ns, d):
        return ps
    out = PeriodicSchedule(ps.modes, ps.start_ns.copy(), ps.start_ns + d, ps.superperiod_ns, ps.window_layers,
                           ps.policy, {**ps.meta, "retimed": True})
    return out if check_periodic(out, problem).ok else None


def check_unrolled(problem: PeriodicProblem, ps: PeriodicSchedule, iterations: int = 4) -> CheckReport:
    big, sched = unroll(problem, ps, iterations)
    return check(sched, big)


# --------------------------------------------------------------------------------------------
# Heuristic: modulo list scheduling.


class ModuloTable:
    """Per resource, the busy intervals of one period [0, lam): sorted, disjoint, non-wrapping
    pieces, each with the task that owns it (so one task's occupancy can be released again).
    A Python handle on the compiled table of :mod:`sieveopt._modulo_numba` (the one definition
    the runtime's placement loops use; this class is for callers outside them, e.g. tests);
    it grows as pieces are added."""

    def __init__(self, nres: int, lam: int, capacity: int = 16) -> None:
        self.lam = lam
        self.st, self.en, self.ow, self.cnt = new_table(nres, capacity)

    @staticmethod
    def _rids(rids: Sequence[int]) -> np.ndarray:
        return np.asarray(rids, dtype=np.int64).reshape(-1)

    def earliest(self, rids: Sequence[int], t: int, d: int, before: int | None = None) -> int | None:
        """Earliest start in [t, before) (default: within one period of t) at which
        [start, start+d) is free on every resource (None: no room)."""
        s = table_earliest(self.st, self.en, self.cnt, self._rids(rids), self.lam, int(t), int(d),
                           int(t) + self.lam if before is None else int(before))
        return None if s == NO_START else int(s)

    def occupy(self, rids: Sequence[int], t: int, d: int, owner: int = -1) -> None:
        if int(self.cnt.max(initial=0)) + 2 > self.st.shape[1]:
            grow = [np.zeros_like(x) for x in (self.st, self.en)] + [np.full_like(self.ow, -1)]
            self.st, self.en, self.ow = (np.concatenate([x, g], axis=1) for x, g in
                                         zip((self.st, self.en, self.ow), grow, strict=True))
        table_occupy(self.st, self.en, self.ow, self.cnt, self._rids(rids), self.lam, int(t), int(d), int(owner))

    def release(self, rids: Sequence[int], t: int, d: int, owner: int) -> None:
        """Take out the pieces :meth:`occupy` put for ``owner`` at start ``t``, duration ``d``."""
        table_release(self.st, self.en, self.ow, self.cnt, self._rids(rids), self.lam, int(t), int(d), int(owner))


def _order(problem: PeriodicProblem, starts: np.ndarray) -> np.ndarray:
    """Placement order: by ``starts``, ties in topological order (so every predecessor is
    placed first)."""
    dag = problem.dag
    pos = np.empty(len(dag.tasks), dtype=np.int64)
    pos[list(dag.topo_order)] = np.arange(len(dag.tasks))
    return np.lexsort((pos, np.asarray(starts, dtype=np.int64)))


def csr(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(row pointers, flat values) of a list of int lists (compiled loops read these)."""
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    return ptr, np.fromiter((x for r in rows for x in r), dtype=np.int64, count=int(ptr[-1]))


@dataclass(frozen=True)
class _PlacementData:
    """What modulo list scheduling reads per task in the chosen modes, as the arrays of the
    compiled placement (:func:`sieveopt._modulo_numba.place_in_order`), built once per mode set."""

    duration_ns: np.ndarray
    res_ptr: np.ndarray                          # resources of task t: res_idx[res_ptr[t]:res_ptr[t+1]]
    res_idx: np.ndarray
    succ_ptr: np.ndarray                         # active edges out of t: (dst, lag ns)
    succ_dst: np.ndarray
    succ_lag: np.ndarray
    heads: list[tuple[int, int]]                # (recurrence head, its micro-batch)
    rec_src: np.ndarray                          # recurrences (src, dst, lag ns)
    rec_dst: np.ndarray
    rec_lag: np.ndarray
    nres: int
    capacity: int                                # pieces per resource of the modulo table

    @staticmethod
    def of(problem: PeriodicProblem, modes: Sequence[str]) -> _PlacementData:
        dag = problem.dag
        chosen = [t.modes[modes[t.tid]] for t in dag.tasks]
        res_ptr, res_idx = csr([c.resources for c in chosen])
        succ = [[e for e in dag.succs[t.tid] if dag.edge_active(e, modes)] for t in dag.tasks]
        succ_ptr, succ_dst = csr([[e.dst for e in es] for es in succ])
        _, succ_lag = csr([[e.lag_ns for e in es] for es in succ])
        recs = problem.recurrences
        return _PlacementData(
            duration_ns=np.array([c.duration_ns for c in chosen], dtype=np.int64),
            res_ptr=res_ptr, res_idx=res_idx, succ_ptr=succ_ptr, succ_dst=succ_dst, succ_lag=succ_lag,
            heads=[(h, dag.tasks[h].microbatch) for h in sorted({r.dst for r in recs})],
            rec_src=np.array([r.src for r in recs], dtype=np.int64),
            rec_dst=np.array([r.dst for r in recs], dtype=np.int64),
            rec_lag=np.array([r.lag_ns for r in recs], dtype=np.int64),
            nres=len(dag.resources), capacity=table_capacity(res_idx, len(dag.resources)))


def _try_period(data: _PlacementData, order: np.ndarray, offsets: Sequence[int],
                lam: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Place every task in ``order`` at its earliest ready time free modulo ``lam``; None when a
    task finds no room or a recurrence is violated."""
    n = len(data.duration_ns)
    ready = np.zeros(n, dtype=np.int64)
    for t, m in data.heads:
        ready[t] = offsets[m]
    start, end = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    ok = place_in_order(order, data.duration_ns, data.res_ptr, data.res_idx, data.succ_ptr, data.succ_dst,
                        data.succ_lag, ready, data.rec_src, data.rec_dst, data.rec_lag, int(lam), data.nres,
                        data.capacity, start, end)
    return (start, end) if ok else None


#: Release offsets tried for micro-batch m: ``m * f * period bound`` for each f.
STAGGER_FRACTIONS = (0.0, 0.25, 0.5)


def period_floor_ns(problem: PeriodicProblem, modes: Sequence[str]) -> tuple[int, np.ndarray]:
    """(Lambda's floor at these modes: the busiest resource's load or the recurrence bound, at
    least 1; the per-resource loads), where the period searches below start."""
    dag = problem.dag
    loads = resource_loads_ns(dag, modes)
    durs = [{modes[t.tid]: t.modes[modes[t.tid]].duration_ns} for t in dag.tasks]
    return max(int(loads.max(initial=0)), recurrence_bound_ns(problem, durs), 1), loads


def smallest_period(lb: int, place: Callable[[int], Any], rel_tol: float) -> tuple[int, Any] | None:
    """Smallest Lambda >= ``lb`` (to ``rel_tol``) at which ``place(Lambda)`` succeeds (returns not
    None), with its result: Lambda grows by 1, 2, 4, ... % of ``lb`` until one works, then
    bisection. None when nothing up to 64x ``lb`` works."""
    lo, hi, found, lam, step = lb - 1, None, None, lb, 0.01
    while hi is None:
        r = place(lam)
        if r is not None:
            hi, found = lam, r
            break
        lo = lam
        lam = int(math.ceil(lb * (1 + step)))
        step *= 2
        if step > 64:
            return None
    while hi - lo > max(1, int(rel_tol * hi)):
        mid = (lo + hi) // 2
        r = place(mid)
        if r is None:
            lo = mid
        else:
            hi, found = mid, r
    return hi, found


def modulo_list_schedule(problem: PeriodicProblem, modes: Sequence[str], *, policy: str = "",
                         rel_tol: float = 1e-3,
                         stagger_fractions: Sequence[float] = STAGGER_FRACTIONS,
                         refine_rounds: int = 2) -> PeriodicSchedule:
    """Smallest Lambda (to ``rel_tol``) at which modulo list scheduling places every task, trying
    micro-batch m released ``m * f * period`` late for each f in ``stagger_fractions``."""
    dag = problem.dag
    modes = tuple(modes)
    lb, loads = period_floor_ns(problem, modes)
    L, M = problem.window_layers, problem.microbatches
    data = _PlacementData.of(problem, modes)
    best: tuple[int, np.ndarray, np.ndarray, str] | None = None
    trials: list[tuple[str, np.ndarray, list[int]]] = []
    ls_start = list_schedule(dag, modes).start_ns.astype(np.int64)  # the window's list schedule
    mb = np.array([t.microbatch for t in dag.tasks], dtype=np.int64)
    for f in (stagger_fractions if M > 1 else (0.0,)):
        offsets = [int(m * f * lb / L) for m in range(M)]
        trials.append((f"micro-batch m released m*{f:g} periods late",
                       _order(problem, ls_start + np.array(offsets, dtype=np.int64)[mb]), offsets))
    k = 0
    while k < len(trials) + refine_rounds:
        if k < len(trials):
            how, order, offsets = trials[k]
        else:  # refine: place in the order of the best schedule so far, its heads released as there
            how = f"refined {k - len(trials) + 1}x from: {best[3]}"
            order = _order(problem, best[1])
            offsets = [min(int(best[1][r.dst]) for r in problem.recurrences if dag.tasks[r.dst].microbatch == m)
                       for m in range(M)]
        k += 1
        res = smallest_period(lb, lambda lam, o=order, f=offsets: _try_period(data, o, f, lam), rel_tol)
        if res is None:
            raise RuntimeError("modulo list scheduling found no period (a bug)")
        hi, found = res
        if best is None or hi < best[0]:
            best = (hi, found[0], found[1], how)
    lam, s, e, how = best
    shift = int(s.min())
    return PeriodicSchedule(modes, s - shift, e - shift, int(lam), L, policy,
                            {"method": "modulo-list", "release": how, "load_bound_ns": int(loads.max(initial=0)),
                             "lambda_lower_bound_ns": lb})


def runtime_steady_state_ns(problem: PeriodicProblem, modes: Sequence[str], iterations: int = 8) -> dict[str, float]:
    """What an as-soon-as-possible runtime achieves: list-schedule ``iterations`` unrolled iterations
    with these modes and measure the time per layer between iteration ends, excluding the first
    and last quarter (fill and drain)."""
    layers = [row for _ in range(iterations) for row in problem.window]
    big = build_window_dag(layers, problem.cost, problem.options)
    n = len(problem.dag.tasks)
    sched = list_schedule(big, tuple(modes) * iterations)
    ends = [int(sched.end_ns[k * n:(k + 1) * n].max()) for k in range(iterations)]
    a, b = iterations // 4, iterations - 1 - iterations // 4
    per_iter = (ends[b] - ends[a]) / max(1, b - a)
    return {"period_ns": per_iter / problem.window_layers, "makespan_ns": float(sched.makespan_ns),
            "iterations": iterations}


__all__ = ["FUSION_NOTE", "PeriodicProblem", "PeriodicSchedule", "build_periodic_problem", "check_periodic",
           "check_unrolled", "modulo_list_schedule", "recurrence_bound_ns", "resource_loads_ns", "retime",
           "runtime_steady_state_ns", "unroll"]
