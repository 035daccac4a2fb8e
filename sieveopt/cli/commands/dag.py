"""``sieveopt dag``: build one sampled layer's task DAG and write it (DOT or JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sieveopt.cli.common import add_json, add_problem_args, load_instance, load_problem
from sieveopt.cli.output import atomic_write_text, check_output_file, emit, print_table
from sieveopt.errors import SieveoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dag", help="build a layer's task DAG and write it as Graphviz DOT or JSON")
    add_problem_args(p)
    p.add_argument("--cost-model", default="roofline", help="registered cost model name")
    p.add_argument("--gpu-kernel", choices=["grouped", "per_expert"], default="grouped",
                   help="a GPU's experts as one grouped GEMM task, or one task per expert")
    p.add_argument("--out", required=True, help="output file (.dot or .json)")
    add_json(p)
    p.set_defaults(handler=_dag)


def _dag(args: argparse.Namespace) -> int:
    from sieveopt.dag import DagOptions, build_layer_dag
    from sieveopt.dagio import dag_to_dot, dag_to_json
    from sieveopt.models.costmodel import make_cost_model

    out = Path(args.out)
    if out.suffix not in (".dot", ".json"):
        raise SieveoptError(f"--out {args.out}: use a .dot or .json file name (fix: e.g. --out layer.dot)")
    check_output_file(out)
    model, system = load_problem(args)
    inst = load_instance(args, model, system)
    dag = build_layer_dag(inst, make_cost_model(args.cost_model, system, model), DagOptions.for_system(system, gpu_kernel=args.gpu_kernel))
    atomic_write_text(out, dag_to_dot(dag) if out.suffix == ".dot" else dag_to_json(dag))
    kinds: dict[str, int] = {}
    for t in dag.tasks:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    data = {"out": str(out), "tasks": len(dag.tasks), "edges": len(dag.edges),
            "resources": len(dag.resources), "tasks_by_kind": kinds, **dag.meta}

    def render(d: dict) -> None:
        print_table(f"DAG written to {d['out']}", ["field", "value"],
                    [(k, v) for k, v in d.items() if k != "tasks_by_kind"] + [(f"tasks:{k}", v) for k, v in kinds.items()])

    return emit(args, data, render)
