"""Multilevel coarsening on the exact placement model (sieveopt.placement.multilevel)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sieveopt.placement.exact import objective
from sieveopt.placement.multilevel import (
    anneal_sized,
    coarsen,
    deviation_vectors,
    hierarchy,
    multilevel,
    vcycle,
)


def _instance(seed: int, T: int, n: int, G: int, K: int) -> np.ndarray:
    """Random level costs ``[T, n, G, K]`` with GPU speed factors (a GPU's costs scaled)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(1.0, 10.0, (T, n, 1, K)) * rng.uniform(0.5, 1.5, (1, n, 1, 1))
    return base * rng.uniform(1.0, 1.15, (1, 1, G, 1))


def _valid(a: np.ndarray, G: int, cap: int, placed: np.ndarray) -> None:
    assert np.all(a[placed] >= 0) and np.all(a[placed] < G)               # every item on one GPU
    assert np.all(a[~placed] == -1)
    assert np.bincount(a[placed], minlength=G).max() <= cap                 # HBM slots


@pytest.mark.parametrize(("seed", "n", "G", "cap"), [(0, 37, 4, 10), (1, 64, 8, 9), (2, 50, 3, 17),
                                                     (3, 23, 5, 6), (4, 40, 8, 5)])
def test_construction_places_every_item_once_within_capacity(seed, n, G, cap):
    c = _instance(seed, 4, n, G, 3)
    a, st = multilevel(c, cap, seed=seed, iters_per_item=200)
    _valid(a, G, cap, np.ones(n, dtype=bool))
    # each level starts from its parent's GPUs and the annealing returns no worse: values fall
    assert all(x >= y - 1e-6 for x, y in itertools.pairwise(st["objective_ns"]))
    assert st["objective_ns"][-1] == pytest.approx(objective(c, a))
    items = np.arange(0, n, 2)                                               # a subset of the items
    b, _ = multilevel(c, cap, seed=seed, iters_per_item=200, items=items)
    placed = np.zeros(n, dtype=bool)
    placed[items] = True
    _valid(b, G, cap, placed)


def test_too_many_items_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        multilevel(_instance(0, 2, 10, 2, 1), 4)


def test_deterministic_for_a_seed():
    c = _instance(7, 6, 48, 4, 4)
    a1, s1 = multilevel(c, 14, seed=3, iters_per_item=300)
    a2, s2 = multilevel(c, 14, seed=3, iters_per_item=300)
    assert np.array_equal(a1, a2) and s1 == s2
    v1, _ = vcycle(c, a1, 14, seed=1, iters_per_item=300)
    v2, _ = vcycle(c, a1, 14, seed=1, iters_per_item=300)
    assert np.array_equal(v1, v2)


@pytest.mark.parametrize("seed", range(6))
def test_two_gpus_of_two_slots_reach_the_brute_force_optimum(seed):
    """One step, one level, 4 items, 2 GPUs of 2 slots: the placements are the 3 pairings; the
    coarsening matches the pair whose deviations cancel best, which is the pairing that balances
    the two GPUs (identical GPUs: both pairs' deviations are opposite), so the construction is
    optimal; checked against enumeration."""
    rng = np.random.default_rng(seed)
    c = np.repeat(rng.uniform(1.0, 100.0, (1, 4, 1, 1)), 2, axis=2)
    a, _ = multilevel(c, 2, seed=seed, iters_per_item=10)
    best = min(objective(c, np.array(p)) for p in itertools.product(range(2), repeat=4)
               if np.bincount(p, minlength=2).max() <= 2)
    assert objective(c, a) == pytest.approx(best)


def test_coarsening_pairs_cancelling_deviations():
    """Items built as opposite pairs (d, -d) in random order: every match is an opposite pair."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(10, 6))
    dev = np.vstack([d, -d])
    perm = rng.permutation(20)
    par = coarsen(dev[perm], seed=1)
    sums = np.zeros((int(par.max()) + 1, 6))
    np.add.at(sums, par, dev[perm])
    assert par.max() == 9 and np.abs(sums).max() < 1e-12


def test_coarsening_respects_groups_and_odd_counts():
    rng = np.random.default_rng(1)
    dev = rng.normal(size=(15, 4))
    par = coarsen(dev, seed=0)                                   # odd: one item alone
    assert np.bincount(par).tolist().count(1) == 1 and par.max() == 7
    grp = rng.integers(0, 3, 15)
    par = coarsen(dev, seed=0, group=grp)
    for k in range(int(par.max()) + 1):
        assert np.unique(grp[par == k]).size == 1                # pairs stay inside a group


def test_hierarchy_sizes_fit_an_equal_count_per_gpu():
    dev = deviation_vectors(_instance(2, 3, 45, 4, 2))
    parents, tree = hierarchy(dev, 4, seed=0)
    assert len(parents) == 3 and tree.sum() == 32                # 45 // 4 = 11 -> 2^3 = 8 per GPU
    size = np.ones(45, dtype=np.int64)
    for par in parents:
        size = np.bincount(par, weights=size).astype(np.int64)
    assert sorted(size.tolist()) == [1] * 13 + [8] * 4


def test_sized_annealing_keeps_slot_capacity_and_never_worsens():
    c = _instance(5, 3, 12, 3, 2)
    size = np.array([3, 1, 2, 1, 1, 2, 3, 1, 1, 2, 1, 2])
    a0 = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    cap = 8
    assert np.bincount(a0, weights=size).max() <= cap
    a, v = anneal_sized(c, size, a0, cap, iters=5_000, seed=0)
    assert np.bincount(a, weights=size, minlength=3).max() <= cap
    assert v <= objective(c, a0) + 1e-9 and v == pytest.approx(objective(c, a))


def test_vcycle_never_worse_and_keeps_unused_items():
    c = _instance(9, 5, 30, 4, 3)
    a0 = np.arange(30) % 4
    a0[[3, 17]] = -1                                             # unused items stay unused
    a, st = vcycle(c, a0, 8, seed=0, iters_per_item=300)
    _valid(a, 4, 8, a0 >= 0)
    assert objective(c, a) <= objective(c, a0) + 1e-6
