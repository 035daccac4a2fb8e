"""Next-layer expert prefetch (DagOptions.resident_experts / prefetch_experts, sieveopt/trimoe_prefetch.py):
the DAG's copy tasks and resident modes, the HBM limit, policies and twins, CP-SAT vs brute force, replay."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import PREFETCH, DagOptions, build_layer_dag, build_window_dag
from sieveopt.errors import SpecError
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.offload_host_memory import RES_HOSTMEM
from sieveopt.offload_tiers import MODE_GPU_FETCH, MODE_PREFETCH
from sieveopt.solvers import solve
from sieveopt.solvers.base import OPTIMAL
from sieveopt.targets import MODE_GPU
from sieveopt.testing import random_instance, tiny_model
from sieveopt.trimoe_prefetch import (
    predicted_hot,
    prefetch_buffers,
    prefetch_options,
    sample_with_history,
)
from sieveopt.validation.bruteforce import brute_force

SYSTEM = "trimoe-h100-xeon-ndp"


def _layer(batch: int = 64, P: int = 2, **sys_over):
    system, m = load_system(SYSTEM, overrides=sys_over or None), load_model("deepseek-v2")
    inst, hist = sample_with_history(m, system, batch, 1, 0)[0]
    cost = RooflineCostModel(system, m)
    opts = prefetch_options(system, m, batch, hist, P)
    return inst, cost, hist, opts, build_layer_dag(inst, cost, opts)


def test_prediction_is_the_ema_top_p() -> None:
    hist = np.zeros((3, 6))
    hist[:, 4] = [9, 0, 0]          # EMA 0.49 x 9 = 4.41
    hist[:, 1] = [0, 0, 6]          # EMA 0.3 x 6 = 1.8
    hist[:, 2] = [0, 0, 6]          # tie with 1: lower id first
    assert predicted_hot(hist, 2) == (4, 1)
    assert predicted_hot(hist, 5) == (4, 1, 2)       # only experts with a positive forecast
    assert predicted_hot(hist, 2, "last") == (1, 2)


def test_dag_has_resident_modes_and_prefetch_copies() -> None:
    inst, cost, hist, opts, dag = _layer()
    m, system = inst.model, inst.system
    assert opts.prefetch_experts == 2 and opts.resident_experts == predicted_hot(hist, 2)
    for t in dag.tasks:
        if t.kind == "expert":
            assert (MODE_GPU in t.modes) == (t.expert in opts.resident_experts)
    pre = [t for t in dag.tasks if t.kind == PREFETCH]
    assert len(pre) == 2 and all(set(t.modes) == {MODE_PREFETCH} for t in pre)
    want = 2000.0 + max(m.expert_weight_bytes / (64.0 * 0.85), m.expert_weight_bytes / (307.2 * 0.8))
    pcie = dag.resource_id[("pcie", 0)]
    reduce_ = dag.by_name["reduce[0]@L0"]
    for t in pre:
        assert abs(t.modes[MODE_PREFETCH].duration_ns - want) <= 1
        assert t.modes[MODE_PREFETCH].resources == (pcie,)            # the link only, not the GPU
        assert not dag.preds[t.tid] and [e.dst for e in dag.succs[t.tid]] == [reduce_]
    # No prefetch: exactly the plain DAG (no extra modes or tasks).
    plain = build_layer_dag(inst, cost, DagOptions.for_system(system))
    none = build_layer_dag(inst, cost, prefetch_options(system, m, 64, hist, 0))
    assert [t.modes.keys() for t in none.tasks] == [t.modes.keys() for t in plain.tasks]
    # Shared host memory: a prefetch holds the fetch lane too.
    _, _, _, _, shared = _layer(**{"offload.host_memory": "shared"})
    lanes = {r.rid for r in shared.resources if r.kind == RES_HOSTMEM}
    assert all(lanes & set(t.modes[MODE_PREFETCH].resources) for t in shared.tasks if t.kind == PREFETCH)


def test_hbm_buffers_limit_the_prefetch() -> None:
    system, m = load_system(SYSTEM), load_model("deepseek-v2")
    have = prefetch_buffers(m, system, 64)
    assert have > 0
    hist = np.ones((2, m.num_routed_experts))
    with pytest.raises(SpecError, match="prefetch_experts"):
        prefetch_options(system, m, 64, hist, have // 2 + 1)
    assert prefetch_options(system, m, 64, hist, have // 2).prefetch_experts == have // 2
    with pytest.raises(SpecError, match="prefetch_experts"):
        prefetch_options(system, m, 64, hist, -1)


@pytest.mark.parametrize("P", [1, 2, 4])
def test_policies_are_valid_and_the_twins_agree_with_prefetch(P: int) -> None:
    inst, cost, _hist, opts, dag = _layer(P=P)
    for pol in ("trimoe", "gpu-cpu", "gpu-ndp", "gpu-fetch"):
        r = solve(pol, dag, inst, cost)
        assert check(r.schedule, dag).ok, pol
    ref = solve("trimoe", dag, inst, cost, impl="ref")
    num = solve("trimoe", dag, inst, cost)
    assert ref.schedule.modes == num.schedule.modes
    modes = solve("gpu-fetch", dag, inst, cost).schedule.expert_modes(dag)
    assert all((m == MODE_GPU) == (e in opts.resident_experts) for e, m in modes.items())
    assert set(modes.values()) <= {MODE_GPU, MODE_GPU_FETCH}


def test_cpsat_matches_brute_force_with_a_prefetch() -> None:
    system = load_system(SYSTEM, overrides={"offload.ndp.num_dimms": 1, "offload.ndp.peak_GFLOPS": 8.0})
    model = tiny_model(num_experts=4, top_k=2, hidden=2048, inter=1024)
    inst = random_instance(np.random.default_rng(2), model, system, 5, skew=0.5)
    cost = RooflineCostModel(system, model)
    active = [int(e) for e in np.flatnonzero(inst.expert_tokens)]
    dag = build_layer_dag(inst, cost, DagOptions.for_system(system, resident_experts=(active[0],), prefetch_experts=1))
    assert any(t.kind == PREFETCH for t in dag.tasks)
    opt = brute_force(dag)
    r = solve("cpsat", dag, inst, cost, time_limit_s=20.0, deterministic=True, workers=1, seed=0)
    assert check(r.schedule, dag).ok and r.status == OPTIMAL and r.objective_ns == opt
    assert r.makespan_ns <= r.meta["hint_makespan_ns"]


def test_window_prefetch_waits_for_the_previous_layer() -> None:
    inst, cost, _hist, opts, _dag = _layer(P=1)
    win = build_window_dag([[inst], [inst]], cost, opts)
    pre = [t for t in win.tasks if t.kind == PREFETCH]
    assert [t.layer for t in pre] == [0, 1]
    red0 = win.by_name["reduce[0]@L0"]
    assert any(e.src == red0 for e in win.preds[pre[1].tid])
    assert not win.preds[pre[0].tid]


def test_replay_times_the_prefetch_like_a_fetch() -> None:
    from sieveopt.validation.replay import replay

    inst, cost, _hist, _opts, dag = _layer(batch=32, P=1)
    res = solve("trimoe", dag, inst, cost)
    rep = replay(res.schedule, dag, inst.system, instance=inst)
    pre = [t.tid for t in dag.tasks if t.kind == PREFETCH]
    for tid in pre:
        err = (rep.predicted_duration_ns[tid] - rep.replayed_duration_ns[tid]) / rep.replayed_duration_ns[tid]
        assert abs(err) < 0.08                 # the fetch's +5 % (PCIe efficiency vs TLP overheads)


def test_compare_cli_prefetch_builds_the_prefetch_dag(capsys) -> None:
    """`compare --prefetch P` runs every sampled layer on the DAG with P prefetched experts (the
    one prefetch_options builds from the layer's routing history) and says so in the JSON."""
    import json

    from sieveopt.cli.main import main

    assert main(["compare", "--system", SYSTEM, "--model", "deepseek-v2", "--gpus", "1", "--batch", "64",
                 "--policies", "trimoe,gpu-cpu", "--layers", "1", "--prefetch", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prefetch_experts"] == 2 and data["all_checks_ok"]
    inst, cost, _hist, _opts, dag = _layer(P=2)
    row = data["per_layer"][0]
    assert (row["moe_layer"], row["tasks"]) == (inst.moe_layer, len(dag.tasks))
    assert sum(t.kind == PREFETCH for t in dag.tasks) == 2
    from sieveopt.solvers.sched_latency import resolve, with_scheduler_latency

    charged = with_scheduler_latency(dag, resolve("trimoe", "default").ns)  # compare charges the decision
    assert row["policies"]["trimoe"]["makespan_ns"] == solve("trimoe", charged, inst, cost).makespan_ns


@pytest.mark.parametrize("extra, field", [
    (["--system", "sieve-b200-hbm3e-pim", "--ignore-capacity", "--prefetch", "2"], "--prefetch"),
    (["--system", SYSTEM, "--prefetch", "100000"], "prefetch_experts"),
    (["--system", SYSTEM, "--prefetch", "2", "--overlap", "microbatch", "--microbatches", "2"], "--prefetch"),
])
def test_compare_cli_bad_prefetch_exits_2(extra, field, capsys) -> None:
    from sieveopt.cli.main import main

    rc = main(["compare", "--model", "deepseek-v2", "--gpus", "1", "--batch", "64", "--policies", "trimoe",
               "--layers", "1", *extra])
    assert rc == 2
    assert field in capsys.readouterr().err
