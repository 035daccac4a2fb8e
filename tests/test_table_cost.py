"""The ``table`` cost model: EMA math, roofline fallback, convergence, protocol delegation."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import COST_MODELS, CostModel, Work, make_cost_model
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.table import TableCostModel


@pytest.fixture
def specs():
    return load_system("sieve-b200-hbm3e-pim", 1), load_model("qwen3-30b-a3b")


def test_registered_and_protocol(specs) -> None:
    system, model = specs
    assert "table" in COST_MODELS.names()
    cost = make_cost_model("table", system, model, smoothing=0.5)
    assert isinstance(cost, CostModel) and cost.smoothing == 0.5


def test_ema_math(specs) -> None:
    cost = TableCostModel(*specs, smoothing=0.25)
    assert cost.observe(4, 100.0) == 100.0                 # first observation replaces the fallback
    assert cost.observe(4, 200.0) == pytest.approx(125.0)  # 0.25 * 200 + 0.75 * 100
    assert cost.observe(4, 0.0) == pytest.approx(93.75)
    assert cost.observations(4) == 3 and cost.pim_expert_ns(4) == pytest.approx(93.75)


def test_fallback_for_unseen_counts(specs) -> None:
    system, model = specs
    cost = TableCostModel(system, model)
    rf = RooflineCostModel(system, model)
    cost.observe(3, 1.0)
    assert cost.pim_expert_ns(2) == pytest.approx(rf.pim_gemv_ns(model.expert_weight_bytes, 2))
    assert cost.pim_expert_ns(0) == 0.0
    table = cost.export(5)
    assert table.shape == (6,) and table[3] == 1.0
    assert table[5] == pytest.approx(rf.pim_gemv_ns(model.expert_weight_bytes, 5))
    out = np.zeros(10)
    assert cost.export(5, out=out) is out


def test_grows_past_initial_size(specs) -> None:
    cost = TableCostModel(*specs, max_tokens=4)
    cost.observe(50, 7.0)
    assert cost.pim_expert_ns(50) == 7.0 and cost.export(60)[50] == 7.0


def test_converges_to_stationary_time(specs) -> None:
    cost = TableCostModel(*specs, smoothing=0.2)
    rng = np.random.default_rng(0)
    true_ns = 5000.0
    cost.observe(8, 20000.0)                               # a bad first sample
    for _ in range(60):
        cost.observe(8, true_ns * (1.0 + 0.02 * rng.standard_normal()))
    assert abs(cost.pim_expert_ns(8) - true_ns) / true_ns < 0.03


def test_delegates_everything_but_expert_pim(specs) -> None:
    system, model = specs
    cost, rf = TableCostModel(system, model), RooflineCostModel(system, model)
    w = Work("expert", 4, model.expert_flops(4), model.expert_weight_bytes, 1.0)
    cost.observe(4, 123.0)
    assert cost.duration_ns(w, "pim") == 123.0
    assert cost.duration_ns(w, "gpu") == rf.duration_ns(w, "gpu")
    attn = Work("attn", 4, 1e6, kv_bytes=1e6)
    assert cost.duration_ns(attn, "pim") == rf.duration_ns(attn, "pim")


def test_bad_parameters(specs) -> None:
    with pytest.raises(ValueError):
        TableCostModel(*specs, smoothing=0.0)
    cost = TableCostModel(*specs)
    with pytest.raises(ValueError):
        cost.observe(0, 1.0)
    with pytest.raises(ValueError):
        cost.observe(2, float("nan"))
