"""``sieveopt viz trace|gantt|dag``: draw one sampled layer's schedule.

``trace`` writes a Perfetto protobuf (``.pftrace``) or Chrome JSON (``.json``/``.json.gz``)
timeline, ``gantt`` a PNG/SVG/PDF chart (several ``--policy`` values share one time axis),
``dag`` a DOT/SVG/PNG drawing. ``--replay`` draws the schedule as replayed on the cycle-level
simulators (``sieveopt.validation.replay``) instead of the solver's own timing.
``gantt|trace --overlap microbatch --microbatches M`` draw three unrolled iterations of each
policy's steady-state pipeline (the middle one is a full superperiod), coloured by micro-batch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sieveopt.cli.common import (
    add_json,
    add_problem_args,
    check_cost_model,
    load_instance,
    load_problem,
    policy_names,
)
from sieveopt.cli.output import Steps, check_output_file, emit, print_table
from sieveopt.cli.overlap_cli import add_overlap_args, execution_from_args
from sieveopt.errors import SieveoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("viz", help="draw a layer's schedule: Perfetto trace, Gantt chart or DAG drawing")
    vsub = p.add_subparsers(dest="viz_what", metavar="WHAT")
    for what, help_ in (("trace", "Perfetto timeline (.pftrace protobuf, or .json / .json.gz trace events)"),
                        ("gantt", "Gantt chart (.png, .svg, .pdf); several policies share one time axis"),
                        ("dag", "DAG drawing (.dot always; .svg/.png/.pdf need Graphviz 'dot')")):
        q = vsub.add_parser(what, help=help_)
        add_problem_args(q)
        q.add_argument("--policy", action="append", default=None,
                       help="solver/policy name (default sieve); gantt accepts several (repeat or comma-separate)")
        q.add_argument("--cost-model", default="roofline", help="registered cost model name")
        q.add_argument("--gpu-kernel", choices=["grouped", "per_expert"], default="grouped",
                       help="a GPU's experts as one grouped GEMM task, or one task per expert")
        q.add_argument("--replay", action="store_true", help="draw the cycle-level replayed timing")
        q.add_argument("--out", required=True, help="output file (format from the extension)")
        if what == "trace":
            q.add_argument("--flows", choices=["auto", "all", "critical", "none"], default="auto",
                           help="DAG-edge arrows: all, critical path only, none, or auto (critical only when large)")
            q.add_argument("--power", action="store_true",
                           help="add a power (W) counter track per GPU from the energy model")
        if what == "gantt":
            q.add_argument("--all-rows", action="store_true", help="also draw rows that never hold a task")
            q.add_argument("--gpus-shown", default=None, metavar="LIST",
                           help="draw only these GPUs' rows, e.g. 0,1 or 0-3 (default: all)")
            q.add_argument("--resources", default=None, metavar="KINDS",
                           help="draw only these resource kinds: gpu, hbm, pim, egress, ingress, sched (e.g. gpu,pim; default: all)")
        if what != "dag":
            add_overlap_args(q)
        if what == "dag":
            q.add_argument("--collapse", action="store_true", help="merge tasks of one (GPU, kind, mode) into one node")
            q.add_argument("--show-inactive", action="store_true", help="draw mode-inactive edges dotted")
        add_json(q)
        q.set_defaults(handler=_viz)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _policies(args: argparse.Namespace) -> list[str]:
    """``--policy`` values (repeated or comma-separated; gantt draws several, the others one)."""
    text = ",".join(args.policy or ["sieve"])
    return policy_names(text, "--policy", single=args.viz_what != "gantt")


def replay_schedule(schedule: Any, dag: Any, system: Any, instance: Any = None) -> Any:
    """The replayed timeline of ``schedule`` on the cycle-level simulators."""
    from sieveopt.validation.replay import replay

    return replay(schedule, dag, system, instance=instance).schedule


def _viz(args: argparse.Namespace) -> int:
    from sieveopt.dag import DagOptions
    from sieveopt.pipeline import build_dag, run_layer

    out = Path(args.out)
    policies = _policies(args)
    check_cost_model(args.cost_model)
    _check_extension(args.viz_what, out)
    rows_sel = _row_selection(args)
    check_output_file(out)
    model, system = load_problem(args)
    if getattr(args, "overlap", "serial") != "serial":
        return _viz_overlap(args, out, policies, model, system, rows_sel)
    if hasattr(args, "overlap"):
        execution_from_args(args, model, system)  # rejects --microbatches without --overlap microbatch
    if rows_sel["gpus"] and max(rows_sel["gpus"]) >= system.num_gpus:
        raise SieveoptError(f"--gpus-shown: GPU {max(rows_sel['gpus'])} does not exist on {system.num_gpus} GPU(s) "
                            f"(fix: ids in 0-{system.num_gpus - 1})")
    inst = load_instance(args, model, system)
    dag, cost = build_dag(inst, args.cost_model, DagOptions.for_system(inst.system, gpu_kernel=args.gpu_kernel))
    runs = []
    bar = Steps(args, len(policies) * (2 if args.replay else 1), "viz")
    for name in policies:
        bar.advance(f"solving: {name}")
        run = run_layer(inst, name, dag=dag, cost=cost)
        if run.result.schedule is None:
            raise SieveoptError(f"--policy {name}: the solver returned no schedule (status {run.result.status})")
        if args.replay:
            bar.advance(f"replaying: {name}")
        sched = replay_schedule(run.result.schedule, dag, system, inst) if args.replay else run.result.schedule
        runs.append((name + (" (replayed)" if args.replay else ""), sched, run))
    bar.close()
    written = _draw(args, out, dag, system, runs, rows_sel)
    from sieveopt.viz import critical_path

    label, sched, run = runs[0]
    cp = critical_path(sched, dag)
    data = {"out": str(written), "what": args.viz_what, "tasks": len(dag.tasks),
            "policies": [{"policy": lb, "makespan_ns": int(max(s.end_ns)), "check_ok": r.check.ok}
                         for lb, s, r in runs],
            "critical_path_tasks": len(cp), "critical_path": [dag.tasks[t].name for t in cp]}

    def render(d: dict) -> None:
        rows = [(p["policy"], f"{p['makespan_ns'] / 1000:.2f}", "yes" if p["check_ok"] else "NO")
                for p in d["policies"]]
        print_table(f"{d['what']} written to {d['out']} ({d['tasks']} tasks, critical path "
                    f"{d['critical_path_tasks']} tasks)", ["policy", "makespan us", "checked"], rows)

    return emit(args, data, render)


def _viz_overlap(args: argparse.Namespace, out: Path, policies: list[str], model: Any, system: Any,
                 rows_sel: dict[str, Any]) -> int:
    """``viz gantt|trace --overlap microbatch``: a steady-state period of each policy's pipeline
    (3 unrolled iterations; the middle one is a full superperiod), coloured by micro-batch."""
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.overlap import charged_problem, sample_problem, solve_overlap
    from sieveopt.overlap_study import VIEW_ITERATIONS, steady_state_item, steady_state_title
    from sieveopt.solvers.sched_latency import parse_spec

    ex = execution_from_args(args, model, system)
    if not ex.gives_schedule:
        raise SieveoptError("--overlap ideal is a bound, not a schedule, so there is nothing to draw: "
                            "use --overlap microbatch")
    if args.replay:
        raise SieveoptError("--replay is not drawn with --overlap microbatch: use `sieveopt replay --overlap "
                            "microbatch` for the replayed steady state, or drop --replay")
    cost = make_cost_model(args.cost_model, system, model)
    prob = sample_problem(model, system, args.batch, ex, args.seed, cost, first_layer=args.layer,
                          context_len_tokens=args.context_len)
    items, rows = [], []
    spec = parse_spec(getattr(args, "scheduler_latency_ns", None))
    for name in policies:
        pprob, _ = charged_problem(prob, name, spec)  # each slot's scheduler task: the policy's charge
        r = solve_overlap(pprob, name, time_limit_s=10.0, workers=args.workers, seed=args.seed,
                          latency_weight=args.latency_weight)
        items.append(steady_state_item(name, pprob, r, ex))
        rows.append({"policy": name, "period_ns": r.period_ns, "latency_ns": r.latency_ns,
                     "check_ok": bool(r.check_ok)})
    if args.viz_what == "trace":
        from sieveopt.viz import write_trace

        written = write_trace(items[0][1], items[0][2], out)
    else:
        from sieveopt.viz.gantt import gantt_compare

        written = gantt_compare(items, out, all_rows=args.all_rows, gpus=rows_sel["gpus"],
                                resources=rows_sel["resources"], color_by="microbatch",
                                title=steady_state_title(model.name, system.num_gpus, args.batch))
    data = {"out": str(written), "what": args.viz_what, "execution_model": ex.to_dict(),
            "tasks": len(prob.dag.tasks), "unrolled_iterations": VIEW_ITERATIONS, "policies": rows}

    def render(d: dict) -> None:
        print_table(f"{d['what']} written to {d['out']} ({d['execution_model']['label']}, per layer)",
                    ["policy", "period us", "latency us", "checked"],
                    [(p["policy"], f"{p['period_ns'] / 1e3:.2f}", f"{p['latency_ns'] / 1e3:.2f}",
                      "yes" if p["check_ok"] else "NO") for p in d["policies"]])

    emit(args, data, render)
    return 0 if all(p["check_ok"] for p in rows) else 1


def _row_selection(args: argparse.Namespace) -> dict[str, Any]:
    """``--gpus-shown`` / ``--resources`` parsed (GPU ids are checked against --gpus later)."""
    from sieveopt.targets import TARGETS, resource_kinds_for

    known_kinds = resource_kinds_for(TARGETS.names())  # every registered target's resources

    sel: dict[str, Any] = {"gpus": None, "resources": None}
    text = getattr(args, "gpus_shown", None)
    if text is not None:
        ids: list[int] = []
        for part in (p.strip() for p in text.split(",")):
            try:
                lo, _, hi = part.partition("-")
                a, b = int(lo), int(hi) if hi else int(lo)
            except ValueError:
                raise SieveoptError(f"--gpus-shown {text!r}: {part!r} is not a GPU id or range "
                                    "(fix: e.g. 0,1 or 0-3)") from None
            if a < 0 or b < a:
                raise SieveoptError(f"--gpus-shown {text!r}: bad range {part!r} (fix: e.g. 0-3, ids >= 0)")
            ids += range(a, b + 1)
        sel["gpus"] = sorted(set(ids))
    kinds = getattr(args, "resources", None)
    if kinds is not None:
        names = [k.strip() for k in kinds.split(",") if k.strip()]
        bad = [k for k in names if k not in known_kinds]
        if bad or not names:
            raise SieveoptError(f"--resources {kinds!r}: unknown {bad} (fix: use some of {', '.join(known_kinds)})")
        sel["resources"] = names
    return sel


def _check_extension(what: str, out: Path, option: str = "--out") -> None:
    name = out.name.lower()
    ok = {"trace": (".json", ".json.gz", ".pftrace", ".pftrace.gz", ".perfetto-trace"),
          "gantt": (".png", ".svg", ".pdf"),
          "dag": (".dot", ".gv", ".svg", ".png", ".pdf")}[what]
    if not name.endswith(ok):
        raise SieveoptError(f"{option} {out}: a {what} is written as {', '.join(ok)} (fix: change the extension)")


def _draw(args: argparse.Namespace, out: Path, dag: Any, system: Any, runs: list,
          rows_sel: dict[str, Any] | None = None) -> Path:
    from sieveopt import viz

    label, sched, _ = runs[0]
    if args.viz_what == "trace":
        return viz.write_trace(sched, dag, out, flows=args.flows, system=system,
                               **({"power": _power(sched, dag, system, args)} if args.power else {}))
    if args.viz_what == "gantt":
        sel = rows_sel or {}
        if len(runs) == 1:
            return viz.gantt(sched, dag, out, label=label, all_rows=args.all_rows, **sel)
        meta = dag.meta
        title = f"{meta.get('model', '')} on {meta.get('system', '')}, {dag.num_gpus} GPU(s), batch {meta.get('batch')}"
        return viz.gantt_compare([(lb, s, dag) for lb, s, _ in runs], out, all_rows=args.all_rows, title=title,
                                 **sel)
    return viz.write_dag(dag, out, sched, collapse=args.collapse, show_inactive=args.show_inactive)


def _power(sched: Any, dag: Any, system: Any, args: argparse.Namespace) -> dict:
    """Power counters of ``sched`` (validation/energy/power.py); an error when no energy data."""
    from sieveopt.models.catalog import load_model
    from sieveopt.validation.energy.layer import energy_model_for
    from sieveopt.validation.energy.power import power_series

    em = energy_model_for(system, load_model(args.model))
    if em.unavailable:
        raise SieveoptError(f"--power: energy unavailable: {em.unavailable} (fix: drop --power)")
    return power_series(dag, sched, em, simulated=bool(getattr(args, "replay", False)))
