"""CP-SAT exact solver: optimum == independent brute force on tiny DAGs, never worse than its hint,
bound <= objective, schedules pass ``check``; golden values use the deterministic configuration."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import DagOptions, TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.pipeline import build_dag
from sieveopt.schedule import modes_from_experts
from sieveopt.solvers import solve
from sieveopt.solvers.base import OPTIMAL
from sieveopt.solvers.cpsat_bounds import heads_tails
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.bruteforce import brute_force  # the independent oracle (no CP-SAT code)
from tests.layers import assert_bounds_below

SYSTEM = "sieve-b200-hbm3e-pim"
DET = {"deterministic": True, "workers": 1, "time_limit_s": 30.0, "seed": 0}


def _tiny(seed: int, gpus: int, experts: int, batch: int, shared: int = 0,
          kernel: str = "grouped", sharing: str | None = None):
    rng = np.random.default_rng(seed)
    model = tiny_model(num_experts=experts, top_k=2, shared=shared)
    system = load_system(SYSTEM, num_gpus=gpus)
    inst = random_instance(rng, model, system, batch, skew=0.5)
    dag, cost = build_dag(inst, options=DagOptions(gpu_kernel=kernel, hbm_sharing=sharing))
    return inst, dag, cost


CASES = [  # (seed, gpus, experts, batch, shared, kernel, sharing)
    (0, 1, 4, 6, 0, "grouped", None),
    (1, 1, 4, 9, 1, "grouped", None),
    (2, 1, 3, 5, 0, "per_expert", "exclusive"),
    (3, 2, 4, 4, 0, "grouped", None),
    (4, 2, 2, 3, 0, "grouped", "exclusive"),
]


@pytest.mark.parametrize("case", CASES)
def test_cpsat_matches_brute_force(case) -> None:
    inst, dag, cost = _tiny(*case)
    r = solve("cpsat", dag, inst, cost, **DET)
    assert r.status == OPTIMAL
    assert check(r.schedule, dag).ok
    assert r.objective_ns == r.schedule.makespan_ns == r.bound_ns
    assert r.objective_ns == brute_force(dag)


@pytest.mark.parametrize("case", CASES)
def test_cpsat_without_levers_or_hint_matches(case) -> None:
    inst, dag, cost = _tiny(*case)
    full = solve("cpsat", dag, inst, cost, **DET)
    bare = solve("cpsat", dag, inst, cost, hint="none", levers=set(), **DET)
    assert bare.status == OPTIMAL and bare.objective_ns == full.objective_ns
    assert check(bare.schedule, dag).ok


def _gpt_oss_layer() -> tuple[LayerInstance, TaskDAG, object]:
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model

    inst = sample_layers(load_model("gpt-oss-120b"), load_system(SYSTEM, 4), 32, 1, 3)[0]
    dag, cost = build_dag(inst)
    return inst, dag, cost


def test_never_worse_than_hint_and_bound_valid() -> None:
    inst, dag, cost = _gpt_oss_layer()
    modes = modes_from_experts(dag, {}, default_expert="gpu")
    hint = list_schedule(dag, modes, policy="all-gpu")
    r = solve("cpsat", dag, inst, cost, hint=hint, **{**DET, "time_limit_s": 2.0})
    assert r.schedule is not None and check(r.schedule, dag).ok
    assert r.objective_ns <= hint.makespan_ns
    assert r.bound_ns <= r.objective_ns
    # Trajectory: objectives never increase, bounds never exceed the final objective.
    objs = [o for _, o, _ in r.trajectory]
    assert objs == sorted(objs, reverse=True)
    assert all(b <= r.objective_ns for _, _, b in r.trajectory)


def test_quantised_model_retimes_exactly() -> None:
    inst, dag, cost = _tiny(1, 1, 4, 9, 1)
    exact = solve("cpsat", dag, inst, cost, **DET)
    coarse = solve("cpsat", dag, inst, cost, time_quantum_ns=500, **DET)
    assert check(coarse.schedule, dag).ok
    assert coarse.bound_ns <= exact.objective_ns <= coarse.objective_ns
    assert coarse.meta["quantisation_error_ns"] >= 0  # re-timing in exact ns never lengthens it


def test_static_bounds_are_valid_on_tiny() -> None:
    for case in CASES:
        inst, dag, cost = _tiny(*case)
        assert_bounds_below(dag, brute_force(dag))


def test_static_bounds_valid_on_tiny_sweep() -> None:
    """Random tiny DAGs (2 GPUs, skewed routing: several dispatches per port, local-only experts)."""
    rng = np.random.default_rng(11)
    for seed in range(8):
        gpus = int(rng.integers(1, 3))
        case = (200 + seed, gpus, int(rng.integers(2, 5)) if gpus == 1 else 3, int(rng.integers(2, 7)),
                int(rng.integers(0, 2)), "grouped", str(rng.choice(["exclusive", "dual_row_buffer"])))
        inst, dag, cost = _tiny(*case)
        assert_bounds_below(dag, brute_force(dag))


def test_serial_heads_tails_lift_message_chains() -> None:
    """On an 8-GPU layer the dispatches into a GPU share its ingress port: heads grow, never shrink."""
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model

    inst = sample_layers(load_model("qwen3.5-397b-a17b"), load_system(SYSTEM, 8), 32, 1, 0)[0]
    dag, _ = build_dag(inst)
    d = dag.mode_durations_ns()
    plain, serial = heads_tails(dag, d, resource_aware=False), heads_tails(dag, d)
    assert all(serial.head[k] >= v for k, v in plain.head.items())
    assert all(serial.tail[k] >= v for k, v in plain.tail.items())
    assert serial.critical_path_ns > plain.critical_path_ns


def test_export_and_deterministic_golden(tmp_path) -> None:
    inst, dag, cost = _tiny(3, 2, 4, 4)
    path = tmp_path / "model.pbtxt"
    a = solve("cpsat", dag, inst, cost, export_path=str(path), **DET)
    b = solve("cpsat", dag, inst, cost, **DET)
    assert path.stat().st_size > 0 and not list(tmp_path.glob(".cpsat-*"))
    assert a.objective_ns == b.objective_ns and a.schedule.modes == b.schedule.modes
    assert np.array_equal(a.schedule.start_ns, b.schedule.start_ns)


def test_bad_hint_rejected() -> None:
    inst, dag, cost = _tiny(0, 1, 4, 6)
    with pytest.raises(ValueError, match="hint"):
        solve("cpsat", dag, inst, cost, hint="bogus", **DET)


def test_random_tiny_sweep_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    for seed in range(6):
        gpus = int(rng.integers(1, 3))
        experts = int(rng.integers(2, 5)) if gpus == 1 else int(rng.integers(2, 4))
        case = (100 + seed, gpus, experts, int(rng.integers(2, 8)), int(rng.integers(0, 2)),
                str(rng.choice(["grouped", "per_expert"])), str(rng.choice(["exclusive", "dual_row_buffer"])))
        inst, dag, cost = _tiny(*case)
        r = solve("cpsat", dag, inst, cost, **DET)
        assert r.status == OPTIMAL and check(r.schedule, dag).ok, case
        assert r.objective_ns == brute_force(dag), case
