"""ae/fig_exec_models.py: one real point per execution model, labelled, and the ideal model bounds the pipeline."""

from __future__ import annotations

import pytest

from tests.ae_modules import load_ae_module


def _mod():
    return load_ae_module("fig_exec_models")


@pytest.mark.slow
def test_exec_model_rows_are_labelled_and_ideal_bounds_microbatch(tmp_path):
    m = _mod()
    rows = []
    for mode in ("ideal", "microbatch"):
        argv = m.argv_for("qwen3-30b-a3b", 1, (), 16, mode, 1.0, 0)
        rc, d, wall = m.run_point(argv)
        assert rc == 0 and d is not None
        rows += m.rows_of("qwen3-30b-a3b", 1, 16, mode, argv, rc, d, wall)
    t = {(r["execution_model"], r["policy"]): r["time_per_layer_ns"] for r in rows}
    assert all(r["precision"] == "bf16" and r["expert_bytes_per_param"] == 2.0 for r in rows)
    assert all(r["check_ok"] for r in rows)
    # every policy pays its scheduler charge under every execution model; CP-SAT (offline) none
    charge = {(r["execution_model"], r["policy"]): r["sched_charge"] for r in rows}
    assert charge[("microbatch", "sieve")] == charge[("ideal", "sieve")] == "1us"
    assert charge[("microbatch", "cpsat")] == charge[("ideal", "cpsat")] == "0us"
    labels = {r["execution_model"]: r["execution_model_label"] for r in rows}
    assert labels["microbatch"].startswith("microbatch(M=2,L=2") and "runtime_descent=1000" in labels["microbatch"]
    assert labels["ideal"].startswith("ideal")
    # CP-SAT's ideal answer is the load optimum over modes: no policy's modes have a smaller load
    assert all(t[("ideal", "cpsat")] <= t[("ideal", p)] for p in m.POLICIES)
    # a policy's steady-state period can never beat the load of its own modes
    assert all(t[("microbatch", p)] >= t[("ideal", p)] for p in m.POLICIES if p != "cpsat")
    md = m.markdown(rows, 1.0)
    assert "qwen3-30b-a3b (bf16, 2 B/param) x1, B=16 | microbatch |" in md


def test_failed_point_is_reported_not_hidden():
    m = _mod()
    argv = m.argv_for("no-such-model", 1, (), 16, "ideal", 1.0, 0)
    rc, d, _ = m.run_point(argv)
    assert rc == 2 and d is None
