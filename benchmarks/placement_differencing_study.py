"""Multi-way, multi-dimensional differencing (sieveopt.placement.differencing) against the annealing.

Planted instance (``placement_gap_study.planted_instance`` of the headline window: 280 items,
8 identical GPUs, 43 slots; its planted placement is optimal): the raw differencing variants
(balanced BLDM / LDM from single items, spread ``max`` / ``l2``, parts labelled as GPUs from the
start / mapped at the end, exact last merges) against round-robin and random placements, then
the annealing (``--iters`` steps, default schedule) from round-robin and from the differencing
start for each of ``--seeds`` seeds (the differencing run takes < 1 s of the annealing's ~45 s:
equal time). Headline window (items: singles + the 32 most loaded experts' replica pairs, as
``solve_exact``; differencing places the singles, the budget-0 space): raw values against GEM
(the optimiser's hint) and random placements, then annealing + polish (the optimiser's stage 1)
from GEM and from the differencing start, same seeds and steps.

    python benchmarks/placement_differencing_study.py [--iters 2000000] [--seeds 2]
        [--skip-planted] [--skip-headline] [--skip-anneal]

Execution model: the overlap surrogate (a GPU's expert phase, GPU and PIM overlapped, roofline,
fp8 weights of DeepSeek-V3), no DAG. Cost: ~8 min with 2 seeds on a loaded 2-core VM
(``--skip-anneal``: ~30 s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _args import placement_headline_window
from placement_gap_study import planted_instance

from sieveopt.placement.anneal import anneal
from sieveopt.placement.differencing import differencing
from sieveopt.placement.exact import _items, objective, replica_candidates
from sieveopt.placement.local_search import polish
from sieveopt.placement.policies import PlacementProblem, gem
from sieveopt.placement.surrogate import Surrogate

HISTORY, STEPS = 32, 200
#: (balanced, spread, labels, exact_last) of the raw table
VARIANTS = [(b, s, lab, el) for b in (True, False) for s in ("max", "l2") for lab in ("gpu", "end") for el in (0, 16)]


def _timed(f, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
    t0 = time.perf_counter()
    out = f(*a, **kw)
    return out, time.perf_counter() - t0


def _raw(cost: np.ndarray, cap: int, use: np.ndarray | None, fmt) -> dict:  # noqa: ANN001
    out = {}
    for b, s, lab, el in VARIANTS:
        a, t = _timed(differencing, cost, cap, use=use, balanced=b, spread=s, labels=lab, exact_last=el)
        out[(b, s, lab, el)] = a
        print(f"  {'BLDM' if b else 'LDM '} spread={s:3s} labels={lab:3s} exact_last={el:2d}: "
              f"{fmt(objective(cost, a))} ({t:.2f} s)")
    return out


def planted(cost: np.ndarray, iters: int, seeds: int, do_anneal: bool) -> None:
    cp, plant, cap = planted_instance(cost)
    n, G = cp.shape[1], cp.shape[2]
    none = np.full(n, -1)
    opt = objective(cp, plant)

    def pct(v: float) -> str:
        return f"+{100 * (v / opt - 1):.3f} %"

    rr = np.arange(n) % G
    rnd = np.random.default_rng(0).permutation(n) % G
    print(f"planted: {n} items, {G} GPUs, {cap} slots; planted placement {opt / 1e3:.3f} us; "
          f"round-robin {pct(objective(cp, rr))}, random {pct(objective(cp, rnd))}")
    raw = _raw(cp, cap, None, pct)
    if not do_anneal:
        return
    kk = raw[(True, "max", "end", 0)]
    for seed in range(seeds):
        for name, a0 in (("round-robin", rr), ("differencing (BLDM, max, end)", kk)):
            (_, v, _), t = _timed(anneal, cp, a0, cap, none, iters=iters, seed=seed)
            print(f"  annealing {iters} steps from {name}, seed {seed}: {pct(v)} ({t:.1f} s)")


def headline(iters: int, seeds: int, do_anneal: bool) -> None:
    model, system, cap, counts = placement_headline_window(HISTORY, STEPS)
    L = counts[:HISTORY].astype(np.int64)
    sur = Surrogate(model, system, 256)
    T, E = L.shape
    G = system.num_gpus
    prob = PlacementProblem(E, G, cap, 32, sur)
    it = _items(L, replica_candidates(L, sur.level_ns, 32))
    n = it.expert.size
    cost = np.ascontiguousarray(sur.level_ns[:, it.tokens].transpose(1, 2, 0, 3))     # [T, items, G, K]
    g = gem(L.astype(float), prob)
    start = np.full(n, -1, dtype=np.int64)
    start[g.slots] = g.slot_gpu
    twin = np.full(n, -1)
    for a_, b_ in it.pair.values():
        twin[a_], twin[b_] = b_, a_
    use = np.zeros(n, dtype=bool)
    use[it.single] = True
    rnd = np.full(n, -1)
    rnd[it.single] = np.random.default_rng(0).permutation(E) % G

    def us(v: float) -> str:
        return f"{v / 1e3:.3f} us"

    print(f"headline window: {T} steps, {n} items, {G} GPUs, {cap} slots; GEM {us(objective(cost, start))}, "
          f"random {us(objective(cost, rnd))}")
    raw = _raw(cost, cap, use, us)
    if not do_anneal:
        return
    kk = raw[(False, "l2", "gpu", 0)]
    for seed in range(seeds):
        for name, a0 in (("GEM", start), ("differencing (LDM, l2, gpu)", kk)):
            t0 = time.perf_counter()
            a, va, _ = anneal((it.tokens, sur.level_ns), a0, cap, twin, iters=iters, seed=seed)
            a, vp, _ = polish(cost, a, cap, twin, time_limit_s=30.0)
            print(f"  annealing {iters} steps + polish from {name}, seed {seed}: {us(va)} -> {us(vp)} "
                  f"({time.perf_counter() - t0:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=2e6, help="annealing steps per run")
    ap.add_argument("--seeds", type=int, default=2, help="annealing seeds per start")
    ap.add_argument("--skip-planted", action="store_true")
    ap.add_argument("--skip-headline", action="store_true")
    ap.add_argument("--skip-anneal", action="store_true", help="raw differencing values only")
    args = ap.parse_args()
    if not args.skip_planted:
        model, system, _, counts = placement_headline_window(HISTORY, STEPS)
        cost = Surrogate(model, system, 256).level_costs(counts[:HISTORY])
        planted(cost, int(args.iters), args.seeds, not args.skip_anneal)
    if not args.skip_headline:
        headline(int(args.iters), args.seeds, not args.skip_anneal)


if __name__ == "__main__":
    main()
