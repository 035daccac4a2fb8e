"""Softassign / deterministic annealing on the exact placement model (sieveopt.placement.softassign)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sieveopt.placement.exact import objective
from sieveopt.placement.softassign import _Energy, round_assignment, sinkhorn, softassign


@pytest.mark.parametrize("seed", range(4))
def test_sinkhorn_marginals_and_scaling_form(seed):
    """Rows sum to their mass (0-mass rows are zero), columns stay within capacity, X keeps the
    scaling form exp(logk + a_i + b_g), and a column whose dual b_g is below the largest is tight
    (complementary slackness of the inequality: b_g < 0 only on full columns)."""
    rng = np.random.default_rng(seed)
    n, G = 40, 5
    logk = 3.0 * rng.standard_normal((n, G))
    row = np.ones(n)
    row[rng.choice(n, 4, replace=False)] = 0.0
    cap = np.array([12.0, 7.0, 9.0, 10.0, 8.0])                 # 36 of 46 slots needed
    X = sinkhorn(logk, row, cap)
    assert np.allclose(X.sum(axis=1), row, atol=1e-8)
    assert np.all(X.sum(axis=0) <= cap + 1e-8) and np.all(X >= 0)
    on = row > 0
    d = np.log(X[on]) - logk[on]                                  # a_i + b_g
    b = d - d[:, :1]                                              # b_g - b_0, equal for every row
    assert np.allclose(b, b[0], atol=1e-7)
    b = b[0] - b[0].max()
    tight = np.isclose(X.sum(axis=0), cap, atol=1e-6)
    assert np.all(tight[b < -1e-6])
    assert tight.any() and not tight.all()                        # this instance has both kinds


def test_sinkhorn_rejects_more_mass_than_capacity():
    with pytest.raises(ValueError, match="capacity"):
        sinkhorn(np.zeros((5, 2)), np.ones(5), 2.0)


def test_round_assignment_respects_capacity_and_follows_an_integral_x():
    rng = np.random.default_rng(0)
    n, G, cap = 30, 4, 9
    X = sinkhorn(rng.standard_normal((n, G)), np.ones(n), float(cap))
    act = np.ones(n, dtype=bool)
    act[[3, 7]] = False
    a = round_assignment(X, cap, act)
    assert np.all(a[~act] == -1) and np.all(a[act] >= 0)
    assert np.bincount(a[act], minlength=G).max() <= cap
    target = rng.permutation(np.arange(n) % G)                   # feasible: 8 per GPU
    Xi = np.full((n, G), 1e-3)
    Xi[np.arange(n), target] = 1.0
    assert np.array_equal(round_assignment(Xi, cap), target)


def test_energy_gradient_matches_finite_differences():
    """Without the variance term the gradient is the exact gradient of the smoothed objective."""
    rng = np.random.default_rng(1)
    T, n, G, K = 3, 7, 3, 2
    c = rng.uniform(1.0, 10.0, (T, n, G, K))
    E = _Energy(c, np.ones(n, dtype=bool))
    x = sinkhorn(rng.standard_normal((n, G)), np.ones(n), 4.0)
    f, g = E(x, 0.7, 0.0)
    for i, h in [(0, 0), (3, 1), (6, 2)]:
        d = np.zeros_like(x)
        d[i, h] = 1e-6
        num = (E(x + d, 0.7, 0.0)[0] - E(x - d, 0.7, 0.0)[0]) / 2e-6
        assert num == pytest.approx(g[i, h], rel=1e-5)
    # the smoothed value at an integral point is the log-sum-exp of its loads (>= the objective)
    a = np.arange(n) % G
    xi = np.eye(G)[a]
    fi, _ = E(xi, 0.7, 1.0)                                       # variance term 0 at integral X
    assert objective(c, a) <= fi <= objective(c, a) + 0.7 * np.log(G * K) + 1e-9


def _random_instance(rng, T, n, G, K):  # noqa: ANN001, ANN202
    base = rng.uniform(1.0, 10.0, (T, n, 1, K))
    speed = rng.uniform(0.9, 1.1, (1, 1, G, 1))
    return base * speed


@pytest.mark.parametrize("seed", range(3))
def test_softassign_places_every_active_item_once_within_capacity(seed):
    rng = np.random.default_rng(seed)
    T, n, G, K, cap = 4, 23, 4, 3, 7
    c = _random_instance(rng, T, n, G, K)
    act = np.ones(n, dtype=bool)
    act[rng.choice(n, 3, replace=False)] = False
    a, st = softassign(c, cap, active=act, seed=seed, iters=60)
    assert np.all(a[~act] == -1) and np.all((a[act] >= 0) & (a[act] < G))
    assert np.bincount(a[act], minlength=G).max() <= cap
    assert st["iters"] == 60 and 0.0 < st["integrality"] <= 1.0 + 1e-12


def test_softassign_from_a_start_and_bad_input():
    rng = np.random.default_rng(2)
    T, n, G, K, cap = 3, 10, 3, 2, 4
    c = _random_instance(rng, T, n, G, K)
    start = np.arange(n) % G
    a, _ = softassign(c, cap, start=start, start_weight=0.3, iters=40, seed=1)
    assert np.all((a >= 0) & (a < G)) and np.bincount(a, minlength=G).max() <= cap
    bad = start.copy()
    bad[4] = -1
    with pytest.raises(ValueError, match="start must place"):
        softassign(c, cap, start=bad, iters=5)
    with pytest.raises(ValueError, match="start_weight"):
        softassign(c, cap, start=start, start_weight=0.0, iters=5)
    with pytest.raises(ValueError, match="capacity"):
        softassign(c, 3, iters=5)                                 # 10 items > 3 GPUs x 3 slots


def test_softassign_is_deterministic_by_seed_and_reads_token_tables():
    """Same seed, same result; the token-table path computes the same energy and gradient as
    the dense one (the assignments may differ: the iteration amplifies rounding differences)."""
    rng = np.random.default_rng(5)
    T, n, G, K, cap = 3, 12, 3, 2, 5
    tab = np.concatenate([np.zeros((G, 1, K)), rng.uniform(1.0, 9.0, (G, 6, K))], axis=1)
    tok = rng.integers(0, 7, (T, n))
    a1, s1 = softassign((tok, tab), cap, seed=3, iters=50)
    a2, s2 = softassign((tok, tab), cap, seed=3, iters=50)
    assert np.array_equal(a1, a2) and s1["energy"] == s2["energy"]
    a3, _ = softassign((tok, tab), cap, seed=4, iters=50)
    assert np.bincount(a3, minlength=G).max() <= cap
    act = np.ones(n, dtype=bool)
    act[[1, 8]] = False
    dense_c = tab[:, tok].transpose(1, 2, 0, 3)
    x = sinkhorn(rng.standard_normal((n - 2, G)), np.ones(n - 2), float(cap))
    Et, Ed = _Energy((tok, tab), act), _Energy(dense_c, act)
    (ft, gt), (fd, gd) = Et(x, 0.9, 0.3), Ed(x, 0.9, 0.3)
    assert ft == pytest.approx(fd, rel=1e-12) and np.allclose(gt, gd, rtol=1e-10, atol=1e-12)
    assert Et.scale == pytest.approx(Ed.scale, rel=1e-12)


def test_softassign_on_tiny_instances_is_near_the_brute_force_optimum():
    """8 items, 3 GPUs, 3 slots each, 3 steps, 2 levels: over 12 random instances the rounded
    soft assignment (no local search) is within 12 % of the brute-force optimum on every
    instance and within 8 % on the median (measured: max 11.6 %, median 7.2 %), while the mean
    feasible placement is ~18 % above (same instances, so the bound is not met by chance). A few
    coarse items are the hard case for a relaxation; the method is meant as a start for the
    annealing on many items."""
    n, G, cap, T, K = 8, 3, 3, 3, 2
    feas = [np.array(p) for p in itertools.product(range(G), repeat=n)
            if np.bincount(p, minlength=G).max() <= cap]
    excess, rand_excess = [], []
    for s in range(12):
        rng = np.random.default_rng(100 + s)
        c = _random_instance(rng, T, n, G, K)
        vals = np.array([objective(c, p) for p in feas])
        opt = vals.min()
        a, _ = softassign(c, cap, seed=s, iters=300)
        excess.append(objective(c, a) / opt - 1)
        rand_excess.append(vals.mean() / opt - 1)
    assert max(excess) <= 0.12 and np.median(excess) <= 0.08
    assert np.median(rand_excess) >= 0.15
