"""Integral joint-state model (issue 11, round 9): paths, the phase model as a state solution,
the two-stage model and its construction on small instances.

Consistency of value and construction: the *sequenced* model (one task at a time per state and
resource, lags across states from the state's start) is a periodic schedule at its value, so
the exact timing of its orders is never longer than the value; the chain-only model ignores the
order inside a state, so its construction may exceed its value. CP-SAT runs deterministically
(one worker, deterministic time); the assertions compare runs or hold for any solution found."""

from __future__ import annotations

import pytest

from sieveopt.periodic import check_periodic, check_unrolled, resource_loads_ns
from sieveopt.periodic_phase_bound import cyclic_paths, phase_map
from sieveopt.periodic_search import compact, phase_balanced_modes, staggered_schedule
from sieveopt.periodic_states import (
    alternating_path,
    phase_states,
    schedule_states,
    solve_states,
    state_schedule,
    task_options,
    two_stage,
    unrolled_states,
)
from tests import test_periodic_bounds
from tests.test_periodic import _random_problem

tiny_optima = test_periodic_bounds.tiny_optima

#: small M = 2 instances: (seed, GPUs, requests per micro-batch and GPU, M, L)
SMALL = [(4, 2, 4, 2, 2), (22, 1, 4, 2, 2), (5, 2, 2, 2, 1)]


def _valid(prob, ps) -> bool:
    return check_periodic(ps, prob).ok and check_unrolled(prob, ps, 3).ok


@pytest.mark.parametrize("phases", [2, 4, 6])
def test_alternating_path_is_a_path_and_unrolls_forward(phases):
    path = alternating_path(phases)
    assert path in set(cyclic_paths(phases))
    for m in range(2):
        ub = unrolled_states(path, m, phases)
        assert all(b >= a for a, b in zip(ub, ub[1:], strict=False)) and ub[-1] - ub[0] <= phases
        assert [u % phases for u in ub] == [s[m] for s in path]


@pytest.mark.parametrize("args", SMALL)
def test_phase_model_is_a_state_solution_and_the_two_stages_construct_valid_schedules(args):
    prob = _random_problem(*args)
    pm, why = phase_map(prob)
    assert pm is not None, why
    modes, phase_ns = phase_balanced_modes(prob, time_limit_s=2, deterministic=True)
    hint = phase_states(prob, pm, modes, phase_ns)
    assert hint.value_ns == int(phase_ns.sum())
    opts = task_options(prob, pm, hint.path)
    # every task's phase-model state is one of its options in the alternating path
    assert all((s, c) in {o[:2] for o in opts[x]} for x, (s, c) in enumerate(zip(hint.state, hint.copy, strict=True)))
    first, seq = two_stage(prob, hint.path, modes=modes, assign_limit_s=2, sequence_limit_s=2, pm=pm, hint=hint)
    assert first is not None and seq is not None
    assert seq.modes == tuple(modes)
    load = int(resource_loads_ns(prob.dag, modes).max())
    assert seq.value_ns >= first.value_ns >= load  # per-resource capacity in every state
    for sol in (first, seq):
        ps = state_schedule(prob, sol)
        assert ps is not None and _valid(prob, ps) and ps.modes == tuple(modes)
        assert ps.superperiod_ns >= load
    # the sequenced model is a periodic schedule at its value: its construction is no longer
    assert state_schedule(prob, seq).superperiod_ns <= seq.value_ns


def test_free_modes_and_never_below_a_proven_optimum(tiny_optima):
    for prob, opt in tiny_optima:
        pm, _ = phase_map(prob)
        modes, phase_ns = phase_balanced_modes(prob, time_limit_s=2, deterministic=True)
        hint = phase_states(prob, pm, modes, phase_ns)
        first, seq = two_stage(prob, hint.path, assign_limit_s=2, sequence_limit_s=2, pm=pm, hint=hint)
        assert seq is not None
        ps = state_schedule(prob, seq)
        assert _valid(prob, ps)
        assert opt.superperiod_ns <= ps.superperiod_ns <= seq.value_ns
        assert seq.value_ns >= opt.superperiod_ns  # a schedule at its value: never below the optimum


def test_refine_stage_never_worse_and_still_a_schedule():
    prob = _random_problem(*SMALL[0])
    pm, _ = phase_map(prob)
    modes, phase_ns = phase_balanced_modes(prob, time_limit_s=2, deterministic=True)
    hint = phase_states(prob, pm, modes, phase_ns)
    _, seq = two_stage(prob, hint.path, modes=modes, assign_limit_s=1, sequence_limit_s=1, pm=pm, hint=hint)
    _, ref = two_stage(prob, hint.path, modes=modes, assign_limit_s=1, sequence_limit_s=1, refine_limit_s=1,
                       pm=pm, hint=hint)
    assert ref.value_ns <= seq.value_ns
    ps = state_schedule(prob, ref)
    assert _valid(prob, ps) and ps.superperiod_ns <= ref.value_ns


def test_two_stage_is_deterministic():
    prob = _random_problem(*SMALL[0])
    pm, _ = phase_map(prob)
    modes, phase_ns = phase_balanced_modes(prob, time_limit_s=2, deterministic=True)
    hint = phase_states(prob, pm, modes, phase_ns)
    runs = [two_stage(prob, hint.path, modes=modes, assign_limit_s=1, sequence_limit_s=1, pm=pm, hint=hint)
            for _ in range(2)]
    (a1, s1), (a2, s2) = runs
    assert (a1.tau_ns, a1.state, a1.copy) == (a2.tau_ns, a2.state, a2.copy)
    assert (s1.tau_ns, s1.offset_ns) == (s2.tau_ns, s2.offset_ns)
    assert state_schedule(prob, s1).superperiod_ns == state_schedule(prob, s2).superperiod_ns


def test_a_schedule_read_as_states_gives_back_its_orders():
    """schedule_states of the phase construction follows the schedule's own path; its timeline
    keeps the schedule's orders, so the construction is the schedule compacted."""
    for args in SMALL:
        prob = _random_problem(*args)
        pm, _ = phase_map(prob)
        modes, _ = phase_balanced_modes(prob, time_limit_s=2, deterministic=True)
        st = staggered_schedule(prob, modes)
        sol = schedule_states(prob, pm, st)
        assert sol.path in set(cyclic_paths(pm.phases)) and sum(sol.tau_ns) == st.superperiod_ns
        assert all(0 <= o for o in sol.offset_ns)
        ps = state_schedule(prob, sol)
        assert _valid(prob, ps) and ps.superperiod_ns == compact(prob, st).superperiod_ns


def test_three_microbatches_do_not_apply():
    prob = _random_problem(11, 2, 3, 3, 1)
    path = alternating_path(2)
    assert solve_states(prob, path, time_limit_s=1) is None
