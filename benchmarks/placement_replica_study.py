"""Replica choice and path relinking on the exact placement optimiser's headline window (round 6).

Window: DeepSeek-V3 on 8 x sieve-b200-hbm3e-pim, variability 0.1 (seed 0), B = 256, the first
32 steps of the seed-0 trace of ``sieveopt place --model deepseek-v3 --gpus 8 --steps 200
--variability 0.1`` (what its exact optimiser decides on), overlap surrogate, 39 slots per GPU.
Prints:

* annealing (2 M steps, seeds 0 and 1, from the best hint as the optimiser does, + polish) with
  replica candidates ``loaded`` (the R = 32 most loaded; split/merge moves off = today's
  optimiser, and on), ``cheap`` (the 32 cheapest splits, :func:`split_excess_ns`) and ``all``
  (every expert, budget 32 and 56 = HBM's 39 x 8 - 256): window objective, replicas used, and
  the surrogate's mean / p99 over the 200 evaluated steps that follow the window;
* the replica-free bound (per-step LP of one copy per expert, :func:`replica_free_bound`: valid
  whichever experts are replicated) and ``rho``;
* ``--relink``: path relinking between the two ``loaded`` optima (greedy walk from the better to
  the other, annealing at low temperature from 5 points on the path);
* ``--counting``: a first-moment (random-energy) estimate of the best achievable per-step GPU
  deviation: the covariance of the 32-step GPU-deviation vectors of 1 500 random placements
  (32 experts per GPU), and the ``eps`` at which ``#placements x P(every step's 7 GPU
  contrasts within +-eps)`` (Gaussian density, per eigen-direction) is 1. A heuristic, not a
  bound: for random number partitioning this estimate of the optimum is exact (Mertens, PRL
  81(20), 1998; Borgs, Chayes, Pittel, Random Struct. Alg. 19(3-4), 2001), for this vector
  version with the overlap levels it is an assumption. Then, for windows of T = 4, 8, 16, 32
  steps, that estimate against the dispersion the annealing leaves (straggler - GPU mean).

    python benchmarks/placement_replica_study.py [--iters 2e6] [--relink] [--counting]

Cost: ~4 min on the loaded 2-core VM (+1 min with --relink, +2 min with --counting).
"""

from __future__ import annotations

import argparse
import time
from math import lgamma, log

import numpy as np
from _args import placement_headline_window

from sieveopt.placement.anneal import anneal, dense
from sieveopt.placement.core import Placement
from sieveopt.placement.exact import _assign_from, _items, _placement, objective, replica_candidates
from sieveopt.placement.local_search import polish
from sieveopt.placement.lp_bound import replica_dominance, replica_free_bound
from sieveopt.placement.policies import PlacementProblem, eplb, gem
from sieveopt.placement.surrogate import Surrogate

HISTORY, STEPS, R = 32, 200, 32


def relink(cost: np.ndarray, a: np.ndarray, b: np.ndarray, cap: int) -> list[np.ndarray]:
    """Greedy path from ``a`` to ``b`` (single copies only): each step moves the item whose move to
    its GPU in ``b`` gives the lowest objective (a swap of two differing items when capacity blocks)."""
    G = cost.shape[2]
    cur, path = a.copy(), []
    Lc = np.stack([cost[:, cur == g, g].sum(axis=1) for g in range(G)], axis=1)      # [T, G, K]
    while (cur != b).any():
        D = np.flatnonzero(cur != b)
        cnt = np.bincount(cur, minlength=G)
        best, bi = np.inf, -1
        for i in D:
            g, h = cur[i], b[i]
            if cnt[h] < cap:
                Ln = Lc.copy()
                Ln[:, g] -= cost[:, i, g]
                Ln[:, h] += cost[:, i, h]
                v = Ln.max(axis=(1, 2)).mean()
                if v < best:
                    best, bi = v, i
        if bi < 0:
            i = D[0]
            g, h = cur[i], b[i]
            j = next(j for j in D if cur[j] == h and b[j] != h)
            Lc[:, g] += cost[:, j, g] - cost[:, i, g]
            Lc[:, h] += cost[:, i, h] - cost[:, j, h]
            cur[i], cur[j] = h, g
        else:
            g, h = cur[bi], b[bi]
            Lc[:, g] -= cost[:, bi, g]
            Lc[:, h] += cost[:, bi, h]
            cur[bi] = h
        path.append(cur.copy())
    return path


def counting(sur: Surrogate, L: np.ndarray, cap: int, samples: int = 1500) -> float:
    """First-moment estimate of the smallest eps with every step's GPU deviations in +-eps (ns)."""
    T, E = L.shape
    G = sur.num_gpus
    rng = np.random.default_rng(0)
    dev = []
    for _ in range(samples):
        p = Placement(np.arange(E), rng.permutation(np.arange(E) % G), E, G, cap)
        w = sur.gpu_loads(p, L)                                                  # [T, G]
        dev.append(w - w.mean(axis=1, keepdims=True))
    d = np.array(dev)
    cov = np.cov(d.transpose(0, 2, 1).reshape(-1, T).T) * G / (G - 1)          # one GPU vs the mean
    sig = np.sqrt(np.maximum(np.linalg.eigvalsh(cov), 1e-9))
    bits = (lgamma(E + 1) - G * lgamma(E // G + 1)) / log(2)                     # placements, E/G per GPU

    def log2_count(eps: float) -> float:
        return bits + (G - 1) * np.log2(np.minimum(1.0, 2 * eps / (sig * np.sqrt(2 * np.pi)))).sum()

    lo, hi = 1e-3, 1e6
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if log2_count(mid) < 0 else (lo, mid)
    print(f"counting: random placements' per-step GPU deviation std {np.sqrt(np.diag(cov)).mean() / 1e3:.2f} us "
          f"(eigen-std {sig.max() / 1e3:.1f} .. {sig.min() / 1e3:.2f} us), straggler excess {d.max(axis=2).mean() / 1e3:.2f} us; "
          f"log2 placements {bits:.0f}; first-moment eps {mid / 1e3:.3f} us; "
          f"log2 count at eps 0.5 / 0.78 / 1.5 us: {log2_count(500):.0f} / {log2_count(780):.0f} / {log2_count(1500):.0f}")
    return float(mid)


def calibrate(sur: Surrogate, L: np.ndarray, prob: PlacementProblem, iters: int) -> None:
    """Window length T = 4, 8, 16, 32: the first-moment eps against the per-step dispersion the
    annealing (from GEM, seed 0) leaves: straggler - GPU mean and the largest |deviation|."""
    E, G, cap = prob.num_experts, prob.num_gpus, prob.capacity
    for T in (4, 8, 16, 32):
        w = L[:T]
        eps = counting(sur, w, cap, samples=800)
        g = gem(w.astype(float), prob)
        start = np.empty(E, dtype=np.int64)
        start[g.slots] = g.slot_gpu
        a, v, _ = anneal((w, sur.level_ns), start, cap, np.full(E, -1), iters=iters, seed=0)
        d = sur.gpu_loads(Placement(np.arange(E), a, E, G, cap), w)
        d -= d.mean(axis=1, keepdims=True)
        print(f"  T={T:2d}: first-moment eps {eps / 1e3:.3f} us; annealed {v / 1e3:.3f} us, straggler - GPU mean "
              f"{d.max(axis=1).mean() / 1e3:.3f} us, largest |deviation| {np.abs(d).max(axis=1).mean() / 1e3:.3f} us",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=2e6, help="annealing steps per run")
    ap.add_argument("--relink", action="store_true", help="also run path relinking")
    ap.add_argument("--counting", action="store_true", help="also the first-moment estimate")
    args = ap.parse_args()
    iters = int(args.iters)
    model, system, cap, counts = placement_headline_window(HISTORY, STEPS)
    L, future = counts[:HISTORY].astype(np.int64), counts[HISTORY:]
    sur = Surrogate(model, system, 256)
    tab = sur.level_ns
    T, E = L.shape
    G = system.num_gpus
    prob = PlacementProblem(E, G, cap, R, sur)
    hints = [gem(L.astype(float), prob), eplb(L.astype(float), prob)]
    print(f"window: {T} steps, {E} experts, {G} GPUs, {cap} slots per GPU; annealing {iters} steps + polish")
    print(f"{'candidates':>10} {'budget':>6} {'split':>5} {'seed':>4} {'window us':>9} {'replicas':>8} "
          f"{'200-step mean':>13} {'p99 us':>7} {'s':>5}")
    optima = []
    for choice, budget, split in (("loaded", R, False), ("loaded", R, True), ("cheap", R, True),
                                  ("all", R, True), ("all", 56, True)):
        cand = np.arange(E) if choice == "all" else replica_candidates(L, tab, R, choice)
        it = _items(L, cand)
        n = it.expert.size
        cost = dense((it.tokens, tab))
        twin = np.full(n, -1, dtype=np.int64)
        for x, y in it.pair.values():
            twin[x], twin[y] = y, x
        prs = np.array([(it.single[e], *it.pair[e]) for e in sorted(it.pair)]) if split else None
        starts = [a for a in (_assign_from(h, it) for h in hints) if a is not None]
        start = min(starts, key=lambda a: objective(cost, a))
        for seed in (0, 1):
            t0 = time.perf_counter()
            a, _, _ = anneal((it.tokens, tab), start, cap, twin, iters=iters, seed=seed, pairs=prs, budget=budget)
            a, v, _ = polish(cost, a, cap, twin, time_limit_s=10.0)
            p = _placement(it, a, E, G, cap, "exact")
            st = sur.step_times(p, future)
            print(f"{choice:>10} {budget:>6} {split!s:>5} {seed:>4} {v / 1e3:9.3f} {p.num_slots - E:8d} "
                  f"{st.mean() / 1e3:13.3f} {np.percentile(st, 99) / 1e3:7.2f} {time.perf_counter() - t0:5.1f}",
                  flush=True)
            if choice == "loaded" and not split:
                optima.append((v, a[:E]))
    c = np.rint(sur.level_costs(L)).astype(np.int64)
    t0 = time.perf_counter()
    free = replica_free_bound(c, np.arange(E), cap, tab, int(L.max()))
    print(f"replica-free bound (per-step LP, one copy per expert, x min(1, rho)): {free / 1e3:.3f} us; "
          f"rho {replica_dominance(tab, int(L.max())):.4f} (n <= {int(L.max())}), "
          f"{replica_dominance(tab, 200):.4f} (n <= 200), {replica_dominance(tab, 256):.4f} (n <= 256); "
          f"{time.perf_counter() - t0:.1f} s")
    if args.counting:
        counting(sur, L, cap)
        calibrate(sur, L, prob, iters)
    if args.relink:
        optima.sort(key=lambda o: o[0])
        (va, a), (vb, b) = optima
        cost = dense((L, tab))
        path = relink(cost, a, b, cap)
        vals = [objective(cost, p) for p in path]
        print(f"path relinking: {va / 1e3:.3f} -> {vb / 1e3:.3f} us, {len(path)} steps, path max "
              f"{max(vals) / 1e3:.2f} us")
        none = np.full(E, -1)
        for q in (len(path) * f // 10 for f in (2, 4, 5, 6, 8)):
            r, _, _ = anneal((L, tab), path[q], cap, none, iters=iters // 4, seed=q, temp=(1e-4, 2e-6),
                             beta=(5e-3, 1.3e-3), phases=10)
            r, v, _ = polish(cost, r, cap, none, time_limit_s=5.0)
            print(f"  point {q}/{len(path)} ({vals[q] / 1e3:.2f} us) annealed (0.5 M steps, T0 1e-4): {v / 1e3:.3f} us",
                  flush=True)


if __name__ == "__main__":
    main()
