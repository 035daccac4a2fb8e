"""Workload statistics on hand-built and generated traces."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.workload import RoutingTrace, generate_routing, workload_stats
from sieveopt.workload.stats import gini, step_correlation


def _trace(ids: list) -> RoutingTrace:
    return RoutingTrace(np.array(ids, dtype=np.int16), num_experts=8, top_k=1)


def test_bins_cv_gini_by_hand() -> None:
    # one step, one layer, 12 tokens, k=1 over 8 experts: counts [9, 1, 2, 0, 0, 0, 0, 0]
    ids = [[[[0]] * 9 + [[1]] + [[2]] * 2]]
    s = workload_stats(_trace(ids))
    summ = s["summary"]
    assert summ["experts_share"] == pytest.approx(
        {"idle": 5 / 8, "1": 1 / 8, "2": 1 / 8, "3-4": 0, "5-8": 0, ">8": 1 / 8}
    )
    assert summ["activated_share"]["1"] == pytest.approx(1 / 3)
    assert summ["activated_share"][">8"] == pytest.approx(1 / 3)
    cnt = np.array([9, 1, 2, 0, 0, 0, 0, 0])
    assert summ["cv"] == pytest.approx(cnt.std() / cnt.mean())
    assert summ["max_over_mean"] == pytest.approx(9 / 1.5)
    assert summ["gini"] == pytest.approx(gini(cnt))
    assert np.isnan(summ["step_corr"])


def test_gini_limits() -> None:
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0] * 9 + [5])) == pytest.approx(0.9)


def test_step_correlation_identical_and_opposite() -> None:
    a = np.array([[[3, 1, 0, 0]], [[3, 1, 0, 0]], [[0, 0, 1, 3]]])
    corr = step_correlation(a)
    assert corr[0, 0] == pytest.approx(1.0) and corr[1, 0] < 0


def test_shared_experts_are_optional_in_stats() -> None:
    tr = generate_routing(64, 4, 2, 16, 3, "gptoss", seed=0, num_shared_experts=1)
    a = workload_stats(tr)
    b = workload_stats(tr, include_shared=True)
    assert a["meta"]["include_shared"] is False
    assert b["summary"]["experts_share"][">8"] > a["summary"]["experts_share"][">8"]


def test_generated_gptoss_is_more_skewed_than_uniform() -> None:
    tr = generate_routing(128, 4, 8, 256, 4, "gptoss", seed=1)
    s = workload_stats(tr)
    rng = np.random.default_rng(0)
    uni_ids = np.argsort(rng.random((4, 8, 256, 128)), axis=-1)[..., :4]
    u = workload_stats(RoutingTrace(uni_ids.astype(np.int16), 128, 4))
    assert s["summary"]["gini"] > u["summary"]["gini"] + 0.3
    assert s["summary"]["step_corr"] > 0.8 > 0.3 > u["summary"]["step_corr"]
    assert s["summary"]["experts_share"]["idle"] > 0.3 > u["summary"]["experts_share"]["idle"]
    assert len(s["per_layer"]) == 8
    assert s["per_step_layer"]["bins_experts_share"].shape == (4, 8, 6)
