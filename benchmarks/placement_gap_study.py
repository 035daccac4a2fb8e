"""The exact placement optimiser's gap on the headline window: bounds, annealing, window length, planted optimum.

Window: DeepSeek-V3 on 8 x sieve-b200-hbm3e-pim, variability 0.1 (seed 0), B = 256, the first
32 steps of the seed-0 trace (what ``sieveopt place --model deepseek-v3 --gpus 8 --variability
0.1`` profiles), surrogate = best-unit serial work (roofline, FP8 experts). Prints:

* bounds: the LP relaxation of the whole model (``lp_bound``), the per-step LP mean;
* the annealing from round-robin (``--iters`` steps, ``--seeds`` seeds);
* window length: annealing vs the LP bound of the first T steps, T = 1, 2, 4, 8, 16;
* planted: the window's cost vectors at GPU 0's speed on all GPUs plus 3 filler items per GPU
  built so that a random placement balances every step exactly (with identical GPUs the step
  total is fixed, so that placement is optimal); the annealing's excess over it.

    python benchmarks/placement_gap_study.py [--iters 5000000] [--seeds 2]

Cost: ~1 min per 5 M annealing steps on a loaded 2-core VM; the full default run ~10 min.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sieveopt.models.catalog import load_model, load_system
from sieveopt.placement.anneal import anneal
from sieveopt.placement.core import slots_per_gpu
from sieveopt.placement.evaluate import drifting_trace
from sieveopt.placement.exact import objective
from sieveopt.placement.lp_bound import lp_bound
from sieveopt.placement.surrogate import Surrogate
from sieveopt.variability import variability_spec, with_variability


def _lp(cost: np.ndarray, cap: int) -> float:
    return lp_bound(np.rint(cost).astype(np.int64), np.arange(cost.shape[1]), {}, cap, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=5e6, help="annealing steps per run")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    iters = int(args.iters)
    model = load_model("deepseek-v3")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 8), variability_spec(0.1, seed=0))
    cap = slots_per_gpu(model, system)
    lids = sorted(int(x) for x in np.random.default_rng(0).choice(model.num_moe_layers, 1, replace=False))
    counts = drifting_trace(model, 256, 33, 0, lids).counts()[:32, 0, :]
    cost = Surrogate(model, system, 256).item_costs(counts)              # [32, 256, 8] ns
    E, G = cost.shape[1], cost.shape[2]
    rr = np.arange(E) % G
    none = np.full(E, -1)

    t0 = time.perf_counter()
    lp = _lp(cost, cap)
    print(f"LP relaxation bound: {lp / 1e3:.2f} us ({time.perf_counter() - t0:.1f} s)")
    per_step = np.mean([_lp(cost[t:t + 1], cap) for t in range(cost.shape[0])])
    print(f"per-step LP mean:    {per_step / 1e3:.2f} us")
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        _, v, _ = anneal(cost, rr, cap, none, iters=iters, seed=seed)
        print(f"annealing seed {seed}: {v / 1e3:.2f} us, gap to the LP {100 * (v - lp) / v:.2f} % "
              f"({time.perf_counter() - t0:.1f} s)")

    print("window length T: annealing excess over the LP bound of the first T steps")
    for T in (1, 2, 4, 8, 16):
        c = np.ascontiguousarray(cost[:T])
        _, v, _ = anneal(c, rr, cap, none, iters=max(1, iters * 16 // (5 * T)), seed=0)
        print(f"  T={T:2d}: {100 * (v / _lp(c, cap) - 1):.2f} %")

    rng = np.random.default_rng(1)
    base = cost[:, :, 0]
    plant = rng.permutation(E) % G
    L = np.stack([base[:, plant == g].sum(axis=1) for g in range(G)], axis=1)
    target = L.max(axis=1) + 500.0
    fill, fill_gpu = [], []
    for g in range(G):
        w = rng.dirichlet(np.ones(3), size=base.shape[0])
        for k in range(3):
            fill.append((target - L[:, g]) * w[:, k])
            fill_gpu.append(g)
    cp = np.concatenate([base, np.stack(fill, axis=1)], axis=1)
    cp = np.ascontiguousarray(np.repeat(cp[:, :, None], G, axis=2))
    n = cp.shape[1]
    opt = objective(cp, np.r_[plant, fill_gpu])
    _, v, _ = anneal(cp, np.arange(n) % G, int(np.ceil(n / G)) + 8, np.full(n, -1), iters=iters, seed=0)
    print(f"planted: optimum {opt / 1e3:.2f} us, annealing {v / 1e3:.2f} us (+{100 * (v / opt - 1):.2f} %)")


if __name__ == "__main__":
    main()
