"""Samsung PIMSimulator's GEMV kernel on the samsung_hbm2_pim preset: the input vector goes
through the 128-element input register file one tile at a time (each upload writes the
reserved register row), with the mode-switch writes around the GEMV. Command counts are
derived by hand from PIMSimulator's executeGemv / computeGemv; every log passes the checker."""

from __future__ import annotations

import numpy as np

from sieveopt.validation.dram.api import load_dram_preset, pim_gemv_ns
from sieveopt.validation.dram.checker import check_log
from sieveopt.validation.dram.pim import gemv_layout, pim_program
from sieveopt.validation.dram.sim import CommandLog, DramSim
from sieveopt.validation.dram.timing import CMD

SAM = "samsung_hbm2_pim"


def test_kernel_command_stream_matches_pimsimulator_counts():
    # 4096 x 4096 FP16 over 64 pCHs (4 stacks): 64 output rows per pCH, 512 KB per pCH,
    # 32 KB = 32 DRAM rows per bank, 64 MACs per row (32 x 32 B per bank pair member)
    cfg = load_dram_preset(SAM, stacks=4, refresh=False)
    lay = gemv_layout(cfg, 4096, 4096)
    assert lay.tile_gwr == (8,) * 32          # 4096 / 128 tiles of 128 FP16 = 8 x 32 B
    assert lay.dram_rows == 32 and lay.macs == (64,) * 32
    assert (lay.prologue, lay.epilogue) == (5, 11)
    prog = pim_program(cfg, [(4096, 4096)], 1)
    cmd = prog.cmd
    assert (cmd == CMD["GWR"]).sum() == 32 * 8 + 16
    # one tile per weight row: each upload opens and closes the register row
    reg = prog.row == cfg.org.rows - 1
    assert (cmd[reg] == CMD["ACTAB"]).sum() == 32 and (cmd[reg] == CMD["PREAB"]).sum() == 32
    assert (cmd[~reg] == CMD["ACTAB"]).sum() == 32
    # a tile's 8 uploads precede its 64 MACs
    first_mac = int(np.flatnonzero(cmd == CMD["MAC"])[0])
    assert (cmd[:first_mac] == CMD["GWR"]).sum() == 5 + 8


def test_kernel_runs_clean_and_costs_more_than_one_upload():
    cfg = load_dram_preset(SAM, refresh=False)
    prog = pim_program(cfg, [(512, 1024)], 2)
    log = CommandLog()
    sim = DramSim(cfg, channels=1, pim=prog, observer=log)
    st = sim.finish()
    assert st.pim_end_cycle > 0 and check_log(cfg, log.records, sharing="exclusive") == []
    plain = load_dram_preset(SAM, stacks=4, **{"pim.input_tile_elements": 0,
                                               "pim.kernel_prologue_writes": 0,
                                               "pim.kernel_epilogue_writes": 0})
    tiled = load_dram_preset(SAM, stacks=4)
    t_plain, t_tiled = pim_gemv_ns(plain, 4096, 4096, 1), pim_gemv_ns(tiled, 4096, 4096, 1)
    # 32 register-row round trips (PRE + ACT + write recovery) per GEMV: >= 10 % slower
    assert t_tiled > 1.10 * t_plain
