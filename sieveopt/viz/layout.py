"""Track layout shared by every picture: which task goes on which (GPU, resource, lane) row.

A task is drawn on every resource it holds in its chosen mode; the first resource of the mode
is its *primary* track (GPU stream for GPU kernels, PIM for PIM jobs, NVLink egress of the
source GPU for messages, the scheduler for ``sched``), which carries the flow arrows. HBM and
NVLink ingress rows show the same task as a secondary slice. Tasks on one resource are packed
into lanes so no two slices of a row overlap: a valid schedule of unary resources needs one
lane; extra lanes appear only for capacity > 1 resources or replayed schedules that overlap.
Zero-length tasks hold nothing and are drawn as instants on their primary row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt.critpath import schedule_arrays
from sieveopt.dag import TaskDAG
from sieveopt.targets import track_label, track_order


@dataclass(frozen=True, slots=True)
class Slice:
    tid: int
    start_ns: int
    end_ns: int
    primary: bool


@dataclass
class Row:
    """One drawable row: a lane of one resource of one GPU."""

    gpu: int
    kind: str
    lane: int
    rid: int
    slices: list[Slice] = field(default_factory=list)
    instants: list[int] = field(default_factory=list)  # task ids of zero-length tasks
    #: Index of the resource among its GPU's resources of this kind, and their count (>1 when a
    #: target layout splits its units, e.g. PIM channel groups).
    part: int = 0
    parts: int = 1

    @property
    def label(self) -> str:
        base = track_label(self.kind) + (f" {self.part}" if self.parts > 1 else "")
        return base if self.lane == 0 else f"{base} #{self.lane + 1}"

    @property
    def order(self) -> int:
        """Within-GPU display order (also the trace thread id, unique per GPU)."""
        k = track_order(self.kind)  # the execution targets' order of resource kinds
        if self.parts > 1:   # split resources: after the GPU's plain rows, one block per part
            return 100_000 + (k + 1) * 10_000 + self.part * 10 + min(self.lane, 9)
        return (k + 1) * 100 + self.lane


@dataclass
class Layout:
    modes: tuple[str, ...]
    start_ns: np.ndarray
    end_ns: np.ndarray
    rows: list[Row]
    primary_row: dict[int, Row]  # task id -> the row holding its primary slice / instant

    @property
    def makespan_ns(self) -> int:
        return int(self.end_ns.max()) if len(self.end_ns) else 0


def task_bytes(dag: TaskDAG, tid: int) -> float:
    """Bytes a task moves through memory (weights + activations + KV), from its Work."""
    w = dag.tasks[tid].work
    if w is None:
        return 0.0
    return float(w.weight_bytes + w.act_bytes + w.kv_bytes)


def build_layout(schedule: Any, dag: TaskDAG, *, busy_only: bool = False) -> Layout:
    """Rows for every (GPU, resource) in the DAG (``busy_only``: only rows that hold a task)."""
    modes, start, end = schedule_arrays(schedule, dag)
    lanes: dict[int, list[Row]] = {r.rid: [] for r in dag.resources}
    lane_end: dict[int, list[int]] = {r.rid: [] for r in dag.resources}
    primary: dict[int, Row] = {}
    part: dict[int, int] = {}
    parts: dict[tuple[str, int], int] = {}
    for r in dag.resources:
        part[r.rid] = parts.get((r.kind, r.gpu), 0)
        parts[(r.kind, r.gpu)] = part[r.rid] + 1

    def lane_row(rid: int, k: int) -> Row:
        while len(lanes[rid]) <= k:
            res = dag.resources[rid]
            lanes[rid].append(Row(res.gpu, res.kind, len(lanes[rid]), rid, part=part[rid],
                                  parts=parts[(res.kind, res.gpu)]))
            lane_end[rid].append(-1)
        return lanes[rid][k]

    order = sorted(range(len(dag.tasks)), key=lambda x: (start[x], end[x], x))
    for tid in order:
        res = dag.tasks[tid].modes[modes[tid]].resources
        s, e = int(start[tid]), int(end[tid])
        if e <= s or not res:
            if res:
                row = lane_row(res[0], 0)
                row.instants.append(tid)
                primary[tid] = row
            continue
        for i, rid in enumerate(res):
            ends = lane_end[rid]
            k = next((j for j, le in enumerate(ends) if le <= s), len(ends))
            row = lane_row(rid, k)
            lane_end[rid][k] = e
            row.slices.append(Slice(tid, s, e, i == 0))
            if i == 0:
                primary[tid] = row
    rows: list[Row] = []
    for r in dag.resources:
        if not lanes[r.rid] and not busy_only:
            lane_row(r.rid, 0)
        rows.extend(lanes[r.rid])
    rows.sort(key=lambda row: (row.gpu, row.order))
    return Layout(modes, start, end, rows, primary)


def rate_series(dag: TaskDAG, layout: Layout, gpu: int, mode: str) -> list[tuple[int, float]]:
    """Piecewise-constant GB/s (= bytes/ns) of the ``mode`` tasks of ``gpu``: [(t_ns, value)]."""
    deltas: dict[int, float] = {}
    for t in dag.tasks:
        if t.gpu != gpu or layout.modes[t.tid] != mode:
            continue
        s, e = int(layout.start_ns[t.tid]), int(layout.end_ns[t.tid])
        if e <= s:
            continue
        rate = task_bytes(dag, t.tid) / (e - s)
        deltas[s] = deltas.get(s, 0.0) + rate
        deltas[e] = deltas.get(e, 0.0) - rate
    out: list[tuple[int, float]] = [(0, 0.0)]
    level = 0.0
    for ts in sorted(deltas):
        level += deltas[ts]
        value = level if level > 1e-9 else 0.0
        if ts == out[-1][0]:
            out[-1] = (ts, value)
        else:
            out.append((ts, value))
    return out
