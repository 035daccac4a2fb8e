"""Expert placement: Placement invariants, EPLB / GEM / exact policies, forecasts, evaluation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.specs import GpuVariabilitySpec
from sieveopt.placement import (
    PLACEMENT_POLICIES,
    EvalConfig,
    Placement,
    PlacementProblem,
    Surrogate,
    check_capacity,
    drifting_trace,
    forecast_error,
    movement,
    predict,
    run_policy,
)
from sieveopt.placement.exact import objective, solve_exact
from sieveopt.placement.policies import balanced_packing, classify_experts, gem, replicate_experts
from sieveopt.variability import with_variability


@pytest.fixture(scope="module")
def setup():
    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 4),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.7, 1.0, 0.9)))
    trace = drifting_trace(model, 32, 24, 0, [3], segments=2)
    sur = Surrogate(model, system, 32)
    prob = PlacementProblem(128, 4, 40, 8, sur, model.expert_weight_bytes, 900.0, time_limit_s=10, workers=2)
    return model, system, trace, prob


def test_placement_validation():
    with pytest.raises(SpecError, match="no slot"):
        Placement(np.array([0, 1]), np.array([0, 1]), 3, 2, 4)
    with pytest.raises(SpecError, match="capacity"):
        Placement(np.arange(4), np.zeros(4, dtype=int), 4, 2, 3)
    with pytest.raises(SpecError, match="capacity"):
        check_capacity(256, 8, 31)
    check_capacity(256, 8, 32)


def test_replica_split_round_robin():
    p = Placement(np.array([0, 1, 2, 0, 0]), np.array([0, 1, 2, 1, 2]), 3, 3, 2)
    ids = np.array([[0, 1], [0, 2], [0, 1], [2, 0], [0, 1]])
    phys = p.physical_ids(ids)
    assert np.array_equal(p.slots[phys], ids)                       # routing preserved
    per_slot = np.bincount(phys.ravel(), minlength=p.num_slots)
    assert np.array_equal(per_slot, p.slot_tokens(np.bincount(ids.ravel(), minlength=3)))
    assert per_slot[[0, 3, 4]].max() - per_slot[[0, 3, 4]].min() <= 1


def test_balanced_packing_and_replication():
    w = np.array([9.0, 7, 6, 5, 4, 3, 2, 1])
    pack, rank = balanced_packing(w, 2)
    assert np.bincount(pack).tolist() == [4, 4]
    for k in (0, 1):
        assert sorted(rank[pack == k].tolist()) == [0, 1, 2, 3]
    # LPT by hand: 9->A, 7->B, 6->B, 5->A, 4->B, 3->A, 2->A (tie, first pack), 1->B (A full)
    assert [w[pack == 0].sum(), w[pack == 1].sum()] == [19.0, 18.0]
    phy2log, cnt = replicate_experts(np.array([10.0, 4.0, 1.0]), 5)
    assert cnt.tolist() == [3, 1, 1] and sorted(phy2log.tolist()) == [0, 0, 0, 1, 2]
    # greedy replication is optimal for min max per-replica load: check by brute force
    w3 = np.array([10.0, 4.0, 1.0])
    best = min(max(w3 / np.array(c)) for c in itertools.product(range(1, 4), repeat=3) if sum(c) == 5)
    assert max(w3 / cnt) == pytest.approx(best)


def test_policies_are_valid(setup):
    _, _, trace, prob = setup
    loads = trace.counts()[:8, 0, :]
    for name, fn in PLACEMENT_POLICIES.items():
        if name == "exact":
            continue
        p = fn(loads, prob)
        assert p.replicas.min() >= 1 and p.slots_per_gpu().max() <= prob.capacity
    e = PLACEMENT_POLICIES["eplb"](loads, prob)
    assert e.num_slots == 136 and (e.slots_per_gpu() == 34).all()
    g = gem(loads, prob)
    assert (g.replicas == 1).all() and (g.slots_per_gpu() == 32).all()


def test_gem_beats_round_robin_on_its_window(setup):
    _, _, trace, prob = setup
    loads = trace.counts()[:8, 0, :]
    sur = prob.surrogate
    rr = PLACEMENT_POLICIES["round-robin"](loads, prob)
    g = gem(loads, prob)
    assert sur.step_times(g, loads).mean() <= sur.step_times(rr, loads).mean()


def test_exact_matches_brute_force_and_beats_hint():
    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 2),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.6)))
    sur = Surrogate(model, system, 64)
    rng = np.random.default_rng(1)
    E, T = 6, 3
    loads = rng.integers(0, 40, size=(T, E))
    prob = PlacementProblem(E, 2, 4, 0, sur, time_limit_s=20, workers=2)
    hint = Placement(np.arange(E), np.arange(E) % 2, E, 2, 4, "rr")
    res = solve_exact(loads, prob, hints=[hint])
    assert res.status == "OPTIMAL" and res.gap <= 1e-6
    cost = sur.level_costs(loads)
    brute = min(objective(cost, np.array(a)) for a in itertools.product(range(2), repeat=E)
                if max(np.bincount(a, minlength=2)) <= 4)
    assert res.objective_ns == pytest.approx(brute, rel=1e-6)
    assert res.objective_ns <= res.hint_objective_ns + 1e-9
    assert res.hint_objective_ns <= res.meta["given_hint_objective_ns"] + 1e-9   # polish never worse
    assert res.meta["given_hint_objective_ns"] == pytest.approx(objective(cost, hint.slot_gpu))
    assert res.bound_ns <= res.objective_ns + E  # rounding slack of integer costs


def test_exact_speed_aware_not_worse_than_blind():
    """GEM's first insight, certified: the optimum for the real speeds is never worse than the
    optimum computed as if GPUs were identical, both scored at the real speeds."""
    model = load_model("qwen3-30b-a3b")
    slow = with_variability(load_system("sieve-b200-hbm3e-pim", 2),
                            GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.5), memory_speed=(1.0, 0.5)))
    loads = np.array([[200, 150, 3, 2, 1, 40], [180, 160, 2, 4, 0, 30], [220, 120, 1, 3, 2, 50]])
    aware = PlacementProblem(6, 2, 4, 0, Surrogate(model, slow, 256), time_limit_s=20, workers=2)
    blind = PlacementProblem(6, 2, 4, 0, Surrogate(model, load_system("sieve-b200-hbm3e-pim", 2), 256),
                             time_limit_s=20, workers=2)
    ra, rb = solve_exact(loads, aware), solve_exact(loads, blind)
    assert ra.status == rb.status == "OPTIMAL"
    cost = aware.surrogate.level_costs(loads)
    assert ra.objective_ns <= objective(cost, rb.placement.slot_gpu) + 1e-9
    # the slow GPU gets less GPU-side (hot) work than the fast one
    hot = loads.mean(axis=0) > 100
    assert hot[ra.placement.slot_gpu == 0].sum() >= hot[ra.placement.slot_gpu == 1].sum()


def test_exact_cvar_and_balance_run():
    model = load_model("qwen3-30b-a3b")
    system = load_system("sieve-b200-hbm3e-pim", 2)
    sur = Surrogate(model, system, 64)
    loads = np.random.default_rng(2).integers(0, 40, size=(6, 8))
    prob = PlacementProblem(8, 2, 5, 0, sur, time_limit_s=10, workers=2)
    for kind in ("cvar", "balance"):
        res = solve_exact(loads, prob, objective_kind=kind)
        assert res.status == "OPTIMAL" and res.placement.slots_per_gpu().max() <= 5


def test_movement_counts_new_holders():
    a = Placement(np.arange(4), np.array([0, 0, 1, 1]), 4, 2, 3)
    b = Placement(np.arange(4), np.array([0, 1, 1, 0]), 4, 2, 3)
    mv = movement(a, b, expert_bytes=1e9, link_GBps=100.0)
    assert mv["moved_experts"] == 2 and mv["time_ns"] == pytest.approx(1e7)
    assert movement(a, a, 1e9, 100.0)["moved_experts"] == 0


def test_predictors_and_errors():
    H = np.array([[4.0, 0.0], [2.0, 2.0], [0.0, 4.0]])
    assert predict("last", H).tolist() == [[0.0, 4.0]]
    assert predict("mean", H, window=2).tolist() == [[1.0, 3.0]]
    ema = predict("ema", H)[0]
    assert ema[0] == pytest.approx(0.7 * (0.3 * 2 + 0.7 * 4))
    assert predict("window", H, window=2).shape == (2, 2)
    f = np.array([[1.0, 3.0]])
    assert forecast_error(predict("oracle", H, future=f), f)["wape"] == 0.0
    with pytest.raises(ValueError):
        predict("nope", H)


def test_classify_experts_consistent_and_temporal():
    L = np.array([[10, 1, 0, 5], [10, 0, 1, 5], [10, 9, 0, 0], [10, 0, 0, 5]], dtype=float)
    _, kind = classify_experts(L)
    assert kind.tolist() == [2, 1, 0, 2]


def test_run_policy_surrogate_and_dag(setup):
    model, system, trace, prob = setup
    r = run_policy(trace, [0], model, system, prob, EvalConfig("eplb", mode="surrogate", history=8,
                                                             replace_every=4), 8)
    s = r.summary(model.num_moe_layers)
    assert r.placements == 2 and s["layer_mean_ns"] > 0 and s["movement"]["moved_experts"] >= 0
    r2 = run_policy(trace, [0], model, system, prob, EvalConfig("gem", mode="dag", history=8), 2)
    assert (r2.layer_ns > 0).all() and (r2.straggler >= 0).all()
    with pytest.raises(SpecError, match="steps"):
        run_policy(trace, [0], model, system, prob, EvalConfig("gem", history=8), 40)


def test_dag_eval_schedule_passes_check(setup):
    from sieveopt.check import check
    from sieveopt.placement.evaluate import _DagTimer

    model, system, trace, prob = setup
    p = PLACEMENT_POLICIES["eplb"](trace.counts()[:8, 0, :], prob)
    timer = _DagTimer(model, system, "sieve", 1024)
    ns, share = timer(p, trace.expert_ids[9, 0], 3, 9)
    dag, res = timer.last
    assert check(res.schedule, dag).ok
    assert ns == res.makespan_ns and 0.0 <= share < 1.0


def test_exact_replication_space_contains_single_copy_space():
    model = load_model("qwen3-30b-a3b")
    sur = Surrogate(model, load_system("sieve-b200-hbm3e-pim", 2), 64)
    loads = np.array([[60, 3, 2, 1], [50, 4, 1, 2], [64, 2, 3, 1]])
    prob = PlacementProblem(4, 2, 3, 2, sur, time_limit_s=20, workers=2)
    one = solve_exact(loads, prob, replicate=0)
    two = solve_exact(loads, prob, replicate=2)
    assert one.status == two.status == "OPTIMAL"
    assert two.objective_ns <= one.objective_ns + 1e-9
    assert (one.placement.replicas == 1).all() and two.placement.replicas.max() <= 2


def test_exact_with_movement_never_worse_than_staying():
    model = load_model("qwen3-30b-a3b")
    sur = Surrogate(model, load_system("sieve-b200-hbm3e-pim", 2), 64)
    loads = np.array([[60, 3, 2, 1], [50, 4, 1, 2], [64, 2, 3, 1]])
    prob = PlacementProblem(4, 2, 3, 0, sur, expert_bytes=1e8, link_GBps=100.0, time_limit_s=20, workers=2)
    prev = Placement(np.arange(4), np.array([0, 0, 1, 1]), 4, 2, 3)
    res = solve_exact(loads, prob, previous=prev, move_weight=0.5)
    stay = objective(sur.level_costs(loads), prev.slot_gpu)
    assert res.objective_ns + res.meta["move_ns"] <= stay + 1e-6
    heavy = solve_exact(loads, prob, previous=prev, move_weight=1e6)   # moving costs more than anything
    assert np.array_equal(heavy.placement.slot_gpu, prev.slot_gpu)


def test_dag_evaluation_honours_gpu_speed(setup):
    """Same routing and placement: GPUs at half speed give a longer Sieve-scheduled layer."""
    model, _, trace, prob = setup
    nominal = load_system("sieve-b200-hbm3e-pim", 4)
    slow = with_variability(nominal, GpuVariabilitySpec(kind="fixed", compute_speed=(0.5,) * 4,
                                                        memory_speed=(0.5,) * 4))
    cfg = EvalConfig("round-robin", mode="dag", history=8)
    fast_ns = run_policy(trace, [0], model, nominal, prob, cfg, 2).layer_ns
    slow_ns = run_policy(trace, [0], model, slow, prob, cfg, 2).layer_ns
    assert (slow_ns > fast_ns).all()


def _brute_mean(cost: np.ndarray, G: int, cap: int, kind: str = "mean", alpha: float = 0.9) -> float:
    E = cost.shape[1]
    return min(objective(cost, np.array(a), kind, alpha) for a in itertools.product(range(G), repeat=E)
               if max(np.bincount(a, minlength=G)) <= cap)


@pytest.mark.parametrize("speeds", [(1.0, 1.0, 1.0), (1.0, 0.8, 1.0)])
def test_exact_bound_never_above_brute_force_optimum(speeds):
    """Every bound the exact optimiser certifies (Jensen cut, CP-SAT's, with GPU symmetry
    breaking where GPUs are identical) stays below the brute-force optimum on tiny windows."""
    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 3),
                              GpuVariabilitySpec(kind="fixed", compute_speed=speeds, memory_speed=speeds))
    sur = Surrogate(model, system, 64)
    E, G, cap = 6, 3, 3
    for seed in range(3):
        loads = np.random.default_rng(seed).integers(0, 48, size=(4, E))
        cost = sur.level_costs(loads)
        brute = _brute_mean(cost, G, cap)
        prob = PlacementProblem(E, G, cap, 0, sur, time_limit_s=20, workers=2)
        res = solve_exact(loads, prob)
        if speeds[0] == speeds[1]:
            assert res.meta["identical_gpu_classes"] == [[0, 1, 2]]
        assert res.status == "OPTIMAL"
        assert res.objective_ns == pytest.approx(brute, rel=1e-6)   # symmetry breaking keeps the optimum
        assert res.bound_ns <= brute + E                              # integer-cost rounding slack
        assert res.meta["jensen_bound_ns"] <= brute + E
        assert res.meta["lp_bound_ns"] <= brute + E


def test_polish_never_worse_keeps_capacity_and_twins():
    from sieveopt.placement.local_search import polish

    rng = np.random.default_rng(5)
    T, n, G, cap = 6, 9, 3, 4
    cost = rng.uniform(0, 10, size=(T, n, G))
    start = np.array([0, 0, 0, 0, 1, 1, 1, 2, -1])
    twin = np.full(n, -1)
    twin[6], twin[7] = 7, 6                      # items 6, 7: one expert's two replicas
    a, val, rounds = polish(cost, start, cap, twin)
    assert val <= objective(cost, start) + 1e-9 and val == pytest.approx(objective(cost, a))
    assert np.bincount(a[a >= 0], minlength=G).max() <= cap and a[6] != a[7] and a[8] == -1
    assert rounds >= 1
    # a local optimum of moves and swaps is never below the brute-force optimum
    full = cost[:, :6, :]
    b, vb, _ = polish(full, np.array([0, 0, 1, 1, 2, 2]), 2, np.full(6, -1))
    assert vb >= _brute_mean(full, G, 2) - 1e-9


def _brute_items(cost: np.ndarray, single: np.ndarray, pair: dict[int, tuple[int, int]], G: int, cap: int,
                 budget: int, kind: str = "mean", alpha: float = 0.9) -> float:
    """Brute-force optimum of the exact model's item space (replica choice included)."""
    best = np.inf
    pe = sorted(pair)
    for ys in itertools.product((0, 1), repeat=len(pe)):
        if sum(ys) > budget:
            continue
        rep = {e for e, y in zip(pe, ys, strict=True) if y}
        active = [int(single[e]) for e in range(single.size) if e not in rep]
        active += [i for e in rep for i in pair[e]]
        for gs in itertools.product(range(G), repeat=len(active)):
            a = np.full(cost.shape[1], -1)
            a[active] = gs
            if np.bincount(a[a >= 0], minlength=G).max() > cap:
                continue
            if any(a[pair[e][0]] == a[pair[e][1]] for e in rep):
                continue
            best = min(best, objective(cost, a, kind, alpha))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_lp_bound_never_above_brute_force_optimum(seed):
    """The HiGHS LP relaxation bound is valid (below the exhaustive optimum of the item space,
    with and without replica candidates) and at least the Jensen relaxation's value."""
    from sieveopt.placement.exact import _items
    from sieveopt.placement.lp_bound import lp_bound

    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 3),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.8, 0.9)))
    sur = Surrogate(model, system, 64)
    rng = np.random.default_rng(seed)
    loads = rng.integers(0, 48, size=(5, 5))
    G, cap = 3, 3
    for cand in (np.array([], dtype=np.int64), np.array([int(np.argmax(loads.mean(axis=0)))])):
        it = _items(loads, cand)
        budget = cand.size
        for c in (np.rint(sur.level_costs(it.tokens)), np.rint(sur.item_costs(it.tokens))):   # overlap, serial
            lb = lp_bound(c.astype(np.int64), it.single, it.pair, cap, budget)
            brute = _brute_items(c, it.single, it.pair, G, cap, budget)
            assert 0 < lb <= brute + 1e-6
            if not cand.size:   # a relaxation of Jensen's: every item at its cheapest GPU, spread evenly
                c4 = c if c.ndim == 4 else c[..., None]
                assert lb >= c4.mean(axis=0).min(axis=1).sum(axis=0).max() / G * (1 - 1e-5)
        # level rows as cuts: starting from one level per (step, GPU) reaches the same LP value
        c = np.rint(sur.level_costs(it.tokens)).astype(np.int64)
        meta: dict = {}
        one = np.zeros((c.shape[0], G, c.shape[3]), dtype=bool)
        one[:, :, 0] = True
        assert lp_bound(c, it.single, it.pair, cap, budget, levels=one, meta=meta) == pytest.approx(
            lp_bound(c, it.single, it.pair, cap, budget), rel=1e-6)
        assert meta["violated"] == 0 and meta["rounds"] >= 2


@pytest.mark.parametrize("seed", range(3))
def test_cvar_lp_bound_never_above_brute_force_optimum(seed):
    """The LP bound of the ``cvar`` objective (mean of the k worst step stragglers, Rockafellar-
    Uryasev form) is valid against the exhaustive optimum of the item space, at least the ``mean``
    LP (the k worst steps average at least the mean), and its level-row cuts converge."""
    from sieveopt.placement.exact import _items, worst_count
    from sieveopt.placement.lp_bound import lp_bound

    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 3),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.8, 0.9)))
    sur = Surrogate(model, system, 64)
    loads = np.random.default_rng(seed).integers(0, 48, size=(6, 5))
    G, cap = 3, 3
    above = 0
    for alpha in (0.5, 0.8):
        k = worst_count(alpha, loads.shape[0])
        assert k == (3 if alpha == 0.5 else 2)
        for cand in (np.array([], dtype=np.int64), np.array([int(np.argmax(loads.mean(axis=0)))])):
            it = _items(loads, cand)
            c = np.rint(sur.level_costs(it.tokens)).astype(np.int64)
            meta: dict = {}
            one = np.zeros((c.shape[0], G, c.shape[3]), dtype=bool)
            one[:, :, 0] = True
            lb = lp_bound(c, it.single, it.pair, cap, cand.size, worst_steps=k, levels=one, meta=meta)
            brute = _brute_items(c, it.single, it.pair, G, cap, cand.size, "cvar", alpha)
            assert 0 < lb <= brute + 1e-6
            mean_lb = lp_bound(c, it.single, it.pair, cap, cand.size)
            assert lb >= mean_lb * (1 - 1e-5)
            above += lb > mean_lb * (1 + 1e-3)                     # the worst steps are heavier
            assert meta["violated"] == 0
            assert lb == pytest.approx(lp_bound(c, it.single, it.pair, cap, cand.size, worst_steps=k), rel=1e-6)
    assert above >= 2


def test_exact_cvar_matches_brute_force_with_a_valid_bound():
    """``objective_kind="cvar"``: annealing, polish, LP bound and CP-SAT on the quantile objective
    reach the exhaustive optimum of a tiny window, and every bound stays below it."""
    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 3),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.8, 1.0)))
    sur = Surrogate(model, system, 64)
    E, G, cap = 6, 3, 3
    for seed in range(2):
        loads = np.random.default_rng(seed).integers(0, 48, size=(8, E))
        cost = sur.level_costs(loads)
        brute = _brute_mean(cost, G, cap, "cvar", 0.75)
        prob = PlacementProblem(E, G, cap, 0, sur, time_limit_s=20, workers=2)
        res = solve_exact(loads, prob, objective_kind="cvar", alpha=0.75)
        assert res.status in ("OPTIMAL", "HINT")
        assert res.objective_ns == pytest.approx(brute, rel=1e-6)
        assert 0 < res.meta["lp_bound_ns"] <= brute + E and res.bound_ns <= brute + E
        assert res.objective_ns >= _brute_mean(cost, G, cap) - 1e-6    # cvar >= the mean optimum


def test_worst_mean_and_weights():
    from sieveopt.placement.anneal import worst_mean, worst_weights

    z = np.array([3.0, 9.0, 1.0, 7.0, 5.0])
    assert worst_mean(z, 2) == pytest.approx(8.0) and worst_mean(z, None) == pytest.approx(5.0)
    assert worst_mean(z, 9) == pytest.approx(5.0)
    assert np.allclose(worst_mean(np.stack([z, -z], axis=1), 2), [8.0, -2.0])   # per column
    w = worst_weights(z, 2, 0.5, floor=0.2)
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w[np.argsort(z)]) > 0)
    assert w.min() >= 0.2 / z.size - 1e-12


def test_anneal_and_polish_on_the_worst_steps():
    """``worst_steps``: the annealing and the polish minimise the mean of the k worst step
    stragglers (seeded, never worse than the start, capacity and twins kept, never below the
    exhaustive optimum, which the annealing reaches on a tiny window)."""
    from sieveopt.placement.anneal import anneal
    from sieveopt.placement.local_search import polish

    rng = np.random.default_rng(11)
    T, n, G, cap = 8, 14, 3, 6
    cost = rng.uniform(0, 10, size=(T, n, G))
    start = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 1, -1])
    twin = np.full(n, -1)
    twin[11], twin[12] = 12, 11
    cv = objective(cost, start, "cvar", 0.75)                   # k = 2 of 8 steps
    a, v, _ = anneal(cost, start, cap, twin, iters=40_000, seed=4, worst_steps=2)
    b, vb, _ = anneal(cost, start, cap, twin, iters=40_000, seed=4, worst_steps=2)
    assert np.array_equal(a, b) and v == vb
    assert v <= cv + 1e-9 and v == pytest.approx(objective(cost, a, "cvar", 0.75))
    assert np.bincount(a[a >= 0], minlength=G).max() <= cap and a[11] != a[12] and a[13] == -1
    p, vp, _ = polish(cost, start, cap, twin, worst_steps=2)
    assert vp <= cv + 1e-9 and vp == pytest.approx(objective(cost, p, "cvar", 0.75))
    assert np.bincount(p[p >= 0], minlength=G).max() <= cap and p[11] != p[12] and p[13] == -1
    small = cost[:, :6, :]
    brute = _brute_mean(small, G, 2, "cvar", 0.75)
    s_, vs, _ = anneal(small, np.array([0, 0, 1, 1, 2, 2]), 2, np.full(6, -1), iters=20_000, seed=0, worst_steps=2)
    assert vs == pytest.approx(brute, rel=1e-9)
    _, vq, _ = polish(small, np.array([0, 0, 1, 1, 2, 2]), 2, np.full(6, -1), worst_steps=2)
    assert vq >= brute - 1e-9


def test_anneal_valid_seeded_never_worse():
    from sieveopt.placement.anneal import anneal

    rng = np.random.default_rng(11)
    T, n, G, cap = 8, 14, 3, 6
    cost = rng.uniform(0, 10, size=(T, n, G))
    start = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 1, -1])
    twin = np.full(n, -1)
    twin[11], twin[12] = 12, 11                        # one expert's two replicas
    a, v, phases = anneal(cost, start, cap, twin, iters=40_000, seed=4)
    b, vb, _ = anneal(cost, start, cap, twin, iters=40_000, seed=4)
    assert np.array_equal(a, b) and v == vb and phases == 20            # seeded: reproducible
    assert v <= objective(cost, start) + 1e-9 and v == pytest.approx(objective(cost, a))
    assert np.bincount(a[a >= 0], minlength=G).max() <= cap and a[11] != a[12] and a[13] == -1
    assert sorted(np.flatnonzero(a >= 0)) == sorted(np.flatnonzero(start >= 0))
    # on a tiny window it reaches the exhaustive optimum, never below it
    small = cost[:, :6, :]
    brute = _brute_mean(small, G, 2)
    s, vs, _ = anneal(small, np.array([0, 0, 1, 1, 2, 2]), 2, np.full(6, -1), iters=20_000, seed=0)
    assert vs == pytest.approx(brute, rel=1e-9)


def test_exact_gem_space_equal_counts_and_bounds():
    """``space="gem"``: E/G experts per GPU, no replicas; its optimum and bounds match the brute
    force over that space (and it is never below the model space's optimum)."""
    model = load_model("qwen3-30b-a3b")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 2),
                              GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.7)))
    sur = Surrogate(model, system, 64)
    loads = np.random.default_rng(3).integers(0, 40, size=(4, 6))
    prob = PlacementProblem(6, 2, 5, 2, sur, time_limit_s=20, workers=2)
    res = solve_exact(loads, prob, space="gem")
    assert res.status == "OPTIMAL" and res.placement.slots_per_gpu().tolist() == [3, 3]
    assert res.placement.num_slots == 6 and res.meta["replica_candidates"] == 0
    cost = sur.level_costs(loads)
    brute = _brute_mean(cost, 2, 3)
    assert res.objective_ns == pytest.approx(brute, rel=1e-6)
    assert res.meta["lp_bound_ns"] <= brute + 6 and res.bound_ns <= brute + 6
    assert brute >= _brute_mean(cost, 2, 5) - 1e-6                  # a subset of the model's space
    with pytest.raises(ValueError, match="space"):
        solve_exact(loads, prob, space="nope")


def test_exact_honours_its_time_limit_and_never_worse_than_the_hint(setup):
    """The time limit covers the whole call: annealing far longer than the limit is cut between
    phases, the LP rounds stop at the deadline and CP-SAT gets only the time left; the result is
    still valid and never worse than the best hint."""
    from sieveopt.placement.exact import exact_with_report

    model, system, trace, prob = setup
    loads = trace.counts()[:16, 0, :]
    limit = 3.0
    res = exact_with_report(loads, prob, time_limit_s=limit, anneal_iters=4_000_000)
    assert res.wall_s <= limit + 1.0                                  # one annealing phase of slack
    assert 1 <= res.meta["anneal_phases"] < 20                        # cut: 4 M steps take longer
    assert res.objective_ns <= res.meta["given_hint_objective_ns"] + 1e-6
    p = res.placement
    assert p.slots_per_gpu().max() <= prob.capacity and sorted(set(p.slots.tolist())) == list(range(128))
    assert 0 <= res.bound_ns <= res.objective_ns + 128


def test_exact_large_model_restarts_annealing_deterministically(setup):
    """A large model (level rows left out) gives its time to annealing restarts from the best after
    the LP bound, skips Jensen's model, and stays deterministic while every round fits: the
    restarts only keep improvements, so the result is never worse than one round's."""
    from sieveopt.placement.exact import FULL_LEVEL_TERMS, LARGE_ANNEAL_ROUNDS, exact_with_report

    model, system, trace, prob = setup
    loads = trace.counts()[:16, 0, :]
    kw = {"time_limit_s": 4.0, "anneal_iters": 30_000}
    res, again = exact_with_report(loads, prob, **kw), exact_with_report(loads, prob, **kw)
    one = exact_with_report(loads, prob, anneal_rounds=1, **kw)
    assert res.meta["anneal_rounds"] == again.meta["anneal_rounds"] == LARGE_ANNEAL_ROUNDS
    assert one.meta["anneal_rounds"] == 1 and 16 * 4 * res.meta["levels"] * res.meta["items"] > FULL_LEVEL_TERMS
    assert res.hint_objective_ns == again.hint_objective_ns <= one.hint_objective_ns
    assert res.meta["jensen_bound_ns"] == 0.0 and "anneal_restarts" in res.meta["stage_s"]
    for r in (res, again, one):
        assert r.wall_s <= 4.0 + 0.5 and r.objective_ns <= r.meta["given_hint_objective_ns"] + 1e-6
        assert 0 <= r.bound_ns <= r.objective_ns + r.meta["items"]


def test_lp_bound_deadline_keeps_the_last_completed_round():
    import time

    from sieveopt.placement.lp_bound import lp_bound

    rng = np.random.default_rng(2)
    c = rng.integers(0, 100, size=(3, 6, 2, 4))
    single = np.arange(6)
    meta: dict = {}
    assert lp_bound(c, single, {}, 4, 0, deadline=time.perf_counter() - 1.0, meta=meta) == 0.0
    assert meta["rounds"] == 0 and meta["violated"] == -1
    full = lp_bound(c, single, {}, 4, 0)
    assert lp_bound(c, single, {}, 4, 0, deadline=time.perf_counter() + 60.0) == pytest.approx(full)
