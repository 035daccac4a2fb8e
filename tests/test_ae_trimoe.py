"""ae/fig_trimoe.py: the TriMoE study's rows are labelled, checked, replayed; its ablations do what they say."""

from __future__ import annotations

from tests.ae_modules import load_ae_module


def _mod():
    return load_ae_module("fig_trimoe")


def test_study_rows_are_checked_replayed_and_the_ablations_hold(tmp_path):
    m = _mod()
    rows = m.run(("glm-4.5-air",), (32,), 1, 0)
    pols = {r["policy"] for r in rows}
    assert pols == {*m.POLICIES, *m.ABLATIONS, *m.VARIANT_ROWS}
    for r in rows:
        assert r["check_ok"] and r["execution_model"] == "serial" and r["cost_model"] == "roofline"
        assert r["replayed_ns"] > 0 and r["predicted_ns"] > 0
        assert 0.0 <= r["util_ndp"] <= 1.0 and 0.0 <= r["util_cpu"] <= 1.0
    by = {r["policy"]: r for r in rows}
    assert by["trimoe-nocpu"]["experts_cpu"] == 0 and by["trimoe-nocpu"]["util_cpu"] == 0.0
    assert by["gpu-fetch"]["experts_cpu"] == by["gpu-fetch"]["experts_ndp"] == 0
    assert by["cpsat"]["predicted_ns"] <= by["trimoe"]["predicted_ns"]      # warm-started from trimoe
    for v in m.VARIANTS:
        assert by[f"cpsat+{v}"]["predicted_ns"] <= by[f"trimoe+{v}"]["predicted_ns"]
    assert by["trimoe+prefetch"]["prefetched"] == m.PREFETCH_EXPERTS and by["trimoe"]["prefetched"] == 0
    assert by["trimoe+hostmem"]["predicted_ns"] >= by["trimoe"]["predicted_ns"]   # same decisions, one more constraint
    summary = m.summarise(rows)
    assert {s["policy"] for s in summary} == pols
    assert all(s["tokens_per_s_replayed"] > 0 for s in summary)
    assert all(0 < r["util_gpu_compute"] <= r["util_gpu"] for r in rows if r["policy"] != "gpu-cpu" or r["experts_gpu_fetch"])
    gaps = {s["policy"]: s["gap_to_cpsat_pct"] for s in summary}
    assert gaps["cpsat+prefetch"] == gaps["cpsat+hostmem"] == gaps["cpsat"] == 0.0
    rel = m.relayout_rows(("glm-4.5-air",), 32, 8, 0)
    assert [r["policy"] for r in rel] == ["relayout-off", "relayout-ema"]
    assert rel[0]["relayouts"] == 0 and rel[0]["speedup_vs_relayout_off"] == 1.0
    assert all(r["layer_mean_with_move_us"] >= r["layer_mean_us"] > 0 for r in rel)
    m.plots(summary, tmp_path)
    assert (tmp_path / "trimoe_throughput.png").stat().st_size > 0
