"""The pipeline runtime's constructive repairs (issue 11, round 6): left shift into idle time,
deferred launches, the chain first on PIM. Every schedule checks (modulo the superperiod and
unrolled), none is longer than what it repairs, the runtime stays deterministic and never
worse than without them."""

from __future__ import annotations

import numpy as np
import pytest

import sieveopt.overlap as overlap
from sieveopt.overlap import charge_scheduler, pipeline_schedule, plan_modes
from sieveopt.periodic import (
    ModuloTable,
    PeriodicSchedule,
    check_periodic,
    check_unrolled,
)
from sieveopt.periodic_search import phase_order_schedule, staggered_schedule
from sieveopt.pipeline_construct import (
    chain_first,
    defer_launch,
    left_shift,
    repaired_schedules,
)
from sieveopt.testing import catalog_window, random_periodic_problem


def _random_problem(seed: int, gpus: int, M: int, L: int = 2, per_mb: int = 2):
    return random_periodic_problem(seed, gpus, M, L, per_mb)


def _paper_problem(name: str, gpus: int, batch: int, M: int):
    """A study window (seed 0, L = 2), the scheduler charged 1 us as sieve-pipe declares."""
    return charge_scheduler(catalog_window(name, gpus, batch, M, runtime_order_evaluations=0), 1000)


def _ok(prob, ps: PeriodicSchedule) -> bool:
    return check_periodic(ps, prob).ok and check_unrolled(prob, ps, 4).ok


@pytest.mark.parametrize("seed,gpus,M,L", [(0, 1, 2, 2), (1, 2, 2, 1), (2, 2, 3, 2), (3, 4, 2, 2), (4, 1, 4, 1)])
def test_every_repair_checks_and_is_never_longer(seed, gpus, M, L):
    prob = _random_problem(seed, gpus, M, L)
    for policy in ("sieve", "sieve-pipe", "pimoe"):
        modes, _ = plan_modes(prob, policy)
        for base in (phase_order_schedule(prob, modes), staggered_schedule(prob, modes)):
            if base is None:
                continue
            shifted = left_shift(prob, base)
            assert shifted.superperiod_ns <= base.superperiod_ns and shifted.modes == base.modes
            for ps in (shifted, defer_launch(prob, base), chain_first(prob, base)):
                if ps is not None:
                    assert ps.modes == tuple(modes) and _ok(prob, ps)
            reps = repaired_schedules(prob, [base])
            assert reps and all(_ok(prob, ps) for ps in reps)
            assert min(ps.superperiod_ns for ps in reps) <= base.superperiod_ns


def test_modulo_table_earliest_matches_a_brute_force_scan():
    rng = np.random.default_rng(3)
    for _ in range(200):
        lam = int(rng.integers(20, 60))
        ring, busy = ModuloTable(2, lam), np.zeros((2, lam), dtype=bool)
        for tid in range(int(rng.integers(0, 6))):
            t, d, rid = int(rng.integers(0, 3 * lam)), int(rng.integers(1, 8)), int(rng.integers(0, 2))
            slots = [(t + k) % lam for k in range(d)]
            if busy[rid, slots].any():
                continue
            busy[rid, slots] = True
            ring.occupy((rid,), t, d, tid)
            if rng.random() < 0.3:  # take it out again
                ring.release((rid,), t, d, tid)
                busy[rid, slots] = False
        t0, d = int(rng.integers(0, 2 * lam)), int(rng.integers(1, 10))
        rids = (0, 1) if rng.random() < 0.5 else (int(rng.integers(0, 2)),)
        want = next((t for t in range(t0, t0 + lam)
                     if not busy[list(rids)][:, [(t + k) % lam for k in range(d)]].any()), None)
        assert ring.earliest(rids, t0, d, t0 + lam) == want


@pytest.mark.parametrize("name,gpus,batch,M,before_ns", [
    ("qwen3-30b-a3b", 1, 16, 2, 85296),     # constructions only: 42.65 us per layer
    ("gpt-oss-120b", 4, 64, 4, 173595),     # 86.80 us per layer
])
def test_repairs_shorten_the_runtime_on_paper_windows(name, gpus, batch, M, before_ns, monkeypatch):
    """sieve-pipe's modes on two study windows: the repaired runtime is shorter than the
    constructions alone (the superperiods they gave before this round), checks, and is the same
    on a second call."""
    prob = _paper_problem(name, gpus, batch, M)
    modes, _ = plan_modes(prob, "sieve-pipe")
    monkeypatch.setattr(overlap, "RUNTIME_REPAIRS", False)
    plain = pipeline_schedule(prob, modes, policy="sieve-pipe")
    monkeypatch.setattr(overlap, "RUNTIME_REPAIRS", True)
    a, b = pipeline_schedule(prob, modes, policy="sieve-pipe"), pipeline_schedule(prob, modes, policy="sieve-pipe")
    assert plain.superperiod_ns == before_ns
    assert a.superperiod_ns < plain.superperiod_ns and a.modes == plain.modes == tuple(modes)
    assert a.superperiod_ns == b.superperiod_ns and np.array_equal(a.start_ns, b.start_ns)
    assert _ok(prob, a)


@pytest.mark.parametrize("seed,gpus,M", [(5, 2, 2), (6, 4, 2), (7, 1, 3)])
def test_runtime_with_repairs_never_worse_for_any_policy(seed, gpus, M, monkeypatch):
    prob = _random_problem(seed, gpus, M)
    for policy in ("sieve", "sieve-pipe", "duplex", "allexp", "noexp"):
        modes, _ = plan_modes(prob, policy)
        monkeypatch.setattr(overlap, "RUNTIME_REPAIRS", False)
        plain = pipeline_schedule(prob, modes, policy=policy, order_evaluations=0)
        monkeypatch.setattr(overlap, "RUNTIME_REPAIRS", True)
        rep = pipeline_schedule(prob, modes, policy=policy, order_evaluations=0)
        assert rep.superperiod_ns <= plain.superperiod_ns and rep.modes == plain.modes
        assert _ok(prob, rep)
