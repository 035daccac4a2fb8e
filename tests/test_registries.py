"""Tests driven by the registries: every registered policy, target set, catalog model and cost
model, so a new entry is covered the moment it is registered."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.errors import SieveoptError
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import list_models, load_model, load_system
from sieveopt.models.costmodel import COST_MODELS, make_cost_model
from sieveopt.solvers import SOLVERS, policy_info, solve
from sieveopt.targets import MODE_GPU, MODE_PIM
from sieveopt.testing import random_instance, tiny_model

POLICIES = SOLVERS.names()
#: Expert target sets: the default two-sided one and each single side.
TARGET_SETS = [(MODE_GPU, MODE_PIM), (MODE_GPU,), (MODE_PIM,)]


def _params(policy: str) -> dict:
    # Deterministic, short: golden results never depend on wall-clock limits.
    known = policy_info(policy).params
    p = {"time_limit_s": 0.5, "deterministic": True, "workers": 1}
    return {k: v for k, v in p.items() if k in known}


@pytest.mark.parametrize("model_name", list_models())
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_on_every_catalog_model_passes_check(policy, model_name):
    model = load_model(model_name)
    system = load_system("sieve-b200-hbm3e-pim", 2)
    inst = sample_layers(model, system, 8, 1, seed=3)[0]
    cost = make_cost_model("roofline", system, model)
    # A policy of another tier (e.g. TriMoE's) runs on a DAG offering the modes it declares.
    needs = tuple(policy_info(policy).needs_modes)
    dag = build_layer_dag(inst, cost, None if set(needs) <= {MODE_GPU, MODE_PIM} else DagOptions(expert_modes=needs))
    res = solve(policy, dag, inst, cost, **_params(policy))
    assert res.schedule is not None
    report = check(res.schedule, dag)
    assert report.ok, report.violations[:3]
    assert res.schedule.makespan_ns > 0


@pytest.mark.parametrize("modes", TARGET_SETS, ids=lambda m: "+".join(m))
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_on_every_target_set_passes_check_or_declares_why_not(policy, modes):
    model = tiny_model(num_experts=8)
    system = load_system("sieve-b200-hbm3e-pim", 2)
    inst = random_instance(np.random.default_rng(5), model, system, 16)
    cost = make_cost_model("roofline", system, model)
    dag = build_layer_dag(inst, cost, DagOptions(expert_modes=modes))
    needs = set(policy_info(policy).needs_modes)
    if not needs <= set(modes):
        with pytest.raises(SieveoptError, match="needs every routed expert"):
            solve(policy, dag, inst, cost, **_params(policy))
        return
    res = solve(policy, dag, inst, cost, **_params(policy))
    assert res.schedule is not None and check(res.schedule, dag).ok
    used = {res.schedule.modes[t.tid] for t in dag.tasks if t.kind == "expert"}
    assert used <= set(modes)


@pytest.mark.parametrize("name", COST_MODELS.names())
def test_every_cost_model_times_a_tiny_dag(name):
    model = tiny_model(num_experts=4, hidden=256, inter=128)
    system = load_system("sieve-b200-hbm3e-pim", 1)
    inst = random_instance(np.random.default_rng(0), model, system, 4, context_len_tokens=64)
    cost = make_cost_model(name, system, model)
    dag = build_layer_dag(inst, cost)
    for t in dag.tasks:
        for m, c in t.modes.items():
            assert c.duration_ns >= 0, (name, t.name, m)
    assert any(c.duration_ns > 0 for t in dag.tasks if t.kind == "expert" for c in t.modes.values())
    res = solve("sieve", dag, inst, cost)
    assert check(res.schedule, dag).ok


def test_policy_declarations_are_consistent():
    for p in POLICIES:
        info = policy_info(p)
        assert info.decision in ("compiled", "reference", "static", "offline"), p
        for key, parse in info.params.items():
            assert callable(parse), (p, key)
    assert {p for p in POLICIES if policy_info(p).role == "reference"}, "some policy is the exact reference"


def test_builtin_targets_keep_the_resource_layout():
    # Resource ids of a default DAG are per GPU in this order (saved DAGs and traces rely on it).
    from sieveopt.dag import RESOURCE_KINDS
    from sieveopt.targets import TARGETS, resource_kinds_for, unregister_target

    assert resource_kinds_for(DagOptions().attention_modes + DagOptions().expert_modes) == RESOURCE_KINDS
    model = tiny_model()
    system = load_system("sieve-b200-hbm3e-pim", 2)
    inst = random_instance(np.random.default_rng(0), model, system, 8)
    dag = build_layer_dag(inst, make_cost_model("roofline", system, model))
    assert [r.name for r in dag.resources] == [f"{k}[{g}]" for g in range(2) for k in RESOURCE_KINDS]
    for m in TARGETS.names():
        with pytest.raises(SieveoptError, match="built-in"):
            unregister_target(m)
