"""Baseline policies: hand-computed decisions and checked schedules on random instances."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sieveopt.check import check
from sieveopt.dag import ATTN, EXPERT, DagOptions
from sieveopt.models.catalog import load_system
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers import solve
from sieveopt.solvers.baselines import duplex_plan, pimoe_plan
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
    # groups 0,1,0,1; 100 ns per token on a group; each GPU expert costs 100 ns.
    # g0 = #0(3) + #2(2) = 500, g1 = #1(1) + #3(2) = 300.
    # T_GPU 0 <= 500: move #0 (g0 -> 200); 100 <= 300: move #3 (g1 -> 100);
    # 200 <= 200: move #2 (g0 empty); 300 <= 100 is false -> stop.
    tokens = [3, 1, 2, 2]
    inp = _inputs(tokens, pim_ns=[100 * n for n in tokens])
    on_gpu, load = pimoe_plan(inp, [0, 1, 0, 1], threshold=1)
    assert on_gpu == {0, 2, 3} and load == {0: 0, 1: 100}


def test_pimoe_threshold_stops_at_the_busiest_group() -> None:
    # threshold 3: #0 moves (g0 500 -> 200); the busiest is now g1 (300), whose hottest (#3,
    # 2 tokens) is below the threshold: T_PIM cannot drop, stop.
    tokens = [3, 1, 2, 2]
    inp = _inputs(tokens, pim_ns=[100 * n for n in tokens])
    assert pimoe_plan(inp, [0, 1, 0, 1], threshold=3)[0] == {0}


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


# -- PIMoE as published (issue 12): expert-parallel PIM, static threshold, same model ----------
def _gptoss(batch: int, layers: int = 3):
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model

    model, system = load_model("gpt-oss-120b"), load_system("sieve-b200-hbm3e-pim", 4)
    return sample_layers(model, system, batch, layers, 0)


def test_pimoe_equals_allexp_when_no_expert_reaches_the_threshold() -> None:
    for inst in _gptoss(32, 2):
        run = run_layer(inst, "pimoe", threshold=inst.batch + 1)
        assert run.check.ok
        all_ = run_layer(inst, "allexp")
        modes = {t.expert: run.result.schedule.modes[t.tid] for t in run.dag.tasks if t.kind == EXPERT}
        want = {t.expert: all_.result.schedule.modes[t.tid] for t in all_.dag.tasks if t.kind == EXPERT}
        assert modes == want and set(modes.values()) == {"pim"}


def test_pimoe_default_threshold_above_batch_is_allexp() -> None:
    # A GPU whose kernels cost 1 ms: no isolated expert is ever faster there -> nothing moves.
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model

    system = load_system("sieve-b200-hbm3e-pim", 4, {"gpu.kernel_overhead_ns": 1e6})
    inst = sample_layers(load_model("gpt-oss-120b"), system, 16, 1, 0)[0]
    run = run_layer(inst, "pimoe")
    assert run.result.meta["threshold_tokens"] == inst.batch + 1
    assert {run.result.schedule.modes[t.tid] for t in run.dag.tasks if t.kind == EXPERT} == {"pim"}


def test_pimoe_never_noexp_where_a_one_token_expert_is_cheaper_on_pim() -> None:
    # 4 channel groups of 64 pCH: a one-token expert takes ~2 us on its group, ~4 us alone on
    # the GPU, so the threshold is >= 2 and one-token experts stay on PIM.
    opts = DagOptions(pim_parallelism="ep", pim_channel_groups=4)
    seen_single = False
    for inst in _gptoss(64, 3):
        run = run_layer(inst, "pimoe", options=opts)
        assert run.check.ok and run.result.meta["threshold_tokens"] >= 2
        modes = run.result.schedule.modes
        for t in run.dag.tasks:
            if t.kind == EXPERT and t.tokens == 1:
                seen_single = True
                assert modes[t.tid] == "pim"
        assert any(modes[t.tid] == "pim" for t in run.dag.tasks if t.kind == EXPERT)
    assert seen_single


def test_pimoe_decision_and_execution_agree() -> None:
    from sieveopt.pim_groups import RES_PIM_GROUP, is_ep

    for inst in _gptoss(64, 2):
        run = run_layer(inst, "pimoe")
        assert is_ep(run.dag) and run.check.ok
        sch, dag = run.result.schedule, run.dag
        for g, info in enumerate(run.result.meta["per_gpu"]):
            attn = [t for t in dag.tasks if t.kind == ATTN and t.gpu == g][0]
            attn_ns = int(sch.end_ns[attn.tid] - sch.start_ns[attn.tid]) if sch.modes[attn.tid] == "pim" else 0
            busy: dict[int, int] = {}
            for t in dag.tasks:
                for rid in t.modes[sch.modes[t.tid]].resources:
                    r = dag.resources[rid]
                    if r.kind == RES_PIM_GROUP and r.gpu == g:
                        k = int(r.name.rsplit(".", 1)[1].rstrip("]"))
                        busy[k] = busy.get(k, 0) + int(sch.end_ns[t.tid] - sch.start_ns[t.tid])
            # the plan's T_PIM per group is exactly what the executed schedule holds the group for
            for k, load in info["group_load_ns"].items():
                assert busy[k] - attn_ns == load


def test_pimoe_replay_reports_per_group_utilisation() -> None:
    from sieveopt.pim_groups import group_utilisation
    from sieveopt.validation.replay import replay

    inst = _gptoss(64, 1)[0]
    run = run_layer(inst, "pimoe")
    rep = replay(run.result.schedule, run.dag, inst.system, instance=inst, memory="analytic")
    groups = group_utilisation(rep.schedule, run.dag)
    k = len(run.dag.meta["pim_group_channels"])
    assert sorted(groups) == [0, 1, 2, 3] and all(len(u) == k for u in groups.values())
    assert sum(run.dag.meta["pim_group_channels"]) == inst.system.hbm_pim.pseudo_channels_per_gpu
    # a group holding a PIM expert is busier than one that only runs attention
    busy = [max(u) for u in groups.values()]
    idle = [min(u) for u in groups.values()]
    pim_experts = sum(g["pim_experts"] for g in run.result.meta["per_gpu"])
    assert pim_experts == 0 or max(busy) > max(idle)


def test_pim_channel_groups_are_the_pim_targets_declared_layout() -> None:
    """The EP layout comes from the PIM target's registry entry (no name special case): an
    unknown layout fails naming the known ones; PIMoE's EP DAG is its declared capability; the
    group resources draw as distinct, labelled trace rows."""
    import pytest

    from sieveopt.errors import SieveoptError
    from sieveopt.pim_groups import RES_PIM_GROUP
    from sieveopt.solvers import policy_info
    from sieveopt.targets import MODE_PIM, get_target, track_label
    from sieveopt.viz.layout import build_layout

    pim = get_target(MODE_PIM)
    assert pim.layout_option == "pim_parallelism" and set(pim.layouts) == {"tp", "ep"}
    assert RES_PIM_GROUP in pim.part_owns and track_label(RES_PIM_GROUP) == pim.part_owns[RES_PIM_GROUP]
    assert policy_info("pimoe").dag_options == {"pim_parallelism": "ep"}
    inst = _gptoss(64, 1)[0]
    with pytest.raises(SieveoptError, match="pim_parallelism.*known"):
        build_dag(inst, options=DagOptions(pim_parallelism="dp"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pim_channel_groups"):
        build_dag(inst, options=DagOptions(pim_parallelism="ep", pim_channel_groups=-1))
    run = run_layer(inst, "pimoe")
    rows = build_layout(run.result.schedule, run.dag).rows
    for g in range(inst.num_gpus):
        ids = [r.order for r in rows if r.gpu == g]
        assert len(ids) == len(set(ids))
        groups = [r for r in rows if r.gpu == g and r.kind == RES_PIM_GROUP and r.lane == 0]
        assert len(groups) == len(run.dag.meta["pim_group_channels"])
        assert len({r.label for r in groups}) == len(groups)
