"""Routing profiles of the TriMoE models: Qwen3-235B calibrated to its public locality statistic."""

from __future__ import annotations

from sieveopt.models.catalog import load_model
from sieveopt.workload.generator import generate_routing
from sieveopt.workload.locality import locality_stats


def test_qwen3_235b_profile_hits_the_orders_in_chaos_locality_masses() -> None:
    m = load_model("qwen3-235b-a22b")
    assert m.routing_profile == "qwen3-235b"
    tr = generate_routing(m.num_routed_experts, m.top_k, 8, 64, 64, m.routing_profile, 0)
    loc = locality_stats(tr)["summary"]
    # Orders in Chaos measured T20 / L20 = 0.62 / 0.65 on Qwen3-235B (arXiv 2510.05497)
    assert abs(loc["t20"] - 0.62) < 0.03 and abs(loc["l20"] - 0.65) < 0.03
    # the old borrowed profile (qwen128, fitted to Qwen3-30B's histogram) is far from them
    old = locality_stats(generate_routing(m.num_routed_experts, m.top_k, 8, 64, 64, "qwen128", 0))["summary"]
    assert old["t20"] - 0.62 > 0.2


def test_borrowed_profiles_say_so() -> None:
    from pathlib import Path

    import sieveopt.models.catalog as cat

    root = Path(cat.__file__).parent / "catalog" / "profiles"
    for name in ("deepseek-v2", "glm45"):
        text = (root / f"{name}.toml").read_text()
        assert "NOT calibrated" in text and "no public routing statistic" in text
