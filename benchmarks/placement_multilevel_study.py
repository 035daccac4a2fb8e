"""Multilevel coarsening (sieveopt.placement.multilevel) against the annealing: planted instance and headline window.

Planted instance: ``placement_gap_study.planted_instance`` of the headline window (280 items, 8
identical GPUs, 43 slots; its planted placement is optimal, so excess over it is search error).
Per seed: the multilevel construction (its value after each level), the annealing (``--iters``
steps, default schedule, seed s) from it, and the annealing from round-robin given the same
total time (steps scaled by the measured times); also the annealing from round-robin given the
construction's time only (construction against annealing on equal time), the deviation norms by
level against random pairs, and one V-cycle on the annealed incumbent (cluster moves). Headline
window (singles only: the optimiser's default never uses a replica there): the construction +
annealing + polish against the annealing from GEM + polish on equal time.

    python benchmarks/placement_multilevel_study.py [--iters 1000000] [--seeds 2] [--first-seed 0]
        [--skip-planted] [--skip-headline]

Execution model: the overlap surrogate (a GPU's expert phase, GPU and PIM overlapped, roofline,
FP8 experts of DeepSeek-V3, 8 x sieve-b200-hbm3e-pim, variability 0.1 seed 0), no DAG.
Cost: ~4 min on a loaded 2-core VM.
"""

from __future__ import annotations

import argparse

import numpy as np
from _args import anneal_polish, excess_pct, placement_headline_window, timed
from placement_gap_study import planted_instance

from sieveopt.placement.anneal import anneal
from sieveopt.placement.exact import objective
from sieveopt.placement.multilevel import deviation_vectors, hierarchy, multilevel, vcycle
from sieveopt.placement.policies import PlacementProblem, gem
from sieveopt.placement.surrogate import Surrogate

HISTORY, STEPS = 32, 200


def norms(cp: np.ndarray, G: int) -> None:
    """Mean deviation norm of the tree's super-items per coarsening level (seed 0) against random
    pairs of the same items."""
    dev = deviation_vectors(cp)
    parents, tree = hierarchy(dev, G, 0)
    rng = np.random.default_rng(0)
    r = dev[tree]
    rnd = [np.linalg.norm(r, axis=1).mean()]
    matched = list(rnd)
    size = np.ones(dev.shape[0], dtype=np.int64)
    for lvl, par in enumerate(parents, start=1):
        k = int(par.max()) + 1
        nd = np.zeros((k, dev.shape[1]))
        np.add.at(nd, par, dev)
        dev, size = nd, np.bincount(par, weights=size, minlength=k).astype(np.int64)
        matched.append(np.linalg.norm(dev[size == 2**lvl], axis=1).mean())
        r = r[rng.permutation(r.shape[0])].reshape(-1, 2, r.shape[1]).sum(axis=1)
        rnd.append(np.linalg.norm(r, axis=1).mean())
    print("  deviation norm (us) of the tree's super-items by level: matched "
          f"{' / '.join(f'{v / 1e3:.1f}' for v in matched)}; random pairs {' / '.join(f'{v / 1e3:.1f}' for v in rnd)}")


def planted(cost: np.ndarray, iters: int, seeds: range) -> None:
    cp, plant, cap = planted_instance(cost)
    n, G = cp.shape[1], cp.shape[2]
    none = np.full(n, -1)
    opt = objective(cp, plant)
    rr = np.arange(n) % G

    pct = excess_pct(opt)

    print(f"planted: {n} items, {G} GPUs, {cap} slots; planted placement {opt / 1e3:.3f} us")
    norms(cp, G)
    inc = None
    for s in seeds:
        (a, st), tm = timed(multilevel, cp, cap, seed=s)
        (_, va, _), ta = timed(anneal, cp, a, cap, none, iters=iters, seed=s)
        print(f"  seed {s}: levels {st['levels']}; construction {' -> '.join(pct(v) for v in st['objective_ns'])} "
              f"({tm:.1f} s); + annealing {iters} steps {pct(va)} ({tm + ta:.1f} s)")
        eq = int(iters * (tm + ta) / ta)
        (b, vb, _), tb = timed(anneal, cp, rr, cap, none, iters=eq, seed=s)
        print(f"          annealing from round-robin, same total time ({eq} steps): {pct(vb)} ({tb:.1f} s)")
        short = int(iters * tm / ta)
        (_, vs, _), ts = timed(anneal, cp, rr, cap, none, iters=short, seed=s)
        print(f"          annealing from round-robin, the construction's time ({short} steps): {pct(vs)} ({ts:.1f} s)")
        if inc is None:
            inc = b
    (c, st), tv = timed(vcycle, cp, inc, cap, levels=3, seed=0)
    print(f"  V-cycle (3 levels, clusters in each GPU) on the seed-{seeds[0]} annealed incumbent "
          f"{pct(objective(cp, inc))}: levels {st['levels']}, {' -> '.join(pct(v) for v in st['objective_ns'])} "
          f"({tv:.1f} s)")


def headline(iters: int, seeds: range) -> None:
    model, system, cap, counts = placement_headline_window(HISTORY, STEPS)
    L = counts[:HISTORY].astype(np.int64)
    sur = Surrogate(model, system, 256)
    cost = sur.level_costs(L)                                         # [T, E, G, K], singles
    T, E, G, _ = cost.shape
    prob = PlacementProblem(E, G, cap, 0, sur)
    g = gem(L.astype(float), prob)
    start = np.empty(E, dtype=np.int64)
    start[g.slots] = g.slot_gpu
    none = np.full(E, -1)
    pair = (L, sur.level_ns)
    print(f"headline window: {T} steps, {E} experts, {G} GPUs, {cap} slots; GEM {objective(cost, start) / 1e3:.3f} us")
    for s in seeds:
        (a, st), tm = timed(multilevel, cost, cap, seed=s)
        (a, _, va), tp = timed(anneal_polish, pair, cost, a, cap, none, iters, s)
        t_ml = tm + tp
        print(f"  seed {s}: construction {' -> '.join(f'{v / 1e3:.3f}' for v in st['objective_ns'])} us ({tm:.1f} s); "
              f"+ annealing {iters} steps + polish {va / 1e3:.3f} us ({t_ml:.1f} s)")
        eq = int(iters * t_ml / (t_ml - tm))
        (_, _, vb), tb = timed(anneal_polish, pair, cost, start, cap, none, eq, s)
        print(f"          annealing from GEM {eq} steps + polish (same time): {vb / 1e3:.3f} us ({tb:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=1e6, help="annealing steps after the construction (planted)")
    ap.add_argument("--headline-iters", type=float, default=2e6, help="the same on the headline window")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per row")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--skip-planted", action="store_true")
    ap.add_argument("--skip-headline", action="store_true")
    args = ap.parse_args()
    model, system, _, counts = placement_headline_window(HISTORY, STEPS)
    cost = Surrogate(model, system, 256).level_costs(counts[:HISTORY])
    if not args.skip_planted:
        planted(cost, int(args.iters), range(args.first_seed, args.first_seed + args.seeds))
    if not args.skip_headline:
        headline(int(args.headline_iters), range(args.first_seed, args.first_seed + args.seeds))


if __name__ == "__main__":
    main()
