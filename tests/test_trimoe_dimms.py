"""Per-DIMM NDP placement (DagOptions.ndp_placement = "home", sieveopt/offload_dimms.py): the DAG's
DIMM resources, the planner twins with homes, check(), CP-SAT vs brute force, replay."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.offload_dimms import RES_NDP_DIMM, task_home
from sieveopt.offload_tiers import MODE_NDP
from sieveopt.solvers import solve
from sieveopt.solvers._trimoe_numba import make_workspace, trimoe_plan
from sieveopt.solvers.base import OPTIMAL
from sieveopt.solvers.trimoe_ref import trimoe_plan_ref
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.bruteforce import brute_force

SYSTEM = "trimoe-h100-xeon-ndp"


def _dags(model: str = "deepseek-v2", batch: int = 64, **kw):
    system, m = load_system(SYSTEM), load_model(model)
    inst = sample_layers(m, system, batch, 1, 0)[0]
    cost = RooflineCostModel(system, m)
    return inst, cost, build_layer_dag(inst, cost, DagOptions.for_system(system, ndp_placement="home", **kw))


def test_each_ndp_job_holds_its_home_dimm() -> None:
    inst, cost, dag = _dags()
    D = inst.system.offload.ndp.num_dimms
    dimms = [r for r in dag.resources if r.kind == RES_NDP_DIMM]
    assert len(dimms) == D and all(r.capacity == 1 for r in dimms)
    pooled = dag.resource_id[("ndp", 0)]
    for t in dag.tasks:
        if t.kind == "expert":
            res = t.modes[MODE_NDP].resources
            assert pooled not in res and task_home(dag, t, MODE_NDP) == t.expert % D
    homes = tuple((e * 7) % D for e in range(inst.model.num_routed_experts))
    _, _, custom = _dags(dimm_homes=homes)
    assert all(task_home(custom, t, MODE_NDP) == homes[t.expert] for t in custom.tasks if t.kind == "expert")
    with pytest.raises(ValueError, match="dimm_homes"):
        _dags(dimm_homes=(0, 1))
    system = load_system(SYSTEM, overrides={"offload.ndp_placement": "home"})
    assert DagOptions.for_system(system).ndp_placement == "home"


def test_planner_twins_agree_with_homes() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 50))
        D = int(rng.integers(1, 17))
        tok = rng.integers(1, 12, n)
        scale = rng.choice([1, 50])
        tg, tc, tn = (rng.integers(1, 40, n) * scale for _ in range(3))
        homes = rng.integers(-1, D, n)          # -1: any engine (mixed on purpose)
        n_warm, base, refine = int(rng.integers(1, 8)), int(rng.integers(0, 200)), bool(rng.integers(0, 2))
        u_ref, c_ref, m_ref = trimoe_plan_ref(tg.tolist(), tc.tolist(), tn.tolist(), tok.tolist(), n_warm, base, D,
                                              refine, homes.tolist())
        out, loads = make_workspace(n, D, int(tok.max()))
        m = trimoe_plan(np.stack([tg, tc, tn, tok, homes]).astype(np.int64),
                        np.array([n_warm, base, D, int(refine)], np.int64), out, loads)
        assert m == m_ref and out[0, :n].tolist() == u_ref and out[1, :n].tolist() == c_ref
        for i, u in enumerate(u_ref):
            if u >= 2 and homes[i] >= 0:
                assert u == 2 + homes[i]


@pytest.mark.parametrize("model", ["deepseek-v2", "glm-4.5-air"])
def test_policies_respect_homes(model: str) -> None:
    inst, cost, dag = _dags(model)
    ref = solve("trimoe", dag, inst, cost, impl="ref")
    num = solve("trimoe", dag, inst, cost)
    assert ref.schedule.modes == num.schedule.modes and check(num.schedule, dag).ok
    for pol in ("gpu-cpu", "gpu-ndp", "gpu-fetch"):
        assert check(solve(pol, dag, inst, cost).schedule, dag).ok


def test_cpsat_matches_brute_force_with_homes() -> None:
    system = load_system(SYSTEM, overrides={"offload.ndp.num_dimms": 2, "offload.ndp.peak_GFLOPS": 8.0})
    model = tiny_model(num_experts=5, top_k=2, hidden=2048, inter=1024)
    inst = random_instance(np.random.default_rng(4), model, system, 5, skew=0.5)
    cost = RooflineCostModel(system, model)
    dag = build_layer_dag(inst, cost, DagOptions.for_system(system, ndp_placement="home"))
    opt = brute_force(dag)
    assert opt >= brute_force(build_layer_dag(inst, cost, DagOptions.for_system(system)))
    r = solve("cpsat", dag, inst, cost, time_limit_s=20.0, deterministic=True, workers=1, seed=0)
    assert check(r.schedule, dag).ok and r.status == OPTIMAL and r.objective_ns == opt
    assert r.makespan_ns <= r.meta["hint_makespan_ns"]


def test_replay_serves_each_dimm_alone() -> None:
    from sieveopt.validation.replay import replay

    inst, cost, dag = _dags(batch=32)
    res = solve("trimoe", dag, inst, cost)
    rep = replay(res.schedule, dag, inst.system, instance=inst)
    s, e = rep.schedule.start_ns, rep.schedule.end_ns
    on: dict[int, list[int]] = {}
    for t in dag.tasks:
        if t.kind == "expert" and res.schedule.modes[t.tid] == MODE_NDP:
            on.setdefault(task_home(dag, t, MODE_NDP), []).append(t.tid)
    assert any(len(v) > 1 for v in on.values())
    for tids in on.values():
        tids.sort(key=lambda x: s[x])
        assert all(e[a] <= s[b] for a, b in zip(tids, tids[1:], strict=False))
