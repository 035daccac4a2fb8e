"""The exact placement optimiser's gap on the headline window: bounds, search, neighbourhoods, planted optimum.

Window: DeepSeek-V3 on 8 x sieve-b200-hbm3e-pim, variability 0.1 (seed 0), B = 256, the first
32 steps of the seed-0 trace of the headline run (``sieveopt place --model deepseek-v3 --gpus 8
--steps 200 --variability 0.1`` profiles these), one copy per expert (the LP bound is the same
with the 32 replica candidates), surrogate ``--surrogate`` (default: the overlap-aware one;
``serial`` is rounds 1-3's). Prints:

* the LP relaxation bound of the whole window (``lp_bound``, level rows as cuts from the
  annealed placement's maximal levels +-3) and the per-step LP mean;
* the annealing from GEM's placement (``--iters`` steps, ``--seeds`` seeds), as the optimiser
  runs it;
* pair neighbourhood: for every GPU pair, the LP relaxation of re-partitioning the two GPUs'
  items with the other six fixed (every level row): a proven upper bound on what any exact
  2-GPU re-partition (an LNS move) can gain at the annealed placement;
* window length: annealing vs the LP bound of the first T steps, T = 1, 4, 8, 16;
* planted: the window's cost vectors at GPU 0's speed on all GPUs plus 3 filler items per GPU,
  level-independent and built so that a random placement puts every GPU exactly on one target
  per step; the planted placement's excess over the LP bound of that instance and the
  annealing's excess over the planted placement (an upper bound on the annealing's search
  error there).

    python benchmarks/placement_gap_study.py [--iters 2000000] [--seeds 2] [--surrogate overlap]

Cost: ~5 min on a loaded 2-core VM (overlap surrogate).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from _args import placement_headline_window
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from sieveopt.placement.anneal import anneal
from sieveopt.placement.exact import level_loads, objective
from sieveopt.placement.lp_bound import lp_bound
from sieveopt.placement.policies import PlacementProblem, gem
from sieveopt.placement.surrogate import Surrogate

HISTORY, STEPS = 32, 200                     # the headline run's trace length


def _lp(c: np.ndarray, cap: int, ref: np.ndarray | None = None) -> float:
    """LP bound (integer costs), rows as cuts from ``ref``'s maximal levels +-3 (all when None)."""
    levels = None
    if ref is not None and c.shape[3] > 1:
        kmax = level_loads(c, ref).argmax(axis=2)
        levels = np.zeros((c.shape[0], c.shape[2], c.shape[3]), dtype=bool)
        tt, gg = np.indices(kmax.shape)
        for d in range(-3, 4):
            levels[tt, gg, np.clip(kmax + d, 0, c.shape[3] - 1)] = True
    return lp_bound(c, np.arange(c.shape[1]), {}, cap, 0, levels=levels)


def pair_slack(c: np.ndarray, a: np.ndarray, cap: int, pair: tuple[int, int]) -> float:
    """LP relaxation of re-placing the items of GPUs ``pair`` between them, the others fixed:
    minimise mean_t max(F_t, level loads of the two GPUs) (F_t: the other GPUs' max). Any exact
    re-partition of the pair is >= this value (a relaxation with every level row)."""
    T, n, G, K = c.shape
    V = level_loads(c, a).max(axis=2)
    rest = [g for g in range(G) if g not in pair]
    F = V[:, rest].max(axis=1)
    free = np.flatnonzero(np.isin(a, pair))
    m = free.size
    nx = 2 * m
    rows, cols, vals, rhs = [], [], [], []
    for q, g in enumerate(pair):
        rows.append(np.full(m, len(rhs)))
        cols.append(2 * np.arange(m) + q)
        vals.append(np.ones(m))
        rhs.append(cap)
        for t in range(T):
            for k in range(K):
                rows.append(np.full(m + 1, len(rhs)))
                cols.append(np.r_[2 * np.arange(m) + q, nx + t])
                vals.append(np.r_[c[t, free, g, k].astype(float), -1.0])
                rhs.append(0.0)
    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(len(rhs), nx + T)).tocsr()
    Aeq = coo_matrix((np.ones(nx), (np.repeat(np.arange(m), 2), np.arange(nx))), shape=(m, nx + T)).tocsr()
    res = linprog(np.r_[np.zeros(nx), np.full(T, 1.0 / T)], A_ub=A, b_ub=rhs, A_eq=Aeq, b_eq=np.ones(m),
                  bounds=[(0.0, 1.0)] * nx + [(float(f), None) for f in F], method="highs")
    return float(res.fun)


def planted_instance(cost: np.ndarray, seed: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """The planted instance of a window's level costs ``cost[T, E, G, K]``: the experts' costs at
    GPU 0's speed on every GPU plus 3 level-independent filler items per GPU that put a random
    placement exactly on one target per step (so that placement is optimal: identical GPUs, a
    fixed step total). Returns (dense costs ``[T, E + 3G, G, K]``, the planted assignment, the
    slots per GPU)."""
    T, E, G, K = cost.shape
    rng = np.random.default_rng(seed)
    base = cost[:, :, 0, :]                                          # GPU 0's costs on every GPU
    plant = rng.permutation(E) % G
    L = np.stack([base[:, plant == g].sum(axis=1) for g in range(G)], axis=1).max(axis=2)   # [T, G]
    target = L.max(axis=1) + 500.0
    fill, fill_gpu = [], []
    for g in range(G):                    # level-independent fillers: each GPU lands on target_t
        w = rng.dirichlet(np.ones(3), size=T)
        for k in range(3):
            fill.append(np.repeat(((target - L[:, g]) * w[:, k])[:, None], K, axis=1))
            fill_gpu.append(g)
    cp = np.concatenate([base, np.stack(fill, axis=1)], axis=1)
    cp = np.ascontiguousarray(np.repeat(cp[:, :, None, :], G, axis=2))
    return cp, np.r_[plant, fill_gpu], int(np.ceil(cp.shape[1] / G)) + 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=2e6, help="annealing steps per run")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--surrogate", default="overlap", choices=["overlap", "serial"])
    args = ap.parse_args()
    iters = int(args.iters)
    model, system, cap, counts = placement_headline_window(HISTORY, STEPS)
    counts = counts[:HISTORY]
    sur = Surrogate(model, system, 256, kind=args.surrogate)
    cost = sur.level_costs(counts)                                   # [32, 256, 8, K] ns
    c = np.rint(cost).astype(np.int64)
    T, E, G, K = cost.shape
    prob = PlacementProblem(E, G, cap, 0, sur)
    g = gem(counts.astype(float), prob)                              # one slot per expert
    start = np.empty(E, dtype=np.int64)
    start[g.slots] = g.slot_gpu
    none = np.full(E, -1)
    print(f"window: {T} steps, {E} experts, {G} GPUs, {cap} slots per GPU, {K} levels ({args.surrogate}); "
          f"GEM {objective(cost, start) / 1e3:.2f} us")

    best, best_v = start, np.inf
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        a, v, _ = anneal(cost, start, cap, none, iters=iters, seed=seed)
        print(f"annealing from GEM, seed {seed}: {v / 1e3:.2f} us ({time.perf_counter() - t0:.1f} s)")
        if v < best_v:
            best, best_v = a, v
    t0 = time.perf_counter()
    lp = _lp(c, cap, best)
    print(f"LP relaxation bound: {lp / 1e3:.2f} us ({time.perf_counter() - t0:.1f} s); "
          f"gap of the best annealed {100 * (best_v - lp) / best_v:.2f} %")
    per_step = np.mean([_lp(c[t:t + 1], cap, best) for t in range(T)])
    print(f"per-step LP mean:    {per_step / 1e3:.2f} us")

    cur = objective(c.astype(float), best)
    gains = [cur - pair_slack(c, best, cap, p) for p in itertools.combinations(range(G), 2)]
    print(f"pair neighbourhood: an exact 2-GPU re-partition gains at most {max(gains) / 1e3:.3f} us "
          f"({100 * max(gains) / cur:.3f} %; median {100 * np.median(gains) / cur:.3f} %) over "
          f"{len(gains)} pairs")

    print("window length T: annealing excess over the LP bound of the first T steps")
    for w in (1, 4, 8, 16):
        cw = np.ascontiguousarray(cost[:w])
        a, v, _ = anneal(cw, start, cap, none, iters=iters, seed=0)
        print(f"  T={w:2d}: {100 * (v / _lp(c[:w], cap, a) - 1):.2f} %")

    cp, planted, pcap = planted_instance(cost)
    n = cp.shape[1]
    opt = objective(cp, planted)
    plp = _lp(np.rint(cp).astype(np.int64), pcap, planted)
    t0 = time.perf_counter()
    _, v, _ = anneal(cp, np.arange(n) % G, pcap, np.full(n, -1), iters=iters, seed=0)
    print(f"planted: placement {opt / 1e3:.2f} us, {100 * (opt - plp) / opt:.2f} % above its LP bound "
          f"{plp / 1e3:.2f} us; annealing {v / 1e3:.2f} us (+{100 * (v / opt - 1):.2f} % over the planted "
          f"placement, {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
