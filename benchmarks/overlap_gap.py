"""Steady-state pipelined decode on the paper's three configurations: every policy's period
under serial, microbatch (M micro-batches, periodic schedule) and ideal execution, and CP-SAT's
certified gap on the periodic problem.

Per (config, B): one cyclic window of ``--window-layers`` consecutive sampled layers (seed 0).

* serial: each policy's list-scheduled makespan of the full batch, mean over the window's layers;
* microbatch: each policy's modulo-list-scheduled period (superperiod / L) and mean per-micro-batch
  layer latency; CP-SAT on the periodic problem (``--time-limit`` s, 2 workers) with its bound;
* ideal: each policy's busiest-resource load / L, and the load-optimal minimum (a bound).

    .venv/bin/python benchmarks/overlap_gap.py --time-limit 60 --json out.json --md out.md
    .venv/bin/python benchmarks/overlap_gap.py --configs qwen3-30b-a3b:1 --batches 64 --time-limit 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_configs, configs

from sieveopt.cli.output import atomic_write_text
from sieveopt.execution_model import make_execution_model
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.overlap import HINT_POLICIES, sample_problem, solve_overlap
from sieveopt.pipeline import run_layer
from sieveopt.solvers import cpsat_periodic  # noqa: F401  (imported once here, not inside CP-SAT's timed call)


def run_one(model_name: str, gpus: int, batch: int, M: int, L: int, time_limit: float, serial: bool) -> dict:
    model = load_model(model_name)
    system = load_system(SYSTEM, gpus)
    cost = make_cost_model("roofline", system, model)
    ex = make_execution_model("microbatch", M, window_layers=L, batch=batch, num_gpus=gpus)
    prob = sample_problem(model, system, batch, ex, 0, cost)
    row: dict = {"model": model_name, "gpus": gpus, "batch": batch, "M": M, "L": L, "tasks": len(prob.dag.tasks),
                 "moe_layers": [r[0].moe_layer for r in prob.window], "policies": {}}
    res = {}
    for p in HINT_POLICIES:
        t0 = time.perf_counter()
        r = solve_overlap(prob, p)
        res[p] = r
        row["policies"][p] = {"period_ns": r.period_ns, "latency_ns": r.latency_ns, "check_ok": r.check_ok,
                              "decision_ns": r.decision_ns, "ideal_ns": r.meta["ideal_period_ns"],
                              "wall_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    c = solve_overlap(prob, "cpsat", time_limit_s=time_limit, workers=2, hints=res)
    row["policies"]["cpsat"] = {"period_ns": c.period_ns, "latency_ns": c.latency_ns, "check_ok": c.check_ok,
                                "bound_ns": c.bound_ns, "gap": c.gap, "status": c.status,
                                "from_hint": c.meta["from_hint"], "hint_policy": c.meta["hint_policy"],
                                "load_bound_ns": c.meta["load_bound_ns"] / L,
                                "relaxation_bound_ns": c.meta["relaxation_bound_ns"] / L,
                                "incumbent_search": c.meta.get("incumbent_search"),
                                "elapsed_s": c.meta.get("elapsed_s"), "cpu_share": c.meta.get("cpu_share"),
                                "wall_s": time.perf_counter() - t0}
    if serial:
        # Serial: the full batch of each of the window's layers (same routing, micro-batches joined).
        from sieveopt.window import sample_window

        full = sample_window(model, system, batch, L, 1, 0)
        for p in ("sieve", "sieve-plus", "sieve-pipe", "duplex"):
            spans = [run_layer(r[0], p, cost_model=cost).makespan_ns for r in full]
            row["policies"][p]["serial_ns"] = float(np.mean(spans))
    return row


def to_markdown(rows: list[dict]) -> str:
    out = ["| config | B | tasks | policy | serial us/layer | microbatch period us | latency us | ideal us | "
           "gap to CP-SAT best | checks |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        best = r["policies"]["cpsat"]["period_ns"]
        for p, v in r["policies"].items():
            ser = v.get("serial_ns")
            ideal = v.get("ideal_ns")
            out.append(f"| {r['model']} x{r['gpus']} | {r['batch']} | {r['tasks']} | {p} | "
                       f"{'-' if ser is None else f'{ser / 1e3:.2f}'} | {v['period_ns'] / 1e3:.2f} | "
                       f"{v['latency_ns'] / 1e3:.2f} | {'-' if ideal is None else f'{ideal / 1e3:.2f}'} | "
                       f"{100 * (v['period_ns'] / best - 1):+.2f}% | {'ok' if v['check_ok'] else 'FAIL'} |")
    out += ["", "| config | B | CP-SAT period us | bound us | certified gap | status | load bound us | "
            "relaxation bound us | hint | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["policies"]["cpsat"]
        out.append(f"| {r['model']} x{r['gpus']} | {r['batch']} | {c['period_ns'] / 1e3:.2f} | "
                   f"{c['bound_ns'] / 1e3:.2f} | {100 * c['gap']:.2f}% | {c['status']} | "
                   f"{c['load_bound_ns'] / 1e3:.2f} | {c['relaxation_bound_ns'] / 1e3:.2f} | "
                   f"{c['hint_policy']}{' (kept)' if c['from_hint'] else ''} | {c['wall_s']:.0f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap)
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--microbatches", type=int, default=2)
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--no-serial", action="store_true", help="skip the serial reference")
    ap.add_argument("--json", default=None)
    ap.add_argument("--md", default=None)
    args = ap.parse_args(argv)
    rows = []
    for name, gpus in configs(args.configs):
        for b in map(int, args.batches.split(",")):
            t0 = time.perf_counter()
            rows.append(run_one(name, gpus, b, args.microbatches, args.window_layers, args.time_limit,
                                not args.no_serial))
            print(f"{name}:{gpus} B={b}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            if args.json:
                atomic_write_text(args.json, json.dumps(rows, indent=1))
    md = to_markdown(rows)
    print(md)
    if args.md:
        atomic_write_text(args.md, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
