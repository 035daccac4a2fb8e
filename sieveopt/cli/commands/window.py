"""``sieveopt window``: micro-batches interleaved across consecutive layers, every policy compared."""

from __future__ import annotations

import argparse

from sieveopt.cli.common import (
    add_json,
    add_problem_args,
    add_solver_param,
    add_time_limit,
    check_cost_model,
    cpsat_params,
    load_problem,
    policy_names,
    positive_int,
    solver_params_for,
)
from sieveopt.cli.output import Steps, emit, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("window", help="schedule L consecutive layers x M micro-batches on shared resources")
    add_problem_args(p)
    p.add_argument("--layers", type=positive_int, default=2, help="consecutive MoE layers in the window")
    p.add_argument("--microbatches", type=positive_int, default=2, help="micro-batches the batch is cut into")
    p.add_argument("--policies", default="noexp,allexp,duplex,sieve,sieve-plus,cpsat",
                   help="comma-separated registered policies (see `sieveopt plugins`)")
    add_time_limit(p, 10.0, "for the window")
    p.add_argument("--cost-model", default="roofline", help="registered cost model name")
    add_solver_param(p)
    add_json(p)
    p.set_defaults(handler=_window)


def _window(args: argparse.Namespace) -> int:
    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.window import check_window, sample_window, solve_window

    policies = policy_names(args.policies)
    check_cost_model(args.cost_model)
    solver_params = solver_params_for(args, policies, **cpsat_params(args, seed=args.seed))
    model, system = load_problem(args)
    window = sample_window(model, system, args.batch, args.layers, args.microbatches, args.seed,
                           first_layer=args.layer, context_len_tokens=DEFAULT_CONTEXT_LEN_TOKENS if args.context_len is None
                           else args.context_len)
    cost = make_cost_model(args.cost_model, system, model)
    rows = []
    bar = Steps(args, len(policies), "window")
    for policy in policies:
        bar.advance(f"window: {policy}")
        params = solver_params[policy]
        dag, res = solve_window(window, policy, cost, **params)
        rows.append({"policy": policy, "makespan_ns": res.makespan_ns, "bound_ns": res.bound_ns,
                     "status": res.status, "checked": check_window(dag, res), "tasks": len(dag.tasks),
                     "wall_s": res.wall_s})
    bar.close()
    best = min(r["makespan_ns"] for r in rows)
    for r in rows:
        r["vs_best"] = r["makespan_ns"] / best - 1.0
    data = {"model": model.name, "precision": model.expert_precision, "system": system.name,
            "gpus": system.num_gpus, "batch": args.batch, "cost_model": args.cost_model,
            "execution_model": f"window(L={args.layers},M={args.microbatches}): makespan of L consecutive layers x M "
                               "micro-batches on shared resources, fill and drain included",
            "layers": args.layers, "microbatches": args.microbatches,
            "moe_layers": [row[0].moe_layer for row in window], "rows": rows}

    def render(d: dict) -> None:
        print_table(f"{d['model']}: {d['layers']} layers x {d['microbatches']} micro-batches, B={d['batch']}, "
                    f"{d['gpus']} GPU(s)", ["policy", "makespan us", "vs best", "bound us", "status", "checked"],
                    [(r["policy"], r["makespan_ns"] / 1e3, f"{100 * r['vs_best']:+.2f}%",
                      "-" if r["bound_ns"] is None else r["bound_ns"] / 1e3, r["status"],
                      "yes" if r["checked"] else "NO") for r in d["rows"]])

    return emit(args, data, render)
