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
