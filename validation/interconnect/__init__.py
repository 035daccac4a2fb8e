"""NVLink interconnect simulator: packet-level, deterministic, integer picoseconds.

Used to replay the three collectives of an MoE decode layer on the GPUs' NVLink ports: the
AllGather of the routing maps, the dispatch all-to-all and the combine all-to-all.

Model
-----
* **Topology.** ``num_gpus`` GPUs, each with one NVLink *egress* port and one *ingress* port
  (separate directions, ``bw_per_direction_GBps`` each), all attached to one switch. The
  switch is **non-blocking** by default: any set of (src, dst) pairs can move at full port
  rate at once. ``switch_bw_GBps`` optionally caps the fabric's aggregate throughput (a shared
  stage all packets cross, in arrival order).
* **Packets.** A message of ``B`` bytes is cut into ``ceil(B / packet_bytes)`` packets (at
  least one; a 0-byte message is a header-only packet). Each packet carries ``header_bytes``
  of overhead on every port it crosses. Serialization times come from cumulative bytes, so a
  message's packets add up to exactly ``ceil(wire_bytes * 1000 / bw)`` ps.
* **Egress** (where *fan-out* contention appears). Each port sends its messages in *issue
  order* (given per port by ``order=``, the schedule's order on that resource; default: by
  release time, then ``msg_id``). ``egress_policy="fifo"`` sends one whole message after the
  other; a message released later than its successor in the order holds it back (the order
  is the schedule's decision). ``"round_robin"`` sends one packet of every released,
  unfinished message in turn (issue order gives the rotation).
* **Wire + switch.** A packet reaches the switch's output port ``latency_ns`` after leaving
  the egress (wire and switch traversal together; one fixed value, no per-hop split).
  ``switching="store_and_forward"``: forwarding starts when the whole packet is in;
  ``"cut_through"``: when its header is in (immediately with ``header_bytes=0``), and it can
  never finish before the upstream port has sent its last bit.
* **Ingress** (where *incast* contention appears). The switch output port towards the
  destination serializes the packets of all sources in order of arrival, ties broken by
  (time, src, packet sequence on that source). A message **arrives** when its last packet has
  been fully received.
* **Not modelled.** Switch buffers are unbounded: no credit back-pressure, so a congested
  ingress never stalls the sender's egress and no head-of-line blocking crosses ports;
  no link-level retries, no multi-switch topologies, no NVLink SHARP in-switch reduction.

Closed forms (tested): an uncontended message arrives at
``release + latency + B/bw`` (cut-through) or one packet time later (store-and-forward);
``k`` equal messages into one GPU finish at ``latency + k*B/bw`` (ingress serialization);
one GPU sending ``k`` equal messages finishes at ``latency + k*B/bw`` (egress serialization).

Time is integer picoseconds inside (a 256-byte packet at 900 GB/s is 284.4 ps); the API takes
release times in ns and reports ns rounded up (``*_ns``) next to the exact ``*_ps``.
"""

from sieveopt.validation.interconnect.engine import InterconnectResult, MessageTiming, simulate
from sieveopt.validation.interconnect.messages import (
    Message,
    allgather_messages,
    alltoall_messages,
)
from sieveopt.validation.interconnect.params import (
    EGRESS_POLICIES,
    SWITCHING_MODES,
    InterconnectError,
    LinkParams,
)

__all__ = [
    "EGRESS_POLICIES",
    "SWITCHING_MODES",
    "InterconnectError",
    "InterconnectResult",
    "LinkParams",
    "Message",
    "MessageTiming",
    "allgather_messages",
    "alltoall_messages",
    "simulate",
]
