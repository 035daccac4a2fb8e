"""Random-energy estimate of how far above perfect balance the best placement can be.

The exact optimiser's gap has two sides: the LP bound (perfect fractional balance every step)
and the incumbent. When no search closes the gap, a user wants to know where the optimum
probably lies. For number partitioning the random-energy model (REM; Mertens, "Phase
transition in the number partitioning problem", PRL 81, 1998) predicts the ground state by
counting: a placement's per-step deviations from balance behave like a Gaussian vector, so the
number of placements whose mean straggler excess is at most ``e`` is about

    N * density(0) * volume{u : mean_t max_g u[t, g] <= e}

and the optimum sits where that count is 1. Here ``u[t, g]`` is GPU g's work at step t minus
the balanced level, ``N`` the number of placements, and the density is the Gaussian's at zero
on the (G - 1)-dimensional balance subspace of every step (steps correlated through the
experts' cost vectors). For one step the region is the regular simplex
``{u : sum_g u_g = 0, u_g <= v}`` (edge ``G sqrt(2) v``); over T steps the Dirichlet integral
gives the volume in closed form.

Simplifications (stated in every report): every GPU at the mean speed, each step at one cost
level (its dominant one), no replicas. It is an *estimate*, not a bound: on brute-forced
small instances cut from the headline window the true optimum lies 1.5-3x above the REM value
where that value is above the cost lattice (design note, "Round 8: where the optimum probably
lies"); it says nothing where the predicted excess is below the lattice step.
"""

from __future__ import annotations

from math import lgamma, log, pi, sqrt

import numpy as np


def _log_simplex_volume_unit(gpus: int) -> float:
    """ln volume of ``{u in R^G : sum u = 0, max u <= 1}`` measured in the (G-1)-dim subspace."""
    n = gpus - 1
    edge = gpus * sqrt(2.0)
    return n * log(edge) - lgamma(n + 1) + 0.5 * (log(n + 1) - n * log(2.0))


def balance_covariance(costs: np.ndarray, gpus: int, *, balanced: bool = True) -> np.ndarray:
    """Covariance ``[T, T]`` of one GPU's work on the balance subspace, per orthonormal direction.

    ``costs[T, E]``: each expert's cost at each step. ``balanced``: uniformly random placements
    with E / G experts per GPU (finite-population formula); else every expert on a uniformly
    random GPU (independent), which also varies the counts.
    """
    x = np.asarray(costs, dtype=np.float64)
    n = x.shape[1]
    if not balanced:
        return x @ x.T / gpus
    m = n // gpus
    d = x - x.mean(axis=1, keepdims=True)
    return (gpus / (gpus - 1)) * m * (n - m) / (n * (n - 1)) * (d @ d.T)


def log_count_below(costs: np.ndarray, gpus: int, excess_ns: float, *, log_placements: float,
                    balanced: bool = True) -> float:
    """REM estimate of ln(number of placements whose mean straggler excess is <= ``excess_ns``)."""
    if excess_ns <= 0:
        raise ValueError(f"excess_ns must be > 0, got {excess_ns}")
    T = costs.shape[0]
    n = gpus - 1
    sign, logdet = np.linalg.slogdet(balance_covariance(costs, gpus, balanced=balanced))
    if sign <= 0:
        raise ValueError("costs: the steps' cost vectors are linearly dependent (drop repeated steps)")
    # density of the nT-dim Gaussian at 0 (covariance K kron I_n) times the region's volume:
    # product over steps of n C v_t^(n-1) dv_t, integrated over sum_t v_t <= T e (Dirichlet).
    log_density = -n * T / 2 * log(2 * pi) - n / 2 * logdet
    log_volume = T * (log(n) + _log_simplex_volume_unit(gpus) + lgamma(n)) + n * T * log(T * excess_ns) \
        - lgamma(n * T + 1)
    return log_placements + log_density + log_volume


def log_placements(experts: int, gpus: int, *, balanced: bool = True) -> float:
    """ln of the number of placements: E! / ((E/G)!)^G balanced, G^E independent."""
    if balanced:
        return lgamma(experts + 1) - gpus * lgamma(experts // gpus + 1)
    return experts * log(gpus)


def rem_excess_ns(costs: np.ndarray, gpus: int, *, balanced: bool = True) -> float:
    """REM ground-state estimate: the mean straggler excess (ns) at which one placement remains."""
    x = np.asarray(costs, dtype=np.float64)
    T = x.shape[0]
    lnN = log_placements(x.shape[1], gpus, balanced=balanced)
    at_1ns = log_count_below(x, gpus, 1.0, log_placements=lnN, balanced=balanced)
    # ln count is affine in ln e with slope n T
    return float(np.exp(-at_1ns / ((gpus - 1) * T)))


def dominant_level_costs(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cost[T, E, G, K]`` (the exact model's table) -> (``[T, E]`` GPU-mean cost at each step's
    dominant level, ``[T]`` balanced per-GPU work at that level)."""
    mean = np.asarray(cost, dtype=np.float64).mean(axis=2)           # [T, E, K]
    level_work = mean.sum(axis=1) / cost.shape[2]                     # [T, K]
    k = level_work.argmax(axis=1)
    return mean[np.arange(cost.shape[0]), :, k], level_work.max(axis=1)
