"""Slot relaxation bound vs the per-resource load bound on the paper's three configurations
(issue 11): one cyclic window per (config, B), seed 0, microbatch execution (M micro-batches,
L window layers), roofline cost model, BF16/MXFP4 weights as the model catalog declares.

The slot relaxation (``sieveopt.periodic_bounds.slot_bounds``, solved over the modes by
``solvers.cpsat_periodic.slot_bound_ns``) adds to the load cuts every slot's sync-to-sync chain
(busiest GPU/PIM of *each* slot), the per-micro-batch cycle and the two-micro-batch overlap on
each GPU. Bounds are on the superperiod Lambda; divide by L for the period.

    .venv/bin/python benchmarks/slot_bound.py --time-limit 10
    .venv/bin/python benchmarks/slot_bound.py --configs gpt-oss-120b:4 --batches 32 --window-layers 1
"""

from __future__ import annotations

import argparse
import sys
import time

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_configs, configs

from sieveopt.execution_model import make_execution_model
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.overlap import sample_problem
from sieveopt.periodic_bounds import slot_bounds
from sieveopt.solvers.cpsat_periodic import load_bound_ns, slot_bound_ns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap)
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--microbatches", type=int, default=2)
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds per relaxation")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    print("| config | B | L | tasks | load bound ns | slot bound ns | status | +% | structure s | relaxation s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, gpus in configs(args.configs):
        model, system = load_model(name), load_system(SYSTEM, gpus)
        cost = make_cost_model("roofline", system, model)
        for b in map(int, args.batches.split(",")):
            ex = make_execution_model("microbatch", args.microbatches, window_layers=args.window_layers,
                                      batch=b, num_gpus=gpus)
            prob = sample_problem(model, system, b, ex, 0, cost)
            load, _, modes = load_bound_ns(prob, time_limit_s=args.time_limit, workers=args.workers)
            t0 = time.perf_counter()
            slot_bounds(prob)
            t1 = time.perf_counter()
            bound, info = slot_bound_ns(prob, time_limit_s=args.time_limit, workers=args.workers, hint_modes=modes)
            print(f"| {name} x{gpus} | {b} | {args.window_layers} | {len(prob.dag.tasks)} | {load} | {bound} | "
                  f"{info['status']} | {100 * (bound / load - 1):+.2f} | {t1 - t0:.1f} | {info['wall_s']:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
