"""One DRAM description: a system names its DRAM preset; the cost models' bandwidths and the
system's organisation come from it, and the same hardware replays identically under any name."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.errors import SpecError
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import list_systems, load_system
from sieveopt.models.dram import resolve_dram
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation import replay_dram
from sieveopt.validation.dram.config import load_dram_config
from sieveopt.validation.replay import replay
from sieveopt.validation.replay_dram import DramTimer

MODEL = tiny_model(num_experts=16, top_k=2, hidden=1024, inter=512)


def _peaks(cfg):
    n = cfg.org.pseudo_channels
    return cfg.peak_bw_GBps_per_pch() * n, cfg.pim_bw_GBps_per_pch() * n


@pytest.mark.parametrize("name", list_systems())
@pytest.mark.parametrize("overrides", [{}, {"hbm_pim.pim.internal_bw_multiplier": 16.0},
                                       {"hbm_pim.stacks_per_gpu": 6}])
def test_cost_model_bandwidths_and_bank_counts_are_the_presets(name, overrides):
    system = load_system(name, 1, overrides)
    preset, cfg, _ = resolve_dram(system.hbm_pim, source=system.name)
    assert preset == system.hbm_pim.dram_preset
    pins, pim = _peaks(cfg)
    cm = RooflineCostModel(system, MODEL)
    assert cm.pim_bytes_per_ns == pim and system.pim_bw_GBps == pim
    assert cm.pch_bytes_per_ns * cm.num_pch == pytest.approx(pins, rel=1e-12)
    assert cm.num_pch == cfg.org.pseudo_channels
    hp = system.hbm_pim
    assert (hp.bank_groups_per_pseudo_channel, hp.banks_per_pseudo_channel) == (cfg.org.bank_groups, cfg.org.banks)
    assert hp.page_size_bytes == cfg.org.page_bytes
    # the simulator runs exactly this config
    timer = DramTimer(system, MODEL)
    assert timer.cfg == cfg and timer.pim_multiplier == pytest.approx(pim / pins)


def test_unchanged_catalog_systems_push_nothing_but_the_gpu_address_mapping():
    for name in ("sieve-b200-hbm3e-pim", "h100-hbm3-pim"):
        system = load_system(name, 1)
        _, cfg, ov = resolve_dram(system.hbm_pim)
        assert set(ov) <= {"controller.address_mapping"}
        raw = load_dram_config(system.hbm_pim.dram_preset)
        assert cfg.timing == raw.timing and cfg.org == raw.org


def test_sieve_bank_grouping_and_pim_bandwidth_are_the_presets():
    s = load_system("sieve-b200-hbm3e-pim", 1)
    assert (s.hbm_pim.bank_groups_per_pseudo_channel, s.hbm_pim.banks_per_pseudo_channel) == (6, 24)
    assert s.hbm_pim.pim.internal_bw_multiplier == 12.0 and s.pim_bw_GBps == 12 * 8192
    s16 = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.pim.internal_bw_multiplier": 16.0})
    assert DramTimer(s16, MODEL).pim_multiplier == 16.0 and s16.pim_bw_GBps == 16 * 8192   # not 16.4x


def test_a_copy_under_another_name_replays_bit_identically(tmp_path):
    text = (resources.files("sieveopt.models") / "catalog" / "systems" / "sieve-b200-hbm3e-pim.toml").read_text()
    assert 'name = "sieve-b200-hbm3e-pim"' in text
    path = tmp_path / "my-b200.toml"
    path.write_text(text.replace('name = "sieve-b200-hbm3e-pim"', 'name = "my-b200"'))
    ref, copy = load_system("sieve-b200-hbm3e-pim", 1), load_system(str(path), 1)
    assert copy.name == "my-b200" and copy.hbm_pim == ref.hbm_pim
    inst = random_instance(np.random.default_rng(3), MODEL, ref, 48)
    dag = build_layer_dag(inst, RooflineCostModel(ref, MODEL), DagOptions())
    experts = sorted(dag.expert_task)
    sched = list_schedule(dag, modes_from_experts(dag, {e: ("pim" if i % 2 else "gpu") for i, e in enumerate(experts)},
                                                  attention="pim"))
    runs = []
    for system in (ref, copy):
        replay_dram.clear_cache()        # nothing carried over from the other run
        timer = DramTimer(system, MODEL)
        r = replay(sched, dag, system, instance=inst, timer=timer)
        runs.append((timer.key, timer.pim_expert_ns(4), r.schedule.start_ns, r.schedule.end_ns, r.makespan_ns))
    (k1, p1, s1, e1, m1), (k2, p2, s2, e2, m2) = runs
    assert k1 == k2 and p1 == p2 and m1 == m2
    assert np.array_equal(s1, s2) and np.array_equal(e1, e2)


def test_a_user_timing_value_reaches_the_preset_and_only_it():
    s = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.timing.tRTW": 18, "hbm_pim.bank_groups_per_pseudo_channel": 4})
    _, cfg, ov = resolve_dram(s.hbm_pim)
    assert cfg.timing.nRTW == 18 and (cfg.org.bank_groups, cfg.org.banks_per_group) == (4, 6)
    assert set(ov) == {"timing.nRTW", "org.bank_groups", "org.banks_per_group"}


def test_pins_that_disagree_with_the_preset_are_rejected():
    """Rejected when the system is loaded (before any work), naming the system's field."""
    with pytest.raises(SpecError) as info:
        load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.pin_rate_Gbps": 9.6})
    assert info.value.field == "hbm_pim.pin_rate_Gbps"


def test_another_preset_by_set_fills_from_that_preset():
    s = load_system("h100-hbm3-pim", 1, {"hbm_pim.dram_preset": "samsung_hbm2_pim"})
    preset, cfg, ov = resolve_dram(s.hbm_pim)
    assert preset == "samsung_hbm2_pim" and s.hbm_pim.stacks_per_gpu == 1
    assert cfg.org == load_dram_config("samsung_hbm2_pim").org
    assert set(ov) <= {"controller.address_mapping", "pim.nCCDMAC", "pim.pu_bytes_per_access"}


def test_unknown_preset_names_the_field(capsys):
    from sieveopt.cli.main import main

    with pytest.raises(SpecError) as info:
        load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.dram_preset": "nope"})
    assert info.value.field == "hbm_pim.dram_preset"
    assert main(["dag", "--set", "hbm_pim.dram_preset=nope", "--out", "x.dot"]) == 2
    assert "hbm_pim.dram_preset" in capsys.readouterr().err


def test_another_preset_for_one_replay_keeps_only_the_systems_deviations():
    s = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.timing.CL": 30})
    timer = DramTimer(s, MODEL, preset="attacc_hbm3_pim")
    raw = load_dram_config("attacc_hbm3_pim")
    assert timer.preset == "attacc_hbm3_pim" and timer.cfg.timing.nCL == 30
    assert timer.cfg.timing.nRP == raw.timing.nRP and timer.cfg.org.banks == raw.org.banks
    assert timer.pim_multiplier == pytest.approx(12.0, rel=0.05)
