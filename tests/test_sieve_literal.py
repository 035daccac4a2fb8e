"""Sieve's estimate as implemented vs the paper's literal form (issue 12, item 8)."""

from __future__ import annotations

import pytest

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import run_layer
from sieveopt.solvers.sieve_ref import prefix_walk, prefix_walk_until_increase


def test_plateau_rules():
    vals = [5.0, 5.0, 3.0, 4.0]
    assert prefix_walk(lambda k: vals[k], 3) == 0               # equal stops (implemented)
    assert prefix_walk_until_increase(lambda k: vals[k], 3) == 2  # plateau crossed (literal)
    assert prefix_walk_until_increase(lambda k: [5.0, 6.0, 1.0][k], 2) == 0   # an increase stops it


@pytest.mark.parametrize("name,gpus", [("qwen3-30b-a3b", 1), ("gpt-oss-120b", 4)])
def test_literal_estimate_plans_checked_schedules(name, gpus):
    model, system = load_model(name), load_system("sieve-b200-hbm3e-pim", gpus)
    differs = False
    for inst in sample_layers(model, system, 64, 3, 0):
        lit = run_layer(inst, "sieve", estimate="literal")
        imp = run_layer(inst, "sieve")
        assert lit.check.ok and lit.result.meta["estimate"] == "literal"
        differs |= lit.result.schedule.modes != imp.result.schedule.modes
        # literal T_GPU has no kernel overheads and peak rates: never above the implemented one
        for a, b in zip(lit.result.meta["per_gpu"], imp.result.meta["per_gpu"], strict=True):
            if a["gpu_experts"] == b["gpu_experts"] == 0:
                assert a["t_gpu_ns"] <= b["t_gpu_ns"]
    assert differs
