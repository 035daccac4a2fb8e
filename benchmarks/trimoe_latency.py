"""Decision latency of the compiled TriMoE planner (one layer, one GPU), with twin parity.

Usage: ``python benchmarks/trimoe_latency.py [--layers 20] [--reps 50]``. For each catalog model
on ``trimoe-h100-xeon-ndp`` at batch 64 it samples layers (seed 1), times ``trimoe_plan`` (the
numba twin, after warm-up) ``reps`` times per layer and prints median/p99 in us, and checks that
the reference planner makes the same decisions.
"""

from __future__ import annotations

import argparse

import numpy as np

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers.trimoe import plan, trimoe_inputs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    system = load_system("trimoe-h100-xeon-ndp")
    print("model | experts/layer | median us | p99 us | twins identical")
    for name in ("deepseek-v2", "qwen3-235b-a22b", "glm-4.5-air"):
        model = load_model(name)
        times, same, sizes = [], True, []
        for inst in sample_layers(model, system, a.batch, a.layers, 1):
            dag, _ = build_dag(inst, "roofline")
            inp = trimoe_inputs(dag, inst)[0]
            sizes.append(len(inp.tokens))
            plan(inp)
            times += [plan(inp)[3] for _ in range(a.reps)]
            u, c, m, _ = plan(inp, "ref")
            nu, nc, nm, _ = plan(inp)
            same &= bool((u == nu).all() and (c == nc).all() and m == nm)
        print(f"{name} | {np.median(sizes):.0f} | {np.median(times) / 1e3:.2f} | "
              f"{np.percentile(times, 99) / 1e3:.2f} | {same}")


if __name__ == "__main__":
    main()
