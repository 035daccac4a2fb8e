"""sieve-pipe's serial kernel: the decision of sieve-plus (its estimate, every h searched, ties to
the smallest h), made with an early stop and an O(1) release term; checked against a brute-force
search of the estimate's definition and against sieve-plus's kernel on real DAGs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sieveopt.check import check
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import solve
from sieveopt.solvers.sieve_pipe_serial import decide_serial, serial_sweep
from sieveopt.solvers.sieve_plus import decide, plan_arrays
from tests.layers import layer_params, random_layer

SYSTEM = "sieve-b200-hbm3e-pim"


def _estimate(h, order, gpu, pim, level, cg, cg0, cp, cp0, qp, lv) -> int:
    """sieve-plus's finish estimate of "the h hottest on the GPU", from its definition."""
    on_pim = order[h:]
    gpu_end = max(cg + int(gpu[order[:h]].sum()) if h > 0 else 0, cg0)
    if len(on_pim) == 0:
        return max(gpu_end, cp0)
    pim_end = max(cp + int(pim[on_pim].sum()), cp0)
    for k in range(len(lv)):
        s_k = int(pim[[e for e in on_pim if level[e] >= k]].sum())
        if s_k > 0:
            pim_end = max(pim_end, int(lv[k]) + qp + s_k)
    return max(gpu_end, pim_end)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), m=st.integers(0, 14), nl=st.integers(1, 6))
def test_kernel_matches_a_full_search_of_the_estimate(data, m, nl) -> None:
    tokens = np.array(data.draw(st.lists(st.integers(0, 9), min_size=m, max_size=m)), dtype=np.int32)
    gpu = np.array(data.draw(st.lists(st.integers(0, 60), min_size=m, max_size=m)), dtype=np.int64)
    pim = np.array(data.draw(st.lists(st.integers(0, 60), min_size=m, max_size=m)), dtype=np.int64)
    level = np.array(data.draw(st.lists(st.integers(0, nl - 1), min_size=m, max_size=m)), dtype=np.int64)
    lv = np.sort(np.array(data.draw(st.lists(st.integers(0, 80), min_size=nl, max_size=nl)), dtype=np.int64))
    cg, cg0, cp, cp0, qp = (data.draw(st.integers(0, 100)) for _ in range(5))
    side = np.concatenate([[cg, cg0, cp, cp0, qp, nl], lv, np.full(nl, 7)]).astype(np.int64)  # scratch dirty
    ws, out = np.zeros(12, dtype=np.int32), np.zeros(max(1, m), dtype=np.int32)
    h = serial_sweep(tokens, np.ascontiguousarray(np.stack([gpu, pim, level], axis=1), dtype=np.int32), side, ws, out)
    order = np.argsort(-tokens, kind="stable")
    assert np.array_equal(out[:m], order)  # Sieve's counting sort: descending, stable
    est = [_estimate(k, order, gpu, pim, level, cg, cg0, cp, cp0, qp, lv) for k in range(m + 1)]
    assert h == min(range(m + 1), key=lambda k: (est[k], k))


def test_token_count_outside_the_workspace_is_refused() -> None:
    side = np.array([0, 0, 0, 0, 0, 1, 0, 0], dtype=np.int64)
    args = (np.array([3, 9], dtype=np.int32), np.zeros((2, 3), dtype=np.int32), side, np.zeros(5, dtype=np.int32),
            np.zeros(2, dtype=np.int32))
    assert serial_sweep(*args) == -1


def _same_decision(dag) -> None:
    pa = plan_arrays(dag)
    x, _ = decide(pa, 0)
    on_gpu, times = decide_serial(dag)
    assert on_gpu == {int(t): bool(v) for t, v in zip(pa.tids, x, strict=True)}
    assert len(times) == dag.num_gpus and all(t > 0 for t in times)


@settings(max_examples=25, deadline=None)
@given(**layer_params())
def test_same_decision_and_schedule_as_sieve_plus(seed, gpus, experts, batch, shared, kernel, sharing) -> None:
    _, inst, dag, cost = random_layer(seed, gpus, experts, batch, shared, kernel, sharing)
    _same_decision(dag)
    a, b = solve("sieve-pipe", dag, inst, cost), solve("sieve-plus", dag, inst, cost)
    assert check(a.schedule, dag).ok
    assert a.schedule.modes == b.schedule.modes and a.makespan_ns == b.makespan_ns


@pytest.mark.parametrize("model,gpus,batch", [("qwen3-30b-a3b", 1, 64), ("gpt-oss-120b", 4, 16),
                                              ("qwen3.5-397b-a17b", 8, 256)])
def test_same_decision_on_the_paper_configurations(model, gpus, batch) -> None:
    for inst in sample_layers(load_model(model), load_system(SYSTEM, gpus), batch, 2, 0):
        _same_decision(build_dag(inst, "roofline")[0])
