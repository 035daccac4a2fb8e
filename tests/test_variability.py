"""GPU speed variability (GEM): spec validation, factor resolution, DAG/planner/replay hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieveopt.dag import EXPERT, build_layer_dag
from sieveopt.errors import SpecError
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, make_cost_model
from sieveopt.models.specs import GpuVariabilitySpec
from sieveopt.tomlspec import from_dict
from sieveopt.variability import (
    load_profile,
    speed_factors,
    variability_spec,
    with_variability,
)


@pytest.fixture(scope="module")
def base():
    return load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 4)


def test_default_is_nominal(base):
    _, system = base
    f = speed_factors(system)
    assert f.uniform and f.compute.shape == (4,)


def test_uniform_draw_is_seeded_and_bounded(base):
    _, system = base
    a = speed_factors(with_variability(system, variability_spec(0.2, seed=3)))
    b = speed_factors(with_variability(system, variability_spec(0.2, seed=3)))
    c = speed_factors(with_variability(system, variability_spec(0.2, seed=4)))
    assert np.array_equal(a.compute, b.compute) and not np.array_equal(a.compute, c.compute)
    assert np.all((a.compute >= 0.8) & (a.compute <= 1.0))
    assert np.array_equal(a.compute, a.memory)          # one scalar speed per GPU by default


@pytest.mark.parametrize("bad", [[1.0, 0.0], [1.0, -0.5]])
def test_nonpositive_factor_names_field(bad):
    with pytest.raises(SpecError, match=r"compute_speed\[1\].*> 0"):
        GpuVariabilitySpec(kind="fixed", compute_speed=tuple(bad))


def test_spread_out_of_range():
    with pytest.raises(SpecError, match="variability.spread"):
        variability_spec(1.5)


def test_fixed_length_must_match_gpus(base):
    _, system = base
    with pytest.raises(SpecError, match="compute_speed"):
        with_variability(system, GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.9)))


def test_toml_table_loads(base):
    _, system = base
    from sieveopt.models.specs import SystemSpec
    from sieveopt.tomlspec import to_dict

    data = to_dict(system)
    data["variability"] = {"kind": "fixed", "compute_speed": [1.0, 0.9, 0.8, 1.0]}
    s = from_dict(SystemSpec, data, "test.toml")
    assert list(speed_factors(s).compute) == [1.0, 0.9, 0.8, 1.0]
    data["variability"] = {"kind": "fixed", "compute_speed": [1.0, 0.0, 0.8, 1.0]}
    with pytest.raises(SpecError, match=r"test.toml: field 'variability.compute_speed\[1\]'"):
        from_dict(SystemSpec, data, "test.toml")


def test_profile_file_gem_latency_form(tmp_path):
    p = tmp_path / "prof.json"
    p.write_text(json.dumps({"tokens": [16, 32], "latency_ns": [[100, 200], [125, 250]]}))
    c, m = load_profile(p, 2)
    assert np.allclose(c, [1.0, 0.8]) and np.allclose(m, c)
    with pytest.raises(SpecError, match="latency_ns"):
        load_profile(p, 3)
    q = tmp_path / "prof.toml"
    q.write_text("compute_speed = [1.0, 0.5]\nmemory_speed = [1.0, 1.0]\n")
    c, m = load_profile(q, 2)
    assert np.allclose(c, [1.0, 0.5]) and np.allclose(m, [1.0, 1.0])


def test_dag_gpu_durations_scale_per_gpu_and_pim_stays(base):
    model, system = base
    slow = with_variability(system, GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.5, 1.0, 1.0)))
    inst = sample_layers(model, system, 64, 1, 0)[0]
    inst_slow = sample_layers(model, slow, 64, 1, 0)[0]
    d0 = build_layer_dag(inst, make_cost_model("roofline", system, model))
    d1 = build_layer_dag(inst_slow, make_cost_model("roofline", slow, model))
    for t0, t1 in zip(d0.tasks, d1.tasks, strict=True):
        if t0.kind == EXPERT:
            assert t1.modes[MODE_PIM].duration_ns == t0.modes[MODE_PIM].duration_ns
            if t0.gpu == 1:
                assert t1.modes[MODE_GPU].duration_ns >= t0.modes[MODE_GPU].duration_ns
            else:
                assert t1.modes[MODE_GPU].duration_ns == t0.modes[MODE_GPU].duration_ns
    # a compute-bound kernel on GPU 1 is exactly 2x slower in its compute part
    big = [t for t in d0.tasks if t.kind == "qkv" and t.gpu == 1][0]
    big1 = d1.tasks[big.tid]
    assert big1.modes[MODE_GPU].duration_ns >= big.modes[MODE_GPU].duration_ns


def test_planner_rates_follow_the_gpu(base):
    from sieveopt.solvers.plan_inputs import P_BYTES_PER_NS, P_FLOPS_PER_NS, plan_inputs

    model, system = base
    slow = with_variability(system, GpuVariabilitySpec(kind="fixed", compute_speed=(1.0, 0.5, 1.0, 1.0),
                                                       memory_speed=(1.0, 0.25, 1.0, 1.0)))
    inst = sample_layers(model, slow, 64, 1, 0)[0]
    cost = make_cost_model("roofline", slow, model)
    inp = plan_inputs(build_layer_dag(inst, cost), inst, cost)
    assert inp[1].params[P_FLOPS_PER_NS] == pytest.approx(0.5 * inp[0].params[P_FLOPS_PER_NS])
    assert inp[1].params[P_BYTES_PER_NS] == pytest.approx(0.25 * inp[0].params[P_BYTES_PER_NS])


def test_replay_honours_factors(base):
    from sieveopt.solvers import solve
    from sieveopt.validation.replay import replay

    model, system = base
    slow = with_variability(system, GpuVariabilitySpec(kind="fixed", compute_speed=(0.5,) * 4,
                                                       memory_speed=(0.5,) * 4))
    out = []
    for s in (system, slow):
        inst = sample_layers(model, s, 64, 1, 0)[0]
        cost = make_cost_model("roofline", s, model)
        dag = build_layer_dag(inst, cost)
        res = solve("gpu_only", dag, inst, cost)
        out.append(replay(res.schedule, dag, s, instance=inst, memory="analytic").makespan_ns)
    assert out[1] > out[0]
