"""``--overlap`` / ``--microbatches`` / ``--window-layers`` / ``--runtime-order-evaluations`` for
``solve``, ``compare``, ``replay`` and ``viz`` (and the execution-model options of ``run`` and
``pareto``: :func:`add_execution_model_args`).

``serial`` keeps the commands' layer-DAG path (labelled); ``microbatch`` and ``ideal`` run
here on cyclic windows (:mod:`sieveopt.overlap`). In ``compare``, ``--layers N`` then means N
sampled cyclic windows (seeds seed, seed+1, ...), each of ``--window-layers`` consecutive
layers.
"""

from __future__ import annotations

import argparse
from typing import Any

from sieveopt.cli.common import float_in, positive_int
from sieveopt.cli.output import emit, print_table
from sieveopt.errors import SieveoptError
from sieveopt.execution_model import (
    DEFAULT_RUNTIME_ORDER_EVALUATIONS,
    OVERLAPS,
    ExecutionModel,
    make_execution_model,
)
from sieveopt.solvers import policy_with_role


def add_execution_model_args(p: argparse.ArgumentParser) -> None:
    """The execution model's options, one definition for every command that takes ``--overlap``
    (read back by :func:`execution_from_args` / :func:`runtime_order_arg`)."""
    p.add_argument("--overlap", default="serial", choices=OVERLAPS,
                   help="execution model: serial (one layer, phases in sequence), microbatch (M micro-batches "
                        "pipelined, steady-state period), ideal (resource-load bound, not a schedule)")
    p.add_argument("--microbatches", type=int, default=None,
                   help="micro-batches M (>= 2 with --overlap microbatch; default 2); must divide the "
                        "requests per GPU")
    p.add_argument("--window-layers", type=int, default=None,
                   help="consecutive sampled layers of the cyclic window the period is averaged over (default 2)")
    p.add_argument("--runtime-order-evaluations", type=int, default=None, metavar="N",
                   help="--overlap microbatch: cap on the pipeline runtime's order-only descent, an offline "
                        "search over resource orders that never changes a policy's modes, the same and "
                        f"uncharged for every policy (default {DEFAULT_RUNTIME_ORDER_EVALUATIONS}; 0: the "
                        "constructive runtime only); named in every result's execution_model")


def runtime_order_arg(args: argparse.Namespace) -> int | None:
    """``--runtime-order-evaluations`` (None: the default; namespaces built without it too)."""
    return getattr(args, "runtime_order_evaluations", None)


#: The periodic CP-SAT's defaults under ``--overlap microbatch|ideal``.
DEFAULT_OVERLAP_WORKERS = 2
DEFAULT_LATENCY_WEIGHT = 0.0


def add_overlap_args(p: argparse.ArgumentParser) -> None:
    add_execution_model_args(p)
    p.add_argument("--latency-weight", type=float_in(ge=0, le=1e6), default=None,
                   help="cpsat under microbatch: weight of the mean micro-batch layer latency next to the period "
                        f"(default {DEFAULT_LATENCY_WEIGHT:g})")
    p.add_argument("--workers", type=positive_int, default=None,
                   help=f"cpsat workers under microbatch/ideal (default {DEFAULT_OVERLAP_WORKERS}; serial CP-SAT: "
                        "--solver-param workers=N)")


def add_view_args(p: argparse.ArgumentParser) -> None:
    """Pictures of a steady state (``solve --overlap microbatch``)."""
    p.add_argument("--trace", default=None, metavar="PATH",
                   help="--overlap microbatch: Perfetto (.pftrace) or Chrome (.json) trace of 3 unrolled iterations")
    p.add_argument("--gantt", default=None, metavar="PATH",
                   help="--overlap microbatch: Gantt chart (.png/.svg/.pdf) of 3 unrolled iterations")


def execution_from_args(args: argparse.Namespace, model, system) -> ExecutionModel:
    if args.overlap != "serial" and getattr(args, "solver_params", None):
        raise SieveoptError(f"--solver-param is not used with --overlap {args.overlap}: the periodic solver takes "
                            "--time-limit, --workers and --latency-weight; drop --solver-param")
    ex = make_execution_model(args.overlap, args.microbatches, window_layers=args.window_layers,
                              batch=args.batch, num_gpus=system.num_gpus, num_moe_layers=model.num_moe_layers,
                              runtime_order_evaluations=runtime_order_arg(args))
    _periodic_solver_args(args)
    return ex


def _periodic_solver_args(args: argparse.Namespace) -> None:
    """``--workers`` / ``--latency-weight`` set the periodic CP-SAT of ``--overlap microbatch|ideal``
    (refused under serial, defaults filled in otherwise); that solver takes a wall-clock
    ``--time-limit`` only, so ``--deterministic-time`` is refused there."""
    given = [o for o, d in (("--workers", "workers"), ("--latency-weight", "latency_weight"))
             if getattr(args, d, None) is not None]
    if args.overlap == "serial":
        if given:
            raise SieveoptError(f"{' and '.join(given)} set the periodic CP-SAT of --overlap microbatch/ideal (fix: "
                                "add --overlap microbatch, or drop them; serial CP-SAT takes --solver-param workers=N)")
        return
    if getattr(args, "deterministic_time", None) is not None:
        raise SieveoptError(f"--deterministic-time: the periodic solver of --overlap {args.overlap} takes a "
                            "wall-clock budget only (fix: use --time-limit SECONDS)")
    if getattr(args, "workers", None) is None:
        args.workers = DEFAULT_OVERLAP_WORKERS
    if getattr(args, "latency_weight", None) is None:
        args.latency_weight = DEFAULT_LATENCY_WEIGHT


def _problem(args, model, system, ex: ExecutionModel, cost, seed: int):
    from sieveopt.overlap import sample_problem

    return sample_problem(model, system, args.batch, ex, seed, cost, first_layer=args.layer,
                          context_len_tokens=args.context_len)


def _time_limit(args) -> float:
    return 10.0 if args.time_limit is None else float(args.time_limit)


def _head(model, system, args, ex: ExecutionModel) -> dict[str, Any]:
    return {"model": model.name, "system": system.name, "gpus": system.num_gpus, "batch": args.batch,
            "seed": args.seed, "cost_model": args.cost_model, "precision": model.expert_precision,
            "execution_model": ex.to_dict(), "period_definition":
            "superperiod of the cyclic window / window layers: steady-state time per layer for the whole batch"}


def solve_overlap_cmd(args: argparse.Namespace, model, system, cost) -> int:
    from sieveopt.overlap import charged_problem, solve_overlap
    from sieveopt.solvers.sched_latency import parse_spec

    ex = execution_from_args(args, model, system)
    if not ex.gives_schedule:
        raise SieveoptError("--overlap ideal is a bound, not a schedule: use `sieveopt compare --overlap ideal` "
                            "for each policy's ideal-overlap time, or --overlap microbatch for a schedule")
    prob, charge = charged_problem(_problem(args, model, system, ex, cost, args.seed), args.policy,
                                   parse_spec(getattr(args, "scheduler_latency_ns", None)),
                                   calibration={"model": model, "system": system, "batch": args.batch})
    r = solve_overlap(prob, args.policy, time_limit_s=_time_limit(args), workers=args.workers, seed=args.seed,
                      latency_weight=args.latency_weight)
    ps = r.schedule
    views = {}
    if getattr(args, "trace", None) or getattr(args, "gantt", None):
        from sieveopt.overlap_study import VIEW_ITERATIONS
        from sieveopt.periodic import unroll

        big, sched = unroll(prob, ps, VIEW_ITERATIONS)  # iteration 1 is a full steady-state superperiod
        if args.trace:
            from sieveopt.viz import write_trace

            views["trace"] = str(write_trace(sched, big, args.trace))
        if args.gantt:
            from sieveopt.viz import gantt

            views["gantt"] = str(gantt(sched, big, args.gantt, label=f"{args.policy}, {ex.label}"))
    data = {**_head(model, system, args, ex), "policy": args.policy, "views": views,
            "scheduler_latency_ns": charge.ns, "scheduler_latency_source": charge.source,
            "moe_layers": [row[0].moe_layer for row in prob.window], "tasks": len(prob.dag.tasks),
            **{k: v for k, v in r.to_dict().items() if k not in ("meta", "policy", "execution_model")},
            "superperiod_ns": ps.superperiod_ns, "utilisation": {k: v for k, v in ps.utilisation(prob.dag).items()
                                                                 if v > 0},
            "slot_latency_ns": {f"L{li}m{m}": v for (li, m), v in sorted(ps.slot_spans_ns(prob.dag).items())},
            "meta": {k: v for k, v in r.meta.items() if isinstance(v, (int, float, str, bool, type(None)))}}

    def render(d: dict) -> None:
        rows = [(k, d[k]) for k in ("policy", "model", "gpus", "batch", "status", "period_ns", "latency_ns",
                                    "bound_ns", "gap", "check_ok", "decision_ns", "superperiod_ns")]
        print_table(f"{d['policy']} under {d['execution_model']['label']} (per layer, whole batch)",
                    ["field", "value"], rows)
        print_table("utilisation of the superperiod", ["resource", "busy"],
                    [(k, f"{v:.3f}") for k, v in d["utilisation"].items()])

    emit(args, data, render)
    return 0 if r.check_ok else 1


def compare_overlap_data(args: argparse.Namespace, model, system, cost, policies: list[str]) -> dict[str, Any]:
    """Every policy on ``--layers`` cyclic windows, solved in this process (no replay): the data
    ``compare --overlap`` prints (:mod:`sieveopt.overlap_study`, the one implementation that
    ``run --overlap`` runs on the sweep engine)."""
    from sieveopt.overlap_study import all_checks_ok, solve_window, summarize_windows
    from sieveopt.solvers.sched_latency import describe, parse_spec

    ex = execution_from_args(args, model, system)
    spec = parse_spec(getattr(args, "scheduler_latency_ns", None))
    windows = []
    for i in range(args.layers):
        row, _ = solve_window(_problem(args, model, system, ex, cost, args.seed + i), policies, seed=args.seed,
                              spec=spec, calibration={"model": model, "system": system, "batch": args.batch},
                              time_limit_s=_time_limit(args), workers=args.workers,
                              latency_weight=args.latency_weight)
        windows.append({"seed": args.seed + i, **row})
    summary = summarize_windows(windows, policies)
    return {**_head(model, system, args, ex), "scheduler_latency": describe(spec), "windows": len(windows),
            "policies": policies, "summary": summary, "per_window": windows, "all_checks_ok": all_checks_ok(windows)}


def render_overlap_summary(d: dict[str, Any], *, title_extra: str = "") -> None:
    """The per-policy table of ``compare --overlap`` and ``run --overlap`` (with replayed columns
    when the windows were replayed)."""
    ex = d["execution_model"]
    unit = "ideal-overlap time (a bound)" if ex["overlap"] == "ideal" else "steady-state period"
    replayed = any("median_replayed_period_ns" in s for s in d["summary"].values())

    def us(x: float | None) -> str:
        return "-" if x is None else f"{x / 1e3:.2f}"

    def pct(x: float | None, scale: float = 100.0) -> str:
        return "-" if x is None else f"{scale * x:+.2f}%"

    cols = ["policy", "median period us"]
    if replayed:
        cols += ["replayed us", "replay error", "replayed vs cpsat"]
    cols += ["median latency us", "gap to cpsat best", "gap to cpsat bound", "checks ok", "decision us",
             "sched charge us"]
    rows = []
    for p, s in d["summary"].items():
        row = [p, us(s["median_period_ns"])]
        if replayed:
            unconverged = s.get("replayed_windows", 0) - s.get("replays_converged", 0)
            row += [us(s.get("median_replayed_period_ns")) + (" (!)" if unconverged else ""),
                    pct(s.get("median_period_error_pct"), 1.0), pct(s.get("median_replayed_gap_to_cpsat"))]
        row += [us(s["median_latency_ns"]), pct(s.get("median_gap_to_cpsat_best")),
                pct(s.get("median_gap_to_cpsat_bound")), s["checks_ok"], us(s["median_decision_ns"]),
                f"{s['scheduler_latency_ns'] / 1e3:.2f} ({s['scheduler_latency_source']})"]
        rows.append(row)
    print_table(f"{d['model']} on {d['gpus']} GPU(s), B={d['batch']}, {d['windows']} window(s), "
                f"{ex['label']}: {unit} per layer{title_extra}", cols, rows)
    bad = [f"{p} ({s['replayed_windows'] - s['replays_converged']} of {s['replayed_windows']})"
           for p, s in d["summary"].items() if s.get("replayed_windows", 0) > s.get("replays_converged", 0)]
    if bad:
        print(f"(!) replay's fixed point not converged for {', '.join(bad)} window(s): those replayed periods "
              "are the last iterate's")
    ref = policy_with_role("reference")
    s = d["summary"].get(ref) if ref else None
    if s is not None and s.get("median_cpsat_bound_ns") is not None:
        print(f"{ref}: median bound {s['median_cpsat_bound_ns'] / 1e3:.2f} us per layer, "
              f"max certified gap {100 * s['max_cpsat_certified_gap']:.2f}%")


def compare_overlap_cmd(args: argparse.Namespace, model, system, cost, policies: list[str]) -> int:
    """Every policy on ``--layers`` cyclic windows, each charged its scheduler latency (as the
    serial ``compare``): period, latency, gap to CP-SAT's best and CP-SAT's bound per policy."""
    data = compare_overlap_data(args, model, system, cost, policies)
    emit(args, data, render_overlap_summary)
    return 0 if data["all_checks_ok"] else 1


def replay_overlap_cmd(args: argparse.Namespace, model, system) -> int:
    """``replay --overlap microbatch``: the policy's periodic schedule unrolled and replayed."""
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.overlap import charged_problem, solve_overlap
    from sieveopt.solvers.sched_latency import parse_spec
    from sieveopt.validation.replay_periodic import replay_periodic

    ex = execution_from_args(args, model, system)
    if not ex.gives_schedule:
        raise SieveoptError("--overlap ideal is a bound, not a schedule, so there is nothing to replay: "
                            "use --overlap microbatch")
    if args.iterations < 4:
        raise SieveoptError(f"--iterations must be >= 4 (first and last are fill and drain), got {args.iterations}")
    cost = make_cost_model(args.cost_model, system, model)
    # The slots' scheduler tasks carry the policy's charge (as in `compare --overlap`), and the
    # replay charges the same, so predicted and replayed periods describe the same pipeline.
    prob, charge = charged_problem(_problem(args, model, system, ex, cost, args.seed), args.policy,
                                   parse_spec(getattr(args, "scheduler_latency_ns", None)),
                                   calibration={"model": model, "system": system, "batch": args.batch})
    r = solve_overlap(prob, args.policy, time_limit_s=args.time_limit, workers=args.workers, seed=args.seed,
                      latency_weight=args.latency_weight)
    lat = charge.ns
    rep = replay_periodic(prob, r.schedule, iterations=args.iterations, memory=args.memory,
                          interference=not args.no_interference, scheduler_latency_ns=lat,
                          dram_preset=args.dram_preset)
    data = {**_head(model, system, args, ex), "policy": args.policy, "check_ok": r.check_ok,
            "scheduler_latency_source": charge.source, **rep}

    def render(d: dict) -> None:
        print_table(f"replay of the steady state: {d['policy']} under {d['execution_model']}",
                    ["predicted period us", "replayed period us", "error", "iterations", "tasks", "wall s"],
                    [(f"{d['predicted_period_ns'] / 1e3:.2f}", f"{d['replayed_period_ns'] / 1e3:.2f}",
                      f"{d['period_error_pct']:+.1f}%", d["iterations"], d["tasks"], f"{d['wall_s']:.1f}")])
        print_table(f"cost model '{d['cost_model']}' vs replay, per task kind",
                    ["kind", "tasks", "median |err|", "mean signed", "predicted us", "replayed us"],
                    [(k, v["count"], f"{v['median_abs_pct']:.1f}%", f"{v['mean_signed_pct']:+.1f}%",
                      f"{v['predicted_ns'] / 1e3:.1f}", f"{v['replayed_ns'] / 1e3:.1f}")
                     for k, v in d["kind_error"].items()])

    emit(args, data, render)
    return 0 if r.check_ok else 1


__all__ = ["add_execution_model_args", "add_overlap_args", "runtime_order_arg", "add_view_args", "replay_overlap_cmd", "compare_overlap_cmd", "compare_overlap_data",
           "render_overlap_summary", "execution_from_args", "solve_overlap_cmd"]
