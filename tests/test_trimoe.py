"""TriMoE's offloading tier: targets, system preset, models, planner twins, baselines, CP-SAT, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.errors import SieveoptError
from sieveopt.instance import sample_layers
from sieveopt.models.capacity import gpu_memory
from sieveopt.models.catalog import list_models, list_systems, load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH, MODE_NDP, ndp_ridge_tokens
from sieveopt.pipeline import run_layer
from sieveopt.solvers import solve
from sieveopt.solvers._trimoe_numba import make_workspace, trimoe_plan
from sieveopt.solvers.trimoe_ref import trimoe_plan_ref
from sieveopt.testing import random_instance, tiny_model

SYSTEM = "trimoe-h100-xeon-ndp"
MODELS = ("deepseek-v2", "qwen3-235b-a22b", "glm-4.5-air")


def _dag(model: str = "deepseek-v2", batch: int = 64, seed: int = 0):
    system, m = load_system(SYSTEM), load_model(model)
    inst = sample_layers(m, system, batch, 1, seed)[0]
    cost = RooflineCostModel(system, m)
    return inst, cost, build_layer_dag(inst, cost)


def test_catalog_lists_the_system_and_models() -> None:
    assert SYSTEM in list_systems()
    assert set(MODELS) <= set(list_models())
    for name in MODELS:
        m = load_model(name)
        assert m.num_routed_experts in (128, 160)
    # Existing systems are unchanged: no offload section, the usual two-sided DAG defaults.
    plain = load_system("h100-hbm3-pim")
    assert DagOptions.for_system(plain) == DagOptions()


def test_dag_offers_the_three_tiers_with_their_resources_and_costs() -> None:
    inst, cost, dag = _dag()
    system = inst.system
    assert {r.kind: r.capacity for r in dag.resources if r.kind in ("pcie", "cpu", "ndp")} == \
        {"pcie": 1, "cpu": 1, "ndp": 16}
    ex = [t for t in dag.tasks if t.kind == "expert"]
    assert ex and all(set(t.modes) == {MODE_GPU_FETCH, MODE_CPU, MODE_NDP} for t in ex)
    assert all(set(t.modes) == {"gpu"} for t in dag.tasks if t.kind == "attn")
    t = max(ex, key=lambda t: t.tokens)
    m, w = inst.model, t.work
    # Hand-computed from the preset's documented numbers (GB/s == B/ns, TFLOP/s = 1e3 FLOP/ns).
    act_rt = 2 * 2000.0 + w.act_bytes / (64.0 * 0.85)
    cpu = 5000.0 + max(w.flops / (213.0e3 * 0.15), m.expert_weight_bytes / (307.2 * 0.8)) + act_rt
    ndp = 1000.0 + max(w.flops / 512.0, m.expert_weight_bytes / (38.4 * 4)) + act_rt
    fetch = 2000.0 + max(cost.duration_ns(w, "gpu"), m.expert_weight_bytes / (64.0 * 0.85),
                         m.expert_weight_bytes / (307.2 * 0.8))
    for mode, want in ((MODE_CPU, cpu), (MODE_NDP, ndp), (MODE_GPU_FETCH, fetch)):
        assert abs(t.modes[mode].duration_ns - want) <= 1, mode
    rid = {k: dag.resource_id[(k, 0)] for k in ("gpu", "pcie", "cpu", "ndp")}
    assert set(t.modes[MODE_GPU_FETCH].resources) >= {rid["gpu"], rid["pcie"]}
    assert t.modes[MODE_CPU].resources == (rid["cpu"],) and t.modes[MODE_NDP].resources == (rid["ndp"],)
    assert ndp_ridge_tokens(system, m) == 4   # 512 GFLOP/s vs 153.6 GB/s, 1 FLOP/B per token (BF16)


def test_capacity_keeps_routed_experts_in_host_memory() -> None:
    m = load_model("deepseek-v2")
    assert gpu_memory(m, load_system(SYSTEM), batch=64).fits
    assert not gpu_memory(m, load_system("h100-hbm3-pim", 1), batch=64).fits


def _random_case(rng: np.random.Generator):
    n = int(rng.integers(1, 60))
    tokens = rng.integers(1, 12, n)
    scale = rng.choice([1, 50])          # coarse values force many ties
    tg, tc, tn = (rng.integers(1, 40, n) * scale for _ in range(3))
    return tg, tc, tn, tokens, int(rng.integers(1, 8)), int(rng.integers(0, 200)), int(rng.integers(1, 17))


@pytest.mark.parametrize("refine", [True, False])
def test_compiled_planner_makes_the_reference_decisions(refine: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        tg, tc, tn, tok, n_warm, base, D = _random_case(rng)
        u_ref, c_ref, m_ref = trimoe_plan_ref(tg.tolist(), tc.tolist(), tn.tolist(), tok.tolist(), n_warm, base, D,
                                              refine)
        out, loads = make_workspace(len(tok), D, int(tok.max()))
        m = trimoe_plan(np.stack([tg, tc, tn, tok]).astype(np.int64), np.array([n_warm, base, D, int(refine)], np.int64),
                        out, loads)
        assert m == m_ref
        assert out[0, :len(tok)].tolist() == u_ref and out[1, :len(tok)].tolist() == c_ref
        # The prediction is the max unit load of the returned assignment.
        loads_ref = [base, 0] + [0] * D
        for i, u in enumerate(u_ref):
            loads_ref[u] += (tg, tc, tn)[min(u, 2)][i]
        assert max(loads_ref) == m_ref


def test_refinement_never_worsens_the_greedy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        tg, tc, tn, tok, n_warm, base, D = _random_case(rng)
        # A one-unit sanity: with D DIMMs the predicted makespan is at least the average load
        # of the cheapest assignment and at most putting each expert on its own fastest unit serially.
        _, _, m = trimoe_plan_ref(tg.tolist(), tc.tolist(), tn.tolist(), tok.tolist(), n_warm, base, D)
        _, _, m_greedy = trimoe_plan_ref(tg.tolist(), tc.tolist(), tn.tolist(), tok.tolist(), n_warm, base, D, False)
        assert m <= m_greedy
        best_each = np.minimum(np.minimum(tg, tc), tn)
        assert m >= max(base, (base + best_each.sum()) / (2 + D))
        assert m <= base + best_each.sum() + max(tg.sum(), tc.sum(), tn.sum())


@pytest.mark.parametrize("model", MODELS)
def test_policies_give_checked_schedules_and_trimoe_wins(model: str) -> None:
    inst, cost, dag = _dag(model)
    spans = {}
    for pol in ("trimoe", "gpu-cpu", "gpu-ndp", "gpu-fetch"):
        run = run_layer(inst, pol, dag=dag, cost=cost)
        assert run.check.ok, (pol, run.check.violations[:3])
        spans[pol] = run.result.makespan_ns
    assert spans["trimoe"] <= min(spans.values())
    ref = solve("trimoe", dag, inst, cost, impl="ref")
    num = solve("trimoe", dag, inst, cost)
    assert ref.schedule.modes == num.schedule.modes
    greedy = [solve("trimoe", dag, inst, cost, impl=impl, refine=False) for impl in ("ref", "numba")]
    assert greedy[0].schedule.modes == greedy[1].schedule.modes and check(greedy[1].schedule, dag).ok
    assert greedy[0].meta["predicted_expert_phase_ns"] >= ref.meta["predicted_expert_phase_ns"]
    assert num.decision_ns is not None and num.decision_ns > 0
    assert sum(num.meta["classes"].values()) == len(dag.expert_task)


def test_two_sided_heuristics_refuse_the_offloading_dag() -> None:
    inst, cost, dag = _dag(batch=16)
    with pytest.raises(SieveoptError, match="needs every routed expert to offer modes"):
        solve("sieve", dag, inst, cost)


def test_cpsat_takes_the_declared_hint_and_reports_a_valid_bound() -> None:
    inst, cost, dag = _dag(batch=32)
    res = solve("cpsat", dag, inst, cost, time_limit_s=3.0, workers=1, deterministic=True)
    assert res.schedule is not None and check(res.schedule, dag).ok
    assert res.meta["hint_policy"] == "trimoe"
    assert res.makespan_ns <= res.meta["hint_makespan_ns"]
    assert res.bound_ns is not None and res.bound_ns <= res.makespan_ns
    # The LP energy bound is far above the critical path alone (the tier's work is the bottleneck).
    assert res.bound_ns > 0.5 * res.makespan_ns


def test_lp_bound_never_exceeds_a_proven_optimum() -> None:
    system = load_system(SYSTEM)
    model = tiny_model(num_experts=8, top_k=2, hidden=2048, inter=1024)
    for seed in range(3):
        inst = random_instance(np.random.default_rng(seed), model, system, 16)
        cost = RooflineCostModel(system, model)
        dag = build_layer_dag(inst, cost)
        res = solve("cpsat", dag, inst, cost, time_limit_s=20.0, workers=1, deterministic=True)
        assert res.status == "OPTIMAL" and check(res.schedule, dag).ok
        off = solve("cpsat", dag, inst, cost, time_limit_s=20.0, workers=1, deterministic=True,
                    levers=frozenset({"partition", "symmetry", "serial", "release"}))
        assert off.makespan_ns == res.makespan_ns          # the cuts do not cut off the optimum
        assert res.meta["hint_makespan_ns"] >= res.makespan_ns


def test_compare_cli_reports_makespans_gaps_and_the_bound(tmp_path, capsys) -> None:
    from sieveopt.cli.main import main

    rc = main(["compare", "--system", SYSTEM, "--model", "deepseek-v2", "--gpus", "1", "--batch", "64",
               "--policies", "trimoe,gpu-cpu,gpu-ndp,cpsat", "--layers", "1", "--time-limit", "2", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["all_checks_ok"]
    row = data["per_layer"][0]["policies"]
    assert all(row[p]["makespan_ns"] > 0 and row[p]["check_ok"] for p in ("trimoe", "gpu-cpu", "gpu-ndp", "cpsat"))
    assert row["cpsat"]["bound_ns"] <= row["cpsat"]["makespan_ns"] <= row["trimoe"]["makespan_ns"]
    gaps = data["bounds"]["cpsat"]["gaps"]
    assert set(gaps) == {"trimoe", "gpu-cpu", "gpu-ndp"} and gaps["trimoe"]["vs_bound"]["median"] >= 0


def test_bad_offload_value_names_the_field(capsys) -> None:
    from sieveopt.cli.main import main

    rc = main(["compare", "--system", SYSTEM, "--model", "deepseek-v2", "--batch", "8",
               "--set", "offload.ndp.num_dimms=0", "--policies", "trimoe", "--json"])
    assert rc == 2
    assert "offload.ndp.num_dimms" in capsys.readouterr().err


def test_solve_cli_reports_experts_by_tier(capsys) -> None:
    """`sieveopt solve` on the offloading system: no GPU/PIM split estimate, experts per tier."""
    from sieveopt.cli.main import main

    rc = main(["solve", "--system", SYSTEM, "--model", "glm-4.5-air", "--gpus", "1", "--batch", "32",
               "--policy", "trimoe", "--solver-param", "refine=false", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["check_ok"] and data["per_gpu"] == [] and data["gpu_experts"] == data["pim_experts"] == 0
    assert set(data["experts_by_mode"]) <= {MODE_GPU_FETCH, MODE_CPU, MODE_NDP}
    assert sum(data["experts_by_mode"].values()) > 0
