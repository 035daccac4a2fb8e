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
        [--skip-planted] [--skip-headline] [--skip-anneal] [--contraction]

``--contraction``: the squared-spread ratio of merging two random 8-part tuples by the
assignment, in 32, 8 and 1 step dimensions (why differencing does not contract in many).

Execution model: the overlap surrogate (a GPU's expert phase, GPU and PIM overlapped, roofline,
fp8 weights of DeepSeek-V3), no DAG. Cost: ~8 min with 2 seeds on a loaded 2-core VM
(``--skip-anneal``: ~30 s).
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

from sieveopt.placement.anneal import anneal
from sieveopt.placement.differencing import differencing
from sieveopt.placement.exact import objective
from sieveopt.placement.surrogate import Surrogate

HISTORY, STEPS = 32, 200
#: (balanced, spread, labels, exact_last) of the raw table
VARIANTS = [(b, s, lab, el) for b in (True, False) for s in ("max", "l2") for lab in ("gpu", "end") for el in (0, 16)]


def _raw(cost: np.ndarray, cap: int, use: np.ndarray | None, fmt) -> dict:  # noqa: ANN001
    out = {}
    for b, s, lab, el in VARIANTS:
        a, t = timed(differencing, cost, cap, use=use, balanced=b, spread=s, labels=lab, exact_last=el)
        out[(b, s, lab, el)] = a
        print(f"  {'BLDM' if b else 'LDM '} spread={s:3s} labels={lab:3s} exact_last={el:2d}: "
              f"{fmt(objective(cost, a))} ({t:.2f} s)")
    return out


def contraction(cost: np.ndarray, dims: tuple[int, ...] = (32, 8, 1), draws: int = 200) -> None:
    """Why differencing stalls in many dimensions: two random 8-part tuples of 64 experts each
    (reference-level step vectors of the headline window at GPU 0's speed, first ``d`` steps) are
    merged by the squared-deviation assignment; the ratio merged / (|a|^2 + |b|^2) of squared
    spreads is printed (1-D Karmarkar-Karp lives on this ratio being small)."""
    from scipy.optimize import linear_sum_assignment

    from sieveopt.placement.differencing import item_vectors, reference_levels

    G = cost.shape[2]
    X = item_vectors(cost, reference_levels(cost, G))[:, 0, :]               # [E, T]
    rng = np.random.default_rng(0)
    for d in dims:
        r = []
        for _ in range(draws):
            idx = rng.permutation(X.shape[0])
            a, b = (np.stack([X[p, :d].sum(axis=0) for p in np.array_split(idx[lo:lo + 64], G)])
                    for lo in (0, 64))
            a, b = a - a.mean(axis=0), b - b.mean(axis=0)
            sigma = linear_sum_assignment(a @ b.T)[1]
            r.append(((a + b[sigma]) ** 2).sum() / ((a ** 2).sum() + (b ** 2).sum()))
        print(f"  merge of two random 8-part tuples, {d:2d} steps: squared spread ratio median "
              f"{np.median(r):.3f}, min {np.min(r):.3f}")


def planted(cost: np.ndarray, iters: int, seeds: int, do_anneal: bool) -> None:
    cp, plant, cap = planted_instance(cost)
    n, G = cp.shape[1], cp.shape[2]
    none = np.full(n, -1)
    opt = objective(cp, plant)

    pct = excess_pct(opt)

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
            (_, v, _), t = timed(anneal, cp, a0, cap, none, iters=iters, seed=seed)
            print(f"  annealing {iters} steps from {name}, seed {seed}: {pct(v)} ({t:.1f} s)")


def headline(iters: int, seeds: int, do_anneal: bool) -> None:
    h = placement_headline_items(HISTORY, STEPS)
    L, cap, cost, start, twin, it = h.L, h.cap, h.cost, h.start, h.twin, h.it
    T, E = L.shape
    G = h.prob.num_gpus
    n = it.expert.size
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
            (_, va, vp), t = timed(anneal_polish, h.table, cost, a0, cap, twin, iters, seed)
            print(f"  annealing {iters} steps + polish from {name}, seed {seed}: {us(va)} -> {us(vp)} ({t:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=float, default=2e6, help="annealing steps per run")
    ap.add_argument("--seeds", type=int, default=2, help="annealing seeds per start")
    ap.add_argument("--skip-planted", action="store_true")
    ap.add_argument("--skip-headline", action="store_true")
    ap.add_argument("--skip-anneal", action="store_true", help="raw differencing values only")
    ap.add_argument("--contraction", action="store_true", help="merge contraction by dimension (headline window)")
    args = ap.parse_args()
    if args.contraction:
        model, system, _, counts = placement_headline_window(HISTORY, STEPS)
        contraction(Surrogate(model, system, 256).level_costs(counts[:HISTORY]))
    if not args.skip_planted:
        model, system, _, counts = placement_headline_window(HISTORY, STEPS)
        cost = Surrogate(model, system, 256).level_costs(counts[:HISTORY])
        planted(cost, int(args.iters), args.seeds, not args.skip_anneal)
    if not args.skip_headline:
        headline(int(args.iters), args.seeds, not args.skip_anneal)


if __name__ == "__main__":
    main()
