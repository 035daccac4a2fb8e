"""Plain serialisations of a :class:`TaskDAG`: JSON (round-trippable data) and Graphviz DOT.

Richer drawings (critical path, colours by mode, collapsing) live in :mod:`sieveopt.viz`.
"""

from __future__ import annotations

import json

from sieveopt.dag import TaskDAG
from sieveopt.fileio import strict_json_value


def dag_to_json(dag: TaskDAG) -> str:
    data = {
        "meta": dag.meta,
        "resources": [{"rid": r.rid, "name": r.name, "kind": r.kind, "gpu": r.gpu, "capacity": r.capacity}
                      for r in dag.resources],
        "tasks": [{"tid": t.tid, "name": t.name, "kind": t.kind, "gpu": t.gpu, "expert": t.expert, "peer": t.peer,
                   "tokens": t.tokens,
                   "modes": {m: {"duration_ns": c.duration_ns, "resources": list(c.resources)} for m, c in t.modes.items()}}
                  for t in dag.tasks],
        "edges": [{"src": e.src, "dst": e.dst, "lag_ns": e.lag_ns,
                   "if_mode": None if e.if_mode is None else list(e.if_mode)} for e in dag.edges],
    }
    return json.dumps(strict_json_value(data), indent=1, allow_nan=False)  # strict: NaN -> null


def _q(s: str) -> str:
    return '"' + s.replace('"', r"\"") + '"'


def dag_to_dot(dag: TaskDAG) -> str:
    lines = ["digraph layer {", "  rankdir=LR;", '  node [shape=box, fontsize=10, fontname="Helvetica"];']
    for g in range(dag.num_gpus):
        lines.append(f"  subgraph cluster_gpu{g} {{ label={_q(f'GPU {g}')}; color=gray;")
        for t in dag.tasks:
            if t.gpu == g:
                durs = "/".join(f"{m}:{c.duration_ns}ns" for m, c in t.modes.items())
                lines.append(f"    t{t.tid} [label={_q(t.name + chr(10) + durs)}];")
        lines.append("  }")
    for e in dag.edges:
        attrs = []
        if e.lag_ns:
            attrs.append(f"label={_q(f'+{e.lag_ns}ns')}")
        if e.if_mode is not None:
            attrs.append("style=dashed")
        lines.append(f"  t{e.src} -> t{e.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
