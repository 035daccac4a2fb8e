"""Cyclic-exchange VLSN (sieveopt.placement.vlsn) against the annealing: planted instance and headline window.

Planted instance: ``placement_gap_study.planted_instance`` of the headline window (its planted
placement is optimal; the annealing's excess over it is its search error). Rows: the annealing
from round-robin (``--iters`` steps, seed 0), the VLSN descent from round-robin, the VLSN descent
from the annealed placement, the annealing given the same total time (steps scaled by the
measured times), and an iterated VLSN (``--kicks`` random cyclic exchanges of 8 GPUs, each
followed by a descent; step-counted, no clock). Headline window (the exact optimiser's stage 1:
annealing 2 M steps from GEM + polish, seed 0; items: singles + the 32 most loaded experts'
replica pairs, as ``solve_exact``): the VLSN descent from that incumbent, and the annealing +
polish given the same total time.

With ``--others`` (planted instance only, from the annealed placement): parallel tempering
(replica exchange, 8 chains of the annealing's moves at fixed temperatures 2e-6 .. 1e-4 of the
objective, log-sum-exp at 1.5e-3, 20 rounds of 20 000 steps per chain, neighbour exchanges by
the Metropolis rule) and a compound near-swap neighbourhood solved by CP-SAT (every item with
its 4 nearest items, by 32-step cost vector, on other GPUs as swap candidates; any set of
item-disjoint swaps; levels +-2 of each GPU's maximal one; 40 s, 2 workers, the incumbent as
hint).

    python benchmarks/placement_vlsn_study.py [--iters 2000000] [--kicks 10] [--skip-planted]
        [--skip-headline] [--others]

Execution model: the overlap surrogate (a GPU's expert phase, GPU and PIM overlapped, roofline,
fp8 weights of DeepSeek-V3), no DAG. Cost: ~6 min on a loaded 2-core VM.
"""

from __future__ import annotations

import argparse

import numpy as np
from _args import (
    anneal_polish,
    excess_pct,
    placement_headline_items,
    placement_headline_window,
    timed,
)
from placement_gap_study import planted_instance

from sieveopt.placement.anneal import _loads, _phase, _true_objective, anneal, as_table
from sieveopt.placement.exact import level_loads, objective
from sieveopt.placement.surrogate import Surrogate
from sieveopt.placement.vlsn import vlsn
from sieveopt.solvers.cpsat_run import solve_by

HISTORY, STEPS = 32, 200


def planted(cost: np.ndarray, iters: int, kicks: int) -> None:
    cp, plant, cap = planted_instance(cost)
    n = cp.shape[1]
    none = np.full(n, -1)
    opt = objective(cp, plant)
    rr = np.arange(n) % cp.shape[2]

    pct = excess_pct(opt)

    print(f"planted: {n} items, {cp.shape[2]} GPUs, {cap} slots; planted placement {opt / 1e3:.3f} us")
    (a, va, _), ta = timed(anneal, cp, rr, cap, none, iters=iters, seed=0)
    print(f"  annealing {iters} steps from round-robin: {pct(va)} ({ta:.1f} s)")
    (_, vr, st), tr = timed(vlsn, cp, rr, cap, none)
    print(f"  VLSN descent from round-robin: {pct(vr)} ({tr:.1f} s, {st['moves']} cycles; after each stage "
          f"{', '.join(pct(x) for x in st['stage_ns'])})")
    (_, vv, st), tv = timed(vlsn, cp, a, cap, none)
    print(f"  annealing + VLSN descent: {pct(vv)} ({ta + tv:.1f} s, {st['moves']} cycles)")
    more = int(iters * (ta + tv) / ta)
    (_, vm, _), tm = timed(anneal, cp, rr, cap, none, iters=more, seed=0)
    print(f"  annealing, same time ({more} steps): {pct(vm)} ({tm:.1f} s)")
    if kicks:
        stages = (("exp", 1e-3, "lse"), ("exp", 5e-4, "true"))
        (_, vk, st), tk = timed(vlsn, cp, a, cap, none, stages=stages, kicks=kicks, kick_size=8)
        print(f"  annealing + iterated VLSN ({kicks} kicks of 8 GPUs): {pct(vk)} ({ta + tk:.1f} s, "
              f"{st['accepted']} kicks accepted)")


def tempering(cp: np.ndarray, a0: np.ndarray, cap: int, *, chains: int = 8, rounds: int = 20,
              sweep: int = 20_000, temps: tuple[float, float] = (2e-6, 1e-4), beta: float = 1.5e-3,
              seed: int = 0) -> float:
    """Parallel tempering over the annealing's moves from ``a0``; returns the best true objective."""
    tok, tab = as_table(cp)
    n, G = a0.size, cp.shape[2]
    start = float(_true_objective(_loads(tok, tab, a0)))
    tk = temps[0] * (temps[1] / temps[0]) ** (np.arange(chains) / max(1, chains - 1)) * start
    b = beta * start
    tw, near, prs = np.full(n, -1, np.int64), np.zeros((n, 1), np.int64), np.zeros((0, 3), np.int64)
    ch = []
    for r in range(chains):
        a = a0.astype(np.int64).copy()
        u0 = np.flatnonzero(a >= 0).astype(np.int64)
        used, pos = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        used[:u0.size], pos[u0] = u0, np.arange(u0.size)
        ch.append([a, np.bincount(a[u0], minlength=G).astype(np.int64), _loads(tok, tab, a), used, pos,
                   np.array([u0.size], np.int64), np.array([seed * 1000 + r], np.int64), np.zeros(1, np.int64)])

    def lse(L: np.ndarray) -> float:
        V = L.max(axis=2)
        m = V.max(axis=1)
        return float(np.mean(m + b * np.log(np.exp((V - m[:, None]) / b).sum(axis=1))))

    order, rng, best = list(range(chains)), np.random.default_rng(seed), start
    for rd in range(rounds):
        for k in range(chains):
            a, cnt, L, used, pos, nu, st, nrep = ch[order[k]]
            _phase(tok, tab, a, cnt, L, used, pos, nu, tw, cap, sweep, tk[k], tk[k], b, st, near, 0.0, prs, 0,
                   nrep, 0.0)
            ch[order[k]][2] = _loads(tok, tab, a)
            best = min(best, float(_true_objective(ch[order[k]][2])))
        E = [lse(ch[order[k]][2]) for k in range(chains)]
        for k in range(rd % 2, chains - 1, 2):
            d = (E[k] - E[k + 1]) * (1 / tk[k] - 1 / tk[k + 1])
            if d >= 0 or rng.random() < np.exp(d):
                order[k], order[k + 1], E[k], E[k + 1] = order[k + 1], order[k], E[k + 1], E[k]
    return best


def near_swaps(cp: np.ndarray, a: np.ndarray, *, near: int = 4, width: int = 2, limit_s: float = 40.0) -> float:
    """CP-SAT over any set of item-disjoint swaps among each item's ``near`` nearest items on
    other GPUs (identical GPUs: costs of GPU 0), the incumbent as hint; returns the true objective."""
    from ortools.sat.python import cp_model

    T, n, G, K = cp.shape
    Lk = level_loads(cp, a)
    kmax = Lk.argmax(axis=2)
    vec = cp[:, :, 0, :].mean(axis=2).T                                   # [n, T]
    D = ((vec[:, None] - vec[None]) ** 2).sum(axis=2)
    D[a[:, None] == a[None, :]] = np.inf
    pairs = sorted({(min(i, j), max(i, j)) for i in range(n) for j in np.argsort(D[i], kind="stable")[:near]
                    if np.isfinite(D[i, j])})
    m = cp_model.CpModel()
    s = [m.NewBoolVar(f"s{p}") for p in range(len(pairs))]
    z = [m.NewIntVar(0, 10**9, f"z{t}") for t in range(T)]
    on: dict[tuple[int, int], list] = {}
    for p, (i, j) in enumerate(pairs):
        on.setdefault((i, a[i]), []).append((p, j))
        on.setdefault((j, a[j]), []).append((p, i))
    for t in range(T):
        for g in range(G):
            for k in range(max(0, kmax[t, g] - width), min(K, kmax[t, g] + width + 1)):
                terms = [int(round(cp[t, j, g, k] - cp[t, i, g, k])) * s[p]
                         for (i, gi), lst in on.items() if gi == g for p, j in lst]
                m.Add(int(round(Lk[t, g, k])) + sum(terms) <= z[t])
    for i in range(n):
        mine = [s[p] for p, (x, y) in enumerate(pairs) if i in (x, y)]
        if len(mine) > 1:
            m.AddAtMostOne(mine)
    m.Minimize(sum(z))
    for v in s:
        m.AddHint(v, 0)
    zh = Lk.max(axis=(1, 2))
    for t in range(T):
        m.AddHint(z[t], int(round(zh[t])) + 1)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds, solver.parameters.num_workers = limit_s, 2
    out = a.copy()
    if solve_by(solver, m) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        for p, (i, j) in enumerate(pairs):
            if solver.Value(s[p]):
                out[i], out[j] = a[j], a[i]
    return min(objective(cp, out), objective(cp, a))


def others(cost: np.ndarray, iters: int) -> None:
    cp, plant, cap = planted_instance(cost)
    n = cp.shape[1]
    opt = objective(cp, plant)
    (a, va, _), ta = timed(anneal, cp, np.arange(n) % cp.shape[2], cap, np.full(n, -1), iters=iters, seed=0)
    print(f"planted, from the annealed placement (+{100 * (va / opt - 1):.3f} %, {ta:.1f} s):")
    v, t = timed(tempering, cp, a, cap)
    print(f"  parallel tempering (8 chains x 20 x 20 000 steps): +{100 * (v / opt - 1):.3f} % ({t:.1f} s)")
    v, t = timed(near_swaps, cp, a)
    print(f"  compound near-swap CP-SAT (40 s): +{100 * (v / opt - 1):.3f} % ({t:.1f} s)")


def headline(iters: int) -> None:
    h = placement_headline_items(HISTORY, STEPS)
    L, cap, cost, start, none, it, sur = h.L, h.cap, h.cost, h.start, h.twin, h.it, h.sur
    T, E = L.shape
    G = h.prob.num_gpus
    n = h.it.expert.size
    print(f"headline window: {T} steps, {n} items, {G} GPUs, {cap} slots; GEM {objective(cost, start) / 1e3:.3f} us")
    (a, _, va), ta = timed(anneal_polish, h.table, cost, start, cap, none, iters, 0)
    print(f"  annealing {iters} steps + polish (the optimiser's stage 1): {va / 1e3:.3f} us ({ta:.1f} s)")
    (b, vb, st), tb = timed(vlsn, (it.tokens, sur.level_ns), a, cap, none)
    print(f"  + VLSN descent: {vb / 1e3:.3f} us ({ta + tb:.1f} s, {st['moves']} cycles)")
    more = int(iters * (ta + tb) / ta)
    (_, _, vm), tm = timed(anneal_polish, h.table, cost, start, cap, none, more, 0)
    print(f"  annealing {more} steps + polish (same time): {vm / 1e3:.3f} us ({tm:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=2e6, help="annealing steps")
    ap.add_argument("--kicks", type=int, default=10, help="iterated VLSN kicks on the planted instance (0: off)")
    ap.add_argument("--skip-planted", action="store_true")
    ap.add_argument("--skip-headline", action="store_true")
    ap.add_argument("--others", action="store_true", help="parallel tempering and compound near swaps (planted)")
    args = ap.parse_args()
    model, system, _, counts = placement_headline_window(HISTORY, STEPS)
    cost = Surrogate(model, system, 256).level_costs(counts[:HISTORY])
    if not args.skip_planted:
        planted(cost, int(args.iters), args.kicks)
    if args.others:
        others(cost, int(args.iters))
    if not args.skip_headline:
        headline(int(args.iters))


if __name__ == "__main__":
    main()
