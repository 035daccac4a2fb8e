"""``sieveopt run --overlap microbatch|ideal``: the main job under an overlapped execution model.

The serial main job lives in :mod:`sieveopt.cli.commands.run`, which registers the command and
hands ``--overlap microbatch|ideal`` here; the per-window work is :mod:`sieveopt.overlap_study`,
shared with ``compare --overlap``.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from sieveopt.cli.common import check_capacity, check_run_memory, load_system_checked, positive_int
from sieveopt.cli.output import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    dumps_json,
    emit,
)
from sieveopt.errors import SieveoptError

#: ``--solver-param`` keys of the periodic CP-SAT under ``run --overlap`` (its time limit and seed
#: are --time-limit and --seed; --workers runs windows in parallel, as layers in the serial run).
PERIODIC_SOLVER_PARAMS = {"workers": "a whole number >= 1", "latency_weight": "a number in [0, 1e6]"}
#: Columns of results.csv under ``run --overlap`` (one row per window and policy): the window's,
#: the policy's result, its replay's.
_RESULT_CSV = ("period_ns", "latency_ns", "bound_ns", "gap", "status", "check_ok", "decision_ns", "wall_s",
               "scheduler_latency_ns", "scheduler_latency_source", "gap_to_cpsat_best", "gap_to_cpsat_bound")
_REPLAY_CSV = ("predicted_period_ns", "replayed_period_ns", "period_error_pct", "replayed_gap_to_cpsat")
OVERLAP_CSV = ("execution_model", "window", "seed", "moe_layers", "policy", *_RESULT_CSV, *_REPLAY_CSV,
               "replay_wall_s")


def _periodic_params(args: argparse.Namespace, policies: tuple[str, ...]) -> dict[str, float]:
    """``--solver-param workers=N`` / ``latency_weight=W`` for the periodic CP-SAT (defaults as
    ``compare --overlap``: :data:`DEFAULT_OVERLAP_WORKERS`, :data:`DEFAULT_LATENCY_WEIGHT`);
    anything else exits 2 naming the key and the fix."""
    from sieveopt.cli.common import float_in
    from sieveopt.cli.overlap_cli import DEFAULT_LATENCY_WEIGHT, DEFAULT_OVERLAP_WORKERS
    from sieveopt.solvers import policy_info

    out: dict[str, float] = {"workers": DEFAULT_OVERLAP_WORKERS, "latency_weight": DEFAULT_LATENCY_WEIGHT}
    parse = {"workers": positive_int, "latency_weight": float_in(ge=0, le=1e6)}
    known = ", ".join(f"{k}=<{v}>" for k, v in PERIODIC_SOLVER_PARAMS.items())
    for pair in args.solver_params or []:
        key, sep, raw = (x.strip() for x in pair.partition("="))
        if not sep or key not in PERIODIC_SOLVER_PARAMS:
            raise SieveoptError(f"--solver-param {pair!r}: under --overlap {args.overlap} the periodic CP-SAT takes "
                                f"{known} (--time-limit and --seed set the rest; --workers runs windows in "
                                "parallel); fix: use one of these keys or drop the option")
        if not any(policy_info(p).periodic for p in policies):
            raise SieveoptError(f"--solver-param {key}: sets the periodic CP-SAT, and no policy in --policies is "
                                "an exact solver (fix: add cpsat to --policies, or drop --solver-param)")
        try:
            out[key] = parse[key](raw)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise SieveoptError(f"--solver-param {key}={raw!r}: {exc}") from None
    return out


def run_overlap(args: argparse.Namespace, policies: tuple[str, ...]) -> int:
    """``run --overlap microbatch|ideal``: the main job under an overlapped execution model.

    Every policy + CP-SAT (hinted with the heuristics) on ``--layers`` cyclic windows (the
    problems of ``compare --overlap``), one sweep-engine point per window (``--cache``,
    ``--workers``, ``--executor`` as in the serial run); under ``microbatch`` each policy's
    periodic schedule is replayed (``replay --overlap``'s charge) unless ``--no-replay``, and
    window 0's steady state of Sieve and CP-SAT is drawn. ``ideal`` is a bound, not a schedule:
    a bound table, nothing replayed or drawn (said in the output and results.json)."""
    from sieveopt.cli.overlap_cli import execution_from_args
    from sieveopt.models.catalog import load_model
    from sieveopt.overlap_study import (
        all_checks_ok,
        gantt_policies,
        overlap_window_configs,
        replay_settings,
        run_overlap_points,
        summarize_windows,
    )
    from sieveopt.solvers.sched_latency import describe, parse_spec
    from sieveopt.study import PAPER_GPUS

    check_output_dir(args.out)
    if args.cache is not None:
        check_output_dir(args.cache, "--cache")
    spec = parse_spec(args.scheduler_latency_ns)
    solver = _periodic_params(args, policies)
    model = load_model(args.model)
    gpus = args.gpus if args.gpus is not None else PAPER_GPUS.get(model.name)
    system = load_system_checked(args.system, gpus, args.overrides)
    ns = argparse.Namespace(**{**vars(args), **solver, "layer": None, "context_len": None,
                               "cost_model": "roofline", "solver_params": None})
    ex = execution_from_args(ns, model, system)  # --microbatches without --overlap: the error names the fix
    check_capacity(args, model, system, batch=args.batch, context_len_tokens=None)
    replay = None if args.no_replay or not ex.gives_schedule else replay_settings()
    iterations = replay["iterations"] if replay else 1
    check_run_memory(args, model, system, batch=args.batch, layers=ex.window_layers * ex.microbatches * iterations,
                     steps=4)
    configs = overlap_window_configs(model, system, ex, batch=args.batch, windows=args.layers, seed=args.seed,
                                     policies=policies, time_limit_s=args.time_limit, workers=solver["workers"],
                                     latency_weight=solver["latency_weight"], scheduler_latency=spec,
                                     cost_model="roofline", replay=replay)
    windows, gantt = run_overlap_points(configs, cache_dir=args.cache, out_dir=args.out, executor=args.executor,
                                        workers=args.workers, address=args.address, progress=not args.json,
                                        manifest={"name": "run --overlap", "model": model.name,
                                                  "system": system.name, "execution_model": ex.label})
    summary = summarize_windows(windows, policies)
    ok = all_checks_ok(windows)
    if ex.gives_schedule:
        replay_text = (None if replay is None else
                       f"cycle-level DRAM/PIM + NVLink simulators: {replay['iterations']} iterations of the cyclic "
                       f"window unrolled, the first and last {replay['trim']} dropped (fill and drain)")
        no_replay = "--no-replay" if replay is None else None
        no_gantt = None if gantt is not None else "no schedule to draw"
    else:
        replay_text = None
        no_replay = no_gantt = "--overlap ideal is a bound (busiest resource's load), not a schedule"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"model": model.name, "precision": model.expert_precision, "system": system.name,
            "gpus": system.num_gpus, "batch": args.batch, "seed": args.seed, "windows": len(windows),
            "layers_per_window": ex.window_layers, "policies": list(policies),
            "scheduler_latency": describe(spec),
            # what every number below was measured under (docs/metrics.md)
            "execution_model": ex.to_dict(),
            "period_definition": "superperiod of the cyclic window / window layers: steady-state time per layer "
                                 "for the whole batch" if ex.gives_schedule else
                                 "busiest resource's load per layer (ideal overlap): a bound, not a schedule",
            "cost_model": "roofline (predicted periods)",
            "periodic_cpsat": {"time_limit_s": args.time_limit, **solver, "seed": args.seed},
            "replay": replay_text, "replay_settings": replay, "replay_skipped": no_replay,
            "summary": summary, "per_window": windows, "all_checks_ok": ok,
            "gantt_policies": list(gantt_policies(policies)) if gantt is not None else [],
            "gantt": str(atomic_write_bytes(out / "gantt.png", gantt)) if gantt is not None else None,
            "gantt_skipped": no_gantt}
    atomic_write_text(out / "results.csv", _overlap_csv(windows, ex.label))
    atomic_write_text(out / "results.json", dumps_json(data))  # last: its presence means the run finished

    def render(d: dict) -> None:
        from sieveopt.cli.overlap_cli import render_overlap_summary

        render_overlap_summary(d, title_extra=" (medians)")
        print(f"execution model: {d['execution_model']['label']}; cost model: {d['cost_model']}; precision: "
              f"{d['precision']} experts" + (f"; replayed on the {d['replay']}" if d["replay"] else
                                              f"; not replayed: {d['replay_skipped']}") + ".")
        if d["replay"]:
            print("replay error: (predicted - replayed) / replayed period; replayed vs cpsat: against CP-SAT's "
                  "replayed period.")
        print("decision us: the policy's measured planning time (shown only). sched charge us: what each slot's "
              f"scheduler task lasts in the schedule and its replay -- {d['scheduler_latency']}.")
        print(f"results: {out / 'results.json'}, {out / 'results.csv'}"
              + (f"; Gantt ({', '.join(d['gantt_policies'])}, window 0): {d['gantt']}" if d["gantt"] else
                 f"; no Gantt: {d['gantt_skipped']}"))

    emit(args, data, render)
    return 0 if ok else 1


def _overlap_csv(windows: list[dict], label: str) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(OVERLAP_CSV))
    w.writeheader()
    for win in windows:
        for pol, v in win["policies"].items():
            rep = v.get("replay") or {}
            w.writerow({"execution_model": label, "window": win["window"], "seed": win["seed"],
                        "moe_layers": " ".join(map(str, win["moe_layers"])), "policy": pol,
                        **{k: v.get(k) for k in _RESULT_CSV}, **{k: rep.get(k) for k in _REPLAY_CSV},
                        "replay_wall_s": rep.get("wall_s")})
    return buf.getvalue()


__all__ = ["OVERLAP_CSV", "PERIODIC_SOLVER_PARAMS", "run_overlap"]
