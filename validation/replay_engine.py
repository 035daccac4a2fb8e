"""The fluid event loop of replay: compute tasks on the schedule's per-resource order.

Given every task's *alone* time (from the simulators) and, for messages, the delay from
release to arrival (from the last interconnect simulation), it plays the layer forward:

* a compute task starts when all its active predecessors are done (``end + lag``; a message
  predecessor counts at its simulated arrival, which already includes the wire latency), it is
  next in the schedule's order on every resource it holds, and each of those resources has a
  free unit (capacity 1 for most; a target may declare more, e.g. one NDP unit per DIMM: tasks
  then *start* in the schedule's order and up to ``capacity`` run at once);
* a task progresses at rate 1 (alone-ns per ns) except under **interference**: while a PIM
  job and a memory-streaming GPU kernel body run at once on the same GPU's stacks (sharing
  ``dual_row_buffer`` or ``partitioned``; ``exclusive`` serialises them through the ``hbm``
  resource), the PIM job runs at ``1/k_pim`` and the GPU body at
  ``body / max(compute, memory * k_stream)`` (only its streaming side slows down);
* a message is released when its producers are done and arrives ``delay[tid]`` later, or, with
  a ``network`` (:class:`~sieveopt.validation.replay_net.NetworkCosim`), when the interconnect
  simulator, advanced together with the loop, delivers it.

Integer ns event times; remaining work is kept in float alone-ns.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sieveopt.dag import MESSAGE_KINDS, TaskDAG
from sieveopt.targets import ROLE_IN_MEMORY, ROLE_STREAM, replay_role

if TYPE_CHECKING:
    from sieveopt.validation.replay_net import NetworkCosim

_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class TaskTime:
    """Alone timing of one compute task: ``overhead`` first, then a ``body`` that may interfere.

    ``compute_ns``/``memory_ns`` split the body of a GPU kernel (the body is their max)."""

    overhead_ns: float
    body_ns: float
    compute_ns: float = 0.0
    memory_ns: float = 0.0
    kind: str = ""           # PIM job kind for interference ("expert", "attn")
    tokens: int = 0


@dataclass(frozen=True, eq=False)
class LoopResult:
    start_ns: np.ndarray        # compute tasks: start; messages: release
    end_ns: np.ndarray          # compute tasks: end; messages: arrival
    release_ns: np.ndarray      # messages' release (-1 elsewhere)
    alone_ns: np.ndarray        # alone duration (compute tasks)
    interfered_ns: np.ndarray   # time a task spent slowed by interference


def run_loop(dag: TaskDAG, modes: Sequence[str], order: Mapping[int, Sequence[int]],
             times: Sequence[TaskTime | None], msg_delay_ns: np.ndarray,
             interference: Callable[[str, int], tuple[float, float]] | None,
             network: NetworkCosim | None = None) -> LoopResult:
    """Play the layer forward (see module docstring); ``interference=None`` disables it.

    With ``network`` message arrivals come from it (``msg_delay_ns`` is then not read)."""
    loop = _Loop(dag, modes, order, times, msg_delay_ns, interference, network)
    while loop.done < loop.n:
        loop.start_startable()
        if loop.done >= loop.n:
            break
        loop.sync_network()
        rates, slowed = loop.rates()
        nxt = loop.next_event(rates)
        loop.advance(nxt - loop.now, rates, slowed)
        loop.now = nxt
        loop.retire_finished()
    return LoopResult(loop.start, loop.end, loop.release, loop.alone, loop.interfered)


class _Loop:
    """State of one replay event loop; each method is one phase of a step of :func:`run_loop`."""

    def __init__(self, dag: TaskDAG, modes: Sequence[str], order: Mapping[int, Sequence[int]],
                 times: Sequence[TaskTime | None], msg_delay_ns: np.ndarray,
                 interference: Callable[[str, int], tuple[float, float]] | None,
                 network: NetworkCosim | None = None) -> None:
        self.n = n = len(dag.tasks)
        self.network = network
        self.tasks, self.modes, self.times = dag.tasks, modes, times
        self.msg_delay_ns, self.interference = msg_delay_ns, interference
        tasks = dag.tasks
        self.is_msg = is_msg = np.array([t.kind in MESSAGE_KINDS for t in tasks])
        self.res_of: list[tuple[int, ...]] = [() if is_msg[t.tid] else t.modes[modes[t.tid]].resources
                                              for t in tasks]
        # per-resource order restricted to compute tasks (messages: the interconnect's business)
        self.ords = {rid: [t for t in tids if not is_msg[t]] for rid, tids in order.items()}
        self.pos = {rid: 0 for rid in self.ords}
        self.inuse = dict.fromkeys(self.ords, 0)        # running tasks per resource
        self.cap = {rid: int(dag.resources[rid].capacity) for rid in self.ords}
        self.succ: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.npred = np.zeros(n, dtype=np.int64)
        for e in dag.edges:
            if e.if_mode is None or modes[e.if_mode[0]] == e.if_mode[1]:
                self.succ[e.src].append((e.dst, e.lag_ns))
                self.npred[e.dst] += 1
        self.ready_at = np.zeros(n, dtype=np.int64)
        self.start = np.full(n, -1, dtype=np.int64)
        self.end = np.full(n, -1, dtype=np.int64)
        self.release = np.full(n, -1, dtype=np.int64)
        self.alone = np.zeros(n)
        self.interfered = np.zeros(n, dtype=np.int64)
        self.running: dict[int, list[float]] = {}   # running compute tasks: tid -> [overhead_left, body_left]
        self.pim_of_gpu: dict[int, int] = {}        # gpu -> running PIM task
        self.gpu_of_gpu: dict[int, int] = {}        # gpu -> running GPU-mode task
        self.events: list[tuple[int, int]] = []     # (time, tid): message arrival or task becoming ready
        self.arrival_at = np.full(n, -1, dtype=np.int64)  # a message's current (provisional) arrival
        self.candidates: set[int] = set()           # compute tasks with all preds done
        self.now = 0
        self.done = 0
        for t in range(n):
            if self.npred[t] == 0:
                self.became_ready(t, 0)

    def finish(self, tid: int, now: int) -> None:
        self.end[tid] = now
        for dst, lag in self.succ[tid]:
            t_avail = now if self.is_msg[tid] else now + lag
            if t_avail > self.ready_at[dst]:
                self.ready_at[dst] = t_avail
            self.npred[dst] -= 1
            if self.npred[dst] == 0:
                self.became_ready(dst, now)

    def became_ready(self, tid: int, now: int) -> None:
        if self.is_msg[tid]:
            self.release[tid] = self.ready_at[tid]
            if self.network is None:
                self.push_arrival(tid, int(self.ready_at[tid] + self.msg_delay_ns[tid]))
            else:
                self.network.release(tid, int(self.ready_at[tid]))
        else:
            self.candidates.add(tid)
            if self.ready_at[tid] > now:
                heapq.heappush(self.events, (int(self.ready_at[tid]), -1))

    def push_arrival(self, tid: int, t_ns: int) -> None:
        self.arrival_at[tid] = t_ns
        heapq.heappush(self.events, (t_ns, tid))

    def is_stale(self, t_ns: int, tid: int) -> bool:
        """A message event superseded by a later network update (or already processed)."""
        return tid >= 0 and (self.end[tid] >= 0 or t_ns != self.arrival_at[tid])

    def sync_network(self) -> None:
        """0. After new releases, re-run the interconnect and (re)schedule the arrivals it moved."""
        if self.network is not None and self.network.pending:
            for tid, t_ns in self.network.update():
                if t_ns < self.now:
                    raise RuntimeError(f"replay: network moved {self.tasks[tid].name}'s arrival to {t_ns} ns, "
                                       f"before now ({self.now} ns): the interconnect is not causal")
                self.push_arrival(tid, t_ns)

    def start_startable(self) -> None:
        """1. Start every startable candidate (repeat: zero-length tasks finish at once)."""
        ords, pos, inuse, cap, now = self.ords, self.pos, self.inuse, self.cap, self.now
        progressed = True
        while progressed:
            progressed = False
            heads = sorted({ords[r][pos[r]] for r in ords if inuse[r] < cap[r] and pos[r] < len(ords[r])})
            for tid in heads:
                if tid not in self.candidates or self.ready_at[tid] > now:
                    continue
                rs = self.res_of[tid]
                if any(inuse[r] >= cap[r] or pos[r] >= len(ords[r]) or ords[r][pos[r]] != tid for r in rs):
                    continue
                self.candidates.discard(tid)
                tt = self.times[tid]
                self.start[tid] = now
                self.alone[tid] = tt.overhead_ns + tt.body_ns
                for r in rs:             # the next task in order may start once a unit is free
                    pos[r] += 1
                if self.alone[tid] <= _EPS:
                    self.finish(tid, now)
                    self.done += 1
                else:
                    for r in rs:
                        inuse[r] += 1
                    self.running[tid] = [tt.overhead_ns, tt.body_ns]
                    g = self.tasks[tid].gpu
                    role = replay_role(self.modes[tid])
                    if role == ROLE_IN_MEMORY:
                        self.pim_of_gpu[g] = tid
                    elif role == ROLE_STREAM:
                        self.gpu_of_gpu[g] = tid
                progressed = True

    def rates(self) -> tuple[dict[int, float], set[int]]:
        """2. Progress rate of every running task, and the ones slowed by interference."""
        running, times = self.running, self.times
        rates: dict[int, float] = dict.fromkeys(running, 1.0)
        slowed: set[int] = set()
        if self.interference is not None:
            for g, p in self.pim_of_gpu.items():
                q = self.gpu_of_gpu.get(g)
                if q is None:
                    continue
                tq = times[q]
                if running[q][0] > _EPS or tq.memory_ns <= 0.0 or running[p][0] > _EPS:
                    continue
                tp = times[p]
                k_s, k_p = self.interference(tp.kind, tp.tokens)
                rates[p] = 1.0 / k_p
                body = tq.body_ns
                rates[q] = body / max(tq.compute_ns, tq.memory_ns * k_s, _EPS)
                slowed.update((p, q))
        return rates, slowed

    def next_event(self, rates: dict[int, float]) -> int:
        """3. Time of the next event (a phase end, a message arrival, a task becoming ready);
        messages that have arrived by now are finished."""
        now, events = self.now, self.events
        nxt = math.inf
        for tid, (ov, body) in self.running.items():
            left = ov if ov > _EPS else body
            nxt = min(nxt, now + max(1, math.ceil(left / rates[tid] - 1e-9)) if ov > _EPS or body > _EPS else now)
        while events and events[0][0] <= now:
            t_ev, tid = heapq.heappop(events)
            if self.is_stale(t_ev, tid):
                continue
            if tid >= 0:
                if self.network is not None:
                    self.network.arrived(tid, t_ev)
                self.finish(tid, t_ev)
                self.done += 1
                nxt = now           # something became ready: re-run the start pass
        while events and self.is_stale(*events[0]):
            heapq.heappop(events)
        if events:
            nxt = min(nxt, events[0][0])
        if nxt == math.inf:
            stuck = sorted(self.candidates)[:5]
            raise RuntimeError(f"replay deadlock at t={now} ns: {len(self.candidates)} tasks waiting "
                               f"(e.g. {[self.tasks[t].name for t in stuck]}); the schedule's resource order "
                               "contradicts the DAG")
        return int(nxt)

    def advance(self, dt: int, rates: dict[int, float], slowed: set[int]) -> None:
        """4. Advance every running task by ``dt`` ns at its rate (overhead first, then body)."""
        if dt <= 0:
            return
        for tid in list(self.running):
            st = self.running[tid]
            adv = rates[tid] * dt
            if st[0] > _EPS:
                used = min(st[0], adv)
                st[0] -= used
                adv -= used
                if st[0] <= _EPS and adv > 0:
                    st[1] -= adv
            else:
                st[1] -= adv
            if tid in slowed:
                self.interfered[tid] += dt

    def retire_finished(self) -> None:
        """5. Finish the tasks whose work is done and free their resources."""
        now = self.now
        for tid in [t for t, st in self.running.items() if st[0] <= _EPS and st[1] <= 1e-3]:
            del self.running[tid]
            g = self.tasks[tid].gpu
            if self.pim_of_gpu.get(g) == tid:
                del self.pim_of_gpu[g]
            if self.gpu_of_gpu.get(g) == tid:
                del self.gpu_of_gpu[g]
            for r in self.res_of[tid]:
                self.inuse[r] -= 1
            self.finish(tid, now)
            self.done += 1
