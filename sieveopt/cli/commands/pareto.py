"""``sieveopt pareto``: throughput vs interactivity per policy and batch size (CSV + plot).

The (batch, policy) points run on the sweep engine (:mod:`sieveopt.sweep`): ``--workers`` local
processes or ``--executor ray``; with ``--cache DIR`` cached by content hash and resumable, without
it kept in ``OUT/.sieveopt-resume`` until every point is finished (a re-run after Ctrl-C resumes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sieveopt.cli.common import (
    add_executor_args,
    add_ignore_capacity,
    add_json,
    add_max_memory,
    add_model_system_args,
    add_scheduler_latency_arg,
    add_set_arg,
    context_len_int,
    load_problem,
    nonneg_int,
    positive_int,
    seed_int,
    time_limit_s,
)
from sieveopt.cli.output import check_output_dir, emit, print_table
from sieveopt.errors import SieveoptError

_SHORT = {"throughput_tok_s_per_gpu": "tok/s/GPU", "interactivity_tok_s_per_user": "tok/s/user",
          "cp_attention_us": "attn", "cp_experts_gpu_us": "exp GPU", "cp_experts_pim_us": "exp PIM",
          "cp_comm_us": "comm", "pim_busy_mean": "PIM busy", "replay_step_us": "replay step_us"}


def register(sub: argparse._SubParsersAction) -> None:
    from sieveopt.e2e.policies import DEFAULT_CPSAT_TIME_LIMIT_S, DEFAULT_POLICIES

    p = sub.add_parser("pareto", help="throughput (tokens/s/GPU) vs interactivity (tokens/s/user) per policy",
                       description="Model whole decode steps (every layer, LM head) for each batch size and "
                                   "policy; write pareto.csv/.json/.png/.pdf into --out.")
    add_model_system_args(p)
    p.add_argument("--batches", default="1,2,4,...,256", help="batch sizes, e.g. 1,8,64 or 1,2,4,...,256")
    p.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="comma-separated registered policies")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layers", type=positive_int, default=4, help="MoE layers sampled per step (split over attention kinds)")
    p.add_argument("--time-limit", type=time_limit_s, default=DEFAULT_CPSAT_TIME_LIMIT_S,
                   help="CP-SAT wall-clock limit per layer in seconds (cpsat only)")
    p.add_argument("--replay", action="store_true", help="also replay every schedule on the cycle-level simulators")
    p.add_argument("--no-observed-table", action="store_true",
                   help="with --replay: Sieve's planners keep the roofline PIM table instead of the runtime "
                        "table fed by the replayed PIM job times of earlier layers/steps")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of routing, layer sampling and context lengths")
    p.add_argument("--context-len", type=context_len_int, default=2048, help="median/mean decode context length (tokens)")
    p.add_argument("--context-dist", choices=["lognormal", "uniform", "fixed"], default="lognormal",
                   help="per-request context lengths around --context-len: lognormal (sigma 0.5, the median), "
                        "uniform in [mean/2, 3 mean/2], or fixed")
    p.add_argument("--prefill", type=nonneg_int, default=0, help="prefill requests mixed into each decode batch")
    p.add_argument("--prefill-len", type=nonneg_int, default=0, help="tokens per prefill request")
    add_scheduler_latency_arg(p)
    from sieveopt.cli.overlap_cli import add_execution_model_args

    add_execution_model_args(p)  # microbatch/ideal: every batch's requests per GPU must divide by M
    p.add_argument("--compare", default=None, metavar="A,B",
                   help="policy pair whose curve comparison the plot marks (default: sieve vs its strongest "
                        "baseline); every pair is in pareto_compare.csv/json")
    p.add_argument("--cost-model", default="roofline", help="registered cost model name")
    add_set_arg(p)
    add_max_memory(p)
    add_ignore_capacity(p)
    add_executor_args(p, cache_help="keep every (batch, policy) point in DIR/points/<hash>: a re-run reuses "
                                    "finished points (resume after Ctrl-C, or add batches/policies)")
    add_json(p)
    p.set_defaults(handler=_pareto)


def spec_from_args(args: argparse.Namespace):
    """Validate every input (before any file is created) and build the sweep spec."""
    from sieveopt.dag import DagOptions
    from sieveopt.e2e.policies import check_policies
    from sieveopt.e2e.step import StepSettings
    from sieveopt.e2e.sweep import StepSweepSpec, parse_batches
    from sieveopt.e2e.workload import ContextDist, PrefillSpec
    from sieveopt.models.costmodel import COST_MODELS

    if args.no_observed_table and not args.replay:
        raise SieveoptError("--no-observed-table chooses the PIM table of replayed runs (fix: add --replay, or "
                            "drop --no-observed-table)")
    batches = parse_batches(args.batches)
    policies = [x.strip() for x in str(args.policies).split(",") if x.strip()]
    check_policies(policies)
    if args.compare is not None:
        pair = [x.strip() for x in str(args.compare).split(",")]
        if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(policies):
            raise SieveoptError(f"--compare {args.compare!r}: expected two different policies A,B from "
                                f"--policies (fix: e.g. --compare {','.join(policies[:2]) or 'sieve,noexp'}; "
                                f"--policies has {', '.join(policies)})")
    from sieveopt.solvers.sched_latency import parse_spec

    sched_spec = parse_spec(args.scheduler_latency_ns)
    COST_MODELS.get(args.cost_model)
    check_output_dir(Path(args.out))
    if args.cache is not None:
        check_output_dir(Path(args.cache))
    args.batch = max(batches)  # capacity (KV cache) and memory checks at the largest batch
    model, system = load_problem(args)
    overlap = _step_overlap(args, model, system, batches)
    settings = StepSettings(num_layers=args.layers, seed=args.seed, **overlap,
                            context=ContextDist(args.context_dist, args.context_len),
                            prefill=PrefillSpec(args.prefill, args.prefill_len), cost_model=args.cost_model,
                            dag_options=DagOptions.for_system(system), scheduler_latency=sched_spec,
                            observed_table=not args.no_observed_table)
    return StepSweepSpec(model, system, tuple(batches), tuple(policies), settings, args.time_limit)


def _step_overlap(args: argparse.Namespace, model, system, batches: list[int]) -> dict:
    """StepSettings fields of ``--overlap``; every batch checked up front (exit 2 naming the fix)."""
    from sieveopt.e2e.overlap_step import step_execution
    from sieveopt.execution_model import make_execution_model

    if args.overlap == "serial":
        # --microbatches / --runtime-order-evaluations without --overlap microbatch: the error names the fix
        make_execution_model("serial", args.microbatches, runtime_order_evaluations=args.runtime_order_evaluations)
        return {}
    if args.prefill:
        raise SieveoptError(f"--prefill with --overlap {args.overlap} is not modelled: drop --prefill or use "
                            "--overlap serial")
    out = {"overlap": args.overlap, "microbatches": args.microbatches or 0, "window_layers": args.window_layers or 0,
           "runtime_order_evaluations": args.runtime_order_evaluations}
    from types import SimpleNamespace

    settings = SimpleNamespace(**out)
    bad = []
    for b in batches:
        try:
            step_execution(settings, b, system.num_gpus, model.num_moe_layers)
        except SieveoptError as exc:
            if "does not divide" not in str(exc):
                raise
            bad.append(b)
    if bad:
        m = args.microbatches or 2
        ok = [b for b in batches if b not in bad]
        raise SieveoptError(f"--microbatches {m} does not divide the requests per GPU of --batches "
                            f"{','.join(map(str, bad))} on {system.num_gpus} GPU(s): use batches that are multiples "
                            f"of {m * system.num_gpus}" + (f" (e.g. --batches {','.join(map(str, ok))})" if ok else ""))
    return out


def _marked_pair(text: str | None, rows: list, comparisons: list) -> dict | None:
    from sieveopt.e2e.curves import compare_pair, pick_pair

    if not text:
        return pick_pair(rows, comparisons)
    parts = [x.strip() for x in text.split(",")]
    pols = {r["policy"] for r in rows}
    if len(parts) != 2 or not set(parts) <= pols or parts[0] == parts[1]:
        raise SieveoptError(f"--compare {text!r}: expected two different swept policies A,B "
                            f"(fix: two of {', '.join(sorted(pols))})")
    return compare_pair(rows, parts[0], parts[1])


def _pareto(args: argparse.Namespace) -> int:
    from sieveopt.cli.output import atomic_write_text, dumps_json
    from sieveopt.e2e import curves
    from sieveopt.e2e.curves import compare_curves, marks_for, summary_rows
    from sieveopt.e2e.sweep import result_rows, rows_to_csv, sweep_meta, timed_sweep, write_outputs

    def curves_doc() -> str:
        return " ".join(curves.__doc__.split())

    spec = spec_from_args(args)
    results, wall = timed_sweep(spec, args.cache, replay=args.replay, executor=args.executor, workers=args.workers,
                                address=args.address, out_dir=args.out, progress=not args.json and sys.stderr.isatty())
    rows = result_rows(spec, results)
    comparisons = compare_curves(rows, spec.policies)
    pair = _marked_pair(args.compare, rows, comparisons)
    files = write_outputs(args.out, rows, sweep_meta(spec, wall, args.replay),
                          marks=marks_for(pair) if pair else None)
    summary = summary_rows(comparisons)
    files["compare_csv"] = str(atomic_write_text(Path(args.out) / "pareto_compare.csv", rows_to_csv(summary)))
    files["compare_json"] = str(atomic_write_text(Path(args.out) / "pareto_compare.json", dumps_json(
        {"method": curves_doc(), "marked_pair": [pair["a"], pair["b"]] if pair else None,
         "pairs": comparisons})))
    data = {"files": files, "wall_s": wall, "rows": rows, "compare": summary,
            "marked_pair": [pair["a"], pair["b"]] if pair else None, "energy": _energy_note(spec)}

    def render(d: dict) -> None:
        cols = ["policy", "batch", "throughput_tok_s_per_gpu", "interactivity_tok_s_per_user", "step_us",
                "cp_attention_us", "cp_experts_gpu_us", "cp_experts_pim_us", "cp_comm_us", "pim_busy_mean",
                "check", "pareto"] + (["replay_step_us"] if args.replay else [])
        if any(r["error"] for r in d["rows"]):
            cols.append("error")
        heads = [_SHORT.get(c, c) for c in cols]
        ex = d["rows"][0]["execution_model"] if d["rows"] else args.overlap
        print_table(f"{spec.model.name} ({spec.model.expert_precision} experts) on {spec.system.num_gpus}x {spec.system.name}, "
                    f"{ex} execution (critical-path us per step; {wall:.1f} s)", heads, [[r[c] for c in cols] for r in d["rows"]])
        focus = d["marked_pair"][0] if d["marked_pair"] else None
        crow = [c for c in d["compare"] if focus in (c["a"], c["b"])] if focus else d["compare"]

        def ratio(c: dict, tag: str) -> str:
            g = c[f"{tag}_geomean"]
            if g is None:
                return "-"
            lo, hi = c[f"{tag}_min"], c[f"{tag}_max"]
            if c["a"] != focus and focus is not None:   # show focus / other
                g, lo, hi = 1 / g, 1 / hi, 1 / lo
            return f"{g:.3f} ({lo:.2f}-{hi:.2f}, n={c[f'{tag}_n']})"

        print_table(f"curve comparison: {focus or 'a'} / other (geomean, min-max, points)",
                    ["pair", "per batch (= step ratio)", "throughput at matched interactivity",
                     "interactivity at matched throughput"],
                    [(f"{focus} vs {c['b'] if c['a'] == focus else c['a']}" if focus else f"{c['a']} vs {c['b']}",
                      ratio(c, "per_batch"), ratio(c, "thr_at_inter"),
                      ratio(c, "inter_at_thr")) for c in crow])
        if not d["energy"]["available"]:
            print(d["energy"]["reason"])
        print("wrote " + ", ".join(d["files"].values()))

    return emit(args, data, render)


def _energy_note(spec) -> dict:
    """Whether the energy columns have values; without energy data they are empty (never zero) and why."""
    from sieveopt.validation.energy.layer import energy_model_for

    em = energy_model_for(spec.system, spec.model)
    if em.unavailable:
        return {"available": False, "reason": f"energy unavailable (energy columns left empty): {em.unavailable}"}
    return {"available": True}
