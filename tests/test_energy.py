"""Energy model: IDD method against closed forms, data files with sources, counts from the
simulator, and the replay energy block (components sum to the total; missing data says so)."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.validation.dram.api import list_dram_presets, load_dram_preset
from sieveopt.validation.dram.pim import expert_matrices, pim_program
from sieveopt.validation.dram.sim import DramSim
from sieveopt.validation.energy.closed_form import refresh_case, row_hit_case, row_miss_case
from sieveopt.validation.energy.idd import command_energy
from sieveopt.validation.energy.layer import COMPONENTS, _program_counts, _stream_act_per_access
from sieveopt.validation.energy.spec import (
    dram_energy_spec,
    list_energy_specs,
    system_energy_spec,
)

PRESETS = ["sieve_b200_hbm3e_pim", "hbm3_5200", "samsung_hbm2_pim"]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("case", [row_hit_case, row_miss_case, refresh_case])
def test_idd_energy_matches_closed_form(preset, case):
    hand, counted = case(preset)
    assert hand > 0
    assert counted == pytest.approx(hand, rel=1e-12)


def test_refresh_case_counts_refreshes():
    cfg = load_dram_preset("samsung_hbm2_pim")
    ce = command_energy(cfg, dram_energy_spec("samsung_hbm2_pim"))
    hand, _ = refresh_case("samsung_hbm2_pim", refreshes=4)
    # 2 pCH x at least 4 refreshes each, VDD (IDD5B - IDD3N) tRFC = 1.2 x 97.5 x 260 pJ each
    assert ce.ref_pJ == pytest.approx(1.2 * (125.0 - 27.5) * 260)
    assert hand >= 2 * 4 * ce.ref_pJ


@pytest.mark.parametrize("preset", ["sieve_b200_hbm3e_pim", "hbm3_5200"])
def test_derived_currents_reproduce_fgdram_per_bit_energies(preset):
    """The HBM3/HBM3E currents are derived from FGDRAM's per-bit energies (file header)."""
    cfg = load_dram_preset(preset)
    ce = command_energy(cfg, dram_energy_spec(preset))
    assert ce.rd_pJ / ce.access_bits == pytest.approx(0.44 + 1.01 + 1.23 + 0.5, rel=1e-4)
    assert ce.act_pre_pJ / (8 * cfg.org.page_bytes) == pytest.approx(0.11, rel=1e-4)


def test_every_energy_file_loads_with_sources_and_matches_a_preset():
    from sieveopt.models.catalog import list_systems

    files = list_energy_specs()
    assert set(files["dram"]) <= set(list_dram_presets())
    assert set(files["systems"]) <= set(list_systems())
    for name in files["dram"]:
        spec = dram_energy_spec(name)
        assert spec.name == name
        assert all(v.source and v.unit for v in spec.values.values())
    for name in files["systems"]:
        assert system_energy_spec(name).name == name
    assert dram_energy_spec("no_such_preset") is None


def test_bad_energy_file_names_the_field(tmp_path):
    src = (dram_energy_spec("samsung_hbm2_pim").path)
    text = open(src).read()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('unit = "mA", source = "DRAMsim3 HBM2_8Gb_x128.ini IDD0', 'unit = "A", source = "x'))
    with pytest.raises(SpecError, match="currents.idd0"):
        dram_energy_spec(bad)
    bad.write_text(text.replace('source = "DRAMsim3 HBM2_8Gb_x128.ini IDD3N 55 mA / 2 pCH"', 'source = ""'))
    with pytest.raises(SpecError, match="currents.idd3n.*source"):
        dram_energy_spec(bad)


def test_pim_counts_are_what_the_simulator_issues():
    cfg = load_dram_preset("sieve_b200_hbm3e_pim", refresh=False)
    mats = tuple(tuple(m) for m in expert_matrices(512, 256))
    counts = dict(_program_counts(cfg, mats, 3, 2.0, 2.0))
    prog = pim_program(cfg, [tuple(m) for m in mats], 3, pseudo_channels=cfg.org.pseudo_channels)
    st = DramSim(cfg, channels=1, pim=prog).finish()
    per_pch = {k: v // cfg.org.pseudo_channels for k, v in counts.items()}
    assert {k: v // 2 for k, v in st.commands.items()} == per_pch
    assert counts["MAC"] > 0 and counts["ACTAB"] == counts["PREAB"]


def test_stream_opens_each_row_once():
    cfg = load_dram_preset("sieve_b200_hbm3e_pim", address_mapping="RoCoBaBgCh")
    assert _stream_act_per_access(cfg) == pytest.approx(1 / cfg.org.columns, rel=0.02)


def _replay(system, gpus, memory="dram"):
    from sieveopt.instance import LayerInstance
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.pipeline import run_layer
    from sieveopt.validation.replay import replay
    from sieveopt.workload import generate_for_model

    model = load_model("qwen3-30b-a3b")
    sysm = load_system(system, gpus)
    trace = generate_for_model(model, 8, 1, 0, layers=[3])
    inst = LayerInstance.from_expert_ids(model, sysm, trace.expert_ids[0, 0], moe_layer=3,
                                         context_lens=np.full(8, 1024))
    run = run_layer(inst, "sieve")
    rep = replay(run.result.schedule, run.dag, sysm, instance=inst, scheduler_latency_ns=0, memory=memory)
    return rep, run.dag, sysm, inst


def test_replay_energy_block_sums_and_reports_errors():
    from sieveopt.validation.energy.layer import replay_energy_block

    rep, dag, sysm, inst = _replay("sieve-b200-hbm3e-pim", 2)
    e = replay_energy_block(rep, dag, sysm, inst)
    assert e["available"] and e["counts"] == "simulated"
    assert set(e["replayed_J"]) == set(COMPONENTS)
    assert sum(e["replayed_J"].values()) == pytest.approx(e["replayed_total_J"], rel=1e-12)
    assert sum(e["predicted_J"].values()) == pytest.approx(e["predicted_total_J"], rel=1e-12)
    assert all(v >= 0 for v in e["replayed_J"].values())
    assert e["replayed_J"]["pim_mac"] > 0 and e["replayed_J"]["nvlink"] > 0
    assert e["J_per_token"] == pytest.approx(e["replayed_total_J"] * 48 / 8)
    # static and refresh follow the makespans exactly
    ratio = rep.predicted_makespan_ns / rep.makespan_ns
    assert e["predicted_J"]["gpu_static"] / e["replayed_J"]["gpu_static"] == pytest.approx(ratio)
    assert e["error_pct"]["gpu_compute"] == pytest.approx(0.0, abs=1e-9)
    assert e["open_values"]
    # the activity behind the energy: commands x per-command energy = the component
    from sieveopt.validation.energy.layer import energy_model_for

    ce = energy_model_for(sysm, inst.model).ce
    for side in ("replayed", "predicted"):
        a = e["activity"][side]
        act_pre = a.get("ACT", 0.0) * ce.act_pre_pJ + a.get("ACTAB", 0.0) * ce.actab_pJ
        assert e[f"{side}_J"]["dram_act_pre"] == pytest.approx(act_pre * 1e-12, rel=1e-9)
        assert e[f"{side}_J"]["dram_refresh"] == pytest.approx(a["REF"] * ce.ref_pJ * 1e-12, rel=1e-9)
        assert sum(v for k, v in a.items() if k.startswith("nvlink_bits")) > 0
    assert e["activity"]["replayed"]["MAC"] > 0


def test_system_without_energy_data_says_unavailable():
    from sieveopt.validation.energy.layer import replay_energy_block

    rep, dag, sysm, inst = _replay("duplex-logic-pim", 1, memory="analytic")
    e = replay_energy_block(rep, dag, sysm, inst)
    assert e == {"available": False, "reason": e["reason"]}
    assert "duplex-logic-pim" in e["reason"] and "no energy file" in e["reason"]


def test_cli_dram_run_energy(capsys):
    import json

    from sieveopt.cli.main import main

    trace = "tests/fixtures/dram/small_loadstore.trace"
    assert main(["dram", "run", "--trace", trace, "--config", "hbm3_5200", "--energy", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    e = d["energy"]
    assert e["available"] and sum(e["components_J"].values()) == pytest.approx(e["total_J"])
    cfg = load_dram_preset("hbm3_5200")
    ce = command_energy(cfg, dram_energy_spec("hbm3_5200"))
    # command energies are the counts times the per-command energies
    assert e["components_J"]["dram_act_pre"] == pytest.approx(d["commands"]["ACT"] * ce.act_pre_pJ * 1e-12)
    bits = (d["reads"] + d["writes"]) * ce.access_bits
    assert e["components_J"]["dram_io"] == pytest.approx(bits * ce.io_pJ_per_bit * 1e-12)
    # background lies between all-precharged and all-active over every pseudo-channel
    span = cfg.org.pseudo_channels * d["time_ns"]
    assert span * ce.precharge_standby_mW <= e["components_J"]["dram_background"] * 1e12
    assert e["components_J"]["dram_background"] * 1e12 <= span * ce.active_standby_mW
    assert main(["dram", "run", "--trace", trace, "--config", "hbm3_5200", "--energy", "nope.toml"]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_power_series_integrates_to_the_cost_model_energy(tmp_path):
    from sieveopt.instance import LayerInstance
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.pipeline import run_layer
    from sieveopt.solvers.cpsat_energy import schedule_energy_J
    from sieveopt.validation.energy.layer import energy_model_for
    from sieveopt.validation.energy.power import energy_of_series, power_series
    from sieveopt.viz import chrome_trace
    from sieveopt.workload import generate_for_model

    model, system = load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 2)
    trace = generate_for_model(model, 16, 1, 1, layers=[5])
    inst = LayerInstance.from_expert_ids(model, system, trace.expert_ids[0, 0], moe_layer=5,
                                         context_lens=np.full(16, 1024))
    run = run_layer(inst, "sieve")
    em = energy_model_for(system, model)
    series = power_series(run.dag, run.result.schedule, em)
    assert set(series) == {0, 1} and all(pts[-1][1] == 0.0 for pts in series.values())
    assert energy_of_series(series) == pytest.approx(schedule_energy_J(run.dag, run.result.schedule, em), rel=1e-9)
    ev = chrome_trace(run.result.schedule, run.dag, power=series)["traceEvents"]
    assert sum(e.get("name") == "power W" for e in ev) == sum(len(p) for p in series.values())


def test_viz_power_without_energy_data_exits_2(tmp_path, capsys):
    from sieveopt.cli.main import main

    rc = main(["viz", "trace", "--system", "duplex-logic-pim", "--gpus", "1", "--batch", "4", "--power",
               "--out", str(tmp_path / "t.json")])
    assert rc == 2 and "energy unavailable" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_cli_replay_json_has_energy_block(capsys):
    import json

    from sieveopt.cli.main import main

    assert main(["replay", "--gpus", "1", "--batch", "8", "--memory", "analytic", "--scheduler-latency-ns", "0",
                 "--json"]) == 0
    e = json.loads(capsys.readouterr().out)["energy"]
    assert e["available"] and e["counts"].startswith("closed-form")
    assert sum(e["replayed_J"].values()) == pytest.approx(e["J_per_layer"])
    assert set(e["error_pct"]) == {*COMPONENTS, "total"}


def test_study_rows_carry_energy():
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.study import run_study

    model = load_model("qwen3-30b-a3b")
    layers = sample_layers(model, load_system("sieve-b200-hbm3e-pim", 1), 8, 1, 0)
    rows, _ = run_study(layers, ("sieve", "gpu_only"), replay=False)
    assert all(r.energy_J and r.energy_J > 0 and r.replay_energy_J is None for r in rows)


def test_cli_energy_lists_sources(capsys):
    import json

    from sieveopt.cli.main import main

    assert main(["energy", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 48 and all(r["source"] and r["unit"] for r in rows)
    assert main(["energy", "duplex-logic-pim"]) == 2
    assert "energy unavailable" in capsys.readouterr().err


def test_cli_dram_gemv_energy(capsys):
    import json

    from sieveopt.cli.main import main

    args = ["dram", "gemv", "--config", "sieve_b200_hbm3e_pim", "--rows", "6144", "--cols", "1024", "--tokens", "2",
            "--energy", "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    e = d["energy"]
    assert e["available"] and sum(e["components_J"].values()) == pytest.approx(e["total_J"])
    cfg = load_dram_preset("sieve_b200_hbm3e_pim")
    ce = command_energy(cfg, dram_energy_spec("sieve_b200_hbm3e_pim"))
    ops = 2 * 6144 * 1024 * 2
    per = d["per_pch_per_token"]
    n = cfg.org.pseudo_channels * 2   # every pCH, 2 tokens
    mac_read = per["mac"] * n * ce.pus_per_pch * d["mac_bytes_per_pu"] * 8 * ce.mac_read_pJ_per_bit
    assert e["components_J"]["pim_mac"] == pytest.approx((mac_read + ops * ce.alu_pJ_per_op) * 1e-12, rel=1e-9)
    assert e["components_J"]["dram_act_pre"] == pytest.approx(per["actab"] * n * ce.actab_pJ * 1e-12, rel=1e-9)
