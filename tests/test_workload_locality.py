"""Locality / long-window metrics (T20, L20, reuse, top-20 % share, hot-set Jaccard)."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.workload import RoutingTrace, generate_routing, workload_stats
from sieveopt.workload.locality import (
    hot_jaccard,
    layer_locality,
    locality_stats,
    token_locality,
    top_share,
)


def _uniform(steps: int, layers: int, b: int, e: int, k: int, seed: int) -> RoutingTrace:
    rng = np.random.default_rng(seed)
    ids = np.argsort(rng.random((steps, layers, b, e)), axis=-1)[..., :k]
    return RoutingTrace(ids.astype(np.int16), e, k)


def test_t20_and_reuse_by_hand() -> None:
    # one slot, E=5 (top 20% = 1 expert), k=1, experts over steps 0,0,0,0,1,2:
    # transitions 0->0 x3, 0->1, 1->2; T20 = (3 + 1) / 5, reuse = 3 / 5.
    ids = np.array([0, 0, 0, 0, 1, 2], dtype=np.int16).reshape(6, 1, 1, 1)
    tok = token_locality(RoutingTrace(ids, 5, 1))
    assert tok["t20"] == pytest.approx(0.8)
    assert tok["reuse"] == pytest.approx(0.6)
    assert tok["pairs"] == 5


def test_sticky_requests_give_full_locality() -> None:
    # every request keeps the same 2 of 20 experts at every step and layer (k/E = 0.1 <= 0.2)
    rng = np.random.default_rng(3)
    rows = np.stack([rng.choice(20, 2, replace=False) for _ in range(16)])  # [B, k]
    ids = np.broadcast_to(rows, (6, 3, 16, 2)).copy()
    s = locality_stats(RoutingTrace(ids, 20, 2), lags=(1, 4))["summary"]
    assert s["reuse"] == pytest.approx(1.0)
    assert s["t20"] == pytest.approx(1.0)
    assert s["l20"] == pytest.approx(1.0)
    assert s["hot_jaccard_lag1"] == pytest.approx(1.0)
    assert s["hot_jaccard_lag4"] == pytest.approx(1.0)


def test_uniform_routing_is_near_the_no_locality_baseline() -> None:
    e, k = 64, 4
    s = locality_stats(_uniform(64, 2, 64, e, k, seed=1))["summary"]
    assert s["reuse"] == pytest.approx(k / e, abs=0.01)
    # top 13 of 64 experts = 0.203 of the mass in the limit; finite rows bias it upward
    assert 0.2 <= s["t20"] < 0.3
    assert 0.2 <= s["l20"] < 0.3
    assert 0.2 <= s["top20_share"] < 0.25
    assert s["hot_jaccard_lag1"] < 0.3


def test_request_change_breaks_the_step_pair() -> None:
    # slot 0 keeps its request and expert; slot 1 gets a new request at step 1 (other expert)
    ids = np.array([[[[0], [1]]], [[[0], [2]]]], dtype=np.int16)  # [2, 1, 2, 1]
    rid = np.array([[0, 1], [0, 2]], dtype=np.int32)
    with_rid = token_locality(RoutingTrace(ids, 10, 1, request_ids=rid))
    assert with_rid["pairs"] == 1 and with_rid["reuse"] == pytest.approx(1.0)
    without = token_locality(RoutingTrace(ids, 10, 1))
    assert without["pairs"] == 2 and without["reuse"] == pytest.approx(0.5)


def test_l20_needs_consecutive_layer_ids() -> None:
    # layer 1 expert = layer 0 expert + 1 (a deterministic map): L20 = 1
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, size=(8, 32))
    ids = np.stack([x, x + 1], axis=1)[..., None].astype(np.int16)  # [8, 2, 32, 1]
    assert layer_locality(RoutingTrace(ids, 10, 1))["l20"] == pytest.approx(1.0)
    gap = layer_locality(RoutingTrace(ids, 10, 1, layer_ids=(3, 7)))
    assert np.isnan(gap["l20"])


def test_top_share_and_hot_jaccard_by_hand() -> None:
    # E=10: top 20% = 2 experts, hot 10% = 1 expert
    cnt = np.zeros((3, 1, 10), dtype=np.int32)
    cnt[0, 0, [3, 4]] = [5, 1]
    cnt[1, 0, [3, 4]] = [4, 2]
    cnt[2, 0, [5, 1]] = [6, 1]
    # window totals: e3 9, e5 6, e4 3, e1 1 -> top-2 share 15 / 19
    assert top_share(cnt)[0] == pytest.approx(15 / 19)
    assert hot_jaccard(cnt, 1)[:, 0].tolist() == [1.0, 0.0]
    assert hot_jaccard(cnt, 3).size == 0


def test_workload_stats_reports_locality() -> None:
    tr = generate_routing(64, 4, 3, 16, 4, "gptoss", seed=0)
    s = workload_stats(tr)
    for key in ("t20", "l20", "reuse", "top20_share", "hot_jaccard_lag1"):
        assert 0.0 <= s["summary"][key] <= 1.0
        assert key in s["per_layer"][0]
    assert np.isnan(s["summary"]["hot_jaccard_lag16"])  # 4 steps < lag 16
    assert "t20" not in workload_stats(tr, locality=False)["summary"]


def test_qwen128_locality_is_plausible() -> None:
    # §5.3 lists T20 0.60 / L20 0.62 for the original qwen128 fit; the re-fitted profile
    # (sg 4, kappa 2) is more globally skewed, so it lands higher (~0.9): see
    # docs/design-notes/workload.md. Check the range and the ordering against uniform.
    tr = generate_routing(128, 8, 4, 64, 32, "qwen128", seed=0)
    s = locality_stats(tr)["summary"]
    u = locality_stats(_uniform(32, 4, 64, 128, 8, seed=0))["summary"]
    assert 0.5 <= s["t20"] <= 0.97 and 0.5 <= s["l20"] <= 0.97
    assert abs(s["t20"] - s["l20"]) < 0.1
    assert s["t20"] > u["t20"] + 0.3 and s["reuse"] > 5 * u["reuse"]
    assert s["hot_jaccard_lag16"] > 0.5 > u["hot_jaccard_lag16"]
