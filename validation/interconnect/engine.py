"""The packet-level simulation: messages in, per-message and per-port timings out.

Pipeline of one packet (see the package docstring for the model)::

    egress port of src --(latency_ns)--> [switch fabric, if switch_bw_GBps] --> ingress port of dst

Every stage is a single server with integer-picosecond service times; the stages are solved
one after another (no back-pressure: switch buffers are unbounded), each in a few vectorised
passes (:mod:`.stages`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sieveopt.validation.interconnect.messages import Message
from sieveopt.validation.interconnect.params import ByteClock, InterconnectError, LinkParams
from sieveopt.validation.interconnect.stages import round_robin_egress, serve_in_order

MAX_MESSAGE_BYTES = 1 << 40  # keeps bytes * 1000 * den inside int64


def _stable_order(time_ps: np.ndarray, port: np.ndarray | None) -> np.ndarray:
    """Packets by (port, time), ties in array order, i.e. by (src, seq) (a stable sort).

    One int64 key sorts faster than a lexsort; the packets come in sorted runs (one per
    message), which the stable sort (timsort) exploits.
    """
    if port is None:
        return np.argsort(time_ps, kind="stable")
    span = int(time_ps.max()) + 1
    if span * (int(port.max()) + 1) >= 1 << 62:
        return np.lexsort((time_ps, port))
    return np.argsort(port * span + time_ps, kind="stable")


def _ceil_ns(ps: np.ndarray) -> np.ndarray:
    return -((-ps) // 1000)


@dataclass(frozen=True)
class MessageTiming:
    """Timing of one message (integer ns, rounded up)."""

    msg_id: int
    src: int
    dst: int
    bytes: int
    release_ns: int
    first_tx_start_ns: int
    last_tx_end_ns: int
    arrival_ns: int


@dataclass(frozen=True, eq=False)
class InterconnectResult:
    """What :func:`simulate` measured. Arrays are in the order the messages were given.

    ``*_ps`` arrays are exact simulator times; ``*_ns`` properties round them up. Port busy
    time counts every picosecond a port is occupied by a packet (an ingress port that receives
    cut-through from a slower upstream stays occupied while it waits for the bits).
    Utilisation is busy time over the span from the first release to the last arrival.
    """

    params: LinkParams
    msg_ids: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    bytes: np.ndarray
    release_ps: np.ndarray
    first_tx_start_ps: np.ndarray
    last_tx_end_ps: np.ndarray
    arrival_ps: np.ndarray
    egress_busy_ps: np.ndarray
    ingress_busy_ps: np.ndarray
    switch_busy_ps: int
    num_packets: int
    _index: dict[int, int] = field(repr=False)

    @property
    def first_tx_start_ns(self) -> np.ndarray:
        return _ceil_ns(self.first_tx_start_ps)

    @property
    def last_tx_end_ns(self) -> np.ndarray:
        return _ceil_ns(self.last_tx_end_ps)

    @property
    def arrival_ns(self) -> np.ndarray:
        return _ceil_ns(self.arrival_ps)

    @property
    def start_ps(self) -> int:
        return int(self.release_ps.min()) if len(self.release_ps) else 0

    @property
    def makespan_ps(self) -> int:
        """Time (from t = 0) at which the last message has arrived."""
        return int(self.arrival_ps.max()) if len(self.arrival_ps) else 0

    @property
    def makespan_ns(self) -> int:
        return int(_ceil_ns(np.int64(self.makespan_ps)))

    @property
    def egress_busy_ns(self) -> np.ndarray:
        return _ceil_ns(self.egress_busy_ps)

    @property
    def ingress_busy_ns(self) -> np.ndarray:
        return _ceil_ns(self.ingress_busy_ps)

    def _span_ps(self) -> int:
        return max(self.makespan_ps - self.start_ps, 1)

    @property
    def egress_utilisation(self) -> np.ndarray:
        return self.egress_busy_ps / self._span_ps()

    @property
    def ingress_utilisation(self) -> np.ndarray:
        return self.ingress_busy_ps / self._span_ps()

    def message(self, msg_id: int) -> MessageTiming:
        """Timing of one message by id."""
        try:
            i = self._index[msg_id]
        except KeyError:
            raise InterconnectError(f"no message with msg_id {msg_id} in this result") from None
        return MessageTiming(
            int(self.msg_ids[i]), int(self.src[i]), int(self.dst[i]), int(self.bytes[i]),
            int(_ceil_ns(self.release_ps[i])), int(_ceil_ns(self.first_tx_start_ps[i])),
            int(_ceil_ns(self.last_tx_end_ps[i])), int(_ceil_ns(self.arrival_ps[i])))

    def arrival_ns_by_id(self) -> dict[int, int]:
        return dict(zip(self.msg_ids.tolist(), self.arrival_ns.tolist(), strict=True))

    def to_dict(self) -> dict:
        """JSON-ready summary (integer ns) for reports and the CLI."""
        return {
            "num_messages": len(self.msg_ids),
            "num_packets": self.num_packets,
            "makespan_ns": self.makespan_ns,
            "messages": [
                {"msg_id": int(m), "src": int(s), "dst": int(d), "bytes": int(b),
                 "first_tx_start_ns": int(f), "last_tx_end_ns": int(e), "arrival_ns": int(a)}
                for m, s, d, b, f, e, a in zip(
                    self.msg_ids, self.src, self.dst, self.bytes, self.first_tx_start_ns,
                    self.last_tx_end_ns, self.arrival_ns, strict=True)
            ],
            "egress_busy_ns": self.egress_busy_ns.tolist(),
            "ingress_busy_ns": self.ingress_busy_ns.tolist(),
            "egress_utilisation": [round(u, 6) for u in self.egress_utilisation.tolist()],
            "ingress_utilisation": [round(u, 6) for u in self.ingress_utilisation.tolist()],
            "switch_busy_ns": int(_ceil_ns(np.int64(self.switch_busy_ps))),
        }


def _message_arrays(messages: Sequence[Message], num_gpus: int):
    m = len(messages)
    try:
        ids = np.fromiter((x.msg_id for x in messages), dtype=np.int64, count=m)
        src = np.fromiter((x.src for x in messages), dtype=np.int64, count=m)
        dst = np.fromiter((x.dst for x in messages), dtype=np.int64, count=m)
        raw_bytes = np.fromiter((x.bytes for x in messages), dtype=np.float64, count=m)
        rel_ns = np.fromiter((x.release_ns for x in messages), dtype=np.float64, count=m)
    except (TypeError, ValueError, AttributeError) as exc:
        raise InterconnectError(
            f"messages must be Message(msg_id, src, dst, bytes, release_ns) with numeric "
            f"fields: {exc}") from None

    def first_bad(mask: np.ndarray) -> Message:
        return messages[int(np.flatnonzero(mask)[0])]

    bad = (src < 0) | (src >= num_gpus) | (dst < 0) | (dst >= num_gpus)
    if bad.any():
        x = first_bad(bad)
        raise InterconnectError(
            f"message {x.msg_id}: GPU out of range (src={x.src}, dst={x.dst}); GPUs are "
            f"0..{num_gpus - 1} (LinkParams.num_gpus={num_gpus})")
    bad = src == dst
    if bad.any():
        x = first_bad(bad)
        raise InterconnectError(
            f"message {x.msg_id}: src == dst == {x.src}; local data does not cross NVLink, "
            "leave it out")
    bad = ~np.isfinite(raw_bytes) | (raw_bytes < 0) | (raw_bytes != np.floor(raw_bytes)) \
        | (raw_bytes > MAX_MESSAGE_BYTES)
    if bad.any():
        x = first_bad(bad)
        raise InterconnectError(
            f"message {x.msg_id}: bytes={x.bytes!r} must be a whole number in "
            f"0..{MAX_MESSAGE_BYTES}")
    bad = ~np.isfinite(rel_ns) | (rel_ns < 0)
    if bad.any():
        x = first_bad(bad)
        raise InterconnectError(
            f"message {x.msg_id}: release_ns={x.release_ns!r} must be a finite time >= 0")
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) != m:
        raise InterconnectError(
            f"duplicate msg_id {int(uniq[counts > 1][0])}: every message needs its own id")
    # ns -> ps rounding up; rounding to 1e-3 ps first absorbs float noise (999.999 ns -> 999999)
    release_ps = np.ceil(np.round(rel_ns * 1000, 3)).astype(np.int64)
    return ids, src, dst, raw_bytes.astype(np.int64), release_ps


def _issue_order(ids, src, release_ps, order: Mapping[int, Sequence[int]] | None,
                 num_gpus: int) -> np.ndarray:
    """Permutation putting messages by egress port, then in issue order."""
    key1, key2 = release_ps.copy(), ids.copy()
    if order:
        where = {int(i): k for k, i in enumerate(ids.tolist())}
        for port, seq in order.items():
            if not isinstance(port, int) or not 0 <= port < num_gpus:
                raise InterconnectError(
                    f"order: key {port!r} is not a GPU id in 0..{num_gpus - 1}")
            seq = [int(i) for i in seq]
            expected = set(ids[src == port].tolist())
            if len(seq) != len(set(seq)) or set(seq) != expected:
                missing = sorted(expected - set(seq))
                extra = sorted(set(seq) - expected)
                raise InterconnectError(
                    f"order[{port}] must list each message sent by GPU {port} exactly once "
                    f"(missing {missing}, not from this GPU {extra}, "
                    f"duplicates={len(seq) != len(set(seq))})")
            for pos, mid in enumerate(seq):
                k = where[mid]
                key1[k], key2[k] = 0, pos
    return np.lexsort((key2, key1, src))


def simulate(messages: Sequence[Message], params: LinkParams,
             order: Mapping[int, Sequence[int]] | None = None) -> InterconnectResult:
    """Simulate ``messages`` on the NVLink model ``params``.

    ``order`` optionally maps a source GPU to the msg_ids it sends, in issue order (the
    schedule's order on that egress port). Ports not listed send by (release time, msg_id).
    """
    g = params.num_gpus
    ids, src, dst, nbytes, release_ps = _message_arrays(messages, g)
    m = len(ids)
    index = {int(i): k for k, i in enumerate(ids.tolist())}
    zeros_g = np.zeros(g, dtype=np.int64)
    if m == 0:
        empty = np.zeros(0, dtype=np.int64)
        return InterconnectResult(params, empty, empty, empty, empty, empty, empty, empty, empty,
                                  zeros_g, zeros_g.copy(), 0, 0, index)

    perm = _issue_order(ids, src, release_ps, order, g)
    p_src, p_dst, p_bytes, p_rel = src[perm], dst[perm], nbytes[perm], release_ps[perm]

    # --- packetisation (messages in issue order, packets of a message contiguous)
    pkt, hdr = params.packet_bytes, params.header_bytes
    n_pk = np.maximum(1, -(-p_bytes // pkt))
    msg_first = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(n_pk, out=msg_first[1:])
    num_packets = int(msg_first[-1])
    msg_of = np.repeat(np.arange(m), n_pk)
    k = np.arange(num_packets, dtype=np.int64) - msg_first[:-1][msg_of]
    b_of = p_bytes[msg_of]
    cum_wire = np.minimum((k + 1) * pkt, b_of) + (k + 1) * hdr
    prev_wire = np.minimum(k * pkt, b_of) + k * hdr
    port_clock = ByteClock(params.bw_per_direction_GBps)
    # per-packet times from cumulative bytes: a message's total is exactly ceil(wire/bw)
    service = port_clock.ps_array(cum_wire) - port_clock.ps_array(prev_wire)
    pkt_src, pkt_dst = p_src[msg_of], p_dst[msg_of]

    # --- egress ports
    if params.egress_policy == "fifo":
        tx_start, tx_end = serve_in_order(p_rel[msg_of], service, None, pkt_src)
    else:
        port_first_msg = np.searchsorted(p_src, np.arange(g + 1)).astype(np.int64)
        tx_start = np.empty(num_packets, dtype=np.int64)
        tx_end = np.empty(num_packets, dtype=np.int64)
        round_robin_egress(port_first_msg, msg_first, p_rel, service, tx_start, tx_end)

    # --- wire + switch
    lat = params.latency_ps
    saf = params.store_and_forward
    ready = tx_end + lat if saf else tx_start + (lat + port_clock.ps(hdr))
    floor = None if saf else tx_end + lat
    switch_busy = 0
    if params.switch_bw_GBps is not None:
        sw_clock = ByteClock(params.switch_bw_GBps)
        sw_service = sw_clock.ps_array(cum_wire) - sw_clock.ps_array(prev_wire)
        by_arrival = _stable_order(ready, None)
        # the fabric is a throughput cap: it is busy for its own service time only, while
        # the output port (below) still cannot finish before the bits have come in
        f_start_s, f_end_s = serve_in_order(
            ready[by_arrival], sw_service[by_arrival], None, np.zeros(num_packets, np.int64))
        f_start = np.empty_like(f_start_s)
        f_end = np.empty_like(f_end_s)
        f_start[by_arrival], f_end[by_arrival] = f_start_s, f_end_s
        switch_busy = int(sw_service.sum())
        ready = f_start + sw_clock.ps(hdr)
        floor = f_end if floor is None else np.maximum(floor, f_end)

    # --- ingress ports: packets from all sources in arrival order (time, src, seq)
    by_port = _stable_order(ready, pkt_dst)
    in_start_s, in_end_s = serve_in_order(
        ready[by_port], service[by_port], None if floor is None else floor[by_port],
        pkt_dst[by_port])
    in_end = np.empty_like(in_end_s)
    in_end[by_port] = in_end_s

    # --- per message (back to the caller's order) and per port
    firsts = msg_first[:-1]
    out_first = np.empty(m, np.int64)
    out_last = np.empty(m, np.int64)
    out_arr = np.empty(m, np.int64)
    out_first[perm] = np.minimum.reduceat(tx_start, firsts)
    out_last[perm] = np.maximum.reduceat(tx_end, firsts)
    out_arr[perm] = np.maximum.reduceat(in_end, firsts)
    egress_busy = np.bincount(pkt_src, weights=tx_end - tx_start, minlength=g).astype(np.int64)
    ingress_busy = np.bincount(pkt_dst[by_port], weights=in_end_s - in_start_s,
                               minlength=g).astype(np.int64)
    return InterconnectResult(params, ids, src, dst, nbytes, release_ps, out_first, out_last,
                              out_arr, egress_busy, ingress_busy, switch_busy, num_packets, index)
