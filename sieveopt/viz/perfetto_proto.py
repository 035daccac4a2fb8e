"""Perfetto's native protobuf trace (synthetic TrackEvent), built with ``perfetto.trace_builder``.

Same layout as the JSON trace: one process track per GPU (plus one for the critical chain), one
named child track per resource lane in explicit order, slices as BEGIN/END pairs (integer ns,
exact), zero-length tasks as instants, DAG edges as flows (``flow_ids`` on the source slice,
``terminating_flow_ids`` on the destination), counter tracks for HBM and PIM GB/s. Packets are
streamed to a temp file in timestamp order (ends before begins at equal times) and renamed.
Needs the optional ``perfetto`` package (``pip install sieveopt[perfetto]``); never starts the
trace processor.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from sieveopt.critpath import critical_links, critical_path
from sieveopt.dag import TaskDAG
from sieveopt.errors import SieveoptError
from sieveopt.fileio import atomic_path
from sieveopt.targets import counter_targets
from sieveopt.viz.chrome_trace import FlowMode, select_flow_edges
from sieveopt.viz.layout import build_layout, rate_series, task_bytes

_SEQ = 1
_END, _INSTANT, _COUNTER, _BEGIN = 0, 1, 2, 3  # sort rank at equal timestamps


def _perfetto():
    try:
        from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
        from perfetto.trace_builder.proto_builder import StreamingTraceProtoBuilder
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise SieveoptError("the Perfetto protobuf trace needs the 'perfetto' package "
                            "(fix: pip install 'sieveopt[perfetto]', or write a .json trace)") from exc
    return pb, StreamingTraceProtoBuilder


def _annotate(te: Any, items: dict[str, Any]) -> None:
    for k, v in items.items():
        d = te.debug_annotations.add()
        d.name = k
        if isinstance(v, bool):
            d.bool_value = v
        elif isinstance(v, int):
            d.int_value = v
        elif isinstance(v, float):
            d.double_value = v
        else:
            d.string_value = str(v)


def write_perfetto_trace(schedule: Any, dag: TaskDAG, path: str | Path, *, flows: FlowMode = "auto",
                         system: Any = None, power: dict[int, list[tuple[int, float]]] | None = None) -> Path:
    """Write a ``.pftrace`` (or ``.pftrace.gz``) file; returns the path."""
    pb, Streaming = _perfetto()
    path = Path(path)
    layout = build_layout(schedule, dag)
    links = critical_links(schedule, dag)
    crit = set(critical_path(schedule, dag))
    crit_pairs = {(lk.src, lk.dst) for lk in links}
    flow_edges = select_flow_edges(schedule, dag, layout, crit_pairs, flows)
    flows_out: dict[int, list[int]] = {}
    flows_in: dict[int, list[int]] = {}
    for fid, (s, d, _cat) in enumerate(flow_edges, start=1):
        flows_out.setdefault(s, []).append(fid)
        flows_in.setdefault(d, []).append(fid)

    packets: list[Any] = []  # descriptors first, then (ts, rank, seq, packet) events
    uuid = iter(range(1, 1 << 62))
    proc_uuid: dict[int, int] = {}
    G = dag.num_gpus
    for g in range(G + 1):
        p = pb.TracePacket()
        td = p.track_descriptor
        td.uuid = proc_uuid.setdefault(g, next(uuid))
        td.process.pid = g + 1
        td.process.process_name = f"GPU {g}" if g < G else "critical path"
        td.child_ordering = pb.TrackDescriptor.ChildTracksOrdering.EXPLICIT
        packets.append(p)

    def child(g: int, name: str, rank: int, counter_unit: str | None = None) -> int:
        p = pb.TracePacket()
        td = p.track_descriptor
        td.uuid = next(uuid)
        td.parent_uuid = proc_uuid[g]
        td.name = name
        td.sibling_order_rank = rank
        if counter_unit is not None:
            td.counter.unit_name = counter_unit
        packets.append(p)
        return td.uuid

    events: list[tuple[int, int, int, Any]] = []

    def event(ts: int, rank: int, track: int, etype: int, name: str = "", cat: str = "") -> Any:
        p = pb.TracePacket()
        p.timestamp = ts
        p.trusted_packet_sequence_id = _SEQ
        te = p.track_event
        te.type = etype
        te.track_uuid = track
        if name:
            te.name = name
        if cat:
            te.categories.append(cat)
        events.append((ts, rank, len(events), p))
        return te

    T = pb.TrackEvent.Type

    def slice_(track: int, tid: int, s: int, e: int, primary: bool, with_flows: bool) -> None:
        t = dag.tasks[tid]
        args = {"task": tid, "mode": layout.modes[tid], "tokens": int(t.tokens), "bytes": task_bytes(dag, tid),
                "duration_ns": e - s, "primary": primary}
        if t.expert >= 0:
            args["expert"] = t.expert
        if tid in crit:
            args["critical"] = 1
        if e <= s:
            _annotate(event(s, _INSTANT, track, T.TYPE_INSTANT, t.name, t.kind), args)
            return
        te = event(s, _BEGIN, track, T.TYPE_SLICE_BEGIN, t.name, t.kind)
        _annotate(te, args)
        if with_flows:
            te.flow_ids.extend(flows_out.get(tid, []))
            te.terminating_flow_ids.extend(flows_in.get(tid, []))
        event(e, _END, track, T.TYPE_SLICE_END)

    for row in layout.rows:
        track = child(row.gpu, row.label, row.order)
        for sl in row.slices:
            slice_(track, sl.tid, sl.start_ns, sl.end_ns, sl.primary, sl.primary)
        for tid in row.instants:
            s = int(layout.start_ns[tid])
            slice_(track, tid, s, s, True, False)
    chain = child(G, "critical chain", 1)
    for tid in sorted(crit, key=lambda x: (layout.start_ns[x], layout.end_ns[x])):
        slice_(chain, tid, int(layout.start_ns[tid]), int(layout.end_ns[tid]), False, False)
    for g in range(G):
        for k, tgt in enumerate(counter_targets(), start=1):
            track = child(g, tgt.counter_label, k, counter_unit="GB/s")
            for ts, val in rate_series(dag, layout, g, tgt.mode):
                event(ts, _COUNTER, track, T.TYPE_COUNTER).double_counter_value = val
    for g, pts in (power or {}).items():   # power counter track (sieveopt.validation.energy.power)
        track = child(g, "power W", 3, counter_unit="W")
        for ts, val in pts:
            event(ts, _COUNTER, track, T.TYPE_COUNTER).double_counter_value = val
    events.sort(key=lambda x: (x[0], x[1], x[2]))
    if events:
        events[0][3].sequence_flags = pb.TracePacket.SequenceFlags.SEQ_INCREMENTAL_STATE_CLEARED

    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        fh = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.suffix == ".gz" else raw
        builder = Streaming(fh)
        for p in packets:
            p.trusted_packet_sequence_id = _SEQ
            builder.write_packet(p)
        for *_, p in events:
            builder.write_packet(p)
        if fh is not raw:
            fh.close()
    return path


def read_perfetto_trace(path: str | Path) -> Any:
    """Parse a trace written by :func:`write_perfetto_trace` into a ``perfetto.protos`` Trace."""
    pb, _ = _perfetto()
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    trace = pb.Trace()
    trace.ParseFromString(raw)
    return trace
