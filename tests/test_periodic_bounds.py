"""Lower bounds of the periodic problem (issue 11): chain-load cuts, the slot relaxation and
fixed-Lambda probes.

A bound must never exceed an optimum: the references are CP-SAT's proven optima of the exact
periodic model *without* the new cuts or probes, on tiny instances."""

from __future__ import annotations

import pytest

from sieveopt.overlap import HINT_POLICIES, charged_problem, solve_overlap
from sieveopt.periodic import check_periodic, check_unrolled
from sieveopt.periodic_bounds import chain_cuts, cut_slack_ns, slot_bounds, slot_slacks_ns, stretch
from sieveopt.solvers.base import INFEASIBLE, OPTIMAL
from sieveopt.solvers.cpsat_periodic import (
    load_bound_ns,
    probe_superperiod,
    slot_bound_ns,
    solve_periodic_cpsat,
)
from sieveopt.testing import catalog_window
from tests.test_periodic import _random_problem

TINY = [(3, 1, 2, 2, 1), (5, 2, 2, 2, 1), (7, 1, 4, 2, 1)]


def _real(batch: int):
    return catalog_window("qwen3-30b-a3b", 1, batch, window_layers=1)


def _best_hint(prob):
    return min((solve_overlap(prob, p).schedule for p in HINT_POLICIES), key=lambda s: s.superperiod_ns)


@pytest.fixture(scope="module")
def tiny_optima():
    out = []
    for args in TINY:
        prob = _random_problem(*args)
        ps, info = solve_periodic_cpsat(prob, _best_hint(prob), time_limit_s=20, cuts=False, deterministic=True)
        assert info["status"] == OPTIMAL, args
        out.append((prob, ps))
    return out


def test_chain_cuts_hold_on_every_schedule():
    """Every heuristic's (valid) periodic schedule satisfies every cut, on a real instance with a gap."""
    prob = _real(8)
    cuts = chain_cuts(prob)
    assert cuts and all(c.offset_ns >= 0 and c.tasks for c in cuts)
    for p in HINT_POLICIES:
        ps = solve_overlap(prob, p).schedule
        assert check_periodic(ps, prob).ok
        assert min(cut_slack_ns(c, ps, prob) for c in cuts) >= 0, p


def test_bounds_never_exceed_exact_optima(tiny_optima):
    for prob, opt in tiny_optima:
        lam = opt.superperiod_ns
        assert all(cut_slack_ns(c, opt, prob) >= 0 for c in chain_cuts(prob))
        assert load_bound_ns(prob, time_limit_s=3)[0] <= lam
        _, relax = solve_periodic_cpsat(prob, opt, time_limit_s=5, resources=False, cuts=True)
        assert relax["bound_ns"] <= lam
        sb = slot_bounds(prob)
        assert sb.terms and sb.cycles and sb.gaps and sb.dense  # the relaxation is not empty here
        assert min(v for _, v in slot_slacks_ns(sb, opt, prob)) >= 0
        assert slot_bound_ns(prob, time_limit_s=3, workers=1)[0] <= lam
        with_cuts, info = solve_periodic_cpsat(prob, opt, time_limit_s=20, cuts=True, deterministic=True)
        assert info["status"] == OPTIMAL and with_cuts.superperiod_ns == lam  # the cuts remove no optimum
        lo, best, _ = probe_superperiod(prob, 1, opt, time_limit_s=5, deterministic=True)
        assert lo <= lam and best.superperiod_ns == lam
        below, binfo = solve_periodic_cpsat(prob, None, time_limit_s=5, fixed_ns=lam - 1, deterministic=True)
        assert below is None and binfo["status"] in (INFEASIBLE, "UNKNOWN")


def test_feasibility_is_monotone_in_the_superperiod(tiny_optima):
    """The map of the monotonicity proof turns a schedule at Lambda into one at any longer Lambda."""
    prob = _real(8)
    schedules = [(p, s) for p, s in tiny_optima] + [(prob, solve_overlap(prob, q).schedule) for q in ("sieve", "duplex")]
    for pr, ps in schedules:
        for extra in (1, 37, ps.superperiod_ns // 3, ps.superperiod_ns):
            longer = stretch(ps, ps.superperiod_ns + extra)
            assert check_periodic(longer, pr).ok and check_unrolled(pr, longer, 3).ok
    with pytest.raises(ValueError):
        stretch(ps, ps.superperiod_ns - 1)


def test_probes_on_a_real_instance_stay_valid():
    """Qwen3-30B, 1 GPU, B = 8, M = 2 (a 24 % gap for the variable-Lambda model): the probes'
    certified bound stays at or below their best schedule, which checks and is never worse than
    the hint (measured: 32.4 vs 42.5 us in 30 s, BENCHMARKS.md)."""
    prob = _real(8)
    hint = _best_hint(prob)
    lb = load_bound_ns(prob, time_limit_s=3)[0]
    lo, best, info = probe_superperiod(prob, lb, hint, time_limit_s=6)
    assert lb <= lo <= best.superperiod_ns <= hint.superperiod_ns
    assert info["probes"] and check_periodic(best, prob).ok and check_unrolled(prob, best, 3).ok


def _gpt_oss(batch: int, layers: int):
    return catalog_window("gpt-oss-120b", 4, batch, window_layers=layers)


def _three_microbatches_charged():
    """Qwen3-30B, 1 GPU, B = 48, M = 3, L = 1, with sieve's 1 us scheduler charge (sched tasks
    that take time on their own resource)."""
    return charged_problem(catalog_window("qwen3-30b-a3b", 1, 48, 3, window_layers=1), "sieve")[0]


@pytest.mark.parametrize("prob_of", [lambda: _real(8), lambda: _gpt_oss(16, 2), _three_microbatches_charged],
                         ids=["qwen3-30b-1gpu", "gpt-oss-4gpu", "qwen3-30b-M3-charged"])
def test_slot_constraints_hold_on_every_schedule(prob_of):
    """Every heuristic's (valid) periodic schedule meets every slot constraint with its own arcs:
    sync-to-sync and window terms, gaps, cycles, overlap."""
    prob = prob_of()
    sb = slot_bounds(prob)
    kinds = {t.var[0] for t in sb.terms}
    assert kinds == {"D", "W"} and len(sb.cycles) == prob.microbatches
    assert {prob.dag.resources[r].kind for _, r in sb.dense} >= {"gpu"}
    for p in ("sieve", "duplex", "pimoe"):
        ps = solve_overlap(prob, p).schedule
        assert check_periodic(ps, prob).ok
        worst = min(slot_slacks_ns(sb, ps, prob), key=lambda x: x[1])
        assert worst[1] >= 0, (p, worst)


def test_slot_bound_binds_where_a_slot_synchronises_all_gpus():
    """GPT-OSS, 4 GPUs, B = 32, one layer per window: each micro-batch's cycle is one slot, so its
    busiest GPU's expert phase plus its dense chain exceeds the per-resource load. The slot bound
    is above the load bound (measured 38 710 vs 37 095 ns) and below every feasible schedule."""
    prob = _gpt_oss(32, 1)
    load = load_bound_ns(prob, time_limit_s=5, workers=1)[0]
    bound, info = slot_bound_ns(prob, time_limit_s=10, workers=1)
    assert info["status"] == OPTIMAL and bound > load * 1.02
    for p in HINT_POLICIES:
        ps = solve_overlap(prob, p).schedule
        assert check_periodic(ps, prob).ok and bound <= ps.superperiod_ns, p


def test_relaxation_on_one_gpus_resources_never_exceeds_optima(tiny_optima):
    """NoOverlap kept on GPU 0's resources only (``resources=`` a set): its bound never exceeds a
    proven optimum, a fixed-Lambda probe at the optimum is never INFEASIBLE, and it returns no
    schedule (a relaxation's solution need not be one)."""
    for prob, opt in tiny_optima:
        lam = opt.superperiod_ns
        rids = frozenset(r.rid for r in prob.dag.resources if r.name.endswith("[0]"))
        none, info = solve_periodic_cpsat(prob, opt, time_limit_s=2, resources=rids, deterministic=True)
        assert none is None and info["bound_ns"] <= lam
        feas, finfo = solve_periodic_cpsat(prob, None, time_limit_s=2, fixed_ns=lam, resources=rids,
                                           deterministic=True)
        assert feas is None and finfo["status"] != INFEASIBLE


# --------------------------------------------------------------------------------------------
# Joint-phase path relaxation (sieveopt.periodic_phase_bound)


def test_cyclic_paths_match_a_brute_force_enumeration():
    """``2L * C(4L-1, 2L-1)`` paths (140 for L = 2); every walk on the 2L x 2L torus that advances
    each coordinate 2L times, starts with A entering phase 0 and ends with A's last crossing is
    one of them; random boundary times always map onto one, and for L = 1 every path is hit."""
    import itertools
    import math
    import random

    from sieveopt.periodic_phase_bound import cyclic_paths, path_of_boundaries

    for P in (2, 4):
        paths = cyclic_paths(P)
        assert len(paths) == len(set(paths)) == P * math.comb(2 * P - 1, P - 1)
        brute = set()
        for b0 in range(P):
            for steps in itertools.product((0, 1), repeat=2 * P):
                if sum(steps) != P or steps[-1] != 0:  # P steps of B, A's last crossing closes the cycle
                    continue
                a, b, states = 0, b0, [(0, b0)]
                for st in steps[:-1]:
                    a, b = (a + 1, b) if st == 0 else (a, (b + 1) % P)
                    states.append((a, b))
                brute.add(tuple(states))
        assert brute == set(paths)
    assert len(cyclic_paths(4)) == 140
    rng = random.Random(0)
    for P in (2, 4):
        paths, hit = set(cyclic_paths(P)), set()
        for _ in range(3000):
            lam = 1000
            a = [0] + sorted(rng.randrange(0, lam) for _ in range(P - 1))
            off = rng.randrange(-lam, lam)
            b = sorted(rng.randrange(0, lam) for _ in range(P))
            b = [x + off for x in b]
            path, lengths = path_of_boundaries(a, b, lam)
            assert path in paths and sum(lengths) == lam and min(lengths) >= 0
            hit.add(path)
        if P == 2:
            assert hit == paths


def _tiny_two_layers():
    from sieveopt.testing import random_periodic_problem
    return random_periodic_problem(3, 2, 2, window_layers=2)


_PHASE_INSTANCES = {"qwen3-30b-1gpu-L1": lambda: _real(8), "gpt-oss-4gpu-L2": lambda: _gpt_oss(16, 2),
                    "tiny-2gpu-L2": _tiny_two_layers}


@pytest.mark.parametrize("which", list(_PHASE_INSTANCES))
def test_phase_classification_holds_on_heuristic_schedules(which):
    """Each task of sieve's and PIMoE's schedules lies inside its allowed phases, the schedule's own
    boundaries keep every separation and window cut, its path is one of the enumerated ones, and
    the path's LP with the schedule's modes stays at or below its superperiod. A classification
    shifted by one phase (dense work claimed in the expert phase) is caught."""
    from sieveopt.periodic_phase_bound import (
        boundary_times,
        classification_violations,
        cyclic_paths,
        phase_map,
        phase_path_bound,
        schedule_path,
        window_cut_slacks_ns,
    )

    prob = _PHASE_INSTANCES[which]()
    pm, why = phase_map(prob)
    assert pm is not None, why
    P = pm.phases
    assert any(pm.constrained(t) for t in range(len(pm.allowed)))
    kinds = {prob.dag.tasks[t].kind: pm.allowed[t] for t in range(len(pm.allowed)) if prob.dag.tasks[t].microbatch == 0
             and prob.dag.tasks[t].layer == 0}
    assert kinds["qkv"] == kinds["attn"] == kinds["router"] == (0,) and kinds["sched"] == (1,)
    shifted = tuple(ph if len(ph) == P else tuple(sorted((k + 1) % P for k in ph)) for ph in pm.allowed)
    paths = set(cyclic_paths(P))
    caught, tightest, sep_tightest = 0, float("inf"), float("inf")
    for p in ("sieve", "pimoe"):
        ps = solve_overlap(prob, p).schedule
        assert check_periodic(ps, prob).ok
        assert classification_violations(pm, ps) == [], p
        if which == "tiny-2gpu-L2":  # GPU 1's own dense start as the Q-boundaries
            pm1 = phase_map(prob, 1)[0]
            assert classification_violations(pm1, ps) == [] and min(window_cut_slacks_ns(prob, pm1, ps)) >= -1e-3
        caught += bool(classification_violations(pm, ps, shifted))
        b = boundary_times(pm, ps)
        lam = ps.superperiod_ns
        for (m, p0, q), v in pm.sep.items():
            bq = b[m][q % P] + (q // P) * lam
            assert bq - b[m][p0] >= v, (p, m, p0, q)
            sep_tightest = min(sep_tightest, bq - b[m][p0] - v)
        cuts = window_cut_slacks_ns(prob, pm, ps)
        assert cuts and min(cuts) >= -1e-3, (p, min(cuts))
        tightest = min(tightest, min(cuts))
        path, lengths = schedule_path(pm, ps)
        assert path in paths and sum(lengths) == lam
        own, info = phase_path_bound(prob, modes=ps.modes, paths=[path])
        assert own is not None and own <= lam, (p, own, lam)
    assert caught == 2
    # not vacuous: a window cut or a separation 2.5 us stronger would fail on some schedule
    assert tightest < 2500 and sep_tightest < 2500, (tightest, sep_tightest)


def test_phase_path_bound_never_exceeds_exact_optima(tiny_optima):
    from sieveopt.periodic_phase_bound import phase_path_bound

    for prob, opt in tiny_optima:
        bound, info = phase_path_bound(prob)
        assert bound is not None and info["paths"] == 6, info
        assert bound <= opt.superperiod_ns
        fixed, _ = phase_path_bound(prob, modes=opt.modes)
        assert bound <= fixed <= opt.superperiod_ns
        mip, _ = phase_path_bound(prob, mip_s=5)
        assert bound - 1 <= mip <= fixed


def test_phase_path_bound_below_every_schedule_and_only_for_two_microbatches():
    """A random two-GPU window with L = 2 (140 paths): the bound stays below every heuristic's
    superperiod; with three micro-batches the construction says it does not apply."""
    from sieveopt.periodic_phase_bound import phase_path_bound

    prob = _tiny_two_layers()
    bound, info = phase_path_bound(prob)
    assert bound is not None and info["paths"] == 140
    for p in HINT_POLICIES:
        assert bound <= solve_overlap(prob, p).schedule.superperiod_ns, p
    none, info = phase_path_bound(_three_microbatches_charged())
    assert none is None and "M = 2" in info["reason"]
