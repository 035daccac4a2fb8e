"""``sieveopt run``: the main job on built-in defaults.

Samples layers of a model on a system, schedules them with Sieve, the baselines and CP-SAT,
replays every schedule on the cycle-level simulators, prints the comparison (makespans, gaps,
scheduler latency) and writes results plus a Gantt picture (Sieve vs CP-SAT) to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from sieveopt.cli.common import (
    add_executor_args,
    add_ignore_capacity,
    add_json,
    add_max_memory,
    add_model_system_args,
    add_scheduler_latency_arg,
    add_set_arg,
    add_solver_param,
    check_capacity,
    check_run_memory,
    load_system_checked,
    policy_names,
    positive_int,
    seed_int,
    solver_params_for,
    time_limit_s,
)
from sieveopt.cli.output import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    dumps_json,
    emit,
    print_table,
)
from sieveopt.cli.overlap_cli import add_execution_model_args
from sieveopt.errors import SieveoptError

#: Printed under the serial comparison: Sieve's max(T_comm, T_GPU, T_PIM) objective is written for
#: execution in which phases overlap (papers.md §1.5), so its serial gap is a property of this
#: execution model, and the regime the objective assumes is one option away.
SERIAL_REGIME_NOTE = ("Sieve's objective max(T_comm, T_GPU, T_PIM) assumes phases of different micro-batches "
                      "overlap; the same comparison in that regime: sieveopt run --overlap microbatch "
                      "--microbatches 2")


def register(sub: argparse._SubParsersAction) -> None:
    from sieveopt.study import DEFAULT_POLICIES

    p = sub.add_parser("run", help="the main job: every policy + CP-SAT on sampled layers, replayed, compared")
    add_model_system_args(p, gpus_help="GPUs (default: the paper's count for the model, else the preset's)")
    p.add_argument("--batch", type=positive_int, default=64, help="decode batch size")
    p.add_argument("--layers", type=positive_int, default=3,
                   help="sampled MoE layers (--overlap microbatch/ideal: sampled cyclic windows of --window-layers)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of routing and CP-SAT")
    p.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="comma-separated registered solvers")
    p.add_argument("--time-limit", type=time_limit_s, default=5.0,
                   help="CP-SAT wall-clock limit per layer (--overlap: per window) in seconds")
    p.add_argument("--no-replay", action="store_true",
                   help="skip the cycle-level replay (--overlap microbatch: of the steady-state pipelines)")
    add_scheduler_latency_arg(p)
    add_set_arg(p)
    p.add_argument("--out", default="sieveopt-out",
                   help="directory for results.json/csv and gantt.png (--overlap microbatch: a steady-state "
                        "period of Sieve and CP-SAT; --overlap ideal, a bound: no gantt.png)")
    add_max_memory(p)
    add_ignore_capacity(p)
    add_executor_args(p, workers_help="layers (--overlap: windows) solved in parallel (local pool size / local "
                                      "Ray CPUs); the periodic CP-SAT's threads: --solver-param workers=N",
                      cache_help="keep each layer's (--overlap: window's) results in DIR/points/<hash>: a re-run "
                                 "reuses finished ones")
    add_execution_model_args(p)  # serial (default): the layer DAG; microbatch/ideal: as `compare --overlap`
    add_solver_param(p, more_help="; --overlap microbatch/ideal: the periodic CP-SAT's workers=N (default 2) and "
                                  "latency_weight=W (default 0)")
    add_json(p)
    p.set_defaults(handler=_run)


def _check_serial(args: argparse.Namespace) -> None:
    """The execution-model options a serial run does not take exit 2 naming the fix (the serial
    layer DAG has one micro-batch and no cyclic window)."""
    from sieveopt.execution_model import make_execution_model

    make_execution_model("serial", args.microbatches, runtime_order_evaluations=args.runtime_order_evaluations)
    if args.window_layers is not None:
        raise SieveoptError("--window-layers sets the cyclic window of --overlap microbatch/ideal (serial runs one "
                            "layer DAG per sampled layer) (fix: add --overlap microbatch, or drop --window-layers)")


def _run(args: argparse.Namespace) -> int:
    from sieveopt.models.catalog import load_model
    from sieveopt.solvers.sched_latency import describe, parse_spec
    from sieveopt.study import PAPER_GPUS, run_study_points, summarize

    sched_spec = parse_spec(args.scheduler_latency_ns)
    policies = tuple(policy_names(args.policies))
    if args.overlap != "serial":
        from sieveopt.cli.run_overlap import run_overlap

        return run_overlap(args, policies)
    _check_serial(args)
    extra = solver_params_for(args, policies)  # only --solver-param; run_study adds the time limit/seed
    check_output_dir(args.out)
    if args.cache is not None:
        check_output_dir(args.cache, "--cache")
    model = load_model(args.model)
    gpus = args.gpus if args.gpus is not None else PAPER_GPUS.get(model.name)
    system = load_system_checked(args.system, gpus, args.overrides)
    check_capacity(args, model, system, batch=args.batch, context_len_tokens=None)
    check_run_memory(args, model, system, batch=args.batch, layers=args.layers, steps=4)
    # One point of the sweep engine per sampled layer (every policy on it, replayed).
    rows, gantt = run_study_points(model, system, batch=args.batch, layers=args.layers, seed=args.seed,
                                   policies=policies, time_limit_s=args.time_limit, replay=not args.no_replay,
                                   solver_params=extra, scheduler_latency=sched_spec, cache_dir=args.cache, out_dir=args.out,
                                   executor=args.executor, address=args.address,
                                   workers=args.workers, progress=not args.json)
    summary = summarize(rows, policies)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"model": model.name, "precision": model.expert_precision, "system": system.name, "gpus": system.num_gpus, "batch": args.batch,
            "layers": args.layers, "seed": args.seed, "scheduler_latency": describe(sched_spec),
            # what every number below was measured under (docs/metrics.md)
            "execution_model": "serial (one batch through one layer DAG, phases in sequence)",
            "cost_model": "roofline (predicted makespans)",
            "replay": None if args.no_replay else "cycle-level DRAM/PIM + NVLink simulators",
            "summary": summary,
            "energy": _energy_summary(rows, policies, model, system, args.batch),
            "rows": [r.__dict__ for r in rows]}
    atomic_write_text(out / "results.json", dumps_json(data))
    buf = io.StringIO()
    nested = ("extra", "step_energy")   # dicts: results.json only
    w = csv.DictWriter(buf, fieldnames=[k for k in rows[0].__dict__ if k not in nested])
    w.writeheader()
    for r in rows:
        w.writerow({k: v for k, v in r.__dict__.items() if k not in nested})
    atomic_write_text(out / "results.csv", buf.getvalue())
    data["gantt"] = str(atomic_write_bytes(out / "gantt.png", gantt)) if gantt is not None else None

    def render(d: dict) -> None:
        def pct(x):
            return "-" if x is None else f"{100 * x:+.2f}%"

        def us(x):
            return "-" if x is None else f"{x:.1f}"

        print_table(f"{d['model']} ({d['precision']} experts) on {d['gpus']} x {d['system']}, B={d['batch']}, {d['layers']} layers (medians)",
                    ["policy", "makespan us", "replayed us", "vs CP-SAT best", "vs CP-SAT bound",
                     "replay vs CP-SAT", "decision us", "charged us", "checked", "status"],
                    [(s["policy"], us(s["makespan_us"]), us(s["replay_us"]), pct(s["gap_vs_cpsat_best"]),
                      pct(s["gap_vs_cpsat_bound"]), pct(s["replay_gap_vs_cpsat"]), us(s["decision_us"]),
                      f"{s['charged_sched_us']:.2f} ({s['charged_sched_source']})",
                      "yes" if s["all_checked"] else "NO", s["status"]) for s in d["summary"]])
        _render_energy(d["energy"])
        print(f"execution model: {d['execution_model']}; cost model: {d['cost_model']}"
              + (f"; replayed on the {d['replay']}" if d["replay"] else "") + ".")
        print(SERIAL_REGIME_NOTE)
        print("decision us: the policy's measured planning time this run (max over GPUs, shown only). "
              "charged us: what the scheduler task lasts in the schedule and its replay -- "
              f"{d['scheduler_latency']}.")
        print(f"results: {out / 'results.json'}, {out / 'results.csv'}" +
              (f"; Gantt: {d['gantt']}" if d["gantt"] else ""))

    return emit(args, data, render)


# -- energy (validation/energy): per MoE layer and per generated token of the whole step ------------
def _energy_summary(rows, policies, model, system, batch) -> dict:
    from sieveopt.study import energy_summary
    from sieveopt.validation.energy.layer import energy_model_for

    em = energy_model_for(system, model)
    if em.unavailable:   # never zeros: say why
        return {"available": False, "reason": f"energy unavailable: {em.unavailable}"}
    return {"available": True, "energy_model": "IDD method + GPU/NVLink per-op energies (validation/energy)",
            "per_policy": energy_summary(rows, policies, batch)}


def _render_energy(e: dict) -> None:
    if not e.get("available"):
        print(e["reason"])
        return

    def f(x, fmt="{:.4g}"):
        return "-" if x is None else fmt.format(x)

    print_table("energy, medians (whole step: every MoE layer like the sampled one + the rest, replayed)",
                ["policy", "layer mJ", "replayed mJ", "step J/token", "replayed J/token", "step error",
                 "out of tolerance"],
                [(s["policy"], f(s["energy_mJ"]), f(s["replay_energy_mJ"]), f(s["step_J_per_token"]),
                  f(s["replay_step_J_per_token"]), f(s["step_error_pct"], "{:+.1f}%"),
                  ", ".join(s["not_within"]) or "-") for s in e["per_policy"]])
