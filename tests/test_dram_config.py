"""Presets, strict validation, overrides, address mapping."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.validation.dram.api import list_dram_presets, load_dram_preset
from sieveopt.validation.dram.mapping import AddressMapping
from sieveopt.validation.dram.timing import TIMING_TABLE, compile_table


def test_presets_load_and_describe_the_paper_system():
    names = list_dram_presets()
    assert {"sieve_b200_hbm3e_pim", "hbm3_5200", "attacc_hbm3_pim", "samsung_hbm2_pim"} <= set(names)
    c = load_dram_preset("sieve_b200_hbm3e_pim")
    assert (c.org.stacks, c.org.pseudo_channels // c.org.stacks, c.org.banks) == (8, 32, 24)
    t = c.timing
    assert (t.tCK_ps, t.nRCDRD, t.nRP, t.nRAS, t.nRC, t.nCL, t.nWR) == (500, 28, 28, 68, 96, 28, 32)
    assert (t.nCCDS, t.nCCDL, t.nRRDS, t.nRRDL, t.nFAW) == (2, 4, 6, 6, 12)
    assert t.nREFI * t.tCK_ps == 3900 * 1000 and t.nRFC * t.tCK_ps == 400 * 1000
    ext = c.peak_bw_GBps_per_pch() * c.org.pseudo_channels
    assert ext == pytest.approx(8192.0)
    assert c.pim_bw_GBps_per_pch() / c.peak_bw_GBps_per_pch() == pytest.approx(12.0)
    assert load_dram_preset("samsung_hbm2_pim").pim_bw_GBps_per_pch() == pytest.approx(
        4 * load_dram_preset("samsung_hbm2_pim").peak_bw_GBps_per_pch())


def test_base_inheritance_and_overrides():
    a = load_dram_preset("attacc_hbm3_pim")
    h = load_dram_preset("hbm3_5200")
    assert a.timing == h.timing and a.org.bank_groups == 8 and a.pim.enabled
    c = load_dram_preset("hbm3_5200", nCL=25, controller={"read_queue": 8},
                         **{"pim.banks_per_pu": 2})
    assert (c.timing.nCL, c.controller.read_queue, c.pim.banks_per_pu) == (25, 8, 2)


@pytest.mark.parametrize("bad,field", [
    ({"nBogus": 1}, "nBogus"),
    ({"timing": {"nCL": "x"}}, "timing.nCL"),
    ({"nCCDS": 0}, "nCCDS"),
    ({"nACTBUS": 0}, "nACTBUS"),
    ({"nRTPS": -2}, "nRTPS"),
    ({"queue_scope": "channel", "row_policy": "closed"}, "row_policy"),  # knobs independent,
    ({"arbitration": "oldest_ready", "row_policy": "closed"}, "row_policy"),  # open row only
    ({"timing_rows": ["bank: ACT -> XYZ = 2"]}, "timing_rows"),
    ({"timing_rows": ["bank: ACT -> RD = nFOO"]}, "timing_rows"),
    ({"timing_rows": ["bank: ACT -> RD = 2 @0"]}, "timing_rows"),
    ({"scheduler": "lifo"}, "scheduler"),
    ({"address_mapping": "RoXxCh"}, "address_mapping"),
    ({"write_low_watermark": 30}, "write_high_watermark"),
])
def test_strict_validation(bad, field):
    with pytest.raises(SpecError) as exc:
        load_dram_preset("hbm3_5200", **bad)
    assert field in str(exc.value)


def test_user_toml_unknown_key_and_missing_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('base = "hbm3_5200"\nname = "mine"\n[timing]\nnCL = 21\n')
    assert load_dram_preset(p).timing.nCL == 21
    p.write_text('base = "hbm3_5200"\n[timing]\nnCLL = 21\n')
    with pytest.raises(SpecError, match="nCLL"):
        load_dram_preset(p)
    with pytest.raises(SpecError, match="no such preset"):
        load_dram_preset("nope_preset")


def test_mappings_bit_order():
    c = load_dram_preset("hbm3_5200", stacks=1, rows=1024)  # 16 ch x 2 pc, 4 bg x 4 ba, 32 co
    m = AddressMapping.parse("RoBgBaCoChPc", c.org)  # sieveopt's "RoBaRaCoCh" before 2026-11-29
    d = m.decode(np.array([0, 32, 32 * 32, 32 * 32 * 32, 32 * 32 * 32 * 4, 32 ** 3 * 16]))
    # Ch (channel x pch, pch lowest) is the 5 lowest bits above the 32-byte offset, then 5 bits
    # Co, then Ba = bank group (high) x bank (low), Ra (0 bits), Ro
    assert list(d["pch"]) == [0, 1, 0, 0, 0, 0]
    assert list(d["col"]) == [0, 0, 1, 0, 0, 0]
    assert list(d["bank"]) == [0, 0, 0, 1, 0, 0] and list(d["bg"]) == [0, 0, 0, 0, 1, 0]
    assert list(d["row"]) == [0, 0, 0, 0, 0, 1]
    m2 = AddressMapping.parse("ChRaBaRoCo", c.org)
    d2 = m2.decode(np.array([32, 32 * 32, 32 * 32 * 1024, 32 * 32 * 1024 * 16]))
    assert list(d2["col"]) == [1, 0, 0, 0] and list(d2["row"]) == [0, 1, 0, 0]
    assert list(d2["bank"]) == [0, 0, 1, 0] and list(d2["pch"]) == [0, 0, 0, 1]
    # every address of a small space maps to a distinct location (24 banks: mixed radix)
    s = load_dram_preset("sieve_b200_hbm3e_pim", stacks=1, channels_per_stack=1, rows=4)
    ms = AddressMapping.parse("RoCoBaBgCh", s.org)
    n = 2 * 24 * 32 * 4
    ds = ms.decode(np.arange(n) * 32)
    keys = set(zip(ds["pch"], ds["bg"], ds["bank"], ds["row"], ds["col"], strict=True))
    assert len(keys) == n
    assert list(ds["bg"][:8:2]) == [0, 1, 2, 3]  # bank groups rotate first inside a pCH


def test_timing_table_is_data():
    rows = compile_table(load_dram_preset("sieve_b200_hbm3e_pim").timing_params, "exclusive").rows
    assert ("bank", "ACT", "RD", 28, 1) in rows
    assert ("pseudo_channel", "ACT", "ACT", 12, 4) in rows  # tFAW window of four
    assert all(c.level in ("channel", "pseudo_channel", "bank_group", "bank") for c in TIMING_TABLE)
