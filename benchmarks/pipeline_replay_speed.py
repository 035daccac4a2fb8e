"""Replay time of a steady-state micro-batch pipeline (issue 11 target: <= 10 s on one core).

Qwen3.5-397B-A17B on 8 GPUs, B = 256, M = 2 micro-batches, a cyclic window of 2 layers
(seed 0), the policy's periodic schedule unrolled into ``--iterations`` iterations and replayed
on the DRAM/PIM + NVLink simulators in a fresh process (cold DRAM caches). Run it pinned:

    taskset -c 1 .venv/bin/python benchmarks/pipeline_replay_speed.py --iterations 4
"""

from __future__ import annotations

import argparse
import json
import sys

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_paper_instance

from sieveopt.execution_model import make_execution_model
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.overlap import sample_problem, solve_overlap
from sieveopt.validation.replay_periodic import replay_periodic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_paper_instance(ap)
    ap.add_argument("--microbatches", type=int, default=2)
    ap.add_argument("--policy", default="sieve")
    ap.add_argument("--iterations", type=int, default=4)
    args = ap.parse_args(argv)
    model = load_model(args.model)
    system = load_system(SYSTEM, args.gpus)
    cost = make_cost_model("roofline", system, model)
    ex = make_execution_model("microbatch", args.microbatches, batch=args.batch, num_gpus=args.gpus)
    prob = sample_problem(model, system, args.batch, ex, 0, cost)
    ps = solve_overlap(prob, args.policy).schedule
    r = replay_periodic(prob, ps, iterations=args.iterations)
    r.pop("kind_error")
    print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
