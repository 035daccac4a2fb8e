"""Samsung PIMSimulator's GEMV kernel on the samsung_hbm2_pim preset: the input vector goes
through the 128-element input register file one tile at a time (each upload writes the
reserved register row), with the mode-switch writes around the GEMV. Command counts are
derived by hand from PIMSimulator's executeGemv / computeGemv; every log passes the checker."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.validation.dram.api import load_dram_preset, pim_gemv_ns
from sieveopt.validation.dram.checker import check_log
from sieveopt.validation.dram.pim import gemv_layout, pim_program
from sieveopt.validation.dram.sim import CommandLog, DramSim
from sieveopt.validation.dram.timing import CMD

SAM = "samsung_hbm2_pim"


def test_kernel_command_stream_matches_pimsimulator_counts():
    # 4096 x 4096 FP16 over 64 pCHs (4 stacks): 64 output rows per pCH, 512 KB per pCH,
    # 32 KB = 32 DRAM rows per bank. Samsung's layout puts input tile k in the even (k even)
    # or odd bank of each pair, so an activation serves one bank's row: 32 MACs, 64
    # activations (PIMSimulator's trace of channel 0: 2048 MAC reads, 64 weight-row ACTs
    # plus 3 reopened after refreshes, 256 GRF_A writes)
    cfg = load_dram_preset(SAM, stacks=4, refresh=False)
    lay = gemv_layout(cfg, 4096, 4096)
    assert lay.tile_gwr == (8,) * 32          # 4096 / 128 tiles of 128 FP16 = 8 x 32 B
    assert lay.dram_rows == 32 and lay.macs == (32,) * 64 and lay.total_macs == 2048
    assert (lay.prologue, lay.epilogue) == (6, 11)
    prog = pim_program(cfg, [(4096, 4096)], 1)
    cmd = prog.cmd
    assert (cmd == CMD["GWR"]).sum() == 32 * 8 + 6 + 11
    assert (cmd == CMD["MAC"]).sum() == 2048
    # the register row (odd banks) costs its own ACTAB/PREAB next to an odd tile only: the
    # 16 odd tiles' uploads; the even tiles' uploads hide it behind the even banks' MACs
    reg = prog.row == cfg.org.rows - 1
    assert (cmd[reg] == CMD["ACTAB"]).sum() == 16 and (cmd[reg] == CMD["PREAB"]).sum() == 16
    assert (cmd[~reg] == CMD["ACTAB"]).sum() == 64 and (cmd[~reg] == CMD["PREAB"]).sum() == 64
    # execution order: even tiles (rows 0..31 of the even banks, 2 rows per tile), then odd
    mac_rows = prog.row[cmd == CMD["MAC"]]
    assert mac_rows[:1024].tolist() == mac_rows[1024:].tolist() == np.repeat(np.arange(32), 32).tolist()
    # a tile's 8 uploads precede its 64 MACs
    first_mac = int(np.flatnonzero(cmd == CMD["MAC"])[0])
    assert (cmd[:first_mac] == CMD["GWR"]).sum() == 6 + 8


def test_kernel_runs_clean_and_costs_more_than_one_upload():
    cfg = load_dram_preset(SAM, refresh=False)
    prog = pim_program(cfg, [(512, 1024)], 2)
    log = CommandLog()
    sim = DramSim(cfg, channels=1, pim=prog, observer=log)
    st = sim.finish()
    assert st.pim_end_cycle > 0 and check_log(cfg, log.records, sharing="exclusive") == []
    plain = load_dram_preset(SAM, stacks=4, **{"pim.input_tile_elements": 0,
                                               "pim.tile_bank_parity": False,
                                               "pim.kernel_prologue_writes": 0,
                                               "pim.kernel_epilogue_writes": 0})
    tiled = load_dram_preset(SAM, stacks=4)
    t_plain, t_tiled = pim_gemv_ns(plain, 4096, 4096, 1), pim_gemv_ns(tiled, 4096, 4096, 1)
    # 32 register-row round trips (PRE + ACT + write recovery) per GEMV: >= 10 % slower
    assert t_tiled > 1.10 * t_plain


def test_parity_layout_tiles_that_end_mid_row():
    """256 x 384 on one stack (16 pCH): 16 output rows per pCH, 768 B per bank = 24 accesses
    per bank, 48 MACs per pCH over 3 input tiles of 128 = 16 MACs per tile. Tiles 0 and 2 read
    the even banks (columns 0-15, then 16-31 of the same row: tile 2 starts mid-row), tile 1
    the odd banks (columns 0-15)."""
    cfg = load_dram_preset(SAM, refresh=False)
    lay = gemv_layout(cfg, 256, 384)
    assert lay.tile_gwr == (8, 8, 8) and lay.total_macs == 48
    assert lay.macs == (16, 16, 16)           # one activation per tile (tiles 0, 2, then 1)
    assert lay.dram_rows == 1                 # the even banks' 32 MACs fill one row
    prog = pim_program(cfg, [(256, 384)], 1)
    mac = prog.cmd == CMD["MAC"]
    assert prog.col[mac].tolist() == [*range(16), *range(16, 32), *range(16)]
    # every tile starts with a fresh activation of its bank's row; the odd tile's upload is the
    # register-row round trip (it follows an even tile but must close the register row first)
    reg = prog.row == cfg.org.rows - 1
    assert (prog.cmd[~reg] == CMD["ACTAB"]).sum() == 3 and (prog.cmd[reg] == CMD["ACTAB"]).sum() == 1
    log = CommandLog()
    DramSim(cfg, channels=1, pim=prog, observer=log).finish()
    assert check_log(cfg, log.records, sharing="exclusive") == []


def test_parity_needs_bank_pairs_and_tiles():
    with pytest.raises(SpecError, match="tile_bank_parity"):
        load_dram_preset(SAM, **{"pim.input_tile_elements": 0})
    with pytest.raises(SpecError, match="tile_bank_parity"):
        load_dram_preset(SAM, **{"pim.banks_per_pu": 1})


def test_parity_actab_energy_opens_half_the_banks():
    from sieveopt.validation.energy.idd import command_energy
    from sieveopt.validation.energy.spec import dram_energy_spec

    spec = dram_energy_spec(SAM)
    pair = command_energy(load_dram_preset(SAM), spec)
    whole = command_energy(load_dram_preset(SAM, **{"pim.tile_bank_parity": False}), spec)
    assert pair.actab_pJ == pytest.approx(8 * (pair.act_pJ + pair.pre_pJ))
    assert whole.actab_pJ == pytest.approx(2 * pair.actab_pJ)
