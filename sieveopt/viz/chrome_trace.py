"""Chrome trace-event JSON (opens in https://ui.perfetto.dev and chrome://tracing).

Conventions (docs/anchors §8): ``pid`` = GPU (``pid = gpu + 1``; one more process holds the
critical-path summary), ``tid`` = one lane of one resource (order encoded in the number, since
Perfetto ignores sort indexes), ``M`` metadata names every process and thread, ``X`` slices in
µs with the integer ns kept in ``args``, never two overlapping slices on one thread, ``s``/``f``
flow events (``bp: "e"``) for DAG edges, ``args.critical = 1`` on critical-path tasks, ``C``
counters for HBM and PIM bandwidth. Zero-length tasks are instants and carry no flows.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Literal

import orjson

from sieveopt.critpath import critical_links, critical_path
from sieveopt.dag import TaskDAG
from sieveopt.targets import counter_targets
from sieveopt.viz.layout import Layout, Row, build_layout, rate_series, task_bytes

FlowMode = Literal["auto", "all", "critical", "none"]
#: Above this many active edges, ``flows="auto"`` keeps only the critical-path arrows.
AUTO_FLOW_LIMIT = 5000
#: Uncompressed JSON above this size is gzipped (and ``.gz`` appended to the name).
GZIP_ABOVE_BYTES = 32 << 20


def _us(ns: int | float) -> float:
    return ns / 1000.0


def _pid(gpu: int) -> int:
    return gpu + 1


def _task_args(dag: TaskDAG, layout: Layout, tid: int, critical: bool, primary: bool) -> dict[str, Any]:
    t = dag.tasks[tid]
    s, e = int(layout.start_ns[tid]), int(layout.end_ns[tid])
    a: dict[str, Any] = {"task": tid, "kind": t.kind, "mode": layout.modes[tid], "gpu": t.gpu,
                         "start_ns": s, "end_ns": e, "duration_ns": e - s, "tokens": int(t.tokens),
                         "bytes": task_bytes(dag, tid), "primary": int(primary)}
    if t.expert >= 0:
        a["expert"] = t.expert
    if t.peer >= 0:
        a["peer"] = t.peer
    if critical:
        a["critical"] = 1
    return a


def select_flow_edges(schedule: Any, dag: TaskDAG, layout: Layout, critical_pairs: set[tuple[int, int]],
                      flows: FlowMode) -> list[tuple[int, int, str]]:
    """(src, dst, category) of the arrows to draw: active edges between non-empty tasks."""
    if flows == "none":
        return []
    active = [(e.src, e.dst) for e in dag.active_edges(layout.modes)
              if layout.end_ns[e.src] > layout.start_ns[e.src] and layout.end_ns[e.dst] > layout.start_ns[e.dst]]
    if flows == "critical" or (flows == "auto" and len(active) > AUTO_FLOW_LIMIT):
        active = [p for p in active if p in critical_pairs]
    return [(s, d, "critical_path" if (s, d) in critical_pairs else "dag_edge") for s, d in active]


def chrome_trace_events(schedule: Any, dag: TaskDAG, *, flows: FlowMode = "auto",
                        system: Any = None, power: dict[int, list[tuple[int, float]]] | None = None
                        ) -> list[dict[str, Any]]:
    """Every trace event of one schedule (metadata first)."""
    layout = build_layout(schedule, dag)
    links = critical_links(schedule, dag)
    crit_tasks = set(critical_path(schedule, dag))
    crit_pairs = {(lk.src, lk.dst) for lk in links}
    ev: list[dict[str, Any]] = []
    G = dag.num_gpus
    for g in range(G):
        ev.append({"ph": "M", "name": "process_name", "pid": _pid(g), "tid": 0, "args": {"name": f"GPU {g}"}})
    summary_pid = _pid(G)
    ev.append({"ph": "M", "name": "process_name", "pid": summary_pid, "tid": 0, "args": {"name": "critical path"}})
    ev.append({"ph": "M", "name": "thread_name", "pid": summary_pid, "tid": 1, "args": {"name": "critical chain"}})
    for row in layout.rows:
        ev.append({"ph": "M", "name": "thread_name", "pid": _pid(row.gpu), "tid": row.order,
                   "args": {"name": row.label}})
    for row in layout.rows:
        _row_events(ev, dag, layout, row, crit_tasks)
    # The critical chain on its own track (never overlaps: each task starts after the previous).
    for tid in sorted(crit_tasks, key=lambda x: (layout.start_ns[x], layout.end_ns[x])):
        s, e = int(layout.start_ns[tid]), int(layout.end_ns[tid])
        base = {"name": dag.tasks[tid].name, "cat": dag.tasks[tid].kind, "pid": summary_pid, "tid": 1,
                "ts": _us(s), "args": _task_args(dag, layout, tid, True, False)}
        ev.append({**base, "ph": "X", "dur": _us(e - s)} if e > s else {**base, "ph": "i", "s": "t"})
    for fid, (src, dst, cat) in enumerate(select_flow_edges(schedule, dag, layout, crit_pairs, flows), start=1):
        rs, rd = layout.primary_row[src], layout.primary_row[dst]
        ts_s = _us((int(layout.start_ns[src]) + int(layout.end_ns[src])) / 2)
        ts_d = _us((int(layout.start_ns[dst]) + int(layout.end_ns[dst])) / 2)
        ev.append({"ph": "s", "id": fid, "name": "dep", "cat": cat, "pid": _pid(rs.gpu), "tid": rs.order, "ts": ts_s})
        ev.append({"ph": "f", "bp": "e", "id": fid, "name": "dep", "cat": cat, "pid": _pid(rd.gpu), "tid": rd.order,
                   "ts": ts_d})
    for g in range(G):
        for tgt in counter_targets():
            name, mode = tgt.counter_label, tgt.mode
            peak = tgt.counter_peak_GBps(system) if tgt.counter_peak_GBps else None
            for ts, val in rate_series(dag, layout, g, mode):
                args = {"GBps": round(val, 6)}
                if peak:
                    args["util"] = round(val / peak, 6)
                ev.append({"ph": "C", "name": name, "pid": _pid(g), "tid": 0, "ts": _us(ts), "args": args})
    for g, pts in (power or {}).items():   # power counter track (sieveopt.validation.energy.power)
        for ts, w in pts:
            ev.append({"ph": "C", "name": "power W", "pid": _pid(g), "tid": 0, "ts": _us(ts), "args": {"W": round(w, 6)}})
    return ev


def _row_events(ev: list[dict[str, Any]], dag: TaskDAG, layout: Layout, row: Row, crit: set[int]) -> None:
    pid = _pid(row.gpu)
    for sl in row.slices:
        t = dag.tasks[sl.tid]
        ev.append({"ph": "X", "name": t.name, "cat": t.kind, "pid": pid, "tid": row.order,
                   "ts": _us(sl.start_ns), "dur": _us(sl.end_ns - sl.start_ns),
                   "args": _task_args(dag, layout, sl.tid, sl.tid in crit, sl.primary)})
    for tid in row.instants:
        t = dag.tasks[tid]
        ev.append({"ph": "i", "s": "t", "name": t.name, "cat": t.kind, "pid": pid, "tid": row.order,
                   "ts": _us(int(layout.start_ns[tid])), "args": _task_args(dag, layout, tid, tid in crit, True)})


def chrome_trace(schedule: Any, dag: TaskDAG, *, flows: FlowMode = "auto", system: Any = None,
                 meta: dict[str, Any] | None = None,
                 power: dict[int, list[tuple[int, float]]] | None = None) -> dict[str, Any]:
    """The whole trace object: ``{"traceEvents", "displayTimeUnit", "otherData"}``."""
    from sieveopt import __version__

    ev = chrome_trace_events(schedule, dag, flows=flows, system=system, power=power)
    other = {"sieveopt_version": __version__, "policy": getattr(schedule, "policy", ""),
             "makespan_ns": int(max(schedule.end_ns)) if len(schedule.end_ns) else 0,
             "time_unit": "ts/dur in us; args.start_ns/end_ns exact", **dag.meta, **(meta or {})}
    return {"traceEvents": ev, "displayTimeUnit": "ns", "otherData": other}


def write_chrome_trace(schedule: Any, dag: TaskDAG, path: str | Path, *, flows: FlowMode = "auto",
                       system: Any = None, meta: dict[str, Any] | None = None,
                       gzip_above_bytes: int = GZIP_ABOVE_BYTES,
                       power: dict[int, list[tuple[int, float]]] | None = None) -> Path:
    """Write the JSON trace atomically; gzip when the name ends in ``.gz`` or it is large
    (then ``.gz`` is appended). Returns the path written."""
    from sieveopt.fileio import atomic_write_bytes

    path = Path(path)
    payload = orjson.dumps(chrome_trace(schedule, dag, flows=flows, system=system, meta=meta, power=power),
                           option=orjson.OPT_SERIALIZE_NUMPY)
    if path.suffix != ".gz" and len(payload) > gzip_above_bytes:
        path = path.with_name(path.name + ".gz")
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, payload)


def read_chrome_trace(path: str | Path) -> dict[str, Any]:
    """Load a JSON trace written by :func:`write_chrome_trace` (plain or gzipped)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return orjson.loads(raw)
