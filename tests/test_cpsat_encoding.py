"""Guards on the CP-SAT encoding (issue 15, exact-solver soundness).

An independent check found that OR-Tools 9.15 reports OPTIMAL at a non-optimal value for a valid
alternative encoding, *each mode an optional interval with its own end variable tied by
``end == start + d``* (28 of 60 default runs on 5 small instances), while this project's
encoding (every mode interval a fixed-size interval on the task's shared start, ``end`` derived
from the start) agreed with exhaustive search every time. These tests fail if the encoding drifts
to the fragile form; the exhaustive cross-check itself is tests/test_cpsat.py::brute_force.
"""

from __future__ import annotations

import numpy as np
from ortools.sat import cp_model_pb2

from sieveopt.dag import DagOptions
from sieveopt.models.catalog import load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import solve
from sieveopt.testing import random_instance, tiny_model


def _model_proto(tmp_path) -> tuple[cp_model_pb2.CpModelProto, object]:
    rng = np.random.default_rng(0)
    inst = random_instance(rng, tiny_model(num_experts=4, top_k=2, shared=1), load_system("sieve-b200-hbm3e-pim", 2),
                           6, skew=0.5)
    dag, cost = build_dag(inst, options=DagOptions(gpu_kernel="grouped"))
    path = tmp_path / "m.pb"
    solve("cpsat", dag, inst, cost, export_path=str(path), deterministic=True, workers=1, time_limit_s=2.0,
          hint="none")
    proto = cp_model_pb2.CpModelProto()
    proto.ParseFromString(path.read_bytes())
    return proto, dag


def _affine(expr) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    return tuple(expr.vars), tuple(expr.coeffs), int(expr.offset)


def fragile_intervals(proto: cp_model_pb2.CpModelProto) -> list[str]:
    """Intervals whose end is not ``start + constant size`` on the start's own variable."""
    bad = []
    for k, c in enumerate(proto.constraints):
        if c.WhichOneof("constraint") != "interval":
            continue
        iv = c.interval
        s_vars, s_coeffs, s_off = _affine(iv.start)
        e_vars, e_coeffs, e_off = _affine(iv.end)
        if iv.size.vars or (e_vars, e_coeffs) != (s_vars, s_coeffs) or e_off != s_off + iv.size.offset:
            bad.append(c.name or f"#{k}")
    return bad


def test_every_interval_is_fixed_size_on_its_task_start(tmp_path) -> None:
    proto, dag = _model_proto(tmp_path)
    intervals = [c for c in proto.constraints if c.WhichOneof("constraint") == "interval"]
    assert intervals, "the model has no intervals"
    assert not fragile_intervals(proto), (
        "an interval's end must be start + duration on the same variable; an end variable of its "
        "own (end == start + d) is the encoding OR-Tools 9.15 mis-proves")
    optional = sum(bool(c.enforcement_literal) for c in intervals)
    assert 1 <= optional <= sum(len(t.modes) for t in dag.tasks if t.has_choice)


def test_the_guard_flags_the_fragile_form(tmp_path) -> None:
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    start, end = m.new_int_var(0, 100, "s"), m.new_int_var(0, 100, "e")
    lit = m.new_bool_var("l")
    m.add(end == start + 7).only_enforce_if(lit)
    m.new_optional_interval_var(start, 7, end, lit, "fragile")
    m.new_optional_fixed_size_interval_var(start, 7, lit, "robust")
    path = tmp_path / "f.pb"
    assert m.export_to_file(str(path))
    proto = cp_model_pb2.CpModelProto()
    proto.ParseFromString(path.read_bytes())
    assert fragile_intervals(proto) == ["fragile"]
