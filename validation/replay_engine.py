"""The fluid event loop of replay: compute tasks on the schedule's per-resource order.

Given every task's *alone* time (from the simulators) and, for messages, the delay from
release to arrival (from the last interconnect simulation), it plays the layer forward:

* a compute task starts when all its active predecessors are done (``end + lag``; a message
  predecessor counts at its simulated arrival, which already includes the wire latency), it is
  next in the schedule's order on every resource it holds, and those resources are free;
* a task progresses at rate 1 (alone-ns per ns) except under **interference**: while a PIM
  job and a memory-streaming GPU kernel body run at once on the same GPU's stacks (sharing
  ``dual_row_buffer`` or ``partitioned``; ``exclusive`` serialises them through the ``hbm``
  resource), the PIM job runs at ``1/k_pim`` and the GPU body at
  ``body / max(compute, memory * k_stream)`` (only its streaming side slows down);
* a message is released when its producers are done and arrives ``delay[tid]`` later.

Integer ns event times; remaining work is kept in float alone-ns.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sieveopt.dag import MESSAGE_KINDS, TaskDAG
from sieveopt.targets import ROLE_IN_MEMORY, ROLE_STREAM, replay_role

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
             interference: Callable[[str, int], tuple[float, float]] | None) -> LoopResult:
    """Play the layer forward (see module docstring); ``interference=None`` disables it."""
    n = len(dag.tasks)
    tasks = dag.tasks
    is_msg = np.array([t.kind in MESSAGE_KINDS for t in tasks])
    res_of: list[tuple[int, ...]] = [() if is_msg[t.tid] else t.modes[modes[t.tid]].resources for t in tasks]
    # per-resource order restricted to compute tasks (messages: the interconnect's business)
    ords = {rid: [t for t in tids if not is_msg[t]] for rid, tids in order.items()}
    pos = {rid: 0 for rid in ords}
    busy = {rid: False for rid in ords}

    succ: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    npred = np.zeros(n, dtype=np.int64)
    for e in dag.edges:
        if e.if_mode is None or modes[e.if_mode[0]] == e.if_mode[1]:
            succ[e.src].append((e.dst, e.lag_ns))
            npred[e.dst] += 1
    ready_at = np.zeros(n, dtype=np.int64)
    start = np.full(n, -1, dtype=np.int64)
    end = np.full(n, -1, dtype=np.int64)
    release = np.full(n, -1, dtype=np.int64)
    alone = np.zeros(n)
    interfered = np.zeros(n, dtype=np.int64)

    # running compute tasks: tid -> [overhead_left, body_left]
    running: dict[int, list[float]] = {}
    pim_of_gpu: dict[int, int] = {}        # gpu -> running PIM task
    gpu_of_gpu: dict[int, int] = {}        # gpu -> running GPU-mode task
    events: list[tuple[int, int]] = []     # (time, tid): message arrival or task becoming ready
    candidates: set[int] = set()           # compute tasks with all preds done

    def finish(tid: int, now: int) -> None:
        end[tid] = now
        for dst, lag in succ[tid]:
            t_avail = now if is_msg[tid] else now + lag
            if t_avail > ready_at[dst]:
                ready_at[dst] = t_avail
            npred[dst] -= 1
            if npred[dst] == 0:
                became_ready(dst, now)

    def became_ready(tid: int, now: int) -> None:
        if is_msg[tid]:
            release[tid] = ready_at[tid]
            heapq.heappush(events, (int(ready_at[tid] + msg_delay_ns[tid]), tid))
        else:
            candidates.add(tid)
            if ready_at[tid] > now:
                heapq.heappush(events, (int(ready_at[tid]), -1))

    for t in range(n):
        if npred[t] == 0:
            became_ready(t, 0)

    now = 0
    done = 0
    while done < n:
        # 1. start every startable candidate (repeat: zero-length tasks finish at once)
        progressed = True
        while progressed:
            progressed = False
            heads = sorted({ords[r][pos[r]] for r in ords if not busy[r] and pos[r] < len(ords[r])})
            for tid in heads:
                if tid not in candidates or ready_at[tid] > now:
                    continue
                rs = res_of[tid]
                if any(busy[r] or ords[r][pos[r]] != tid for r in rs):
                    continue
                candidates.discard(tid)
                tt = times[tid]
                start[tid] = now
                alone[tid] = tt.overhead_ns + tt.body_ns
                if alone[tid] <= _EPS:
                    for r in rs:
                        pos[r] += 1
                    finish(tid, now)
                    done += 1
                else:
                    for r in rs:
                        busy[r] = True
                    running[tid] = [tt.overhead_ns, tt.body_ns]
                    g = tasks[tid].gpu
                    role = replay_role(modes[tid])
                    if role == ROLE_IN_MEMORY:
                        pim_of_gpu[g] = tid
                    elif role == ROLE_STREAM:
                        gpu_of_gpu[g] = tid
                progressed = True
        if done >= n:
            break
        # 2. rates
        rates: dict[int, float] = dict.fromkeys(running, 1.0)
        slowed: set[int] = set()
        if interference is not None:
            for g, p in pim_of_gpu.items():
                q = gpu_of_gpu.get(g)
                if q is None:
                    continue
                tq = times[q]
                if running[q][0] > _EPS or tq.memory_ns <= 0.0 or running[p][0] > _EPS:
                    continue
                tp = times[p]
                k_s, k_p = interference(tp.kind, tp.tokens)
                rates[p] = 1.0 / k_p
                body = tq.body_ns
                rates[q] = body / max(tq.compute_ns, tq.memory_ns * k_s, _EPS)
                slowed.update((p, q))
        # 3. next event
        nxt = math.inf
        for tid, (ov, body) in running.items():
            left = ov if ov > _EPS else body
            nxt = min(nxt, now + max(1, math.ceil(left / rates[tid] - 1e-9)) if ov > _EPS or body > _EPS else now)
        while events and events[0][0] <= now:
            t_ev, tid = heapq.heappop(events)
            if tid >= 0:
                finish(tid, t_ev)
                done += 1
                nxt = now           # something became ready: re-run the start pass
        if events:
            nxt = min(nxt, events[0][0])
        if nxt == math.inf:
            stuck = sorted(candidates)[:5]
            raise RuntimeError(f"replay deadlock at t={now} ns: {len(candidates)} tasks waiting "
                               f"(e.g. {[tasks[t].name for t in stuck]}); the schedule's resource order "
                               "contradicts the DAG")
        nxt = int(nxt)
        dt = nxt - now
        # 4. advance
        if dt > 0:
            for tid in list(running):
                st = running[tid]
                r = rates[tid]
                adv = r * dt
                if st[0] > _EPS:
                    used = min(st[0], adv)
                    st[0] -= used
                    adv -= used
                    if st[0] <= _EPS and adv > 0:
                        st[1] -= adv
                else:
                    st[1] -= adv
                if tid in slowed:
                    interfered[tid] += dt
        now = nxt
        for tid in [t for t, st in running.items() if st[0] <= _EPS and st[1] <= 1e-3]:
            del running[tid]
            g = tasks[tid].gpu
            if pim_of_gpu.get(g) == tid:
                del pim_of_gpu[g]
            if gpu_of_gpu.get(g) == tid:
                del gpu_of_gpu[g]
            for r in res_of[tid]:
                busy[r] = False
                pos[r] += 1
            finish(tid, now)
            done += 1
    return LoopResult(start, end, release, alone, interfered)
