"""The shared CP-SAT interval model (solvers/_interval_model.py) is the core of solvers/cpsat.py's
model: built with the same durations, lags and horizon it yields the same variables and the same
leading constraints as the model ``solve_cpsat`` exports (without levers or hint)."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from ortools.sat import cp_model_pb2

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag, policy_dag
from sieveopt.solvers._interval_model import build_interval_model
from sieveopt.solvers.cpsat import solve_cpsat


@pytest.mark.parametrize("name,gpus,policy", [("qwen3-30b-a3b", 1, "sieve"), ("gpt-oss-120b", 2, "sieve"),
                                              ("gpt-oss-120b", 2, "pimoe")])
def test_builder_is_cpsat_core(tmp_path, name, gpus, policy):
    model, system = load_model(name), load_system("sieve-b200-hbm3e-pim", gpus)
    inst = sample_layers(model, system, 8, 1, 0)[0]
    dag, cost = build_dag(inst)
    dag = policy_dag(policy, dag, inst, cost)     # pimoe: expert-parallel channel-group resources
    path = tmp_path / "m.txt"
    solve_cpsat(dag, inst, cost, levers=frozenset(), hint="none", time_limit_s=0.05, deterministic=True,
                export_path=str(path))
    theirs = text_format.Parse(path.read_text(), cp_model_pb2.CpModelProto())
    dur = dag.mode_durations_ns()
    lags = [e.lag_ns for e in dag.edges]
    horizon = sum(max(d.values()) for d in dur) + sum(lags) + 1    # cpsat.py's horizon without a hint
    ours = text_format.Parse(str(build_interval_model(dag, dur, lags, horizon).model.Proto()), cp_model_pb2.CpModelProto())
    assert list(ours.variables) == list(theirs.variables)
    k = len(ours.constraints)
    assert k > len(dag.tasks)
    assert list(theirs.constraints)[:k] == list(ours.constraints)
    # what cpsat.py adds after the core without levers: only the static bound M >= lb
    assert len(theirs.constraints) - k <= 1
