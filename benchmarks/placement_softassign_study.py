"""Softassign / deterministic annealing (sieveopt.placement.softassign) against the annealing.

Planted instance (``placement_gap_study.planted_instance`` of the headline window: 280 items, 8
identical GPUs, 43 slots; the planted placement is optimal, so the excess over it is search
error): per seed s, the deterministic annealing alone (``--planted-iters`` iterations, dense
costs), the same followed by the annealing (2 M steps, seed s; the full default schedule), and
the annealing from round-robin with ``--rr-iters`` steps (about the same total time).
Headline window (items: singles + the 32 most loaded experts' replica pairs, as ``solve_exact``;
the deterministic annealing places the 256 single copies, replicas unused): per seed s, the
deterministic annealing alone (``--iters`` iterations, token-table costs), the same followed by
the annealing (2 M steps, seed s) + polish, and the optimiser's stage 1 from GEM (annealing +
polish) with ``--gem-iters`` steps (about the same total time).

    python benchmarks/placement_softassign_study.py [--seeds 2] [--iters 6000] [--planted-iters 600]
        [--rr-iters 2600000] [--gem-iters 5000000] [--skip-planted] [--skip-headline]

Execution model: the overlap surrogate (a GPU's expert phase, GPU and PIM overlapped, roofline,
fp8 weights of DeepSeek-V3), no DAG. Cost: ~75 s per seed on the planted instance and ~45 s per
seed on the headline window (loaded 2-core VM).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _args import anneal_polish, excess_pct, placement_headline_items, placement_headline_window
from placement_gap_study import planted_instance

from sieveopt.placement.anneal import anneal
from sieveopt.placement.exact import objective
from sieveopt.placement.softassign import softassign
from sieveopt.placement.surrogate import Surrogate

HISTORY, STEPS = 32, 200
ANNEAL_ITERS = 2_000_000


def planted(cost: np.ndarray, seeds: int, da_iters: int, rr_iters: int) -> None:
    cp, plant, cap = planted_instance(cost)
    n, G = cp.shape[1], cp.shape[2]
    opt = objective(cp, plant)
    none = np.full(n, -1)

    pct = excess_pct(opt)

    print(f"planted: {n} items, {G} GPUs, {cap} slots; planted placement {opt / 1e3:.3f} us")
    for s in range(seeds):
        t0 = time.perf_counter()
        a, st = softassign(cp, cap, seed=s, iters=da_iters)
        t1 = time.perf_counter()
        _, vb, _ = anneal(cp, a, cap, none, iters=ANNEAL_ITERS, seed=s)
        t2 = time.perf_counter()
        _, vr, _ = anneal(cp, np.arange(n) % G, cap, none, iters=rr_iters, seed=s)
        t3 = time.perf_counter()
        print(f"  seed {s}: DA {da_iters} it {pct(objective(cp, a))} ({t1 - t0:.1f} s, integrality "
              f"{st['integrality']:.3f}); + annealing {ANNEAL_ITERS} {pct(vb)} ({t2 - t0:.1f} s); "
              f"annealing {rr_iters} from round-robin {pct(vr)} ({t3 - t2:.1f} s)", flush=True)


def headline(seeds: int, da_iters: int, gem_iters: int) -> None:
    h = placement_headline_items(HISTORY, STEPS)
    L, cap, table, cost, start, twin, single = h.L, h.cap, h.table, h.cost, h.start, h.twin, h.single
    T, E = L.shape
    G = h.prob.num_gpus
    n = h.it.expert.size
    print(f"headline window: {T} steps, {n} items, {G} GPUs, {cap} slots; GEM {objective(cost, start) / 1e3:.3f} us")
    for s in range(seeds):
        t0 = time.perf_counter()
        a, _ = softassign(table, cap, active=single, seed=s, iters=da_iters)
        t1 = time.perf_counter()
        _, _, vb = anneal_polish(table, cost, a, cap, twin, ANNEAL_ITERS, s)
        t2 = time.perf_counter()
        _, _, vm = anneal_polish(table, cost, start, cap, twin, gem_iters, s)
        t3 = time.perf_counter()
        print(f"  seed {s}: DA {da_iters} it {objective(cost, a) / 1e3:.3f} us ({t1 - t0:.1f} s); + annealing "
              f"{ANNEAL_ITERS} + polish {vb / 1e3:.3f} us ({t2 - t0:.1f} s); GEM + annealing {gem_iters} + polish "
              f"{vm / 1e3:.3f} us ({t3 - t2:.1f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=6000, help="DA iterations on the headline window")
    ap.add_argument("--planted-iters", type=int, default=600, help="DA iterations on the planted instance")
    ap.add_argument("--rr-iters", type=float, default=2.6e6, help="annealing steps from round-robin (planted)")
    ap.add_argument("--gem-iters", type=float, default=5e6, help="annealing steps from GEM (headline)")
    ap.add_argument("--skip-planted", action="store_true")
    ap.add_argument("--skip-headline", action="store_true")
    args = ap.parse_args()
    if not args.skip_planted:
        model, system, _, counts = placement_headline_window(HISTORY, STEPS)
        cost = Surrogate(model, system, 256).level_costs(counts[:HISTORY])
        planted(cost, args.seeds, args.planted_iters, int(args.rr_iters))
    if not args.skip_headline:
        headline(args.seeds, args.iters, int(args.gem_iters))


if __name__ == "__main__":
    main()
