"""Replay's bridge to the NVLink simulator: a DAG's message tasks as simulator messages.

Each AllGather / dispatch / combine task becomes one :class:`Message` (``msg_id`` = task id,
bytes = ``work.msg_bytes``) released when its producers finished in the replay; each source
port sends in the schedule's order on its egress resource. Ingress order is not imposed: the
switch serves packets by arrival (incast), which is what the hardware does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sieveopt.dag import MESSAGE_KINDS, RES_EGRESS, TaskDAG
from sieveopt.models.specs import SystemSpec
from sieveopt.validation.interconnect import LinkParams, Message, simulate


def link_params(system: SystemSpec, num_gpus: int, **overrides: object) -> LinkParams:
    """NVLink parameters of ``system`` (port bandwidth and latency from its interconnect spec)."""
    kw: dict[str, object] = {"bw_per_direction_GBps": float(system.interconnect.bw_per_direction_GBps),
                             "latency_ns": float(system.interconnect.latency_ns)}
    kw.update(overrides)
    return LinkParams(num_gpus=num_gpus, **kw)  # type: ignore[arg-type]


def message_tids(dag: TaskDAG) -> list[int]:
    return [t.tid for t in dag.tasks if t.kind in MESSAGE_KINDS]


def egress_order(dag: TaskDAG, resource_order: Mapping[int, Sequence[int]]) -> dict[int, list[int]]:
    """Source GPU -> message task ids in the schedule's order on its egress port."""
    out: dict[int, list[int]] = {}
    for g in range(dag.num_gpus):
        rid = dag.resource_id[(RES_EGRESS, g)]
        out[g] = [t for t in resource_order.get(rid, []) if dag.tasks[t].kind in MESSAGE_KINDS]
    return out


@dataclass(frozen=True, eq=False)
class NetTiming:
    """Simulated timing of the message tasks (ns, per task id; -1 for non-messages)."""

    first_tx_start_ns: np.ndarray
    last_tx_end_ns: np.ndarray
    arrival_ns: np.ndarray
    egress_busy_ns: np.ndarray     # [G]
    ingress_busy_ns: np.ndarray    # [G]


def simulate_messages(dag: TaskDAG, tids: Sequence[int], release_ns: np.ndarray,
                      order: Mapping[int, Sequence[int]], params: LinkParams) -> NetTiming:
    """Run the interconnect simulator on the messages ``tids`` released at ``release_ns[tid]``."""
    n, g = len(dag.tasks), dag.num_gpus
    msgs = [Message(int(t), dag.tasks[t].gpu, dag.tasks[t].peer, int(round(dag.tasks[t].work.msg_bytes)),
                    int(release_ns[t])) for t in tids]
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    arr = np.full(n, -1, dtype=np.int64)
    if not msgs:
        z = np.zeros(g, dtype=np.int64)
        return NetTiming(first, last, arr, z, z.copy())
    res = simulate(msgs, params, order={k: list(v) for k, v in order.items() if v})
    ids = res.msg_ids.astype(np.int64)
    # ps -> ns: starts round down, ends round up (a message never looks shorter than it was)
    first[ids] = res.first_tx_start_ps // 1000
    last[ids] = -(-res.last_tx_end_ps // 1000)
    arr[ids] = -(-res.arrival_ps // 1000)
    return NetTiming(first, last, arr, -(-res.egress_busy_ps // 1000), -(-res.ingress_busy_ps // 1000))


class NetworkCosim:
    """The NVLink simulator advanced together with replay's event loop (conservative co-simulation).

    The loop reports each message's release (:meth:`release`, possibly a known future time) and
    each processed arrival (:meth:`arrived`); :meth:`update` re-runs the simulator on what is
    known and returns the messages whose provisional arrival changed. Why this is exact: the
    simulator is causal (every stage is a single server fed in ready order, no back-pressure,
    latency > 0), so a packet's timing depends only on packets that became ready before it, and
    an arrival at time ``a`` depends only on releases before ``a``. The loop calls
    :meth:`update` after every event that released a message and before it processes a later
    event, so each arrival it processes was computed with every release that can affect it.

    Under FIFO egress a released message queued behind a not-yet-released one on its port (the
    schedule's order) is *blocked*: it has no provisional arrival until that one is released.

    Each run simulates only the messages that can still matter: the sendable messages not yet
    arrived and, closed transitively, every message that arrived at or after the earliest
    release among them. Every packet of an excluded message left every port before any packet
    of the included ones became ready, so the ports are idle in between and the included
    messages time exactly as in a simulation of all messages (FIFO egress; under round-robin
    egress the rotation carries over idle periods, so every released message is simulated).
    """

    def __init__(self, dag: TaskDAG, tids: Sequence[int], order: Mapping[int, Sequence[int]],
                 params: LinkParams) -> None:
        self.dag, self.params = dag, params
        self.fifo = params.egress_policy == "fifo"
        n = len(dag.tasks)
        self.release_ns = np.full(n, -1, dtype=np.int64)
        self.arrival_ns = np.full(n, -1, dtype=np.int64)     # processed arrivals (final)
        self.provisional_ns = np.full(n, -1, dtype=np.int64)
        # per source port, its messages in the schedule's issue order; a port the order omits
        # sends by release time (the simulator's default), so nothing blocks there
        self.port_seq: dict[int, list[int]] = {g: list(seq) for g, seq in order.items() if seq}
        listed = {t for seq in self.port_seq.values() for t in seq}
        self.unlisted = set(tids) - listed
        self.unblocked = dict.fromkeys(self.port_seq, 0)        # sendable prefix length per port
        self.in_flight: set[int] = set()                          # sendable, not yet arrived
        self.arrived_seq: list[int] = []                          # arrived, in arrival order
        self.pending = False
        self.runs = 0

    def release(self, tid: int, t_ns: int) -> None:
        self.release_ns[tid] = t_ns
        self.pending = True
        if not self.fifo or tid in self.unlisted:
            self.in_flight.add(tid)

    def arrived(self, tid: int, t_ns: int) -> None:
        self.arrival_ns[tid] = t_ns
        self.in_flight.discard(tid)
        self.arrived_seq.append(tid)

    def _unblock(self) -> None:
        """FIFO egress: the released prefix of each port's order is sendable."""
        if not self.fifo:
            return
        for g, seq in self.port_seq.items():
            k = self.unblocked[g]
            while k < len(seq) and self.release_ns[seq[k]] >= 0:
                self.in_flight.add(seq[k])
                k += 1
            self.unblocked[g] = k

    def _included(self) -> set[int]:
        if not self.fifo:
            return set(self.in_flight) | set(self.arrived_seq)
        inc = set(self.in_flight)
        t_star = min(int(self.release_ns[t]) for t in inc)
        for t in reversed(self.arrived_seq):      # arrival order: walk back while they overlap
            if self.arrival_ns[t] < t_star:
                break
            inc.add(t)
            t_star = min(t_star, int(self.release_ns[t]))
        return inc

    def update(self) -> list[tuple[int, int]]:
        """Re-simulate after new releases; (tid, arrival ns) of every changed provisional arrival."""
        self.pending = False
        self._unblock()
        if not self.in_flight:
            return []
        inc = self._included()
        order = {g: [t for t in seq if t in inc] for g, seq in self.port_seq.items()}
        net = simulate_messages(self.dag, sorted(inc), self.release_ns, order, self.params)
        self.runs += 1
        changed = []
        for t in sorted(self.in_flight):
            a = int(net.arrival_ns[t])
            if a != self.provisional_ns[t]:
                self.provisional_ns[t] = a
                changed.append((t, a))
        return changed
