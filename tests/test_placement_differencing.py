"""Multi-way, multi-dimensional differencing (sieveopt.placement.differencing)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sieveopt.placement.differencing import best_relabelling, differencing, differencing_starts
from sieveopt.placement.exact import objective


def _one_dim(values: list[float], G: int) -> np.ndarray:
    """1-D numbers as identical-GPU costs ``[1, n, G, 1]``."""
    return np.repeat(np.asarray(values, dtype=float).reshape(1, -1, 1, 1), G, axis=2)


def _sums(c: np.ndarray, a: np.ndarray, G: int) -> list[float]:
    return sorted(float(c[0, a == g, 0, 0].sum()) for g in range(G))


def test_karmarkar_karp_one_dimensional_two_way() -> None:
    # KK on {8, 7, 6, 5, 4}: 8-7 -> {6,5,4,1}; 6-5 -> {4,1,1}; 4-1 -> {3,1}; 3-1 -> difference 2
    # (the optimum is 0: {8,7} vs {6,5,4}); LDM from single items reproduces it
    c = _one_dim([8, 7, 6, 5, 4], 2)
    a = differencing(c, 5, balanced=False)
    lo, hi = _sums(c, a, 2)
    assert hi - lo == 2
    assert sorted(np.bincount(a, minlength=2).tolist()) == [2, 3]


def test_karmarkar_karp_three_way_known_result() -> None:
    # 3-way LDM on {8, 7, 6, 5, 4}: (8,0,0)+(7,0,0) -> (8,7,0); + (6,0,0) -> (8,7,6) ~ (2,1,0);
    # (5,0,0)+(4,0,0) -> (5,4,0); + (2,1,0) -> {5,6}, {4,7}, {8}: sums 11, 11, 8
    c = _one_dim([8, 7, 6, 5, 4], 3)
    a = differencing(c, 5, balanced=False)
    assert _sums(c, a, 3) == [8.0, 11.0, 11.0]


def test_balanced_version_keeps_counts_equal() -> None:
    rng = np.random.default_rng(3)
    for G, m in ((2, 10), (4, 24), (8, 64)):
        c = rng.uniform(1, 100, size=(3, m, G, 2))
        for spread in ("l2", "max"):
            a = differencing(c, m // G, balanced=True, spread=spread)
            assert np.bincount(a, minlength=G).tolist() == [m // G] * G


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("labels", ["gpu", "end"])
def test_valid_placements_on_random_instances(balanced: bool, labels: str) -> None:
    rng = np.random.default_rng(7)
    for trial in range(6):
        T, n, G, K = 4, int(rng.integers(9, 40)), int(rng.integers(2, 6)), int(rng.integers(1, 4))
        cap = -(-n // G) + int(rng.integers(0, 3))
        speed = rng.uniform(0.9, 1.0, size=G)
        c = rng.exponential(5.0, size=(T, n, 1, K)) * speed[None, None, :, None]
        use = rng.random(n) < 0.85
        a = differencing(c, cap, use=use, balanced=balanced, labels=labels, noise=0.1 * (trial % 3), seed=trial,
                         spread=("l2", "max")[trial % 2], exact_last=2 * (trial % 2), partners=1 + trial % 3,
                         level_width=trial % 2)
        assert np.all(a[use] >= 0) and np.all(a[~use] == -1)          # each item once, unused ones not
        assert np.bincount(a[use], minlength=G).max() <= cap           # capacity respected
        assert np.all(a < G)


def test_capacity_is_repaired_when_no_pairing_fits() -> None:
    # LDM from single items can meet two tuples no pairing of which fits: the result still fits
    rng = np.random.default_rng(11)
    c = rng.exponential(1.0, size=(2, 12, 3, 1))
    c[:, :4] *= 50                                                     # four big items
    a = differencing(c, 4, balanced=False)
    assert np.bincount(a, minlength=3).max() <= 4 and np.all(a >= 0)


def test_deterministic_by_seed() -> None:
    rng = np.random.default_rng(5)
    c = rng.uniform(1, 10, size=(5, 40, 4, 3))
    a = differencing(c, 12, noise=0.2, seed=4)
    assert np.array_equal(a, differencing(c, 12, noise=0.2, seed=4))
    assert not all(np.array_equal(a, differencing(c, 12, noise=0.2, seed=s)) for s in range(5, 9))
    s1 = differencing_starts(c, 12, runs=4, seed=1, keep=2)
    s2 = differencing_starts(c, 12, runs=4, seed=1, keep=2)
    assert [v for _, v in s1] == [v for _, v in s2] and s1[0][1] <= s1[1][1]
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(s1, s2, strict=True))


def test_best_relabelling_is_the_brute_force_optimum() -> None:
    rng = np.random.default_rng(2)
    W = rng.uniform(0, 10, size=(5, 5, 3))
    perm = best_relabelling(W)
    val = W[np.arange(5), perm].max(axis=0).mean()
    brute = min(W[np.arange(5), list(p)].max(axis=0).mean() for p in itertools.permutations(range(5)))
    assert val == pytest.approx(brute)


def test_exact_last_merges_never_worse_at_the_reference_level() -> None:
    # the last merge's pairing by all G! on the merged max: on a one-level instance (reference
    # level = the level) the last merge can only lower the objective of the same merge sequence
    rng = np.random.default_rng(9)
    worse = 0
    for _ in range(8):
        c = np.repeat(rng.exponential(1.0, size=(6, 24, 1, 1)), 4, axis=2)
        v0 = objective(c, differencing(c, 6))
        v1 = objective(c, differencing(c, 6, exact_last=1))
        worse += v1 > v0 + 1e-9
    assert worse == 0


def test_differencing_beats_random_placements_on_vectors() -> None:
    # 8-way, 16-dimensional random vectors: differencing's straggler excess is well below a random
    # equal-count placement's (the property that makes it a start for the local searches)
    rng = np.random.default_rng(0)
    c = np.repeat(rng.uniform(0, 1, size=(16, 128, 1, 1)), 8, axis=2)
    kk = objective(c, differencing(c, 16))
    rand = np.mean([objective(c, rng.permutation(128) % 8) for _ in range(20)])
    mean = c[:, :, 0, 0].sum(axis=1).mean() / 8
    assert kk - mean < 0.5 * (rand - mean)


def test_bad_arguments_name_the_field() -> None:
    c = np.ones((1, 10, 2, 1))
    with pytest.raises(ValueError, match="capacity"):
        differencing(c, 4)
    with pytest.raises(ValueError, match="spread"):
        differencing(c, 5, spread="l1")
    with pytest.raises(ValueError, match="labels"):
        differencing(c, 5, labels="x")
