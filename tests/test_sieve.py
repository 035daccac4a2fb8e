"""Sieve greedy: reference vs compiled decisions, hand-computed cases, edge cases, schedules."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.models.catalog import list_models, load_model, load_system
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers._sieve_numba import make_workspace, sieve_plan
from sieveopt.solvers.plan_inputs import (
    NUM_PARAMS,
    P_BYTES_PER_NS,
    P_EXPERT_BYTES,
    P_FLOPS_PER_NS,
    P_T_ATTN,
    P_T_COMM,
    gpu_plan_inputs,
    pim_table,
)
from sieveopt.solvers.sieve_ref import estimate_ns, sieve_plan_ref
from sieveopt.testing import random_expert_ids, random_instance

SYSTEM = "sieve-b200-hbm3e-pim"
GPUS = {"qwen3-30b-a3b": 1, "gpt-oss-120b": 4, "mixtral-8x7b": 2}


def _compiled(tokens, table, params) -> tuple[int, list[int]]:
    ws, order = make_workspace(len(tokens), len(table) - 1)
    k = sieve_plan(np.asarray(tokens, dtype=np.int32), np.asarray(table, dtype=np.float64),
                   np.asarray(params, dtype=np.float64), ws, order)
    return int(k), order[: len(tokens)].tolist()


def _hand_params(t_comm: float = 0.0, t_attn: float = 10.0) -> np.ndarray:
    """Each GPU expert costs 100 ns of HBM time, nothing else on the GPU."""
    p = np.zeros(NUM_PARAMS)
    p[P_T_COMM], p[P_T_ATTN] = t_comm, t_attn
    p[P_EXPERT_BYTES], p[P_BYTES_PER_NS], p[P_FLOPS_PER_NS] = 100.0, 1.0, 1.0
    return p


HAND_TABLE = [60.0 * n for n in range(8)]   # PIM: 60 ns per token


@pytest.mark.parametrize("impl", [sieve_plan_ref, _compiled])
def test_hand_computed_split(impl) -> None:
    # tokens [1, 5, 3]: all PIM = 10 + 540 = 550; move #1 (5 tok): max(100, 250) = 250;
    # move #2 (3 tok): max(200, 70) = 200; move #0: max(300, 10) = 300 > 200 -> stop.
    k, order = impl([1, 5, 3], HAND_TABLE, _hand_params())
    assert order == [1, 2, 0] and k == 2


@pytest.mark.parametrize("impl", [sieve_plan_ref, _compiled])
def test_equal_total_stops_the_walk(impl) -> None:
    # T_comm = 250 pins the max after the first move: the second move gives max(250, 200, 70)
    # = 250, not a strict decrease, so it is refused.
    k, _ = impl([1, 5, 3], HAND_TABLE, _hand_params(t_comm=250.0))
    assert k == 1
    # T_comm above everything: nothing ever decreases, all experts stay on PIM.
    k, _ = impl([1, 5, 3], HAND_TABLE, _hand_params(t_comm=1e6))
    assert k == 0


@pytest.mark.parametrize("impl", [sieve_plan_ref, _compiled])
def test_ties_keep_index_order_and_all_can_move(impl) -> None:
    table = [0.0] + [1000.0] * 7                # PIM very slow: everything moves to the GPU
    k, order = impl([2, 4, 2, 4], table, _hand_params())
    assert order == [1, 3, 0, 2] and k == 4


@pytest.mark.parametrize("impl", [sieve_plan_ref, _compiled])
def test_no_experts(impl) -> None:
    k, order = impl([], HAND_TABLE, _hand_params())
    assert k == 0 and order == []


def test_compiled_rejects_count_outside_table() -> None:
    ws, order = make_workspace(2, 8)
    assert sieve_plan(np.array([3, 9], dtype=np.int32), np.zeros(8), _hand_params(), ws, order) == -1
    with pytest.raises(ValueError):
        sieve_plan_ref([3, 9], [0.0] * 8, _hand_params())


def _random_params(rng: np.random.Generator, base: np.ndarray, est: float) -> np.ndarray:
    p = base.copy()
    p[P_T_COMM] = est * rng.choice([0.0, rng.uniform(0, 2)])
    p[P_T_ATTN] = est * rng.choice([0.0, rng.uniform(0, 1)])
    for j in range(2, 5):                       # other GPU work: scaled, sometimes removed
        p[j] *= rng.choice([0.0, rng.uniform(0.2, 2.0)])
    return p


@pytest.mark.parametrize("model_name", list_models())
def test_reference_and_compiled_make_identical_decisions(model_name: str) -> None:
    """Hundreds of random layers per catalog model (token counts from the Zipf-like router,
    planner scalars from a real DAG, randomly scaled to hit every branch, including ties)."""
    rng = np.random.default_rng(hash(model_name) % 2**32)
    model = load_model(model_name)
    gpus = GPUS.get(model_name, 8)
    system = load_system(SYSTEM, gpus)
    inst = random_instance(rng, model, system, 16)
    dag, cost = build_dag(inst)
    base = gpu_plan_inputs(dag, inst, cost, 0).params
    max_batch = 256
    table = pim_table(cost, inst, max_batch)
    E, k_top = model.num_routed_experts, model.top_k
    ws, order = make_workspace(E, max_batch)
    layers = 300
    moved = 0
    for _ in range(layers):
        batch = int(rng.choice([1, 4, 32, 256]))
        ids = random_expert_ids(rng, batch, E, k_top, skew=float(rng.uniform(0.0, 1.5)))
        counts = np.bincount(ids.ravel(), minlength=E)
        g = int(rng.integers(gpus))
        tokens = counts[g::gpus]
        tokens = tokens[tokens > 0].astype(np.int32)
        est = float(table[tokens].sum()) if len(tokens) else 1.0
        params = _random_params(rng, base, est)
        if rng.random() < 0.1 and len(tokens):   # force an exact tie with the all-PIM estimate
            params[P_T_COMM] = params[P_T_ATTN] + sum(float(table[n]) for n in sorted(tokens, reverse=True))
        k_ref, order_ref = sieve_plan_ref(tokens.tolist(), table.tolist(), params.tolist())
        k = sieve_plan(tokens, table, params, ws, order)
        assert k == k_ref
        assert order[: len(tokens)].tolist() == order_ref
        moved += k
    assert moved > 0


def _small_cases():
    return [("qwen3-30b-a3b", 1, 32), ("gpt-oss-120b", 4, 64), ("qwen3.5-397b-a17b", 8, 1),
            ("qwen3.5-397b-a17b", 8, 256)]


@pytest.mark.parametrize(("model_name", "gpus", "batch"), _small_cases())
def test_sieve_schedule_passes_check(model_name: str, gpus: int, batch: int) -> None:
    """End to end on catalog models, including Qwen3.5 on 8 GPUs (experts barely fit) and B=1."""
    inst = random_instance(np.random.default_rng(batch), load_model(model_name), load_system(SYSTEM, gpus), batch)
    run = run_layer(inst, "sieve")
    assert run.check.ok, run.check.violations[:3]
    res = run.result
    assert res.decision_ns is not None and res.decision_ns > 0
    assert res.decision_ns == max(res.meta["decision_ns_per_gpu"])
    # Reference and compiled agree on the whole layer, and the estimate agrees with the modes.
    ref = run_layer(inst, "sieve", dag=run.dag, cost=run.cost, impl="ref")
    assert ref.result.schedule.modes == res.schedule.modes
    modes = res.schedule.expert_modes(run.dag)
    for row in res.meta["per_gpu"]:
        on_gpu = [e for e, m in modes.items() if m == "gpu" and int(inst.expert_gpu[e]) == row["gpu"]]
        assert len(on_gpu) == row["gpu_experts"]


def test_gpu_with_no_activated_experts_and_one_hot_expert() -> None:
    """Every token on one expert: the other GPUs have no activated experts at all."""
    model, system = load_model("gpt-oss-120b"), load_system(SYSTEM, 4)
    from sieveopt.instance import LayerInstance

    ids = np.tile(np.array([[5, 6, 7, 9]]), (8, 1))    # experts 5, 9 on GPU 1; 6 on 2; 7 on 3
    inst = LayerInstance.from_expert_ids(model, system, ids)
    run = run_layer(inst, "sieve")
    assert run.check.ok
    rows = {r["gpu"]: r for r in run.result.meta["per_gpu"]}
    assert rows[0]["experts"] == 0 and rows[0]["gpu_experts"] == 0


def test_estimate_matches_planner_objective() -> None:
    tokens, params = [1, 5, 3], _hand_params()
    est = estimate_ns(tokens, HAND_TABLE, params, [False, True, True])
    assert est["t_gpu_ns"] == 200.0 and est["t_pim_ns"] == 70.0 and est["t_total_ns"] == 200.0


def test_sieve_with_table_cost_model() -> None:
    from sieveopt.models.table import TableCostModel

    model, system = load_model("qwen3-30b-a3b"), load_system(SYSTEM, 1)
    inst = random_instance(np.random.default_rng(3), model, system, 64)
    cost = TableCostModel(system, model)
    for n in range(1, 65):                      # PIM measured twice as slow as the roofline says
        cost.observe(n, 2.0 * cost.fallback_ns(n))
    slow = run_layer(inst, "sieve", cost_model=cost)
    fast = run_layer(inst, "sieve")
    assert slow.check.ok and fast.check.ok
    assert slow.result.meta["per_gpu"][0]["gpu_experts"] >= fast.result.meta["per_gpu"][0]["gpu_experts"]
