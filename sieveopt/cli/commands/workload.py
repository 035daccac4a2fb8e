"""``sieveopt workload stats|generate|calibrate``: routing workloads and their statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

from sieveopt.cli.common import (
    DEFAULT_MODEL,
    MAX_SEED,
    add_json,
    add_max_memory,
    positive_int,
    seed_int,
)
from sieveopt.cli.output import check_output_dir, check_output_file, emit, print_table
from sieveopt.errors import SieveoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("workload", help="routing workloads: statistics, generation, calibration")
    wsub = p.add_subparsers(dest="workload_command", metavar="ACTION")

    s = wsub.add_parser("stats", help="batch-histogram statistics of synthetic or real routing")
    _add_source_args(s)
    s.add_argument("--trace", default=None,
                   help="a .npz trace, or Patterns-behind-Chaos JSON files/directory (default: synthetic)")
    s.add_argument("--include-shared", action="store_true",
                   help="count shared experts as activated with N = batch")
    s.add_argument("--per-layer", action="store_true", help="also print one row per layer")
    add_json(s)
    s.set_defaults(handler=_stats)

    g = wsub.add_parser("generate", help="write a synthetic routing trace (.npz)")
    _add_source_args(g)
    g.add_argument("--out", required=True, help="output .npz path (written atomically)")
    add_json(g)
    g.set_defaults(handler=_generate)

    c = wsub.add_parser("calibrate", help="generator vs Sieve's measured N=1 / N<=4 fractions")
    c.add_argument("--seed", type=seed_int, default=0, help="generator seed")
    c.add_argument("--layers", type=positive_int, default=32, help="layers per trace")
    c.add_argument("--steps", type=positive_int, default=4, help="decode steps per trace")
    add_json(c)
    c.set_defaults(handler=_calibrate)

    ch = wsub.add_parser("characterize", help="temporal locality, co-activation, consistent/temporal experts, skew")
    _add_source_args(ch)
    ch.add_argument("--trace", default=None, help="a .npz trace, or Patterns-behind-Chaos JSON files/directory")
    ch.add_argument("--figures", default=None, help="directory for the figures (PNG)")
    add_json(ch)
    ch.set_defaults(handler=_characterize)

    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="catalog model name or a model .toml file")
    p.add_argument("--batch", type=positive_int, default=64, help="decode batch size (requests)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="decode steps (default: 16 synthetic; every full step of a JSON trace)")
    p.add_argument("--layers", type=positive_int, default=None, help="first N MoE layers only (default: all)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the routing generator")
    add_max_memory(p)


def add_horizon_args(p: argparse.ArgumentParser, *, batch: int, steps: int, drift_segments: int) -> None:
    """``--batch``, ``--steps``, ``--history``, ``--layers``, ``--drift-segments`` of the multi-step
    commands (``place``, ``trimoe relayout``): a profiled history, then an evaluated horizon."""
    p.add_argument("--batch", type=positive_int, default=batch, help="decode batch size (requests)")
    p.add_argument("--steps", type=positive_int, default=steps, help="evaluated decode steps (the horizon)")
    p.add_argument("--history", type=positive_int, default=32, help="profiling / forecast window (steps)")
    p.add_argument("--layers", type=positive_int, default=1, help="MoE layers evaluated (seeded sample)")
    p.add_argument("--drift-segments", type=positive_int, default=drift_segments,
                   help="synthetic workload phases (drift)")


def add_trace_file_args(p: argparse.ArgumentParser) -> None:
    """``--trace``, ``--per-step``, ``--seed`` and ``--set`` of the multi-step commands that read a
    recorded routing trace instead of the generator (``place``, ``trimoe relayout``); read back
    with :func:`trace_file`."""
    p.add_argument("--trace", default=None, help="a .npz trace or Patterns-behind-Chaos JSON files/directory")
    p.add_argument("--per-step", action="store_true", help="include the per-step series in the JSON")
    p.add_argument("--seed", type=seed_int, default=0, help=f"seed of the routing generator (0 to {MAX_SEED})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a system field, e.g. --set gpu.hbm_capacity_GiB=120 (repeatable)")


def trace_file(args: argparse.Namespace):
    """The ``--trace`` file as a routing trace checked against ``--model`` (every full step of a
    JSON trace at ``--batch``), or ``None`` without ``--trace``."""
    if not args.trace:
        return None
    from types import SimpleNamespace

    return _build_trace(SimpleNamespace(model=args.model, batch=args.batch, steps=None, layers=None,
                                        seed=args.seed, trace=args.trace))


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise SieveoptError(f"--{name} must be >= 1, got {value}")


def _build_trace(args: argparse.Namespace):
    from sieveopt.models.catalog import load_model
    from sieveopt.workload import generate_for_model, load_chaos_trace, load_npz

    _positive(args, "batch", "steps", "layers")
    model = load_model(args.model)
    trace_path = getattr(args, "trace", None)
    if trace_path is None:
        from sieveopt.resources import check_memory, estimate_run_bytes

        steps = 16 if args.steps is None else args.steps
        if args.layers is not None and args.layers > model.num_moe_layers:
            raise SieveoptError(f"--layers: got {args.layers}, allowed: [1, {model.num_moe_layers}] for "
                                f"{model.name} (fix: at most num_moe_layers)")
        check_memory(estimate_run_bytes(model, 1, args.batch, layers=args.layers or model.num_moe_layers,
                                        steps=steps), args.max_memory)
        return generate_for_model(model, args.batch, steps, args.seed, layers=args.layers)
    path = Path(trace_path)
    if not path.exists():
        raise SieveoptError(f"--trace {trace_path}: not found (fix: a .npz file, or JSON files / a directory)")
    if path.suffix == ".npz":
        from sieveopt.fileio import check_input_file

        check_input_file(path, "--trace")
        trace = load_npz(path)
        if trace.num_experts != model.num_routed_experts or trace.top_k != model.top_k:
            raise SieveoptError(
                f"{path}: trace has E={trace.num_experts}, k={trace.top_k} but model "
                f"{model.name} has E={model.num_routed_experts}, k={model.top_k} (fix: --model)"
            )
        return trace
    return load_chaos_trace(
        path, model.num_routed_experts, model.top_k, args.batch, steps=args.steps,
        num_shared_experts=model.num_shared_experts, model=model.name,
    )


#: Locality / long-window metrics (sieveopt.workload.locality) and their table labels.
_LOCALITY_ROWS = (
    ("top20_share", "top-20% share (long window)"),
    ("t20", "T20 next-step cond. mass"),
    ("l20", "L20 next-layer cond. mass"),
    ("reuse", "next-step expert reuse"),
    ("hot_jaccard_lag1", "hot-10% Jaccard, lag 1"),
    ("hot_jaccard_lag16", "hot-10% Jaccard, lag 16"),
)


def _stats(args: argparse.Namespace) -> int:
    from sieveopt.workload import workload_stats

    trace = _build_trace(args)
    full = workload_stats(trace, include_shared=args.include_shared)
    data = {"meta": full["meta"], "summary": full["summary"], "per_layer": full["per_layer"]}

    def render(d: dict) -> None:
        m, s = d["meta"], d["summary"]
        title = (f"{m['model'] or 'trace'}: {m['source']}, B={m['batch']}, {m['steps']} steps x "
                 f"{m['layers']} layers, E={m['num_experts']}, k={m['top_k']}")
        rows = [[f"tokens {b}", s["experts_share"][b], s["activated_share"][b]] for b in m["bins"]]
        rows += [["activated experts (mean)", s["activated_experts_mean"], ""],
                 ["CV of per-expert tokens", s["cv"], ""], ["Gini", s["gini"], ""],
                 ["max / mean", s["max_over_mean"], ""],
                 ["step-to-step load corr.", s["step_corr"], ""]]
        rows += [[label, s[key], ""] for key, label in _LOCALITY_ROWS if key in s]
        print_table(title, ["statistic", "share of experts", "share of activated"], rows)
        if args.per_layer:
            keys = ["layer", "idle_share", "n1_share_of_active", "cv", "gini", "max_over_mean", "step_corr"]
            keys += [k for k, _ in _LOCALITY_ROWS if d["per_layer"] and k in d["per_layer"][0]]
            print_table("Per layer", keys, [[r[k] for k in keys] for r in d["per_layer"]])

    return emit(args, data, render)


def _generate(args: argparse.Namespace) -> int:
    from sieveopt.workload import save_npz

    if not str(args.out).endswith(".npz"):
        raise SieveoptError(f"--out {args.out}: a routing trace is written as .npz (fix: end the name with .npz)")
    check_output_file(args.out)
    trace = _build_trace(args)
    path = save_npz(trace, args.out)
    data = {"path": str(path), "model": trace.model, "profile": trace.profile, "seed": trace.seed,
            "shape": list(trace.expert_ids.shape), "bytes": path.stat().st_size}

    def render(d: dict) -> None:
        print_table("Wrote routing trace", ["field", "value"], [[k, v] for k, v in d.items()])

    return emit(args, data, render)


def _calibrate(args: argparse.Namespace) -> int:
    from sieveopt.workload import calibration_table

    _positive(args, "layers", "steps")
    rows = calibration_table(seed=args.seed, layers=args.layers, steps=args.steps)

    def render(d: list) -> None:
        keys = ["model", "profile", "batch", "stat", "measured_pct", "generated_pct", "error_pts"]
        print_table("Generator vs Sieve §3.3 (shares of activated experts, %)",
                    keys + ["note"],
                    [[r[k] for k in keys] + ["attribution ambiguous" if r["ambiguous"] else ""]
                     for r in d])

    return emit(args, rows, render)


def _characterize(args: argparse.Namespace) -> int:
    from sieveopt.workload.characterize import characterize, plot_characterization

    if args.figures is not None:
        check_output_dir(args.figures, "--figures")
    trace = _build_trace(args)
    data = characterize(trace)
    if args.figures:
        data["figures"] = plot_characterization(trace, data, args.figures)

    def render(d: dict) -> None:
        m = d["meta"]
        title = (f"{m['model'] or 'trace'}: {m['source']}, B={m['batch']}, {m['steps']} steps x {m['layers']} layers, "
                 f"E={m['num_experts']}, k={m['top_k']}")
        print_table(title, ["statistic", "value (mean over layers)"], [[k, v] for k, v in d["summary"].items()])
        keys = list(d["per_layer"][0])
        print_table("Per layer", keys, [[r[k] for k in keys] for r in d["per_layer"]])
        for f in d.get("figures", []):
            print(f"wrote {f}")

    return emit(args, data, render)
