"""Softassign / deterministic annealing on the exact model's item space (a continuous, global search).

A fixed placement of a window is a multi-way, multi-dimensional number partition
(:mod:`~sieveopt.placement.anneal`); every discrete local search tried stops ~1.4 % above the
planted optimum of a planted instance (design note, rounds 5-7). This module tries the
continuous route instead: a *soft* assignment ``X[i, g]`` (item i's probability of GPU g) on the
transport polytope ``sum_g X[i, g] = 1`` (active items), ``sum_i X[i, g] <= capacity``, and a
mean-field energy minimised while a temperature is lowered (deterministic annealing: Rose,
"Deterministic annealing for clustering, compression, classification, regression, and related
optimization problems", Proc. IEEE 86, 1998; softassign: Gold and Rangarajan, "A graduated
assignment algorithm for graph matching", IEEE TPAMI 18, 1996, with Sinkhorn balancing as the
projection onto the polytope).

Energy. With item i on GPU g independently with probability ``X[i, g]`` the load of (step t,
GPU g, level k) has mean ``mu = sum_i c[t, i, g, k] X[i, g]`` and variance ``sum_i c^2 X (1 - X)``
(within a GPU; the covariances across GPUs are dropped). The smoothed window objective is
``mean_t tau * log sum_{g, k} exp(mu / tau)`` (the annealing's log-sum-exp, over levels too),
and its second-order (delta-method) expectation under X adds
``gamma / (2 tau) * mean_t sum_{g, k} P[t, g, k] * var`` with ``P`` the softmax weights of
the log-sum-exp. Why the variance term: the first term alone is convex, so its annealed minimum is
the fractional LP-like optimum (which rounds badly: design note, round 5, LP rounding 97-100 us
before annealing); the variance term is a concave self-amplification ``x (1 - x)`` (Gold and
Rangarajan's device to drive the soft assignment to a vertex), weighted by each item's squared
cost on the near-critical GPUs, and it is exactly zero at integral X. ``P`` is held fixed in the
gradient of the variance term (a fixed-point iteration, as in mean-field annealing).

Iteration: an entropic mirror-descent step on the free energy ``E(X) - T H(X)``,
``X <- Sinkhorn(X exp(-eta (grad + T log X)))``, whose fixed point is softassign's
``X = Sinkhorn(exp(-grad / T))``. Why not the plain softassign update: with the energy's steep
gradients it jumps between vertices; on the planted instance it stayed at integrality 0.14 and
rounded to +32 % (damping 0.5; design note, round 8). The entropy temperature ``T`` and the
smoothing ``tau`` fall geometrically (fractions of the mean item cost); the end point is rounded
by an exact assignment (Hungarian method on capacity-expanded slots, maximising ``sum log X``).
The result is a placement, not a bound. Deterministic for a seed (no clock inside an iteration;
a wall-clock cap stops between them). Replica items are not handled: the items with ``active``
False stay unused (GEM's space when the active items are the experts' single copies).

Measured (design note, round 8): on the headline window it reaches 84.7-85.0 us alone (6 000
iterations, 8-15 s), near the annealing (84.5-84.6 us in ~10 s); as a start for the annealing it
does not beat the annealing at equal time (headline 84.45-84.65 us against 84.44-84.55 us from
GEM; planted instance +1.38-1.47 % against +1.32-1.41 % from round-robin, seeds 0-3). It is
therefore not used by the exact optimiser.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from sieveopt.placement.anneal import as_levels, as_table


@njit(cache=True, nogil=True)
def _sinkhorn(logk, row, cap, iters, tol):  # noqa: ANN001, ANN202 (numba)
    """Log-domain Sinkhorn onto {rows = row, columns <= cap}; returns (X, iterations, row error)."""
    n, G = logk.shape
    a = np.zeros(n)
    b = np.zeros(G)
    s = np.empty(G)
    err = np.inf
    done = 0
    for _ in range(iters):
        done += 1
        for i in range(n):                                 # rows: exact
            if row[i] <= 0.0:
                a[i] = -np.inf
                continue
            m = -np.inf
            for g in range(G):
                m = max(m, logk[i, g] + b[g])
            z = 0.0
            for g in range(G):
                z += np.exp(logk[i, g] + b[g] - m)
            a[i] = np.log(row[i]) - m - np.log(z)
        for g in range(G):                                 # columns: at most cap (dual v <= 1)
            m = -np.inf
            for i in range(n):
                if row[i] > 0.0:
                    m = max(m, logk[i, g] + a[i])
            z = 0.0
            for i in range(n):
                if row[i] > 0.0:
                    z += np.exp(logk[i, g] + a[i] - m)
            s[g] = m + np.log(z)
            b[g] = min(0.0, np.log(cap[g]) - s[g])
        err = 0.0                                          # row error after the column step
        for i in range(n):
            if row[i] <= 0.0:
                continue
            z = 0.0
            for g in range(G):
                z += np.exp(logk[i, g] + a[i] + b[g])
            err = max(err, abs(z - row[i]))
        if err <= tol:
            break
    X = np.zeros((n, G))
    for i in range(n):
        if row[i] > 0.0:
            for g in range(G):
                X[i, g] = np.exp(logk[i, g] + a[i] + b[g])
    return X, done, err


def sinkhorn(log_kernel: np.ndarray, row: np.ndarray, capacity: np.ndarray | float, *, iters: int = 500,
             tol: float = 1e-9) -> np.ndarray:
    """The KL projection's scaling form of ``exp(log_kernel)`` ``[n, G]`` onto rows summing to
    ``row`` and columns at most ``capacity`` (coordinate ascent on the dual; the column duals
    stay <= 0 for the inequality), until the row error after a column step is at most ``tol`` or
    after ``iters`` sweeps. Rows with ``row == 0`` are zero. Needs ``sum(row) <= sum(cap)``."""
    lk = np.ascontiguousarray(log_kernel, dtype=np.float64)
    r = np.ascontiguousarray(row, dtype=np.float64)
    cap = np.broadcast_to(np.asarray(capacity, dtype=np.float64), (lk.shape[1],)).copy()
    if r.sum() > cap.sum() + 1e-9:
        raise ValueError(f"sinkhorn: row mass {r.sum():g} exceeds the total capacity {cap.sum():g}")
    X, _, _ = _sinkhorn(lk, r, cap, int(iters), float(tol))
    return X


class _Energy:
    """Mean-field energy and gradient of a soft assignment (module docstring). Dense costs are
    kept as ``[G, T*K, n]`` (each pass one matrix-vector product per GPU); token-table costs
    (:func:`~sieveopt.placement.anneal.as_table`) as a sparse step x token-count incidence
    matrix, so a pass sums the soft mass per (step, token count) and multiplies by the
    ``[G, tokens, K]`` table: ~10x fewer operations on the DeepSeek-V3 window."""

    def __init__(self, cost, active: np.ndarray) -> None:  # noqa: ANN001
        if isinstance(cost, tuple):
            from scipy.sparse import csr_matrix

            tok, tab = as_table(cost)
            tok = tok[:, active]
            T, n = tok.shape
            G, _, K = tab.shape
            M = int(tok.max()) + 1
            self.tab1 = np.ascontiguousarray(tab[:, :M, :])                 # [G, M, K]
            self.tab2 = self.tab1 * self.tab1
            rows = (np.arange(T)[:, None] * M + tok).ravel()
            cols = np.tile(np.arange(n), T)
            self.S = csr_matrix((np.ones(T * n), (rows, cols)), shape=(T * M, n))
            self.St = self.S.T.tocsr()
            self.M = M
            self.scale = float(tab.max(axis=2)[:, tok].mean())
        else:
            c = as_levels(cost)
            T, n, G, K = c.shape
            c = np.ascontiguousarray(c[:, active].transpose(2, 0, 3, 1).reshape(G, T * K, int(active.sum())))
            self.c1, self.c2 = c, c * c
            self.S = None
            self.scale = float(c.reshape(G, T, K, -1).max(axis=2).mean())
        self.T, self.G, self.K = T, G, K

    def _loads(self, x: np.ndarray, second: bool) -> np.ndarray:
        """``[G, T, K]`` sums of the (squared, if ``second``) costs weighted by ``x[n, G]``."""
        G, T, K = self.G, self.T, self.K
        if self.S is None:
            c = self.c2 if second else self.c1
            return np.matmul(c, x.T[:, :, None])[:, :, 0].reshape(G, T, K)
        H = (self.S @ x).reshape(T, self.M, G).transpose(2, 0, 1)           # [G, T, M]
        return np.matmul(H, self.tab2 if second else self.tab1)

    def _pull(self, P: np.ndarray, second: bool) -> np.ndarray:
        """``[n, G]``: sum over steps and levels of ``P[G, T, K]`` times each item's (squared) costs."""
        G, T, K = self.G, self.T, self.K
        if self.S is None:
            c = self.c2 if second else self.c1
            return np.matmul(P.reshape(G, 1, T * K), c)[:, 0, :].T
        tab = self.tab2 if second else self.tab1
        Q = np.matmul(P, tab.transpose(0, 2, 1))                            # [G, T, M]
        return self.St @ Q.transpose(1, 2, 0).reshape(T * self.M, G)

    def __call__(self, x: np.ndarray, tau: float, gamma: float) -> tuple[float, np.ndarray]:
        """(energy, gradient ``[n_active, G]``) at ``x[n_active, G]``."""
        T = self.T
        s = self._loads(x, False) / tau                                     # [G, T, K]
        m = s.max(axis=(0, 2))                                              # [T]
        e = np.exp(s - m[None, :, None])
        z = e.sum(axis=(0, 2))
        P = e / z[None, :, None]
        f = float(np.mean(tau * (m + np.log(z))))
        grad = self._pull(P, False) / T
        if gamma > 0:
            var = self._loads(x * (1 - x), True)
            f += gamma / (2 * tau) * float((P * var).sum() / T)
            grad = grad + gamma / (2 * tau) * (1 - 2 * x) * (self._pull(P, True) / T)
        return f, grad


def round_assignment(X: np.ndarray, capacity: int, active: np.ndarray | None = None) -> np.ndarray:
    """Integral assignment maximising ``sum log X[i, a_i]`` with at most ``capacity`` items per
    GPU (Hungarian method on capacity-expanded slots); inactive rows get -1."""
    from scipy.optimize import linear_sum_assignment

    n, G = X.shape
    act = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    if act.sum() > G * capacity:
        raise ValueError(f"round_assignment: {int(act.sum())} items exceed {G} GPUs x {capacity} slots")
    cost = -np.log(np.maximum(X[act], 1e-300))
    rows, cols = linear_sum_assignment(np.repeat(cost, capacity, axis=1))
    out = np.full(n, -1, dtype=np.int64)
    out[np.flatnonzero(act)[rows]] = cols // capacity
    return out


def softassign(cost, capacity: int, *, active: np.ndarray | None = None, seed: int = 0,  # noqa: ANN001
               iters: int = 600, temp: tuple[float, float] = (0.05, 2e-4),
               tau: tuple[float, float] = (0.5, 0.03), gamma: float = 0.3, step: float = 1.0,
               noise: float = 0.05, start: np.ndarray | None = None, start_weight: float = 0.5,
               sinkhorn_iters: int = 200, time_limit_s: float | None = None,
               ) -> tuple[np.ndarray, dict]:
    """Deterministic annealing of a soft assignment, rounded; returns (assignment, stats).

    ``cost``: ``[T, items, G]``, ``[T, items, G, K]`` or a ``(tokens, table)`` pair
    (:func:`~sieveopt.placement.anneal.as_table`). ``active``: items to place (default all);
    the others stay -1. ``temp`` and ``tau`` (start, end): the entropy temperature and the
    log-sum-exp smoothing as fractions of the mean item cost (the mean over steps and GPUs of
    an item's largest level cost), geometric over ``iters`` iterations. ``gamma``: weight of
    the variance term. ``step``: each iteration is an entropic mirror-descent step on the free
    energy ``E(X) - T H(X)``, ``X <- Sinkhorn(X exp(-eta (grad + T log X)))`` with ``eta`` =
    ``step`` / (median over items of the gradient's spread across GPUs), at most ``1 / T``
    (where it is the plain softassign update ``Sinkhorn(exp(-grad / T))``). ``noise``: standard
    deviation of the seeded Gaussian noise added to the start's log kernel (breaks the symmetry
    of identical GPUs). ``start``/``start_weight`` w in (0, 1]: begin at the projection of
    ``(1 - w) onehot(start) + w / G`` instead of uniform (every active item placed in ``start``).
    ``time_limit_s``: stop between iterations (then round what is there)."""
    t0 = time.perf_counter()
    if isinstance(cost, tuple):
        n, G = int(np.shape(cost[0])[1]), int(np.shape(cost[1])[0])
    else:
        n, G = int(np.shape(cost)[1]), int(np.shape(cost)[2])
    act = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    na = int(act.sum())
    if na > G * capacity:
        raise ValueError(f"softassign: {na} items exceed {G} GPUs x {capacity} slots (capacity)")
    if capacity < 1:
        raise ValueError(f"softassign: capacity must be >= 1 slot per GPU, got {capacity}")
    if start is not None:
        if not 0.0 < start_weight <= 1.0:
            raise ValueError(f"softassign: start_weight must be in (0, 1], got {start_weight}")
        st0 = np.asarray(start)[act]
        if np.any((st0 < 0) | (st0 >= G)):
            raise ValueError("softassign: start must place every active item on a GPU 0..G-1")
    energy = _Energy(cost, act)
    scale = energy.scale                                          # mean item cost (ns)
    rng = np.random.default_rng(seed)
    row = np.ones(na)
    capv = np.full(G, float(capacity))
    if start is not None:
        X = np.full((na, G), start_weight / G)
        X[np.arange(na), st0] += 1.0 - start_weight
        X = sinkhorn(np.log(X) + noise * rng.standard_normal((na, G)), row, capv, iters=sinkhorn_iters)
    else:
        X = sinkhorn(noise * rng.standard_normal((na, G)), row, capv, iters=sinkhorn_iters)
    done = 0
    f = np.nan
    for k in range(int(iters)):
        fr = k / max(1, iters - 1)
        Tk = temp[0] * (temp[1] / temp[0]) ** fr * scale
        tk = tau[0] * (tau[1] / tau[0]) ** fr * scale
        f, grad = energy(X, tk, gamma)
        lx = np.log(np.maximum(X, 1e-300))
        spread = float(np.median(grad.max(axis=1) - grad.min(axis=1)))
        eta = min(step / max(spread, 1e-12), 1.0 / Tk)
        X = sinkhorn(lx - eta * (grad + Tk * lx), row, capv, iters=sinkhorn_iters)
        done += 1
        if time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s:
            break
    full = np.zeros((n, G))
    full[act] = X
    a = round_assignment(full, capacity, act)
    stats = {"iters": done, "energy": f, "integrality": float(X.max(axis=1).mean()),
             "seconds": time.perf_counter() - t0}
    return a, stats
