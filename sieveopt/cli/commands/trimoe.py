"""``sieveopt trimoe relayout``: TriMoE's prediction-driven relayout over a multi-step trace."""

from __future__ import annotations

import argparse

from sieveopt.cli.commands.workload import add_horizon_args, add_trace_file_args, trace_file
from sieveopt.cli.common import add_json, nonneg_int, parse_overrides, positive_int
from sieveopt.cli.output import emit, print_table
from sieveopt.errors import SieveoptError

SYSTEM = "trimoe-h100-xeon-ndp"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trimoe", help="TriMoE offloading tier: relayout (HBM cache, DIMM homes, rebalancing)")
    tsub = p.add_subparsers(dest="trimoe_command", metavar="ACTION")
    r = tsub.add_parser("relayout", help="static layout vs prediction-driven relayout over decode steps")
    r.add_argument("--model", default="deepseek-v2", help="catalog model name or a model .toml file")
    r.add_argument("--system", default=SYSTEM, help="an offloading system (catalog name or .toml)")
    add_horizon_args(r, batch=64, steps=128, drift_segments=4)
    r.add_argument("--every", type=positive_int, default=16, help="relayout period K (steps)")
    r.add_argument("--predictors", default="last,ema,window",
                   help="comma-separated: last, mean, ema (TriMoE's), window, oracle (reads the future)")
    r.add_argument("--cache-experts", type=nonneg_int, default=None,
                   help="HBM expert-cache slots per layer (default: the HBM left after everything else)")
    r.add_argument("--max-moves", type=nonneg_int, default=16, help="DIMM moves per rebalancing")
    add_trace_file_args(r)
    add_json(r)
    r.set_defaults(handler=_relayout)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _relayout(args: argparse.Namespace) -> int:
    import numpy as np

    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.placement.evaluate import drifting_trace
    from sieveopt.trimoe_relayout import compare_relayout

    model = load_model(args.model)
    system = load_system(args.system, None, parse_overrides(args.overrides))
    trace = trace_file(args)
    if trace is not None:
        lids = list(range(min(args.layers, trace.num_layers)))
    else:
        if args.layers > model.num_moe_layers:
            raise SieveoptError(f"--layers: got {args.layers}, allowed: [1, {model.num_moe_layers}] for {model.name} "
                                f"(fix: --layers {model.num_moe_layers} or fewer)")
        rng = np.random.default_rng(args.seed)
        sample = sorted(int(x) for x in rng.choice(model.num_moe_layers, args.layers, replace=False))
        trace = drifting_trace(model, args.batch, args.history + args.steps, args.seed, sample, args.drift_segments)
        lids = list(range(len(sample)))
    predictors = [x.strip() for x in args.predictors.split(",") if x.strip()]
    data = compare_relayout(model, system, trace=trace, history=args.history, every=args.every,
                            predictors=predictors, cache_experts=args.cache_experts, max_moves=args.max_moves,
                            batch=args.batch, layers=lids)
    runs = data.pop("runs")
    if args.per_step:
        data["per_step"] = {r.policy: {"layer_ns": r.step_ns.tolist(), "move_ns": r.move_ns.tolist()} for r in runs}
    data["trace"] = args.trace or f"generator (seed {args.seed}, {args.drift_segments} drift segments)"
    return emit(args, data, _render)


def _render(d: dict) -> None:
    title = (f"{d['model']} on {d['system']}, B={d['batch']}, {d['steps']} steps after {d['history']} history, "
             f"relayout every {d['every']}; {d['cache_experts']} HBM cache slots/layer, {d['num_dimms']} DIMMs")
    rows = [[r["policy"], r["layer_mean_ns"] / 1e3, r["layer_p99_ns"] / 1e3, r["layer_mean_with_move_ns"] / 1e3,
             r["relayouts"], r["moved_bytes"] / 2**20, "" if r["forecast_wape"] is None else r["forecast_wape"],
             r["speedup_vs_static"]] for r in d["policies"]]
    print_table(title, ["policy", "expert phase mean us", "p99 us", "mean incl. movement us", "relayouts",
                        "moved MiB", "forecast WAPE", "vs static"], rows)
    print(f"execution model: {d['execution_model']}; cost model: {d['cost_model']}; {d['precision']}; "
          f"movement charged serially on its step; trace: {d['trace']}")
