"""Fluid-guided constructions from the joint-phase path LP (issue 11, round 9): every construction
is a valid periodic schedule (checked directly and unrolled), reports its own superperiod, stays
at or above the path LP at its modes (a bound for those modes), and is deterministic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sieveopt.overlap import plan_modes
from sieveopt.periodic import check_periodic, check_unrolled
from sieveopt.periodic_fluid import (
    RELEASES,
    SPACINGS,
    TARGETS,
    TASK_TARGETS,
    FluidPlan,
    fluid_constructions,
    fluid_plan,
    fluid_targets_ns,
    schedule_timeline,
)
from sieveopt.periodic_phase_bound import (
    _model,
    cyclic_paths,
    mode_columns,
    path_lp,
    path_lp_primal,
    phase_map,
)
from sieveopt.testing import random_periodic_problem


def _tiny(seed: int = 3, gpus: int = 2):
    return random_periodic_problem(seed, gpus, 2, window_layers=2)


def test_path_lp_primal_matches_path_lp():
    """The decoded optimal point has the LP's value, states summing to it, and each group's work
    (at fixed modes) equal to the group's total on its resource; existing ``path_lp`` unchanged."""
    prob = _tiny()
    modes = plan_modes(prob, "sieve")[0]
    pm, _ = phase_map(prob)
    md = _model(prob, pm, 2)
    u = mode_columns(prob, modes)
    for path in cyclic_paths(pm.phases)[:12]:
        v, _ = path_lp(md, path, u)
        pr = path_lp_primal(md, path, u)
        if math.isinf(v):
            assert pr is None
            continue
        assert pr.value_us == pytest.approx(v)
        assert sum(pr.tau_us) == pytest.approx(v, rel=1e-6)
        for (m, ph, r), work in zip(pr.groups, pr.work_us, strict=True):
            want = sum(t.modes[modes[t.tid]].duration_ns for t in prob.dag.tasks
                       if pm.mb[t.tid] == m and pm.allowed[t.tid] == ph and r in t.modes[modes[t.tid]].resources)
            assert sum(w for _, w in work) == pytest.approx(want * 1e-3, abs=1e-6)
            assert all(path[s][m] in ph for s, _ in work)


@pytest.mark.parametrize("seed,gpus", [(3, 2), (5, 1)])
def test_every_fluid_construction_is_a_valid_periodic_schedule(seed, gpus):
    prob = _tiny(seed, gpus)
    modes = plan_modes(prob, "sieve")[0]
    cons, info = fluid_constructions(prob, modes, best_paths=2)
    assert cons, info
    assert len(info["variants_ns"]) == 2 * (len(TARGETS) + len(TASK_TARGETS)) * (len(SPACINGS) + len(RELEASES))
    assert info["path_lp_ns"] is not None
    for ps in cons:
        assert check_periodic(ps, prob).ok
        assert check_unrolled(prob, ps, 4).ok
        assert ps.superperiod_ns in info["variants_ns"].values()
        # the reported superperiod is the schedule's: every resource's copies fit in it
        assert int(np.max(ps.end_ns - ps.start_ns)) <= ps.superperiod_ns
        assert ps.superperiod_ns >= info["path_lp_ns"]  # the LP at these modes bounds them
    assert [c.superperiod_ns for c in cons] == sorted(c.superperiod_ns for c in cons)


def test_fluid_constructions_are_deterministic():
    prob = _tiny()
    modes = plan_modes(prob, "sieve")[0]
    a, ia = fluid_constructions(prob, modes, best_paths=1, paths=cyclic_paths(4)[:24])
    b, ib = fluid_constructions(prob, modes, best_paths=1, paths=cyclic_paths(4)[:24])
    assert ia == ib
    for x, y in zip(a, b, strict=True):
        assert x.superperiod_ns == y.superperiod_ns
        assert np.array_equal(x.start_ns, y.start_ns)


def test_targets_follow_the_fluid_timeline():
    """Targets lie on the micro-batch's unrolled time line: inside [0, 3 Lambda), dense tasks of
    layer 0 of micro-batch 0 in its phase 0; unknown rules are refused with the choices."""
    prob = _tiny()
    modes = plan_modes(prob, "sieve")[0]
    plan, _ = fluid_plan(prob, modes, best_paths=1, paths=cyclic_paths(4)[:24])
    pr = plan.primals[0]
    lam_ns = sum(pr.tau_us) * 1e3
    a_phase1_ns = None
    for tg in TARGETS:
        key = fluid_targets_ns(prob, modes, plan.pm, pr, tg)
        have = key >= 0
        assert have.any() and key[have].max() < 3 * lam_ns + 1  # B starts in [0, Lambda), may wrap once
        for t in prob.dag.tasks:
            if t.microbatch == 0 and t.layer == 0 and str(t.kind) == "qkv":
                # A's phase 0 starts at the origin; its qkv sits before A's first crossing
                states = [s for s in range(len(pr.path)) if pr.path[s][0] == 0]
                end_ns = sum(pr.tau_us[s] for s in states) * 1e3
                assert 0 <= key[t.tid] <= end_ns + 1, (tg, key[t.tid], end_ns)
                a_phase1_ns = end_ns
    assert a_phase1_ns is not None
    with pytest.raises(ValueError, match="target="):
        fluid_targets_ns(prob, modes, plan.pm, pr, "nope")


def test_schedule_timeline_is_the_schedules_own():
    """A real schedule's timeline in the LP's terms: states sum to its superperiod, each group's
    (each task's) work per state sums to its work and lies in its allowed phases; rounding it
    gives valid schedules."""
    from sieveopt.overlap import solve_overlap

    prob = _tiny()
    ps = solve_overlap(prob, "sieve").schedule
    pm, _ = phase_map(prob)
    for per_task in (False, True):
        pr, owners = schedule_timeline(prob, ps.modes, pm, ps, per_task)
        assert sum(pr.tau_us) == pytest.approx(ps.superperiod_ns * 1e-3)
        assert bool(owners) == per_task
        for gi, ((m, ph, r), work) in enumerate(zip(pr.groups, pr.work_us, strict=True)):
            tasks = [owners[gi]] if per_task else [t.tid for t in prob.dag.tasks if pm.mb[t.tid] == m
                                                   and pm.allowed[t.tid] == ph]
            want = sum(prob.dag.tasks[t].modes[ps.modes[t]].duration_ns for t in tasks
                       if r in prob.dag.tasks[t].modes[ps.modes[t]].resources)
            assert sum(w for _, w in work) == pytest.approx(want * 1e-3, abs=1e-6)
            assert all(pr.path[s][m] in ph for s, w in work if w > 1e-9)
    pr, owners = schedule_timeline(prob, ps.modes, pm, ps, True)
    cons, info = fluid_constructions(prob, ps.modes, plan=FluidPlan(pm, (pr.value_us,),
                                                                   (schedule_timeline(prob, ps.modes, pm, ps)[0],)),
                                     task_primals=([pr], owners))
    assert cons
    for c in cons:
        assert check_periodic(c, prob).ok and check_unrolled(prob, c, 3).ok
