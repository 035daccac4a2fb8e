"""Baseline policies: hand-computed decisions and checked schedules on random instances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sieveopt.check import check
from sieveopt.dag import ATTN, EXPERT, DagOptions
from sieveopt.models.catalog import load_system
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers import solve
from sieveopt.solvers.baselines import channel_table, duplex_plan, pimoe_plan_ranked
from sieveopt.solvers.plan_inputs import (
    NUM_PARAMS,
    P_BYTES_PER_NS,
    P_EXPERT_BYTES,
    P_FLOPS_PER_NS,
    P_LAUNCH_NS,
    GpuPlanInputs,
)
from sieveopt.testing import random_instance, tiny_model

POLICIES = ("sieve", "gpu_only", "noexp", "allexp", "pimoe", "duplex")


def _inputs(tokens, gpu_ns=None, pim_ns=None, launch=0.0) -> GpuPlanInputs:
    n = len(tokens)
    p = np.zeros(NUM_PARAMS)
    p[P_EXPERT_BYTES], p[P_BYTES_PER_NS], p[P_FLOPS_PER_NS], p[P_LAUNCH_NS] = 100.0, 1.0, 1.0, launch
    return GpuPlanInputs(0, np.arange(n), np.arange(n), np.asarray(tokens, dtype=np.int32), p,
                         np.asarray(gpu_ns or [0] * n, dtype=np.int64), np.asarray(pim_ns or [0] * n, dtype=np.int64))


def test_duplex_hand_computed() -> None:
    # all GPU: 150 + 10 launch = 160. Fewest first: #0 -> max(110, 20) = 110; #2 -> max(60, 60)
    # = 60; #1 -> max(0, 140) = 140 (worse) -> stop. Expert #1 stays on the GPU.
    inp = _inputs([1, 4, 2], gpu_ns=[50, 50, 50], pim_ns=[20, 80, 40], launch=10.0)
    assert duplex_plan(inp) == {1}


def test_duplex_keeps_all_on_gpu_when_pim_is_slow() -> None:
    assert duplex_plan(_inputs([1, 2], gpu_ns=[5, 5], pim_ns=[100, 100])) == {0, 1}


def test_pimoe_hand_computed() -> None:
    # 2 channels, ranks 0..3 -> channels 0,1,0,1; 100 ns per token on a channel; each GPU
    # expert costs 100 ns. ch0 = #0(3) + #2(2) = 500, ch1 = #1(1) + #3(2) = 300.
    # T_GPU 0 <= 500: move #0 (ch0 -> 200); 100 <= 300: move #3 (ch1 -> 100);
    # 200 <= 200: move #2 (ch0 empty); 300 <= 100 is false -> stop.
    table = [100.0 * n for n in range(5)]
    assert pimoe_plan_ranked(_inputs([3, 1, 2, 2]), table, 2, [0, 1, 2, 3]) == {0, 2, 3}


def test_pimoe_channel_time_is_single_channel_bandwidth() -> None:
    model, system = tiny_model(), load_system("sieve-b200-hbm3e-pim", 1)
    inst = random_instance(np.random.default_rng(0), model, system, 4)
    _, cost = build_dag(inst)
    one = channel_table(inst, cost, 1, 3)
    many = channel_table(inst, cost, 256, 3)
    assert one[1] == pytest.approx(cost.pim_gemv_ns(model.expert_weight_bytes, 1))
    # per token, the weight GEMV runs at 1/256 of the PIM bandwidth; the token write does not shrink
    w = model.expert_weight_bytes
    gemv_all = w / cost.pim_bytes_per_ns
    read_all = (2 * model.expert_intermediate_size + model.hidden_size) * model.activation_bytes / (
        cost.pch_bytes_per_ns * cost.num_pch)
    assert (many[2] - many[1]) - (one[2] - one[1]) == pytest.approx(255 * (gemv_all + read_all), rel=1e-6)


def test_static_policies_modes() -> None:
    model, system = tiny_model(shared=1), load_system("sieve-b200-hbm3e-pim", 2)
    inst = random_instance(np.random.default_rng(1), model, system, 8)
    dag, cost = build_dag(inst)
    want = {"gpu_only": ("gpu", "gpu"), "noexp": ("gpu", "pim"), "allexp": ("pim", "pim")}
    for policy, (expert_mode, attn_mode) in want.items():
        res = solve(policy, dag, inst, cost)
        modes = res.schedule.modes
        assert {modes[t.tid] for t in dag.tasks if t.kind == EXPERT} == {expert_mode}
        assert {modes[t.tid] for t in dag.tasks if t.kind == ATTN} == {attn_mode}
        assert check(res.schedule, dag).ok


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experts=st.integers(2, 16), top_k=st.integers(1, 4), gpus=st.sampled_from([1, 2, 4]),
       batch=st.integers(1, 24), skew=st.floats(0.0, 2.0), seed=st.integers(0, 2**16),
       exclusive=st.booleans(), per_expert=st.booleans())
def test_every_policy_schedule_passes_check(experts, top_k, gpus, batch, skew, seed, exclusive, per_expert) -> None:
    model = tiny_model(num_experts=experts, top_k=min(top_k, experts), shared=seed % 2)
    system = load_system("sieve-b200-hbm3e-pim", gpus)
    inst = random_instance(np.random.default_rng(seed), model, system, batch, skew=skew)
    opts = DagOptions(hbm_sharing="exclusive" if exclusive else None,
                      gpu_kernel="per_expert" if per_expert else "grouped")
    dag, cost = build_dag(inst, options=opts)
    for policy in POLICIES:
        run = run_layer(inst, policy, dag=dag, cost=cost)
        assert run.check.ok, (policy, run.check.violations[:3])
        assert run.result.objective_ns == run.makespan_ns
