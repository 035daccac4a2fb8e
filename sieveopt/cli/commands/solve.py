"""``sieveopt solve`` (one layer, one policy) and ``sieveopt compare`` (policies over sampled layers).

Every policy's modes go through the same list scheduler and checker, so makespans compare.
Solver parameters (``--time-limit``, ``--solver-param``) reach the policies that declare them. ``compare`` stays
generic over :class:`~sieveopt.solvers.base.SolveResult`: any policy that reports a bound
(``bound_ns``) gets per-layer rows and gap summaries of every other policy against its best
solution (its list-scheduled makespan, else ``objective_ns``) and against its bound.
"""

from __future__ import annotations

import argparse
from typing import Any

from sieveopt.cli.common import (
    add_json,
    add_problem_args,
    add_scheduler_latency_arg,
    add_solver_param,
    add_time_limit,
    check_cost_model,
    cpsat_params,
    float_in,
    load_instance,
    load_problem,
    nonneg_int,
    policy_names,
    positive_int,
    solver_params_for,
)
from sieveopt.cli.one_policy import add_one_policy_args, load_one_policy
from sieveopt.cli.output import Steps, emit, print_table
from sieveopt.cli.overlap_cli import (
    add_overlap_args,
    add_view_args,
    compare_overlap_cmd,
    execution_from_args,
    solve_overlap_cmd,
)
from sieveopt.errors import SieveoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="schedule one sampled layer with one policy and check it")
    add_one_policy_args(p, policy_help="registered solver/policy name (see `sieveopt plugins`)",
                        cost_model_help="registered cost model name", time_limit=None,
                        time_limit_what="(cpsat; default 10)")
    add_view_args(p)
    add_json(p)
    p.set_defaults(handler=_solve)

    c = sub.add_parser("compare", help="compare policies' list-scheduled makespans over sampled layers")
    add_problem_args(c)
    c.add_argument("--layers", type=positive_int, default=8, help="number of sampled layers")
    c.add_argument("--policies", default="sieve,gpu_only,noexp,allexp,pimoe,duplex",
                   help="comma-separated policy names")
    c.add_argument("--cost-model", default="roofline", help="registered cost model name")
    add_time_limit(c, None, "per layer (cpsat; default 10)")
    add_scheduler_latency_arg(c)
    add_solver_param(c)
    add_overlap_args(c)
    c.add_argument("--replay", action="store_true",
                   help="also replay every schedule on the cycle-level simulators (replayed makespan and "
                        "cost-model error per policy)")
    c.add_argument("--prefetch", type=nonneg_int, default=0, metavar="P",
                   help="systems with a GPU fetch tier (TriMoE): fetch the next layer's P EMA-predicted hot "
                        "experts into HBM during each layer (sieveopt.trimoe_prefetch; serial execution)")
    c.add_argument("--objective", choices=("makespan", "energy"), default="makespan",
                   help="energy: cost-model joules per layer, CP-SAT minimises them under --latency-limit-us")
    c.add_argument("--latency-limit-us", type=float_in(gt=0, le=1e9, unit="us"), default=None,
                   help="makespan limit per layer (us) for --objective energy")
    c.add_argument("--time-price-W", type=float_in(ge=0, le=1e9, unit="W"), default=None,
                   help="with --objective energy: minimise energy + this price (W) x makespan (weighted sum)")
    add_json(c)
    c.set_defaults(handler=_compare)


def _cost(name: str, model, system):
    from sieveopt.models.costmodel import make_cost_model

    if name == "table":
        import sieveopt.models.table  # noqa: F401  (registers "table" until costmodel imports it)
    return make_cost_model(name, system, model)


def _per_gpu(run) -> list[dict[str, Any]]:
    """Per GPU: experts on each side (compact id lists) and Sieve's estimate of that split; empty
    when the DAG's experts are not GPU/PIM two-sided (e.g. an offloading system's tiers: the
    split estimate does not apply; ``experts_by_mode`` reports them)."""
    from sieveopt.dag import EXPERT
    from sieveopt.solvers.plan_inputs import max_tokens, pim_table, plan_inputs
    from sieveopt.solvers.sieve_ref import estimate_ns
    from sieveopt.targets import MODE_GPU, MODE_PIM

    if not all({MODE_GPU, MODE_PIM} <= set(t.modes) for t in run.dag.tasks if t.kind == EXPERT):
        return []
    modes = run.result.schedule.expert_modes(run.dag)
    inputs = plan_inputs(run.dag, run.instance, run.cost)
    table = pim_table(run.cost, run.instance, max(1, max_tokens(inputs))).tolist()
    util = run.result.schedule.utilisation(run.dag)
    rows = []
    for inp in inputs:
        on_gpu = [modes[int(e)] == "gpu" for e in inp.experts]
        est = estimate_ns(inp.tokens.tolist(), table, inp.params.tolist(), on_gpu)
        gpu_ids = [int(e) for e, f in zip(inp.experts, on_gpu, strict=True) if f]
        pim_ids = [int(e) for e, f in zip(inp.experts, on_gpu, strict=True) if not f]
        g = inp.gpu
        rows.append({"gpu": g, "experts": inp.num_experts, "gpu_experts": len(gpu_ids),
                     "pim_experts": len(pim_ids), "gpu_expert_ids": gpu_ids, "pim_expert_ids": pim_ids,
                     **est, "util_gpu": util.get(f"gpu[{g}]", 0.0), "util_hbm": util.get(f"hbm[{g}]", 0.0),
                     "util_pim": util.get(f"pim[{g}]", 0.0), "util_egress": util.get(f"egress[{g}]", 0.0)})
    return rows


def _us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e3:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.2f}%"


def _compact(ids: list[int], limit: int = 12) -> str:
    s = ",".join(str(i) for i in ids[:limit])
    return s + (f",... (+{len(ids) - limit})" if len(ids) > limit else "")


def _check_views(args: argparse.Namespace) -> None:
    """``--trace`` / ``--gantt`` draw a steady state: only with ``--overlap microbatch``, to a
    writable path with a drawable extension (checked before any work)."""
    from pathlib import Path

    from sieveopt.cli.commands.viz import _check_extension
    from sieveopt.cli.output import check_output_file

    for option, what in (("--trace", "trace"), ("--gantt", "gantt")):
        path = getattr(args, what, None)
        if path is None:
            continue
        if args.overlap != "microbatch":
            raise SieveoptError(f"{option} draws the steady state of --overlap microbatch (fix: add --overlap "
                                f"microbatch, or draw a serial layer with `sieveopt viz {what} --out {path}`)")
        _check_extension(what, Path(path), option)
        check_output_file(path, option)


def _solve(args: argparse.Namespace) -> int:
    from sieveopt.dag import DagOptions
    from sieveopt.pipeline import run_layer
    from sieveopt.solvers.sched_latency import resolve

    _check_views(args)
    run_args = load_one_policy(args)  # every shared option checked before any work
    model, system, params = run_args.model, run_args.system, run_args.params
    if args.overlap != "serial":
        return solve_overlap_cmd(args, model, system, _cost(args.cost_model, model, system))
    inst = load_instance(args, model, system)
    cost = _cost(args.cost_model, model, system)
    lat = resolve(args.policy, run_args.scheduler_latency,
                  calibration={"model": model, "system": system, "batch": inst.batch})
    bar = Steps(args, 1, f"{args.policy}: solving one layer")
    bar.advance()
    run = run_layer(inst, args.policy, cost_model=cost, options=DagOptions.for_system(system, scheduler_latency_ns=lat.ns), **params)
    bar.close()
    res = run.result
    if res.schedule is None:
        raise SieveoptError(f"--policy {args.policy}: returned no schedule (status {res.status})")
    data = {"policy": args.policy, "model": model.name, "system": system.name, "gpus": system.num_gpus,
            "batch": inst.batch, "moe_layer": inst.moe_layer, "seed": args.seed, "cost_model": args.cost_model,
            "execution_model": "serial", "status": res.status, "makespan_ns": res.makespan_ns, "objective_ns": res.objective_ns,
            "bound_ns": res.bound_ns, "check_ok": run.check.ok, "violations": list(run.check.violations[:10]),
            "decision_ns": res.decision_ns, "wall_s": run.wall_s, "precision": model.expert_precision,
            "scheduler_latency_ns": lat.ns, "scheduler_latency_source": lat.source,
            "gpu_experts": 0, "pim_experts": 0, "per_gpu": _per_gpu(run)}
    by_mode = list(res.schedule.expert_modes(run.dag).values())
    data["experts_by_mode"] = {m: by_mode.count(m) for m in dict.fromkeys(by_mode)}
    data["gpu_experts"] = by_mode.count("gpu")
    data["pim_experts"] = by_mode.count("pim")

    def render(d: dict) -> None:
        head = [(k, d[k]) for k in ("policy", "model", "system", "gpus", "batch", "moe_layer", "status",
                                     "makespan_ns", "bound_ns", "check_ok", "decision_ns", "gpu_experts",
                                     "pim_experts")]
        head.append(("experts by mode", ", ".join(f"{m} {n}" for m, n in d["experts_by_mode"].items())))
        print_table(f"{d['policy']} on one layer", ["field", "value"], head)
        rows = [(r["gpu"], f"{r['gpu_experts']}/{r['experts']}", _compact(r["gpu_expert_ids"]),
                 _us(r["t_comm_ns"]), _us(r["t_gpu_ns"]), _us(r["t_pim_ns"]), f"{r['util_gpu']:.2f}", f"{r['util_hbm']:.2f}",
                 f"{r['util_pim']:.2f}") for r in d["per_gpu"]]
        if rows:
            print_table("per GPU (Sieve's estimate of this split in us; utilisation of the makespan)",
                        ["gpu", "on GPU", "GPU experts", "T_comm", "T_GPU", "T_PIM", "util gpu", "util hbm",
                         "util pim"], rows)
        if d["violations"]:
            print("check violations:", *d["violations"], sep="\n  ")

    emit(args, data, render)
    return 0 if run.check.ok else 1


def _compare(args: argparse.Namespace) -> int:
    if args.objective != "energy" and (args.latency_limit_us is not None or args.time_price_W is not None):
        given = "--latency-limit-us" if args.latency_limit_us is not None else "--time-price-W"
        raise SieveoptError(f"{given} applies to --objective energy only, the makespan objective has no "
                            f"limit or price (fix: add --objective energy, or drop {given})")
    if args.layer is not None and args.overlap == "serial":
        raise SieveoptError(f"--layer {args.layer}: serial compare samples --layers (decode step, MoE layer) pairs "
                            "from --seed, not one given layer (fix: drop --layer, or schedule layer "
                            f"{args.layer} with `sieveopt solve --layer {args.layer}`)")
    if args.objective == "energy":
        from sieveopt.cli.energy_compare import compare_energy

        unused = [opt for opt, given in (
            (f"--overlap {args.overlap}", args.overlap != "serial"), ("--microbatches", args.microbatches is not None),
            ("--window-layers", args.window_layers is not None),
            ("--runtime-order-evaluations", args.runtime_order_evaluations is not None),
            ("--workers", args.workers is not None), ("--latency-weight", args.latency_weight is not None),
            ("--replay", args.replay), ("--prefetch", bool(args.prefetch))) if given]
        if unused:
            raise SieveoptError(f"{', '.join(unused)}: --objective energy compares predicted energy of serial layers "
                                f"without replay or prefetch (fix: drop {', '.join(o.split()[0] for o in unused)})")

        return compare_energy(args)
    from sieveopt.instance import sample_layers
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers.sched_latency import describe, parse_spec, resolve, with_scheduler_latency

    sched_spec = parse_spec(args.scheduler_latency_ns)
    policies = policy_names(args.policies)
    check_cost_model(args.cost_model)
    model, system = load_problem(args)
    params = solver_params_for(args, policies, **cpsat_params(args))  # bad --solver-param fails here
    cost = _cost(args.cost_model, model, system)
    if args.overlap != "serial":
        if args.prefetch:
            raise SieveoptError("--prefetch: compare models next-layer prefetch in serial layers only "
                                "(fix: drop --prefetch, or drop --overlap)")
        if args.replay:
            raise SieveoptError("--replay: compare replays serial layers only (fix: drop --replay, or use "
                                "`sieveopt replay --overlap microbatch` for a replayed steady state)")
        return compare_overlap_cmd(args, model, system, cost, policies)
    execution_from_args(args, model, system)
    kw = {"context_len_tokens": args.context_len} if args.context_len else {}
    options: dict[int, Any] = {}  # per sampled layer: its DAG options (prefetch), else the system's
    if args.prefetch:
        from sieveopt.trimoe_prefetch import (
            check_prefetch_system,
            prefetch_options,
            sample_with_history,
        )

        check_prefetch_system(system, args.prefetch)
        pairs = sample_with_history(model, system, args.batch, args.layers, args.seed,
                                    context_len_tokens=args.context_len)
        insts = [inst for inst, _ in pairs]
        options = {i: prefetch_options(system, model, args.batch, hist, args.prefetch) for i, (_, hist) in enumerate(pairs)}
    else:
        insts = sample_layers(model, system, args.batch, args.layers, args.seed, **kw)
    layers: list[dict[str, Any]] = []
    all_ok = True
    timer = None
    if args.replay:
        from sieveopt.validation.replay import make_timer, replay

        timer = make_timer(system, model)
    bar = Steps(args, len(insts) * len(policies), "comparing")
    for i, inst in enumerate(insts):
        dag, cost = build_dag(inst, cost, options.get(i))
        row: dict[str, Any] = {"moe_layer": inst.moe_layer, "step": inst.step, "tasks": len(dag.tasks), "policies": {}}
        for pol in policies:
            bar.advance(f"layer {inst.moe_layer}: {pol}")
            lat = resolve(pol, sched_spec, calibration={"model": model, "system": system, "batch": inst.batch})
            run = run_layer(inst, pol, dag=with_scheduler_latency(dag, lat.ns), cost=cost, **params[pol])
            r = run.result
            all_ok &= run.check.ok
            row["policies"][pol] = {"makespan_ns": r.makespan_ns, "objective_ns": r.objective_ns,
                                    "bound_ns": r.bound_ns, "status": r.status, "check_ok": run.check.ok,
                                    "decision_ns": r.decision_ns, "wall_s": run.wall_s,
                                    "scheduler_latency_ns": lat.ns}
            if timer is not None and r.schedule is not None:
                rep = replay(r.schedule, run.dag, system, instance=inst, timer=timer)
                row["policies"][pol].update(
                    replayed_makespan_ns=rep.makespan_ns, replay_error_pct=rep.makespan_error_pct,
                    replay_kind_error={k: v.to_dict() for k, v in rep.kind_error.items()},
                    replayed_utilisation=rep.utilisation)
        spans = [v["makespan_ns"] for v in row["policies"].values() if v["makespan_ns"] is not None]
        row["best_ns"] = min(spans) if spans else None
        layers.append(row)
    bar.close()
    data = {"model": model.name, "precision": model.expert_precision, "system": system.name, "gpus": system.num_gpus, "batch": args.batch,
            "execution_model": "serial", "layers": len(layers), "seed": args.seed, "cost_model": args.cost_model,
            "prefetch_experts": args.prefetch,
            "replayed": bool(args.replay),
            "scheduler_latency": describe(sched_spec),
            "summary": _summary(policies, layers), "bounds": _bound_summary(policies, layers),
            "per_layer": layers, "all_checks_ok": all_ok}

    def render(d: dict) -> None:
        rows = [(p, _us(s["median_ns"]), _us(s["p95_ns"]), s["median_ratio_to_best"], s["wins"], s["checks_ok"],
                 _us(s["median_decision_ns"])) for p, s in d["summary"].items()]
        print_table(f"{d['model']} ({d['precision']} experts) on {d['gpus']} GPU(s), B={d['batch']}, {d['layers']} layers, serial execution{_prefetch_label(d)}, {d['cost_model']} cost model: makespan (us)",
                    ["policy", "median", "p95", "median ratio to best", "best on", "checks ok", "decision us"], rows)
        if any("median_replayed_ns" in s for s in d["summary"].values()):
            print_table("replayed on the cycle-level simulators (same decisions): makespan (us)",
                        ["policy", "median replayed", "median error (predicted - replayed) / replayed"],
                        [(p, _us(s.get("median_replayed_ns")), "-" if s.get("median_replay_error_pct") is None
                          else f"{s['median_replay_error_pct']:+.1f}%") for p, s in d["summary"].items()])
        for bp, b in d["bounds"].items():
            cols = ["layer", *policies, f"{bp} objective", f"{bp} bound"]
            lrows = [(f"{r['moe_layer']}/{r['step']}", *[r["policies"][p]["makespan_ns"] for p in policies],
                      r["policies"][bp]["objective_ns"], r["policies"][bp]["bound_ns"]) for r in d["per_layer"]]
            print_table(f"per layer, with {bp}'s objective and bound", cols, lrows)
            grows = [(p, *[_pct(g[k][s]) for k in ("vs_solution", "vs_bound") for s in ("median", "p95", "max")])
                     for p, g in b["gaps"].items()]
            print_table(f"gap of each policy (makespan / reference - 1, %) against {bp}",
                        ["policy", "vs solution med", "p95", "max", "vs bound med", "p95", "max"], grows)

    emit(args, data, render)
    return 0 if all_ok else 1


def _prefetch_label(d: dict) -> str:
    return f", next-layer prefetch of {d['prefetch_experts']} experts" if d.get("prefetch_experts") else ""


def _summary(policies: list[str], layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from sieveopt.study import percentile_or_none as _q

    out = {}
    for p in policies:
        spans = [r["policies"][p]["makespan_ns"] for r in layers if r["policies"][p]["makespan_ns"] is not None]
        ratios = [r["policies"][p]["makespan_ns"] / r["best_ns"] for r in layers
                  if r["policies"][p]["makespan_ns"] is not None and r["best_ns"]]
        dec = [r["policies"][p]["decision_ns"] for r in layers if r["policies"][p]["decision_ns"] is not None]
        rep = [r["policies"][p]["replayed_makespan_ns"] for r in layers if "replayed_makespan_ns" in r["policies"][p]]
        err = [r["policies"][p]["replay_error_pct"] for r in layers if "replay_error_pct" in r["policies"][p]]
        extra = {"median_replayed_ns": _q(rep, 50), "median_replay_error_pct": _q(err, 50)} if rep else {}
        out[p] = {**extra, "median_ns": _q(spans, 50), "p95_ns": _q(spans, 95),
                  "median_ratio_to_best": _q(ratios, 50),
                  "wins": sum(1 for r in layers if r["policies"][p]["makespan_ns"] == r["best_ns"]),
                  "checks_ok": sum(1 for r in layers if r["policies"][p]["check_ok"]),
                  "median_decision_ns": _q(dec, 50)}
    return out


def _bound_summary(policies: list[str], layers: list[dict[str, Any]]) -> dict[str, Any]:
    """For each policy that reported a bound on some layer: gaps of every other policy
    (:func:`sieveopt.study.gap_summary`, the one gap study)."""
    from sieveopt.study import gap_summary

    per_layer = [r["policies"] for r in layers]
    return {bp: gap_summary(per_layer, policies, bp) for bp in policies
            if any(r["policies"][bp]["bound_ns"] is not None for r in layers)}
