"""Gantt charts (matplotlib, Agg): one row per resource lane per GPU, coloured by task kind,
critical path outlined, legend outside the axes; PNG/SVG/PDF by file extension.

:func:`gantt_compare` stacks several schedules on one shared time axis (e.g. Sieve vs CP-SAT).
Rows that never hold a task are hidden unless ``all_rows=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sieveopt.critpath import critical_path
from sieveopt.dag import TaskDAG
from sieveopt.errors import SieveoptError
from sieveopt.viz.layout import Layout, build_layout
from sieveopt.viz.style import CRITICAL_COLOR, kind_color

FORMATS = (".png", ".svg", ".pdf")
ROW_HEIGHT_IN = 0.24
#: Label bars only when they are at least this fraction of the time axis wide.
LABEL_MIN_FRACTION = 0.035


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _short(dag: TaskDAG, tid: int) -> str:
    t = dag.tasks[tid]
    if t.expert >= 0:
        return f"e{t.expert}"
    if t.peer >= 0:
        return f"{t.kind[:2]}{t.gpu}>{t.peer}"
    return t.kind


def _shown(layout: Layout, all_rows: bool, gpus: Sequence[int] | None, resources: Sequence[str] | None) -> list:
    """Rows to draw: busy ones (or all), of the selected GPUs and resource kinds only."""
    return [r for r in layout.rows if (all_rows or r.slices or r.instants)
            and (gpus is None or r.gpu in gpus) and (resources is None or r.kind in resources)]


def _draw(ax: Any, dag: TaskDAG, layout: Layout, crit: set[int], span_ns: int, *, all_rows: bool,
          labels: bool, gpus: Sequence[int] | None = None, resources: Sequence[str] | None = None,
          color_by: str = "kind") -> set[str]:
    """Draw one schedule into ``ax``; returns the colour keys drawn (task kinds, or micro-batches
    with ``color_by="microbatch"``)."""
    from matplotlib.patches import Rectangle

    rows = _shown(layout, all_rows, gpus, resources)
    kinds: set[str] = set()
    min_label_us = span_ns / 1000.0 * LABEL_MIN_FRACTION
    for y, row in enumerate(rows):
        by_kind: dict[str, list[tuple[float, float]]] = {}
        for sl in row.slices:
            kind = _key(dag, sl.tid, color_by)
            by_kind.setdefault(kind, []).append((sl.start_ns / 1000.0, (sl.end_ns - sl.start_ns) / 1000.0))
        for kind, bars in by_kind.items():
            kinds.add(kind)
            ax.broken_barh(bars, (y - 0.38, 0.76), facecolors=_color(kind), edgecolor="white", linewidth=0.3,
                           alpha=1.0 if row.kind != "hbm" and row.kind != "ingress" else 0.55)
        for sl in row.slices:
            x, w = sl.start_ns / 1000.0, (sl.end_ns - sl.start_ns) / 1000.0
            if sl.primary and sl.tid in crit:
                ax.add_patch(Rectangle((x, y - 0.42), w, 0.84, fill=False, edgecolor=CRITICAL_COLOR,
                                       linewidth=1.6, zorder=3))
            if labels and sl.primary and w >= min_label_us:
                ax.text(x + w / 2, y, _short(dag, sl.tid), ha="center", va="center", fontsize=6.5,
                        clip_on=True, zorder=4)
        for tid in row.instants:
            kinds.add(_key(dag, tid, color_by))
            x = layout.start_ns[tid] / 1000.0
            ax.plot([x, x], [y - 0.4, y + 0.4], color=CRITICAL_COLOR if tid in crit else "#555555",
                    linewidth=1.2, zorder=3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"GPU{r.gpu} {r.label}" for r in rows], fontsize=7.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    for y in range(1, len(rows)):
        if rows[y].gpu != rows[y - 1].gpu:
            ax.axhline(y - 0.5, color="#888888", linewidth=0.8)
    ax.axvline(layout.makespan_ns / 1000.0, color="#333333", linestyle="--", linewidth=0.9)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    return kinds


MB_PREFIX = "micro-batch "
#: Micro-batch colours (``color_by="microbatch"``: a steady-state period of a pipeline).
MB_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _key(dag: TaskDAG, tid: int, color_by: str) -> str:
    return f"{MB_PREFIX}{dag.tasks[tid].microbatch}" if color_by == "microbatch" else dag.tasks[tid].kind


def _color(key: str) -> str:
    if key.startswith(MB_PREFIX):
        return MB_COLORS[int(key[len(MB_PREFIX):]) % len(MB_COLORS)]
    return kind_color(key)


def _legend(fig: Any, kinds: set[str], has_crit: bool) -> None:
    from matplotlib.patches import Patch

    from sieveopt.viz.style import KIND_COLOR

    order = [k for k in KIND_COLOR if k in kinds] + sorted(kinds - set(KIND_COLOR))
    handles = [Patch(facecolor=_color(k), label=k) for k in order]
    if has_crit:
        handles.append(Patch(facecolor="none", edgecolor=CRITICAL_COLOR, linewidth=1.6, label="critical path"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.86, 0.98), fontsize=8, frameon=False,
               title="micro-batch" if any(k.startswith(MB_PREFIX) for k in kinds) else "task kind",
               title_fontsize=8.5)


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise SieveoptError(f"{path}: Gantt charts are written as {', '.join(FORMATS)} (fix: change the extension)")
    return path


def _save(fig: Any, path: Path) -> Path:
    import io

    from sieveopt.fileio import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lower()[1:], dpi=150, metadata=None if path.suffix != ".png" else {})
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def gantt_compare(items: Sequence[tuple[str, Any, TaskDAG]], path: str | Path, *, all_rows: bool = False,
                  labels: bool = True, title: str | None = None, gpus: Sequence[int] | None = None,
                  resources: Sequence[str] | None = None, color_by: str = "kind") -> Path:
    """Several ``(label, schedule, dag)`` stacked on one shared time axis; returns the path.
    ``gpus`` / ``resources`` (resource kinds such as "gpu", "pim") select the rows drawn (an
    8-GPU layer has ~100 rows); the time axis and the critical path stay those of the whole
    schedule."""
    path = _check_path(path)
    if not items:
        raise SieveoptError("gantt_compare: give at least one (label, schedule, dag)")
    plt = _pyplot()
    layouts = [build_layout(s, d) for _, s, d in items]
    nrows = [max(1, len(_shown(lay, all_rows, gpus, resources))) for lay in layouts]
    span = max(lay.makespan_ns for lay in layouts) or 1
    height = sum(nrows) * ROW_HEIGHT_IN + 0.6 * len(items) + 1.0
    fig, axes = plt.subplots(len(items), 1, sharex=True, figsize=(13, height), squeeze=False,
                             gridspec_kw={"height_ratios": nrows})
    kinds: set[str] = set()
    any_crit = False
    for ax, (label, sched, dag), lay in zip(axes[:, 0], items, layouts, strict=True):
        crit = set(critical_path(sched, dag))
        any_crit |= bool(crit)
        kinds |= _draw(ax, dag, lay, crit, span, all_rows=all_rows, labels=labels, gpus=gpus, resources=resources,
                       color_by=color_by)
        ax.set_title(f"{label}: makespan {lay.makespan_ns / 1000.0:.2f} µs", fontsize=9.5, loc="left")
    axes[-1, 0].set_xlabel("time (µs)")
    axes[-1, 0].set_xlim(0, span / 1000.0 * 1.01)
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, y=1 - 0.12 / height, ha="left", va="top")
    _legend(fig, kinds, any_crit)
    top_in = 0.75 if title else 0.4
    fig.subplots_adjust(left=0.12, right=0.85, top=1 - top_in / height, bottom=0.55 / height,
                        hspace=0.55 / max(0.5, sum(nrows) / len(items) * ROW_HEIGHT_IN))
    return _save(fig, path)


def gantt(schedule: Any, dag: TaskDAG, path: str | Path, *, label: str | None = None,
          all_rows: bool = False, labels: bool = True, gpus: Sequence[int] | None = None,
          resources: Sequence[str] | None = None, color_by: str = "kind") -> Path:
    """One schedule's Gantt chart; returns the path written."""
    name = label or getattr(schedule, "policy", "") or "schedule"
    meta = dag.meta
    title = f"{meta.get('model', '')} on {meta.get('system', '')}, {dag.num_gpus} GPU(s), batch {meta.get('batch', '?')}"
    return gantt_compare([(name, schedule, dag)], path, all_rows=all_rows, labels=labels, title=title,
                         gpus=gpus, resources=resources, color_by=color_by)
