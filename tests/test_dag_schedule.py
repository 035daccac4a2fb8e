"""The layer DAG's structure, the list scheduler and the checker (unit + property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sieveopt.check import check
from sieveopt.dag import (
    ALLGATHER,
    ATTN,
    COMBINE,
    DISPATCH,
    EXPERT,
    LAUNCH,
    DagOptions,
    build_layer_dag,
)
from sieveopt.errors import ScheduleError, SieveoptError
from sieveopt.instance import LayerInstance
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.schedule import Schedule, modes_from_experts
from sieveopt.testing import random_instance, tiny_model


def _dag(inst, **opts):
    return build_layer_dag(inst, make_cost_model("roofline", inst.system, inst.model), DagOptions(**opts))


def _hand_instance(G=2):
    """E=4 experts on G=2 GPUs; 4 tokens, top-2; expert e on GPU e % 2."""
    model = tiny_model(num_experts=4, top_k=2, shared=1)
    system = load_system("sieve-b200-hbm3e-pim", G)
    ids = np.array([[0, 1], [0, 2], [0, 1], [2, 3]])  # tokens 0,1 on GPU 0; tokens 2,3 on GPU 1
    return LayerInstance.from_expert_ids(model, system, ids, context_lens=np.full(4, 100))


def test_hand_instance_counts_and_messages():
    inst = _hand_instance()
    assert inst.counts.tolist() == [[2, 1, 1, 0], [1, 1, 1, 1]]
    # GPU0 tokens: t0 -> experts {0 (g0), 1 (g1)}, t1 -> {0 (g0), 2 (g0)}: one token to GPU1.
    assert inst.dispatch_tokens.tolist() == [[2, 1], [2, 2]]
    dag = _dag(inst)
    names = set(dag.by_name)
    for n in ["dispatch[0->1]@L0", "dispatch[1->0]@L0", "combine[1->0]@L0", "combine[0->1]@L0",
              "allgather[0->1]@L0", "allgather[1->0]@L0", "launch[0]@L0", "shared[1]@L0"]:
        assert n in names
    assert len(dag.tasks_of(EXPERT)) == 4
    # expert 1 (GPU 1) needs GPU 0's dispatch; expert 3 (GPU 1) holds only local tokens.
    e1, e3 = dag.expert_task[1], dag.expert_task[3]
    src_names = {dag.tasks[e.src].name for e in dag.preds[e1]}
    assert "dispatch[0->1]@L0" in src_names
    assert not any(dag.tasks[e.src].kind == DISPATCH for e in dag.preds[e3])
    # The grouped-GEMM launch edge is conditional on GPU mode; message edges carry the latency.
    launch_edges = [e for e in dag.preds[e1] if dag.tasks[e.src].kind == LAUNCH]
    assert launch_edges and launch_edges[0].if_mode == (e1, "gpu")
    lat = [e.lag_ns for e in dag.preds[e1] if dag.tasks[e.src].kind == DISPATCH]
    assert lat == [800]
    # combine[1->0] waits for the experts on GPU 1 holding tokens of GPU 0: only expert 1.
    c = dag.by_name["combine[1->0]@L0"]
    assert {dag.tasks[e.src].expert for e in dag.preds[c]} == {1}


def test_durations_follow_roofline():
    inst = _hand_instance(G=1)
    dag = _dag(inst)
    cost = make_cost_model("roofline", inst.system, inst.model)
    t = dag.tasks[dag.expert_task[0]]
    W = inst.model.expert_weight_bytes
    act = 2 * t.tokens * inst.model.hidden_size * 2
    gpu_expected = (W + act) / (8000 * 0.9)  # memory bound, grouped GEMM: no per-expert launch
    assert t.modes["gpu"].duration_ns == pytest.approx(gpu_expected, abs=2)
    assert t.modes["pim"].duration_ns == pytest.approx(cost.pim_gemv_ns(W, t.tokens), abs=1)
    per = _dag(inst, gpu_kernel="per_expert").tasks[dag.expert_task[0]]
    assert per.modes["gpu"].duration_ns == pytest.approx(gpu_expected + 2000, abs=2)


def test_mode_durations_ns_is_the_one_duration_map():
    """``TaskDAG.mode_durations_ns``: per task, each candidate mode's duration (a fresh list each
    call); the networkx view and every solver take it, and the package builds the map nowhere else."""
    import re
    from pathlib import Path

    dag = _dag(_hand_instance())
    d = dag.mode_durations_ns()
    t = dag.tasks[dag.expert_task[0]]
    assert len(d) == len(dag.tasks) and set(d[t.tid]) == {"gpu", "pim"}
    assert d[t.tid]["pim"] == t.modes["pim"].duration_ns and d[t.tid]["gpu"] == t.modes["gpu"].duration_ns
    assert all(d[x.tid] == {m: c.duration_ns for m, c in x.modes.items()} for x in dag.tasks)
    d[t.tid]["pim"] = -1                                  # the caller's copy, not the DAG's
    assert dag.mode_durations_ns()[t.tid]["pim"] == t.modes["pim"].duration_ns
    assert dag.to_networkx().nodes[t.tid]["durations"] == d[t.tid] | {"pim": t.modes["pim"].duration_ns}
    root = Path(__file__).resolve().parents[1]
    twin = re.compile(r"\{\s*\w+\s*:\s*\w+\.duration_ns\s+for\s+\w+\s*,\s*\w+\s+in\s+[\w.]+\.modes\.items\(\)")
    found = [f"{p.relative_to(root)}" for top in ("sieveopt", "solvers", "validation", "models")
             for p in (root / top).rglob("*.py") if twin.search(p.read_text())]
    assert found == ["sieveopt/dag.py"]


def test_single_gpu_has_no_messages():
    inst = _hand_instance(G=1)
    dag = _dag(inst)
    assert not [t for t in dag.tasks if t.kind in (ALLGATHER, DISPATCH, COMBINE)]


def test_exclusive_sharing_puts_pim_on_hbm():
    inst = _hand_instance()
    dag = _dag(inst, hbm_sharing="exclusive")
    t = dag.tasks[dag.expert_task[0]]
    assert dag.resource_id[("hbm", t.gpu)] in t.modes["pim"].resources
    dag2 = _dag(inst)
    assert dag2.resource_id[("hbm", t.gpu)] not in dag2.tasks[t.tid].modes["pim"].resources


def test_networkx_view_is_acyclic():
    import networkx as nx

    g = _dag(_hand_instance()).to_networkx()
    assert nx.is_directed_acyclic_graph(g)


def test_checker_reports_every_violation_kind():
    inst = _hand_instance()
    dag = _dag(inst)
    good = list_schedule(dag, modes_from_experts(dag, default_expert="pim"))
    assert check(good, dag).ok
    start, end = good.start_ns.copy(), good.end_ns.copy()
    # precedence: start an expert at 0
    e = dag.expert_task[1]
    d = end[e] - start[e]
    start[e], end[e] = 0, d
    bad = Schedule(good.modes, start, end)
    rep = check(bad, dag)
    assert not rep.ok and any("precedence" in v for v in rep.violations)
    # resource overlap: two experts on the same GPU's PIM at the same time
    s2, e2 = good.start_ns.copy(), good.end_ns.copy()
    a, b = dag.expert_task[0], dag.expert_task[2]
    s2[b], e2[b] = s2[a], s2[a] + (e2[b] - good.start_ns[b])
    rep2 = check(Schedule(good.modes, s2, e2), dag)
    assert any("resource pim[0]" in v for v in rep2.violations)
    # wrong duration and unknown mode
    s3, e3 = good.start_ns.copy(), good.end_ns.copy()
    e3[a] += 5
    assert any("lasts" in v for v in check(Schedule(good.modes, s3, e3), dag).violations)
    modes = list(good.modes)
    modes[dag.by_name["qkv[0]@L0"]] = "pim"
    assert any("not among" in v for v in check(Schedule(tuple(modes), good.start_ns, good.end_ns), dag).violations)
    with pytest.raises(ScheduleError):
        check(bad, dag).raise_if_invalid()


def test_list_scheduler_rejects_bad_modes():
    dag = _dag(_hand_instance())
    with pytest.raises(ScheduleError):
        list_schedule(dag, ["gpu"] * (len(dag.tasks) - 1))
    modes = modes_from_experts(dag)
    modes[dag.tasks_of(ATTN)[0].tid] = "link"
    with pytest.raises(ScheduleError):
        list_schedule(dag, modes)


def test_instance_validation():
    inst = _hand_instance()
    with pytest.raises(SieveoptError, match="counts"):
        LayerInstance(inst.model, inst.system, inst.counts[:, :2].copy(), inst.dispatch_tokens.copy(),
                      inst.expert_gpu.copy(), inst.tokens_per_gpu.copy(), inst.kv_tokens_per_gpu.copy())
    neg = inst.counts.copy()
    neg[0, 0] = -1
    with pytest.raises(SieveoptError, match="negative"):
        LayerInstance(inst.model, inst.system, neg, inst.dispatch_tokens.copy(), inst.expert_gpu.copy(),
                      inst.tokens_per_gpu.copy(), inst.kv_tokens_per_gpu.copy())


def test_schedule_roundtrip_and_utilisation():
    dag = _dag(_hand_instance())
    s = list_schedule(dag, modes_from_experts(dag, default_expert="pim"), policy="allpim")
    s2 = Schedule.from_dict(s.to_dict(dag))
    assert s2.makespan_ns == s.makespan_ns and s2.modes == s.modes
    util = s.utilisation(dag)
    assert all(0 <= u <= 1 for u in util.values())
    order = s.resource_order(dag)
    for tids in order.values():
        starts = [s.start_ns[t] for t in tids]
        assert starts == sorted(starts)


@settings(max_examples=40, deadline=None)
@given(G=st.sampled_from([1, 2, 3, 4]), E=st.integers(2, 12), k=st.integers(1, 3), B=st.integers(1, 24),
       seed=st.integers(0, 2**16), kernel=st.sampled_from(["grouped", "per_expert"]),
       sharing=st.sampled_from(["dual_row_buffer", "exclusive", "partitioned"]),
       prefetch=st.booleans(), sched_ns=st.integers(0, 30_000), p_pim=st.floats(0, 1))
def test_random_instances_build_valid_dags_and_schedules(G, E, k, B, seed, kernel, sharing, prefetch, sched_ns, p_pim):
    k = min(k, E)
    rng = np.random.default_rng(seed)
    model = tiny_model(num_experts=E, top_k=k, shared=int(rng.integers(0, 2)))
    system = load_system("sieve-b200-hbm3e-pim", G)
    inst = random_instance(rng, model, system, B, skew=float(rng.uniform(0, 2)))
    assert inst.counts.sum() == B * k
    dag = _dag(inst, gpu_kernel=kernel, hbm_sharing=sharing, shared_expert_prefetch=prefetch,
               scheduler_latency_ns=sched_ns)
    assert len(dag.topo_order) == len(dag.tasks)  # acyclic
    expert_modes = {t.expert: ("pim" if rng.random() < p_pim else "gpu") for t in dag.tasks_of(EXPERT)}
    modes = modes_from_experts(dag, expert_modes, attention="pim" if rng.random() < 0.5 else "gpu")
    prio = rng.normal(size=len(dag.tasks))
    sched = list_schedule(dag, modes, prio)
    rep = check(sched, dag)
    assert rep.ok, rep.violations[:3]
    # makespan is at least the longest chain of chosen durations plus lags
    longest = np.zeros(len(dag.tasks), dtype=np.int64)
    for t in dag.topo_order:
        base = max((longest[e.src] + e.lag_ns for e in dag.preds[t] if dag.edge_active(e, modes)), default=0)
        longest[t] = base + dag.tasks[t].modes[modes[t]].duration_ns
    assert sched.makespan_ns >= longest.max()


def test_prefill_rows_get_a_prefill_attention_task():
    model = tiny_model(num_experts=4, top_k=2)
    system = load_system("sieve-b200-hbm3e-pim", 2)
    ids = np.array([[0, 1], [2, 3], [0, 2], [1, 3], [0, 1], [0, 3]])  # 2 decode rows, 4 prefill tokens
    tg = np.array([0, 1, 0, 0, 1, 1])
    inst = LayerInstance.from_expert_ids(model, system, ids, token_gpu=tg, decode_rows=2,
                                         context_lens=np.array([100, 300]),
                                         prefill_attn_flops_per_gpu=np.array([1e9, 2e9]),
                                         prefill_attn_bytes_per_gpu=np.array([1e6, 1e6]))
    assert inst.tokens_per_gpu.tolist() == [3, 3]
    assert inst.decode_requests_per_gpu.tolist() == [1, 1]
    assert inst.kv_tokens_per_gpu.tolist() == [100, 300]
    dag = _dag(inst)
    pf = dag.by_name["prefill_attn[1]@L0"]
    assert {dag.tasks[e.src].kind for e in dag.preds[pf]} == {"qkv"}
    assert {dag.tasks[e.dst].kind for e in dag.succs[pf]} == {"oproj"}
    assert dag.tasks[dag.by_name["attn[0]@L0"]].tokens == 1
    sched = list_schedule(dag, modes_from_experts(dag, default_expert="pim"))
    assert check(sched, dag).ok
    # prefill attention (GPU) overlaps decode attention (PIM)
    a, p = dag.by_name["attn[1]@L0"], pf
    assert sched.start_ns[p] < sched.end_ns[a] and sched.start_ns[a] < sched.end_ns[p]
    with pytest.raises(SieveoptError, match="context_lens"):
        LayerInstance.from_expert_ids(model, system, ids, token_gpu=tg, decode_rows=2, context_lens=np.ones(6))
    with pytest.raises(SieveoptError, match="token_gpu"):
        LayerInstance.from_expert_ids(model, system, ids, token_gpu=tg + 1)
