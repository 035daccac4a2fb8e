"""Replica choice in the exact placement model: split/merge annealing moves, cheap-split candidates,
and the bound that holds whichever experts are replicated (round 6, issue 17)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.specs import GpuVariabilitySpec
from sieveopt.placement import Placement, PlacementProblem, Surrogate
from sieveopt.placement.anneal import anneal
from sieveopt.placement.exact import (
    _items,
    objective,
    replica_candidates,
    solve_exact,
    split_excess_ns,
)
from sieveopt.placement.lp_bound import lp_bound, replica_dominance, replica_free_bound
from sieveopt.variability import with_variability


@pytest.fixture(scope="module")
def sur3():
    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 3),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.8, 0.9),
                                                 memory_speed=(1.0, 0.9, 0.85)))
    return Surrogate(model, system, 64)


def _valid(a: np.ndarray, prs: np.ndarray, cap: int, G: int, budget: int) -> None:
    """Each listed expert uses its single item xor both replicas, on distinct GPUs; budget, capacity."""
    assert np.bincount(a[a >= 0], minlength=G).max() <= cap
    for s, x, y in prs:
        assert (a[s] >= 0) != (a[x] >= 0) and (a[x] >= 0) == (a[y] >= 0)
        assert a[x] < 0 or a[x] != a[y]
    assert sum(int(a[x] >= 0) for _, x, _ in prs) <= budget


def test_anneal_splits_an_expert_when_only_a_split_balances():
    """Two GPUs, three equal experts: 20/10 without replicas; splitting the third into two
    halves on different GPUs balances 15/15. Budget 0 (or no pairs) keeps 20."""
    T = 3
    cost = np.zeros((T, 5, 2))
    cost[:, :3, :] = 10.0                              # singles of experts 0, 1, 2
    cost[:, 3:, :] = 5.0                               # expert 2's replica halves
    start = np.array([0, 1, 0, -1, -1])
    twin = np.array([-1, -1, -1, 4, 3])
    prs = np.array([[2, 3, 4]])
    a, v, _ = anneal(cost, start, 3, twin, iters=20_000, seed=0, pairs=prs, budget=1)
    assert v == pytest.approx(15.0) and v == pytest.approx(objective(cost, a))
    assert a[2] == -1 and a[0] != a[1] and {int(a[3]), int(a[4])} == {0, 1}
    _valid(a, prs, 3, 2, 1)
    for kw in ({"pairs": prs, "budget": 0}, {}):
        b, vb, _ = anneal(cost, start, 3, twin, iters=20_000, seed=0, **kw)
        assert vb == pytest.approx(20.0) and (b[3:] == -1).all()


def test_anneal_split_merge_valid_seeded_never_worse(sur3):
    rng = np.random.default_rng(5)
    E, T, G, cap, budget = 12, 6, 3, 6, 3
    loads = rng.integers(0, 20, size=(T, E))
    it = _items(loads, np.arange(E))                               # every expert may be split
    prs = np.array([(it.single[e], *it.pair[e]) for e in sorted(it.pair)])
    twin = np.full(it.expert.size, -1)
    for x, y in it.pair.values():
        twin[x], twin[y] = y, x
    start = np.full(it.expert.size, -1)
    start[:E] = np.arange(E) % G
    start[[0, 1]] = -1                                             # two experts start split
    start[list(it.pair[0])] = (0, 1)
    start[list(it.pair[1])] = (2, 0)
    cost = (it.tokens, sur3.level_ns)
    a, v, _ = anneal(cost, start, cap, twin, iters=30_000, seed=3, pairs=prs, budget=budget)
    b, vb, _ = anneal(cost, start, cap, twin, iters=30_000, seed=3, pairs=prs, budget=budget)
    assert np.array_equal(a, b) and v == vb                        # seeded: reproducible
    dense = sur3.level_costs(it.tokens)
    assert v <= objective(dense, start) + 1e-9 and v == pytest.approx(objective(dense, a))
    _valid(a, prs, cap, G, budget)
    # a start over the budget only loses pairs
    c, _, _ = anneal(cost, start, cap, twin, iters=30_000, seed=3, pairs=prs, budget=1)
    assert sum(int(c[x] >= 0) for _, x, _ in prs) <= 2


def test_cheap_candidates_are_the_cheapest_splits(sur3):
    loads = np.array([[40, 1, 3, 0, 9], [38, 2, 4, 0, 7], [41, 1, 5, 1, 8]])
    ex = split_excess_ns(loads, sur3.level_ns)
    assert ex.shape == (5,) and (ex >= -1e-6).all()               # splitting never saves surrogate work
    assert ex[0] == ex.max()                                       # the hot (GPU-side) expert: weights twice
    assert list(replica_candidates(loads, sur3.level_ns, 2, "loaded")) == [0, 4]
    cheap = replica_candidates(loads, sur3.level_ns, 2, "cheap")
    assert set(cheap) == set(np.argsort(ex, kind="stable")[:2].tolist()) and 0 not in cheap
    with pytest.raises(ValueError, match="replica_choice"):
        replica_candidates(loads, sur3.level_ns, 2, "hot")


def test_exact_cheap_replicas_never_worse_than_hint_and_bound_valid(sur3):
    """``replica_choice="cheap"``: a valid placement, never worse than the hint, with a bound
    below the brute-force optimum of its item space (candidates' pairs included)."""
    from tests.test_placement import _brute_items

    rng = np.random.default_rng(2)
    E, G, cap = 5, 3, 3
    loads = rng.integers(0, 30, size=(4, E))
    prob = PlacementProblem(E, G, cap, 1, sur3, time_limit_s=20, workers=2)
    hint = Placement(np.arange(E), np.arange(E) % G, E, G, cap, "rr")
    res = solve_exact(loads, prob, hints=[hint], replica_choice="cheap")
    assert res.meta["replica_choice"] == "cheap" and res.placement.replicas.max() <= 2
    assert res.objective_ns <= res.hint_objective_ns + 1e-9 <= objective(sur3.level_costs(loads), hint.slot_gpu) + 1e-6
    it = _items(loads, replica_candidates(loads, sur3.level_ns, 1, "cheap"))
    c = np.rint(sur3.level_costs(it.tokens))
    brute = _brute_items(c, it.single, it.pair, G, cap, 1)
    assert res.bound_ns <= brute + E and res.objective_ns >= brute - E
    assert res.meta["replicas_used"] == int((res.placement.replicas == 2).sum())


def _brute_any_replicas(c_pairs: np.ndarray, it, G: int, cap: int) -> float:
    """Optimum over every choice of replicated experts (any number), halves on distinct GPUs."""
    E = it.single.size
    opts = []
    for e in range(E):
        x, y = it.pair[e]
        opts.append([((int(it.single[e]), g),) for g in range(G)]
                    + [((x, g), (y, h)) for g in range(G) for h in range(G) if g != h])
    best = np.inf
    for choice in itertools.product(*opts):
        a = np.full(it.expert.size, -1)
        for item, g in itertools.chain.from_iterable(choice):
            a[item] = g
        if np.bincount(a[a >= 0], minlength=G).max() <= cap:
            best = min(best, objective(c_pairs, a))
    return best


@pytest.mark.parametrize("seed", [0, 4, 7])
def test_replica_free_bound_holds_for_any_replicas(sur3, seed):
    """The per-step LP of one copy per expert, times min(1, rho), is below the optimum over every
    replica choice (brute force), on instances where replicas beat every single-copy placement
    (so a bound of the single-copy space only would fail here)."""
    from tests.test_placement import _brute_mean

    loads = np.random.default_rng(seed).integers(0, 7, size=(2, 3))     # small, PIM-side experts
    it = _items(loads, np.arange(3))
    c = np.rint(sur3.level_costs(it.tokens)).astype(np.int64)[:, :, :2]   # GPUs 0 and 1
    with_replicas = _brute_any_replicas(c.astype(float), it, 2, 3)
    assert with_replicas < _brute_mean(c[:, :3].astype(float), 2, 3) - 1.0
    free = replica_free_bound(c[:, :3], it.single, 3, sur3.level_ns[:2], int(loads.max()))
    assert 0.85 * with_replicas < free <= with_replicas + 1e-6
    assert free <= lp_bound(c[:, :3], it.single, {}, 3, 0) + 1e-6            # per-step mean <= window LP


def test_replica_dominance_on_the_headline_table():
    """rho >= 1 (a pair is dominated by a fractional single copy) up to 200 tokens on the
    DeepSeek-V3 headline system; the window LP with pairs can drop below the one without."""
    from sieveopt.variability import variability_spec

    model = load_model("deepseek-v3")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 8), variability_spec(0.1, seed=0))
    sur = Surrogate(model, system, 256)
    assert replica_dominance(sur.level_ns, 200) >= 1.0
    assert replica_dominance(sur.level_ns, 1) == 1.0
    # counterexample to "the LP without pairs bounds the LP with pairs" (found by random search)
    loads = np.array([[1, 5], [9, 3], [10, 11]])
    it = _items(loads, np.arange(2))
    tab = sur.level_ns[[6, 5]][:, :, [6, 11, 14]]                  # 2 GPUs, 3 levels of the table
    c = np.rint(tab[:, it.tokens].transpose(1, 2, 0, 3)).astype(np.int64)
    with_pairs = lp_bound(c, it.single, it.pair, 2, 2)
    without = lp_bound(c[:, :2], it.single, {}, 2, 0)
    assert with_pairs < without * (1 - 1e-4)
