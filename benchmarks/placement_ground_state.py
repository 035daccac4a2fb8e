"""Where the exact placement optimum probably lies: REM estimate on the headline window.

Counts placements by the random-energy model (``sieveopt.placement.ground_state``) on the
32-step DeepSeek-V3 x8 window of ``sieveopt place --model deepseek-v3 --gpus 8 --steps 200
--variability 0.1`` (the exact optimiser's window; overlap surrogate, roofline cost model,
FP8 experts; each step at its dominant level, GPUs at the mean speed, no replicas), per window
length, then checks the estimate against brute force on small instances cut from the same
window (random experts and steps; labelled balanced placements enumerated).

    python benchmarks/placement_ground_state.py [--reps 6] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
from math import lgamma

import numpy as np
from _args import placement_headline_items

from sieveopt.placement.ground_state import dominant_level_costs, rem_excess_ns

HISTORY = 32


def window_costs() -> np.ndarray:
    """``[T, E, G, K]`` surrogate cost of every expert's single item on the headline window."""
    h = placement_headline_items(HISTORY, 200)
    return h.cost[:, h.it.single]


def brute_force_excess(x: np.ndarray, gpus: int) -> float:
    """Least mean straggler excess over all balanced placements of ``x[T, n]`` on 2 or 3 GPUs."""
    n = x.shape[1]
    tot = x.sum(axis=1)
    m = n // gpus
    best = np.inf
    if gpus == 2:
        idx = np.array(list(itertools.combinations(range(n), m)))
        for chunk in np.array_split(idx, max(1, len(idx) // 20000)):
            first = x[:, chunk].sum(axis=2)
            v = (np.maximum(first, tot[:, None] - first) - tot[:, None] / 2).mean(axis=0)
            best = min(best, float(v.min()))
        return best
    for a in itertools.combinations(range(n), m):
        rest = [i for i in range(n) if i not in a]
        la = x[:, list(a)].sum(axis=1)
        for b in itertools.combinations(rest, m):
            lb = x[:, list(b)].sum(axis=1)
            best = min(best, float((np.maximum(np.maximum(la, lb), tot - la - lb) - tot / 3).mean()))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6, help="small instances per (shape, steps)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cost = window_costs()
    x, level_ns = dominant_level_costs(cost)
    T, E = x.shape
    G = cost.shape[2]
    print(f"headline window: {T} steps, {E} experts, {G} GPUs; balanced level (dominant level, mean "
          f"speed) {level_ns.mean() / 1e3:.3f} us")
    for balanced in (True, False):
        label = "balanced (E/G experts per GPU)" if balanced else "independent (counts vary)"
        row = ", ".join(f"T={t}: {rem_excess_ns(x[:t], G, balanced=balanced):.1f}" for t in (8, 16, 24, 32))
        print(f"REM excess ns, {label}: {row}")
    e32 = rem_excess_ns(x, G)
    print(f"REM ground state, 32 steps: {level_ns.mean() / 1e3 + e32 / 1e3:.3f} us "
          f"(+{100 * e32 / level_ns.mean():.2f} % over the balanced level)")
    rng = np.random.default_rng(args.seed)
    ratios_all = []
    for gpus, n in ((2, 20), (2, 16), (3, 12)):
        for steps in (4, 6, 8):
            ratios = []
            for _ in range(args.reps):
                xs = x[np.ix_(rng.choice(T, steps, replace=False), rng.choice(E, n, replace=False))]
                ratios.append(brute_force_excess(xs, gpus) / rem_excess_ns(xs, gpus))
            r = np.array(ratios)
            ratios_all.extend(ratios)
            print(f"small G={gpus} n={n} T={steps}: optimum / REM median {np.median(r):.2f} "
                  f"(min {r.min():.2f}, max {r.max():.2f})", flush=True)
    q = np.quantile(ratios_all, [0.1, 0.5, 0.9])
    print("optimum / REM over all small instances: p10 / median / p90 = " + " / ".join(f"{v:.2f}" for v in q))
    lo, mid, hi = (level_ns.mean() + e32 * v for v in q)
    print(f"headline optimum if that ratio carried over: {lo / 1e3:.3f} / {mid / 1e3:.3f} / {hi / 1e3:.3f} us")
    print(f"(log placements balanced {lgamma(E + 1) - G * lgamma(E // G + 1):.1f})")


if __name__ == "__main__":
    main()
