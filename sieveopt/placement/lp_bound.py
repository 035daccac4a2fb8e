"""LP relaxation bound of the exact placement model (expected straggler, ``mean`` objective).

The relaxation keeps *one* fractional placement ``x`` for all steps of the window (with the
replica selectors ``y``, the redundant-slot budget and the HBM capacity) and charges every step
its straggler, ``z_t >= sum_i c[t, i, g] x[i, g]`` for every GPU g:

    minimise (1/T) sum_t z_t   over   x, y in [0, 1], the constraints of
                                      :func:`sieveopt.placement.exact._model`.

It dominates the Jensen bound's relaxation (the straggler of the window-mean loads, the
``balance`` model) because ``mean_t max_g >= max_g mean_t`` holds for the fractional ``x`` too,
and it is solved exactly by HiGHS (scipy; interior point + crossover: 14 s of CPU against 104 s
for dual simplex on the overlap model's 32-step DeepSeek-V3 window), so it is deterministic, unlike a bound
CP-SAT certifies within a time limit. It stays blind to the per-step imbalance a *fixed*
integral placement cannot avoid (fractional assignments balance every step): on the 32-step
DeepSeek-V3 window it is 155.4 us against incumbents >= 157.9 us (design note). With the
overlap-aware surrogate a GPU's work is a maximum over levels of linear functions, so each level
is one more row per (step, GPU); the rows are added as cuts (:func:`lp_bound`).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from sieveopt.solvers.interruptible import run_interruptible


def lp_bound(c: np.ndarray, single: np.ndarray, pair: dict[int, tuple[int, int]], capacity: int,
             budget: int, *, levels: np.ndarray | None = None, max_rounds: int = 12,
             meta: dict | None = None, deadline: float | None = None, worst_steps: int | None = None) -> float:
    """Value of the LP relaxation for integer costs ``c[T, items, G]`` or level costs
    ``c[T, items, G, K]`` (a valid lower bound on the ``mean`` objective of every placement of
    the model; 0.0 if HiGHS fails on the first round).

    ``worst_steps`` (k): bound the mean of the k largest step stragglers instead (the ``cvar``
    objective, :func:`sieveopt.placement.exact.objective`), by Rockafellar and Uryasev's
    linear form ``min eta + (1/k) sum_t max(0, z_t - eta)``, which equals the mean of the k
    largest ``z_t`` for any fixed ``z``; relaxing x keeps it a lower bound.

    ``single[e]``: item of expert e's single copy; ``pair[e]``: its two replica items (replica
    candidates only); ``budget``: at most this many experts replicated. With K levels (the
    overlap-aware surrogate: a GPU's work is ``max_k sum_i c[t, i, g, k] x[i, g]``) the rows
    are generated as cuts: first the levels ``levels[t, g, :]`` (bool ``[T, G, K]``, default:
    all), then, for ``max_rounds`` rounds, every level whose row the LP solution violates by
    more than 1e-6 relative. Any subset of the rows is a relaxation, so the value after each
    round is a valid bound; it is the full LP's value when no row is violated. ``deadline`` (a
    :func:`time.perf_counter` value): each round's HiGHS run gets the time left and no round
    starts after it; a round that fails or runs out of time leaves the last completed round's
    value (a bound: fewer rows). ``meta`` (if given) receives ``rounds`` and ``rows`` of the
    last completed round and ``violated`` (0 when converged, -1 when stopped early)."""
    c4 = c[..., None] if c.ndim == 3 else c
    T, n, G, K = c4.shape
    on = np.ones((T, G, K), dtype=bool) if levels is None or K == 1 else np.asarray(levels, dtype=bool).copy()
    val, violated, rounds, done, rows = 0.0, 0, 0, 0, 0
    for rounds in range(1, max_rounds + 1):         # noqa: B007 (reported)
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0:
            break
        res = _solve(c4, on, single, pair, capacity, budget, time_limit_s=left, worst_steps=worst_steps)
        if res is None:                             # failed or out of time: the last round's value
            break
        (val, x, z), done, rows = res, rounds, int(on.sum())
        if K == 1:
            break
        lv = np.einsum("tigk,ig->tgk", c4.astype(float), x)                  # [T, G, K] level loads
        bad = lv > z[:, None, None] * (1 + 1e-6) + 1e-6
        bad &= ~on
        violated = int(bad.sum())
        if not violated:
            break
        worst = np.zeros_like(bad)                  # per (t, g): the most violated level
        kk = np.argmax(np.where(bad, lv, -np.inf), axis=2)
        tt, gg = np.nonzero(bad.any(axis=2))
        worst[tt, gg, kk[tt, gg]] = True
        on |= worst
    if meta is not None:
        meta.update({"rounds": done, "rows": rows, "violated": violated if done == rounds else -1})
    return val


class _Rows:
    """Sparse LP rows ``sum_j val_j x_col_j (<= or ==) rhs``, added one at a time."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.rhs: list[float] = []

    def add(self, col: np.ndarray, val: np.ndarray, rhs: float) -> None:
        self.rows.append(np.full(col.size, len(self.rhs)))
        self.cols.append(col)
        self.vals.append(val)
        self.rhs.append(rhs)

    def matrix(self, num_cols: int):
        """The rows as a CSR matrix ``[len(rhs), num_cols]``."""
        return coo_matrix((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                          shape=(len(self.rhs), num_cols)).tocsr()


def _solve(c: np.ndarray, on: np.ndarray, single: np.ndarray, pair: dict[int, tuple[int, int]],
           capacity: int, budget: int, time_limit_s: float | None = None,
           worst_steps: int | None = None) -> tuple[float, np.ndarray, np.ndarray] | None:
    """One LP with the level rows ``on[t, g, k]``: (bound, x[items, G], z[T]) or None (HiGHS failed
    or ran out of ``time_limit_s``). Objective: the mean of ``z``, or with ``worst_steps`` = k the
    mean of its k largest entries (columns ``eta`` and ``u[T] >= z - eta`` after ``z``; the
    returned ``z`` is then raised to ``eta``, the level a row may reach without changing the
    objective, so that the cut rounds add only rows that matter)."""
    T, n, G, _ = c.shape
    pe = sorted(pair)
    R = len(pe)
    nx = n * G
    ny = R
    cv = worst_steps is not None
    nv = nx + ny + T + ((1 + T) if cv else 0)
    eq, ub = _Rows(), _Rows()
    add_eq, add_ub = eq.add, ub.add
    gs = np.arange(G)
    ypos = {e: nx + k for k, e in enumerate(pe)}
    for e in range(single.size):
        s = int(single[e]) * G + gs
        if e in pair:
            y = ypos[e]
            add_eq(np.r_[s, y], np.r_[np.ones(G), 1.0], 1.0)                # single copy xor pair
            for item in pair[e]:
                add_eq(np.r_[int(item) * G + gs, y], np.r_[np.ones(G), -1.0], 0.0)
            a, b = pair[e]
            for g in range(G):                                               # replicas apart
                add_ub(np.array([int(a) * G + g, int(b) * G + g]), np.ones(2), 1.0)
        else:
            add_eq(s, np.ones(G), 1.0)
    if R:
        add_ub(nx + np.arange(R), np.ones(R), float(budget))
    items = np.arange(n)
    for g in range(G):
        add_ub(items * G + g, np.ones(n), float(capacity))                  # HBM slots
    for t, g, k in zip(*np.nonzero(on), strict=True):
        nz = np.flatnonzero(c[t, :, g, k])
        add_ub(np.r_[nz * G + g, nx + ny + t], np.r_[c[t, nz, g, k].astype(float), -1.0], 0.0)
    obj = np.zeros(nv)
    nz0 = nx + ny
    if cv:                                   # u_t >= z_t - eta: z_t - eta - u_t <= 0
        k = min(max(1, int(worst_steps)), T)
        for t in range(T):
            add_ub(np.array([nz0 + t, nz0 + T, nz0 + T + 1 + t]), np.array([1.0, -1.0, -1.0]), 0.0)
        obj[nz0 + T] = 1.0
        obj[nz0 + T + 1:] = 1.0 / k
    else:
        obj[nz0:nz0 + T] = 1.0 / T
    bounds = [(0.0, 1.0)] * (nx + ny) + [(0.0, None)] * (T + ((1 + T) if cv else 0))
    a_ub, a_eq = ub.matrix(nv), eq.matrix(nv)
    opts = {} if time_limit_s is None else {"time_limit": max(1e-3, float(time_limit_s))}
    res = run_interruptible(lambda: linprog(obj, A_ub=a_ub, b_ub=np.asarray(ub.rhs), A_eq=a_eq,  # Ctrl-C
                                            b_eq=np.asarray(eq.rhs), bounds=bounds, method="highs-ipm", options=opts))
    if res.status != 0:
        return None
    # HiGHS' optimality tolerances are ~1e-7 relative: shave them off so the bound stays valid
    z = res.x[nz0:nz0 + T]
    if cv:                                   # a step below eta may rise to it at no cost
        z = np.maximum(z, res.x[nz0 + T])
    return max(0.0, float(res.fun) * (1.0 - 1e-6)), res.x[:nx].reshape(n, G), z


def replica_dominance(table: np.ndarray, max_tokens: int) -> float:
    """``rho``: the smallest ``min_k c(ceil(n/2))/c(n) + min_k c(floor(n/2))/c(n)`` over GPUs
    ``g1, g2`` (the two halves' GPUs, any pair), 2 <= n <= ``max_tokens`` and levels k of the
    slot cost table ``table[G, N, K]`` (the surrogate's ``level_ns``, rounded to integer ns here
    as the exact model rounds it; 0/0 counts as no constraint). ``rho >= 1`` means a replica pair is dominated, at every step, by a fractional
    single copy (:func:`replica_free_bound`); 1.0 when ``max_tokens < 2``."""
    t = np.rint(np.asarray(table, dtype=float))
    n = np.arange(2, min(int(max_tokens), t.shape[1] - 1) + 1)
    if n.size == 0:
        return 1.0
    whole = t[:, n]                                                          # [G, n, K]
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(whole > 0, t[:, (n + 1) // 2] / whole, np.inf).min(axis=2)  # [G, n]
        r2 = np.where(whole > 0, t[:, n // 2] / whole, np.inf).min(axis=2)
    return float((r1[:, None, :] + r2[None, :, :]).min())


def replica_free_bound(c: np.ndarray, single: np.ndarray, capacity: int, table: np.ndarray, max_tokens: int,
                       *, deadline: float | None = None) -> float:
    """A lower bound on the ``mean`` objective of every placement whose experts have one copy or
    two round-robin replicas (ceil / floor of the tokens) on distinct GPUs, *whichever experts*
    are replicated and however many: ``min(1, rho) * mean_t LP_t``, where ``LP_t`` is the LP
    relaxation of step t alone with one copy per expert (``c[T, E, G(, K)]``: the single items'
    integer costs, from ``table`` at token counts <= ``max_tokens``) and ``rho`` is
    :func:`replica_dominance`. 0.0 if an LP fails or the deadline passes.

    Proof. Fix a placement P and a step t; expert e is replicated on GPUs g1 (ceil(n/2) tokens)
    and g2 (floor(n/2)). Put the single copy fractionally, ``w`` on g1 and ``1 - w`` on g2, with
    ``w = r1 / (r1 + r2)``, ``r_j = min_k c_gj,k(h_j) / c_gj,k(n)``. Then at every level k
    ``w c_g1,k(n) <= c_g1,k(h1) / (r1 + r2)`` and ``(1 - w) c_g2,k(n) <= c_g2,k(h2) / (r1 + r2)``,
    with ``r1 + r2 >= rho`` (n = 1: h1 = n, take w = 1; n = 0 costs nothing). The fractional point
    uses at most P's slots per GPU, so it is feasible for step t's LP, and each GPU's level loads
    are at most P's divided by ``min(1, rho)``: ``LP_t <= straggler_t(P) / min(1, rho)``. Average
    over t. Why per step: ``w`` depends on the step's n, so the argument does not give the window
    LP (one x for all steps; an LP with pairs can be lower than one without: test
    ``test_replica_free_bound_holds_for_any_replicas``). The per-step mean is at most the window
    LP; on the DeepSeek-V3 headline window 83.11 against 83.12 us, with ``rho >= 1`` up to
    200 tokens (the window's maximum: 57)."""
    c4 = c[..., None] if c.ndim == 3 else c
    rho = min(1.0, replica_dominance(table, max_tokens))
    vals = []
    for t in range(c4.shape[0]):
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0:
            return 0.0
        res = _solve(c4[t:t + 1], np.ones((1,) + c4.shape[2:], dtype=bool), np.asarray(single), {}, capacity, 0,
                     time_limit_s=left)
        if res is None:
            return 0.0
        vals.append(res[0])
    return rho * float(np.mean(vals))
