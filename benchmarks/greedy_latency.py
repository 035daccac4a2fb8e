"""Sieve greedy decision latency benchmark (one GPU's plan per call, one CPU core).

The measurement lives in :mod:`sieveopt.solvers.sieve_latency` (also ``sieveopt bench latency``).

    python benchmarks/greedy_latency.py --model qwen3.5-397b-a17b --gpus 8 --batch 256
    python benchmarks/greedy_latency.py --model qwen3-30b-a3b --gpus 1 --batch 64 --json
    python benchmarks/greedy_latency.py --suite   # every configuration of benchmarks/results/greedy.md
"""

from __future__ import annotations

import argparse
import json
import sys

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import add_paper_instance, add_timing

from sieveopt.solvers.sieve_latency import DEFAULT_SYSTEM, render, run

#: (model, GPUs, batches) of the latency targets (DESIGN.md §8; the issue's targets).
SUITE = [("qwen3.5-397b-a17b", 8, (256,)), ("qwen3-30b-a3b", 1, (32, 64, 128, 256)),
         ("gpt-oss-120b", 4, (32, 64, 128, 256))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_paper_instance(p)
    p.add_argument("--system", default=DEFAULT_SYSTEM)
    p.add_argument("--layers", type=int, default=100, help="distinct sampled layers (x GPUs = distinct plans)")
    add_timing(p)
    p.add_argument("--ref-calls", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--suite", action="store_true", help="run every target configuration")
    a = p.parse_args(argv)
    configs = [(m, g, b) for m, g, bs in SUITE for b in bs] if a.suite else [(a.model, a.gpus, a.batch)]
    results = []
    for model, gpus, batch in configs:
        d = run(model, a.system, gpus, batch, layers=a.layers, calls=a.calls, warmup=a.warmup,
                ref_calls=a.ref_calls, seed=a.seed, pin_cpu=a.pin_cpu)
        results.append(d)
        if not a.json:
            print(render(d), flush=True)
    if a.json:
        print(json.dumps(results if a.suite else results[0], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
