"""The REM ground-state estimate against brute force on small Gaussian instances."""

from __future__ import annotations

import itertools
from math import exp, log

import numpy as np
import pytest

from sieveopt.placement.ground_state import (
    _log_simplex_volume_unit,
    dominant_level_costs,
    log_count_below,
    log_placements,
    rem_excess_ns,
)


def _all_excesses(x: np.ndarray) -> np.ndarray:
    """Mean straggler excess of every labelled balanced 2-GPU placement of ``x[T, n]``, sorted."""
    n = x.shape[1]
    tot = x.sum(axis=1)
    idx = np.array(list(itertools.combinations(range(n), n // 2)))
    first = x[:, idx].sum(axis=2)
    v = (np.maximum(first, tot[:, None] - first) - tot[:, None] / 2).mean(axis=0)
    return np.sort(v)


def test_simplex_volume_matches_the_regular_triangle_and_segment() -> None:
    assert exp(_log_simplex_volume_unit(2)) == pytest.approx(2 * 2 ** 0.5)        # |z| <= sqrt 2
    assert exp(_log_simplex_volume_unit(3)) == pytest.approx(3 ** 0.5 / 4 * 18)    # edge 3 sqrt 2


@pytest.mark.parametrize("steps", [3, 4, 6])
def test_counts_and_ground_state_match_brute_force(steps: int) -> None:
    rng = np.random.default_rng(steps)
    x = rng.normal(100.0, 20.0, size=(steps, 20))
    v = _all_excesses(x)          # each subset once: labelled placements come in equal pairs
    lnN = log_placements(20, 2)
    assert lnN == pytest.approx(log(184756))
    for rank in (100, 500):       # placements at or below the excess of the rank-th subset: 2 rank
        predicted = exp(log_count_below(x, 2, float(v[rank - 1]), log_placements=lnN))
        assert 2 * rank / 4 < predicted < 2 * rank * 4
    assert 0.5 < rem_excess_ns(x, 2) / v[0] < 2.0


def test_more_steps_raise_the_estimate_and_bad_input_is_named() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 20.0, size=(16, 64))
    assert rem_excess_ns(x[:4], 4) < rem_excess_ns(x[:8], 4) < rem_excess_ns(x, 4)
    with pytest.raises(ValueError, match="excess_ns"):
        log_count_below(x, 4, 0.0, log_placements=log_placements(64, 4))
    with pytest.raises(ValueError, match="linearly dependent"):
        rem_excess_ns(np.vstack([x[:2], x[:2]]), 4)


def test_dominant_level_costs_pick_the_level_of_largest_balanced_work() -> None:
    cost = np.zeros((2, 3, 2, 2))
    cost[0, :, :, 1] = 5.0        # step 0: level 1 dominates
    cost[1, :, :, 0] = 7.0        # step 1: level 0 dominates
    x, level = dominant_level_costs(cost)
    assert x.tolist() == [[5.0] * 3, [7.0] * 3]
    assert level.tolist() == [7.5, 10.5]
