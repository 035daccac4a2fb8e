"""The time/energy front of a layer (validation/energy/front.py): non-increasing in the limit,
certified bounds below the energies, and every policy's energy gap at its own makespan >= 0
(CP-SAT is hinted by the policy's schedule, so never worse)."""

from __future__ import annotations

import pytest

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.validation.energy.front import layer_front
from sieveopt.validation.energy.layer import energy_model_for


def test_layer_front_is_monotone_and_policies_sit_above_it():
    model, system = load_model("gpt-oss-120b"), load_system("sieve-b200-hbm3e-pim", 2)
    inst = sample_layers(model, system, 8, 1, 0)[0]
    r = layer_front(inst, energy_model_for(system, model), policies=("sieve", "noexp", "pimoe"),
                    factors=(1.5, 1.0), time_limit_s=1.0)
    fr = r["front"]
    assert [f["factor"] for f in fr] == [1.0, 1.5]
    assert fr[1]["energy_J"] <= fr[0]["energy_J"] + 1e-15
    for f in fr:
        assert f["makespan_ns"] <= f["limit_ns"]
        assert f["bound_J"] <= f["energy_J"] * (1 + 1e-12)
    assert fr[0]["limit_ns"] == r["tstar_ns"]
    for p, v in r["policies"].items():
        o = v["front_at_makespan"]
        assert o["limit_ns"] == v["makespan_ns"] and o["makespan_ns"] <= v["makespan_ns"]
        assert v["gap"] >= -1e-12 and v["gap_vs_bound"] >= v["gap"] - 1e-12, p
        assert v["check_ok"]
    assert r["policies"]["pimoe"]["own_dag"] and not r["policies"]["sieve"]["own_dag"]
    # the policy's energy is what compare --objective energy prices
    assert r["policies"]["noexp"]["energy_J"] > fr[-1]["energy_J"]


def test_ae_energy_front_quick_writes_labelled_outputs(tmp_path):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ae"))
    try:
        import fig_energy_front
    finally:
        sys.path.pop(0)
    fig_energy_front.main(["--configs", "qwen3-30b-a3b:1:8", "--out", str(tmp_path), "--time-limit", "0.5",
                           "--factors", "1,2"])
    res = json.loads((tmp_path / "energy_front.json").read_text())
    assert res[0]["execution_model"] == "serial" and res[0]["cost_model"] == "roofline"
    assert res[0]["precision"] == "bf16"
    md = (tmp_path / "energy_front.md").read_text()
    assert "| sieve |" in md and "T*" in md
    assert (tmp_path / "energy_front.png").stat().st_size > 0
    rows = (tmp_path / "energy_front.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 + 6     # header, 2 front points, 6 policies
    assert res[0]["static_W"] == pytest.approx(200.0)
