"""``sieveopt place``: expert placement policies over a multi-step decode run, with GPU variability."""

from __future__ import annotations

import argparse

from sieveopt.cli.commands.workload import add_horizon_args, add_trace_file_args, trace_file
from sieveopt.cli.common import (
    DEFAULT_SYSTEM,
    add_json,
    float_in,
    gpus_int,
    nonneg_int,
    parse_overrides,
    policy_names,
    positive_int,
    seed_int,
    time_limit_s,
)
from sieveopt.cli.output import emit, print_table
from sieveopt.errors import SieveoptError, SpecError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("place", help="expert placement (round-robin, EPLB, GEM, exact) over many decode steps")
    p.add_argument("--model", default="deepseek-v3", help="catalog model name or a model .toml file")
    p.add_argument("--system", default=DEFAULT_SYSTEM, help="catalog system name or a system .toml file")
    p.add_argument("--gpus", type=gpus_int, default=None, help="number of GPUs (default: the system preset's)")
    add_horizon_args(p, batch=256, steps=200, drift_segments=1)
    p.add_argument("--policies", default="round-robin,eplb,gem,exact",
                   help="comma-separated placement policies (round-robin, eplb, gem, exact)")
    p.add_argument("--variability", type=float, default=0.0,
                   help="GPU speed spread: factors drawn in [1 - v, 1] (0 = identical GPUs)")
    p.add_argument("--variability-kind", default="uniform", choices=["uniform", "lognormal"],
                   help="law of the drawn per-GPU speed factors")
    p.add_argument("--variability-seed", type=seed_int, default=0, help="seed of the speed-factor draw")
    p.add_argument("--speed-factors", default=None,
                   help="fixed per-GPU speed factors, comma separated (overrides --variability)")
    p.add_argument("--variability-profile", default=None, help="measured profile file (JSON/TOML)")
    p.add_argument("--redundant-experts", type=nonneg_int, default=32, help="EPLB replica slots (capped by HBM)")
    p.add_argument("--slots-per-gpu", type=positive_int, default=None, help="expert slots per GPU per layer (default: HBM)")
    p.add_argument("--predictor", default="window", help="last, mean, ema, window or oracle")
    p.add_argument("--replace-every", type=nonneg_int, default=0, help="re-place every K steps (0 = static)")
    p.add_argument("--layer-policy", default="sieve", help="per-layer policy solving each step's layer")
    p.add_argument("--eval", dest="mode", default="dag", choices=["dag", "surrogate"],
                   help="layer time from the DAG + per-layer policy, or the surrogate only")
    p.add_argument("--exact-objective", default=None, choices=["mean", "cvar", "balance"],
                   help="exact optimiser's objective: mean step time, CVaR of the slowest steps, or the "
                        "straggler of the expected loads (default: the exact policy's own, "
                        "sieveopt.placement.exact.POLICY_OBJECTIVE; cvar since round 9)")
    p.add_argument("--exact-alpha", type=float_in(gt=0, lt=1), default=None,
                   help="level of --exact-objective cvar: the mean straggler of the exact window's worst "
                        "(1 - alpha) share of steps; the share must hold at least one step (default: the "
                        "exact policy's own, sieveopt.placement.exact.POLICY_ALPHA, 0.9)")
    p.add_argument("--exact-space", default="model", choices=["model", "gem"],
                   help="exact optimiser's space: HBM capacity + replicas, or GEM's E/G experts per GPU")
    p.add_argument("--exact-replicas", default="loaded", choices=["loaded", "cheap"],
                   help="exact optimiser's replica candidates: the R most loaded experts (annealing keeps the "
                        "hint's replicas) or the R cheapest to split (annealing splits and merges them)")
    p.add_argument("--surrogate", default="overlap", choices=["overlap", "serial"],
                   help="placement objective: GPU/PIM-overlapped expert work (Sieve's split) or the "
                        "serial best-unit work of earlier rounds")
    p.add_argument("--time-limit", type=time_limit_s, default=60.0, help="exact optimiser time limit (s)")
    p.add_argument("--workers", type=positive_int, default=8, help="CP-SAT workers")
    p.add_argument("--gap-limit", type=float, default=0.0,
                   help="exact optimiser: stop at this relative gap (0 = run to optimality or the time limit)")
    add_trace_file_args(p)
    add_json(p)
    p.set_defaults(handler=_place)


def build_system(args: argparse.Namespace):
    """System with the requested variability (validated: errors name the field)."""
    from sieveopt.models.catalog import load_system
    from sieveopt.models.specs import GpuVariabilitySpec
    from sieveopt.variability import variability_spec, with_variability

    system = load_system(args.system, args.gpus, parse_overrides(args.overrides))
    if args.speed_factors:
        try:
            vals = tuple(float(x) for x in args.speed_factors.split(","))
        except ValueError:
            raise SieveoptError(f"--speed-factors {args.speed_factors!r}: expected comma-separated numbers "
                                "(fix: one factor per GPU, e.g. --speed-factors 1.0,0.9)") from None
        try:
            spec = GpuVariabilitySpec(kind="fixed", compute_speed=vals)
        except SpecError as exc:
            raise SpecError("--speed-factors", f"variability.{exc.field}", exc.problem, exc.fix) from None
    elif args.variability_profile:
        spec = GpuVariabilitySpec(kind="profile", profile=args.variability_profile)
    else:
        spec = variability_spec(args.variability, seed=args.variability_seed, kind=args.variability_kind)
    return with_variability(system, spec)


def _place(args: argparse.Namespace) -> int:
    from sieveopt.models.catalog import load_model
    from sieveopt.placement import PLACEMENT_POLICIES, PREDICTORS, compare_policies
    from sieveopt.placement.exact import POLICY_ALPHA, POLICY_OBJECTIVE

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in PLACEMENT_POLICIES]
    if unknown or not policies:
        raise SieveoptError(f"--policies: unknown {unknown} (known: {', '.join(PLACEMENT_POLICIES)})")
    if args.predictor not in PREDICTORS:
        raise SieveoptError(f"--predictor: unknown {args.predictor!r} (known: {', '.join(PREDICTORS)})")
    policy_names(args.layer_policy, "--layer-policy", single=True)
    if not 0 <= args.gap_limit < 1:
        raise SieveoptError(f"--gap-limit must be in [0, 1), got {args.gap_limit} (fix: a relative gap such as "
                            "0.01, or 0 to run to optimality or the time limit)")
    objective = args.exact_objective or POLICY_OBJECTIVE
    if args.exact_alpha is not None:
        _check_exact_alpha(args, policies, objective)
    model = load_model(args.model)
    system = build_system(args)
    trace = trace_file(args)
    data = compare_policies(model, system, policies=policies, steps=args.steps, history=args.history,
                            batch=args.batch, layers=args.layers, seed=args.seed,
                            redundant=args.redundant_experts, capacity=args.slots_per_gpu,
                            predictor=args.predictor, replace_every=args.replace_every,
                            layer_policy=args.layer_policy, mode=args.mode,
                            exact_objective=objective, time_limit_s=args.time_limit,
                            exact_alpha=POLICY_ALPHA if args.exact_alpha is None else args.exact_alpha,
                            workers=args.workers, drift_segments=args.drift_segments, trace=trace,
                            gap_limit=args.gap_limit, per_step=args.per_step, exact_space=args.exact_space,
                            exact_replicas=args.exact_replicas, surrogate=args.surrogate)
    return emit(args, data, _render)


def _check_exact_alpha(args: argparse.Namespace, policies: list[str], objective: str) -> None:
    """``--exact-alpha`` only with the exact policy's cvar objective, and with at least one whole
    step of the exact window in its tail (else cvar is just the worst step)."""
    from sieveopt.placement.exact import tail_steps
    from sieveopt.placement.forecast import scenario_steps

    a = args.exact_alpha
    if "exact" not in policies:
        raise SieveoptError(f"--exact-alpha {a:g} sets the exact policy's objective, which --policies does not run "
                            "(fix: add exact to --policies, or drop --exact-alpha)")
    if objective != "cvar":
        raise SieveoptError(f"--exact-alpha {a:g} is the level of --exact-objective cvar, not {objective} "
                            "(fix: --exact-objective cvar, or drop --exact-alpha)")
    steps = scenario_steps(args.predictor, args.history, max(args.replace_every, 1))
    if tail_steps(a, steps) < 1 - 1e-9:
        more = {"window": "a longer --history", "oracle": "a longer --replace-every"}.get(
            args.predictor, "--predictor window (a window of several steps)")
        fix = (f"--exact-alpha <= {1 - 1 / steps:g}, or " if steps > 1 else "") + more
        raise SieveoptError(f"--exact-alpha {a:g} leaves {tail_steps(a, steps):.3g} of the exact window's {steps} "
                            f"step(s) in the tail, fewer than one (fix: {fix})")


def _render(d: dict) -> None:
    v = d["variability"]
    title = (f"{d['model']} on {d['num_gpus']} x {d['system']}, B={d['batch']}, {d['steps']} steps after "
             f"{d['history']} history, layers {d['layers']}; speed spread {v['spread']:.3f}; "
             f"{d['capacity_slots_per_gpu']} slots/GPU")
    rows = []
    for r in d["policies"]:
        ex = r.get("exact", {})
        rows.append([r["policy"], r["layer_mean_ns"] / 1e3, r["layer_p99_ns"] / 1e3,
                     r["straggler_share_mean"], r["moe_tpot_with_move_ns"] / 1e6,
                     r["movement"]["time_ns_all_layers"] / 1e6,
                     "" if not ex else ex["bound_ns_first"] / 1e3, "" if not ex else ex["gap_max"]])
    print_table(title, ["policy", "layer mean us", "layer p99 us", "straggler share", "MoE TPOT ms",
                        "movement ms", "exact bound us (surrogate)", "exact gap"], rows)
    ex = next((r["exact"] for r in d["policies"] if r.get("exact")), None)
    if ex:
        runs = ex["runs"]
        print(f"exact objective: {ex['objective']}" + (
            f" at alpha {ex['alpha']:g} (the mean of the worst {runs[0]['worst_steps']} of "
            f"{runs[0]['steps']} window steps)" if ex["alpha"] is not None else ""))
    print(f"layer time: {d['policies'][0]['mode']} ({d['policies'][0]['layer_policy']}, {d['cost_model']}, "
          f"{d['execution_model']}); placement objective: {d['surrogate']}")
