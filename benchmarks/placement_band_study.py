"""Feasibility band for the exact placement window: can CP-SAT find a placement with every step's straggler under a cap?

Window: the placement headline's (DeepSeek-V3 on 8 x sieve-b200-hbm3e-pim, variability 0.1,
seed 0, B = 256, first ``--steps`` of the 32 history steps; overlap surrogate, roofline costs,
execution model of the surrogate: a GPU's expert phase under Sieve's split, relaxed to fractional
experts), one copy per expert (replica-free, GEM's space), ``cap`` HBM slots per GPU.

Model (CP-SAT, integer ns): binary ``x[e, g]``, one GPU per expert, at most ``cap`` experts per
GPU, and for every (step t, GPU g, level k) of a row set a row

    sum_e c[t, e, g, k] x[e, g] <= cap_t + s        cap_t = LP_t * (1 + delta)

``LP_t``: the LP relaxation of step t alone (the per-step fractional optimum, ``_lp`` of the gap
study); any placement feasible on *every* level has objective <= mean_t cap_t + s. ``--mode band``
fixes s = 0 (pure feasibility, no objective); ``--mode slack`` minimises the uniform excess s >= 0
(the smallest band CP-SAT reaches in the time). Rows: the levels within ``--level-width`` of the
reference placement's maximal level at each (t, g); every solution is checked on all levels and
violated rows are added (lazy rows, the solution as the next run's hint) until it is clean or the
time is spent. The reference placement (annealing ``--iters`` steps from GEM + polish, seed
``--seed``) is also what the result is measured against; ``--hint`` starts CP-SAT from it (it
violates tight caps: CP-SAT repairs it).

Prints per run: the band (mean cap), status, the placement's true objective (all levels),
the same after ``polish``, the annealing's and the sub-window LP bound's values.

    nice python benchmarks/placement_band_study.py --steps 8 --mode slack [--hint] [--limit-s 60]
    nice python benchmarks/placement_band_study.py --steps 32 --mode band --target-us 83.96 --limit-s 120

``--target-us``: choose delta so that mean_t cap_t equals the target (overrides ``--delta``);
``--caps incumbent``: cap_t = the reference placement's straggler lowered uniformly to that mean.
``--solver highs``: the same model by HiGHS (``scipy.optimize.milp``; no start, ``--hint`` ignored).
Cost per run: the limit plus the reference (annealing 5-23 s and the per-step LPs, 8-32 steps).
Measured results: docs/design-notes/placement.md, "Round 8: feasibility band (CP-SAT)".
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _args import placement_headline_window
from placement_gap_study import _lp

from sieveopt.placement.anneal import anneal
from sieveopt.placement.exact import level_loads, objective
from sieveopt.placement.local_search import polish
from sieveopt.placement.policies import PlacementProblem, gem
from sieveopt.placement.surrogate import Surrogate
from sieveopt.solvers._interval_model import make_solver
from sieveopt.solvers.cpsat_run import solve_by

HISTORY, STEPS = 32, 200


def band_rows(c: np.ndarray, ref: np.ndarray, width: int) -> np.ndarray:
    """Bool ``[T, G, K]``: the levels within ``width`` of ``ref``'s maximal level per (t, g)."""
    kmax = level_loads(c, ref).argmax(axis=2)
    on = np.zeros((c.shape[0], c.shape[2], c.shape[3]), dtype=bool)
    tt, gg = np.indices(kmax.shape)
    for d in range(-width, width + 1):
        on[tt, gg, np.clip(kmax + d, 0, c.shape[3] - 1)] = True
    return on


def solve_band(c: np.ndarray, cap: int, caps_t: np.ndarray, rows: np.ndarray, *, slack: bool,
               hint: np.ndarray | None, limit_s: float, workers: int, seed: int):
    """CP-SAT on the band model with lazy level rows; returns (assignment or None, status,
    slack found, rows used, rounds)."""
    from ortools.sat.python import cp_model

    T, E, G, K = c.shape
    rows = rows.copy()
    deadline = time.perf_counter() + limit_s
    best, status, s_val, rounds = None, "UNKNOWN", None, 0
    while True:
        rounds += 1
        m = cp_model.CpModel()
        x = [[m.NewBoolVar(f"x{e}_{g}") for g in range(G)] for e in range(E)]
        for e in range(E):
            m.AddExactlyOne(x[e])
        for g in range(G):
            m.Add(sum(x[e][g] for e in range(E)) <= cap)
        s = m.NewIntVar(0, int(c.sum(axis=1).max()), "s") if slack else 0
        for t, g, k in zip(*np.nonzero(rows), strict=True):
            col = c[t, :, g, k]
            nz = np.flatnonzero(col)
            m.Add(sum(int(col[e]) * x[e][g] for e in nz) <= int(caps_t[t]) + s)
        if slack:
            m.Minimize(s)
        h = best if best is not None else hint
        if h is not None:
            for e in range(E):
                for g in range(G):
                    m.AddHint(x[e][g], int(h[e] == g))
            if slack:
                over = level_loads(c, h)[rows.nonzero()[0], rows.nonzero()[1], rows.nonzero()[2]]
                over = over - caps_t[rows.nonzero()[0]]
                m.AddHint(s, int(max(0, over.max())))
        left = deadline - time.perf_counter()
        if left <= 0.5:
            break
        solver = make_solver(workers=workers, seed=seed, time_limit_s=left)
        st = solve_by(solver, m)
        status = solver.StatusName(st)
        if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        a = np.array([next(g for g in range(G) if solver.Value(x[e][g])) for e in range(E)], dtype=np.int64)
        sv = int(solver.Value(s)) if slack else 0
        viol = level_loads(c, a) > (caps_t[:, None, None] + sv)
        best, s_val = a, sv
        new = viol & ~rows
        if not new.any():
            break
        rows |= new
    return best, status, s_val, int(rows.sum()), rounds


def solve_band_highs(c: np.ndarray, cap: int, caps_t: np.ndarray, rows: np.ndarray, *, slack: bool,
                     limit_s: float):
    """The same model by HiGHS (``scipy.optimize.milp``, no start: scipy passes none), lazy rows
    as in :func:`solve_band`; returns (assignment or None, status, slack found, rows, rounds)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    T, E, G, K = c.shape
    n = E * G + 1                                                    # x[e * G + g], then s
    rows = rows.copy()
    deadline = time.perf_counter() + limit_s
    best, status, s_val, rounds = None, "UNKNOWN", None, 0
    base_r = np.concatenate([np.repeat(np.arange(E), G), E + np.tile(np.arange(G), E)])
    base_c = np.concatenate([np.arange(E * G), np.arange(E * G)])
    while True:
        rounds += 1
        tt, gg, kk = np.nonzero(rows)
        m = tt.size
        r = [base_r, E + G + np.repeat(np.arange(m), E), E + G + np.arange(m)]
        cc = [base_c, (np.arange(E)[None, :] * G + gg[:, None]).ravel(), np.full(m, E * G)]
        v = [np.ones(2 * E * G), c[tt, :, gg, kk].ravel().astype(float), -np.ones(m)]
        A = coo_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(cc))), shape=(E + G + m, n))
        lo = np.concatenate([np.ones(E), np.zeros(G), np.full(m, -np.inf)])
        hi = np.concatenate([np.ones(E), np.full(G, cap), caps_t[tt].astype(float)])
        obj = np.zeros(n)
        obj[-1] = 1.0 if slack else 0.0
        ub = np.ones(n)
        ub[-1] = np.inf if slack else 0.0
        left = deadline - time.perf_counter()
        if left <= 0.5:
            break
        res = milp(obj, constraints=LinearConstraint(A.tocsr(), lo, hi), integrality=np.r_[np.ones(E * G), 0],
                   bounds=Bounds(np.zeros(n), ub), options={"time_limit": left, "disp": False})
        status = str(res.message)[:40]
        if res.x is None:
            break
        a = res.x[:-1].reshape(E, G).argmax(axis=1).astype(np.int64)
        sv = float(res.x[-1])
        best, s_val = a, sv
        new = (level_loads(c, a) > (caps_t[:, None, None] + sv + 1e-6)) & ~rows
        if not new.any():
            break
        rows |= new
    return best, status, s_val, int(rows.sum()), rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="sub-window: the first STEPS of the 32")
    ap.add_argument("--mode", choices=["band", "slack"], default="slack")
    ap.add_argument("--delta", type=float, default=0.01, help="cap_t = LP_t * (1 + delta)")
    ap.add_argument("--target-us", type=float, default=None,
                    help="set delta so that mean_t cap_t is this (us); overrides --delta")
    ap.add_argument("--solver", choices=["cpsat", "highs"], default="cpsat")
    ap.add_argument("--caps", choices=["lp", "incumbent"], default="lp",
                    help="cap_t from LP_t * (1 + delta), or the reference placement's straggler z_t "
                         "lowered uniformly to mean --target-us (needs --target-us)")
    ap.add_argument("--hint", action="store_true", help="start CP-SAT from the annealed placement")
    ap.add_argument("--level-width", type=int, default=2)
    ap.add_argument("--limit-s", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=float, default=2e6, help="annealing steps of the reference")
    args = ap.parse_args()

    model, system, cap, counts = placement_headline_window(HISTORY, STEPS)
    counts = counts[:args.steps]
    sur = Surrogate(model, system, 256)
    cost = sur.level_costs(counts)                                   # [T, E, G, K] ns
    c = np.rint(cost).astype(np.int64)
    T, E, G, K = cost.shape
    g0 = gem(counts.astype(float), PlacementProblem(E, G, cap, 0, sur))
    start = np.empty(E, dtype=np.int64)
    start[g0.slots] = g0.slot_gpu
    none = np.full(E, -1)

    t0 = time.perf_counter()
    a, _, _ = anneal(cost, start, cap, none, iters=int(args.iters), seed=args.seed)
    ref, ref_v, _ = polish(cost, a, cap, none)
    t_ann = time.perf_counter() - t0
    lp = _lp(c, cap, ref)
    lp_t = np.array([_lp(c[t:t + 1], cap, ref) for t in range(T)])
    print(f"window: {T} steps, {E} experts, {G} GPUs, {cap} slots, {K} levels; GEM "
          f"{objective(cost, start) / 1e3:.3f} us; annealing+polish {ref_v / 1e3:.3f} us ({t_ann:.1f} s); "
          f"LP {lp / 1e3:.3f} us; mean per-step LP {lp_t.mean() / 1e3:.3f} us; "
          f"annealing {100 * (ref_v / lp - 1):.2f} % above the LP, its max step excess over LP_t "
          f"{(level_loads(c, ref).max(axis=(1, 2)) - lp_t).max() / 1e3:.3f} us")

    delta = args.delta if args.target_us is None else args.target_us * 1e3 / lp_t.mean() - 1
    caps_t = np.floor(lp_t * (1 + delta)).astype(np.int64)
    if args.caps == "incumbent":
        if args.target_us is None:
            ap.error("--caps incumbent needs --target-us")
        z = level_loads(c, ref).max(axis=(1, 2))
        caps_t = np.floor(z - (z.mean() - args.target_us * 1e3)).astype(np.int64)
        delta = caps_t.mean() / lp_t.mean() - 1
    rows = band_rows(c, ref, args.level_width)
    t0 = time.perf_counter()
    if args.solver == "highs":
        a, status, s, nrows, rounds = solve_band_highs(c, cap, caps_t, rows, slack=args.mode == "slack",
                                                       limit_s=args.limit_s)
    else:
        a, status, s, nrows, rounds = solve_band(c, cap, caps_t, rows, slack=args.mode == "slack",
                                                 hint=ref if args.hint else None, limit_s=args.limit_s,
                                                 workers=args.workers, seed=args.seed)
    wall = time.perf_counter() - t0
    head = (f"{args.solver} band {args.mode}, delta {100 * delta:.3f} % (mean cap {caps_t.mean() / 1e3:.3f} us), "
            f"caps {args.caps}, hint {'yes' if args.hint else 'no'}, levels +-{args.level_width}: {status}, "
            f"{rounds} round(s), {nrows} rows, {wall:.1f} s")
    if a is None:
        print(head + ": no placement")
        return
    v = objective(cost, a)
    pa, pv, _ = polish(cost, a, cap, none)
    excess = (level_loads(c, a).max(axis=(1, 2)) - lp_t).max()
    print(head + (f"; slack {s / 1e3:.3f} us" if args.mode == "slack" else "")
          + f"; placement {v / 1e3:.3f} us ({100 * (v / lp - 1):.2f} % above the LP), max step excess over LP_t "
          f"{excess / 1e3:.3f} us, polished {pv / 1e3:.3f} us; annealing {ref_v / 1e3:.3f} us")


if __name__ == "__main__":
    main()
