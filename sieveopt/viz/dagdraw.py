"""DAG drawings: Graphviz DOT text (always), SVG/PNG/PDF through the ``dot`` program when present.

Nodes are filled by the mode the schedule chose (GPU, PIM, NVLink, scheduler), the critical path
is drawn with thick dark borders and edges, edges inactive under the chosen modes are left out
(or dotted with ``show_inactive``), and ``collapse=True`` merges tasks of one (GPU, kind, mode)
into one node with a count, which keeps large layers (hundreds of experts) legible.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from sieveopt.critpath import critical_links, critical_path, schedule_arrays
from sieveopt.dag import TaskDAG
from sieveopt.errors import SieveoptError
from sieveopt.viz.style import CRITICAL_COLOR, mode_color, mode_colors

RENDER_FORMATS = (".svg", ".png", ".pdf")


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', r"\"") + '"'


def _us(ns: int) -> str:
    return f"{ns / 1000.0:.2f} µs" if ns >= 100 else f"{ns} ns"


def _legend(lines: list[str], modes: set[str]) -> None:
    lines.append('  subgraph cluster_legend { label="legend"; fontsize=10; color="#bbbbbb";')
    for m in [m for m in mode_colors() if m in modes]:
        lines.append(f"    legend_{m} [label={_q(m + ' mode')}, fillcolor={_q(mode_color(m))}];")
    lines.append(f'    legend_crit [label="critical path\\n(dashed: waits for\\na busy resource)", fillcolor=white, '
                 f'color={_q(CRITICAL_COLOR)}, penwidth=3];')
    lines.append("  }")


def dag_dot(dag: TaskDAG, schedule: Any = None, *, collapse: bool = False, show_inactive: bool = False) -> str:
    """DOT text of ``dag``; with a ``schedule``, nodes carry modes/times and the critical path."""
    if schedule is not None:
        modes, start, end = schedule_arrays(schedule, dag)
        crit = set(critical_path(schedule, dag))
        links = critical_links(schedule, dag)
        crit_edges = {(lk.src, lk.dst) for lk in links if lk.kind == "precedence"}
        waits = [(lk.src, lk.dst) for lk in links if lk.kind != "precedence"]
    else:
        modes = tuple(next(iter(t.modes)) if len(t.modes) == 1 else "" for t in dag.tasks)
        start = end = None
        crit, crit_edges, waits = set(), set(), []
    lines = ["digraph layer {", "  rankdir=LR; newrank=true; nodesep=0.15; ranksep=0.5;",
             '  node [shape=box, style="rounded,filled", fontsize=9, fontname="Helvetica", fillcolor=white];',
             '  edge [color="#8a8a8a", arrowsize=0.6];']
    title = f"{dag.meta.get('model', '')} / {dag.meta.get('system', '')} / {dag.num_gpus} GPU(s)"
    if schedule is not None:
        title += f" / {getattr(schedule, 'policy', '') or 'schedule'}: makespan {_us(int(max(end)))}"
    lines.append(f"  labelloc=t; fontname=Helvetica; fontsize=12; label={_q(title)};")
    if collapse:
        node = _collapsed(lines, dag, modes, start, end, crit, crit_edges, show_inactive)
    else:
        _full(lines, dag, modes, start, end, crit, crit_edges, show_inactive)
        node = {t.tid: f"t{t.tid}" for t in dag.tasks}
    # Critical waits that are not DAG edges (a busy resource, or idle slack): dashed, no ranking.
    for a, b in dict.fromkeys((node[s], node[d]) for s, d in waits):
        if a != b:
            lines.append(f"  {a} -> {b} [style=dashed, color={_q(CRITICAL_COLOR)}, penwidth=2, constraint=false];")
    _legend(lines, {m for m in modes if m})
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attrs(fill: str, critical: bool) -> str:
    a = f"fillcolor={_q(fill)}"
    if critical:
        a += f", color={_q(CRITICAL_COLOR)}, penwidth=3"
    return a


def _full(lines: list[str], dag: TaskDAG, modes: Any, start: Any, end: Any, crit: set[int],
          crit_edges: set[tuple[int, int]], show_inactive: bool) -> None:
    for g in range(dag.num_gpus):
        lines.append(f'  subgraph cluster_gpu{g} {{ label={_q(f"GPU {g}")}; color="#999999"; fontsize=11;')
        for t in dag.tasks:
            if t.gpu != g:
                continue
            m = modes[t.tid]
            if start is not None:
                extra = f"{m} {_us(int(end[t.tid] - start[t.tid]))} @ {_us(int(start[t.tid]))}"
            else:
                extra = " / ".join(f"{k} {_us(c.duration_ns)}" for k, c in t.modes.items())
            lines.append(f"    t{t.tid} [label={_q(t.name.split('@')[0] + chr(10) + extra)}, "
                         f"{_node_attrs(mode_color(m) if m else 'white', t.tid in crit)}];")
        lines.append("  }")
    for e in dag.edges:
        # Without a schedule, conditional (mode-dependent) edges are drawn dotted.
        active = dag.edge_active(e, modes) if start is not None else e.if_mode is None
        if not active and not show_inactive and start is not None:
            continue
        attrs = []
        if not active:
            attrs.append("style=dotted")
        if (e.src, e.dst) in crit_edges:
            if e.lag_ns:
                attrs.append(f"label={_q(f'+{e.lag_ns} ns')}, fontsize=7")
            attrs.append(f"color={_q(CRITICAL_COLOR)}, penwidth=2.5")
        lines.append(f"  t{e.src} -> t{e.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")


def _collapsed(lines: list[str], dag: TaskDAG, modes: Any, start: Any, end: Any, crit: set[int],
               crit_edges: set[tuple[int, int]], show_inactive: bool) -> dict[int, str]:
    """Draw one node per (GPU, kind, mode); returns task id -> node name."""
    group: dict[int, tuple[int, str, str]] = {}
    members: dict[tuple[int, str, str], list[int]] = {}
    for t in dag.tasks:
        key = (t.gpu, t.kind, modes[t.tid])
        group[t.tid] = key
        members.setdefault(key, []).append(t.tid)
    gid = {key: i for i, key in enumerate(sorted(members))}
    for g in range(dag.num_gpus):
        lines.append(f'  subgraph cluster_gpu{g} {{ label={_q(f"GPU {g}")}; color="#999999"; fontsize=11;')
        for key in sorted(k for k in members if k[0] == g):
            tids = members[key]
            _, kind, m = key
            label = f"{kind} x{len(tids)}" if len(tids) > 1 else dag.tasks[tids[0]].name.split("@")[0]
            if start is not None:
                busy = sum(int(end[t] - start[t]) for t in tids)
                label += f"\n{m}, busy {_us(busy)}"
            on_crit = any(t in crit for t in tids)
            lines.append(f"    g{gid[key]} [label={_q(label)}, {_node_attrs(mode_color(m) if m else 'white', on_crit)}];")
        lines.append("  }")
    agg: dict[tuple[int, int], list[int]] = {}  # (src group, dst group) -> [count, critical, active]
    for e in dag.edges:
        active = dag.edge_active(e, modes) if start is not None else True
        if not active and not show_inactive:
            continue
        a, b = gid[group[e.src]], gid[group[e.dst]]
        if a == b:
            continue
        rec = agg.setdefault((a, b), [0, 0, 0])
        rec[0] += 1
        rec[1] |= int((e.src, e.dst) in crit_edges)
        rec[2] |= int(active)
    for (a, b), (count, critical, active) in sorted(agg.items()):
        attrs = []
        if count > 1:
            attrs.append(f'label="{count}", fontsize=7')
        if not active:
            attrs.append("style=dotted")
        if critical:
            attrs.append(f"color={_q(CRITICAL_COLOR)}, penwidth=2.5")
        lines.append(f"  g{a} -> g{b}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    return {tid: f"g{gid[key]}" for tid, key in group.items()}


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_dot(dot_text: str, path: str | Path, *, timeout_s: float = 120.0) -> Path:
    """Render DOT to ``path`` (.svg/.png/.pdf, or .dot to just save it); atomic."""
    from sieveopt.fileio import atomic_write_bytes, atomic_write_text

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".dot", ".gv"):
        return atomic_write_text(path, dot_text)
    if suffix not in RENDER_FORMATS:
        raise SieveoptError(f"{path}: DAG drawings are .dot, .gv, {', '.join(RENDER_FORMATS)} (fix: change the extension)")
    exe = shutil.which("dot")
    if exe is None:
        raise SieveoptError(f"{path}: rendering {suffix} needs the Graphviz 'dot' program "
                            "(fix: apt-get install graphviz, or write a .dot file)")
    args = [exe, f"-T{suffix[1:]}"] + (["-Gdpi=110"] if suffix == ".png" else [])
    proc = subprocess.run(args, input=dot_text.encode(), capture_output=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise SieveoptError(f"{path}: dot failed: {proc.stderr.decode(errors='replace').strip()[:500]}")
    return atomic_write_bytes(path, proc.stdout)


def write_dag(dag: TaskDAG, path: str | Path, schedule: Any = None, *, collapse: bool = False,
              show_inactive: bool = False) -> Path:
    """Write the DAG drawing (format by extension); returns the path."""
    return render_dot(dag_dot(dag, schedule, collapse=collapse, show_inactive=show_inactive), path)
