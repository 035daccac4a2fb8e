"""Closed forms of the IDD method for simple access patterns, and the matching simulator
runs (used by ``tests/test_energy.py`` and ``sieveopt validate``).

Each ``*_case`` returns (hand-derived pJ, simulator-counted pJ): the hand value uses only
the timing table and the energy file; the counted value feeds the simulator's command log
(counts and bank-open residency) through :func:`~.idd.energy_from_counts`.
"""

from __future__ import annotations

import numpy as np

from sieveopt.validation.dram.api import load_dram_preset
from sieveopt.validation.dram.sim import CommandLog, DramSim, simulate_accesses
from sieveopt.validation.energy.idd import (
    active_cycles_from_log,
    command_energy,
    energy_from_counts,
)
from sieveopt.validation.energy.spec import dram_energy_spec


def _counted(cfg, st, records) -> float:
    ce = command_energy(cfg, dram_energy_spec(cfg.name))
    n_pch = cfg.org.pseudo_channels_per_channel
    act = active_cycles_from_log(records, n_pch, st.cycles)
    tck = cfg.tCK_ns
    comp = energy_from_counts(ce, st.commands, active_ns=float(act.sum()) * tck,
                              precharged_ns=float(n_pch * st.cycles - act.sum()) * tck)
    return sum(comp.values())


def _run(cfg, bank, row, col):
    n = len(row)
    z = np.zeros(n, dtype=np.int64)
    log = CommandLog()
    st = simulate_accesses(cfg, z, z, np.full(n, bank), np.asarray(row), np.asarray(col), z,
                           channels=1, observer=log)
    return st, log.records


def row_hit_case(preset: str, n: int = 16) -> tuple[float, float]:
    """``n`` reads of one open row of one bank: 1 ACT (+ its PRE), n RD, n bursts of I/O; the
    bank is open from cycle 0 to the end, the other pseudo-channel is precharged throughout.
    End = nRCDRD + (n - 1) max(nCCDL, nBL) + nCL + nBL."""
    cfg = load_dram_preset(preset, refresh=False)
    t, tck = cfg.timing, cfg.tCK_ns
    ce = command_energy(cfg, dram_energy_spec(preset))
    end = t.nRCDRD + (n - 1) * max(t.nCCDL, t.nBL) + t.nCL + t.nBL
    others = cfg.org.pseudo_channels_per_channel - 1
    hand = (ce.act_pre_pJ + n * (ce.rd_pJ + ce.access_bits * ce.io_pJ_per_bit)
            + end * tck * (ce.active_standby_mW + others * ce.precharge_standby_mW))
    st, rec = _run(cfg, 0, [5] * n, list(range(n)))
    return hand, _counted(cfg, st, rec)


def row_miss_case(preset: str, n: int = 8) -> tuple[float, float]:
    """``n`` reads of ``n`` different rows of one bank: every read activates. ACT i at
    i x stride (stride = max(nRC, nRAS + nRP, nRCDRD + nRTP + nRP)), its PRE at
    max(nRAS, nRCDRD + nRTP) after it; the last row stays open to the end
    (last ACT + nRCDRD + nCL + nBL)."""
    cfg = load_dram_preset(preset, refresh=False)
    t, tck = cfg.timing, cfg.tCK_ns
    ce = command_energy(cfg, dram_energy_spec(preset))
    stride = max(t.nRC, t.nRAS + t.nRP, t.nRCDRD + t.nRTP + t.nRP)
    open_for = max(t.nRAS, t.nRCDRD + t.nRTP)
    end = (n - 1) * stride + t.nRCDRD + t.nCL + t.nBL
    active = (n - 1) * open_for + (t.nRCDRD + t.nCL + t.nBL)
    ppc = cfg.org.pseudo_channels_per_channel
    hand = (n * (ce.act_pre_pJ + ce.rd_pJ + ce.access_bits * ce.io_pJ_per_bit)
            + tck * (active * ce.active_standby_mW + (ppc * end - active) * ce.precharge_standby_mW))
    st, rec = _run(cfg, 0, [3 + i for i in range(n)], [0] * n)
    return hand, _counted(cfg, st, rec)


def refresh_case(preset: str, refreshes: int = 4) -> tuple[float, float]:
    """Refresh energy of a run long enough for ``refreshes`` tREFI periods: the simulator's
    REF count x VDD (IDD5B - IDD3N) tRFC against floor(cycles / nREFI) REFs per
    pseudo-channel by hand (all-bank refresh, every pseudo-channel)."""
    cfg = load_dram_preset(preset)
    t = cfg.timing
    ce = command_energy(cfg, dram_energy_spec(preset))
    ppc = cfg.org.pseudo_channels_per_channel
    # a slow stream on pCH 0 keeps the simulator running: one read per row, every read a
    # row miss in one bank, enough to pass refreshes x nREFI
    stride = max(t.nRC, t.nRAS + t.nRP, t.nRCDRD + t.nRTP + t.nRP)
    n = (refreshes * t.nREFI) // stride + 2
    sim = DramSim(cfg, channels=1, frontend_requests_per_cycle=0)
    z = np.zeros(n, dtype=np.int64)
    sim.feed(z, z, z, np.arange(n) % cfg.org.rows, z, z)
    st = sim.finish()
    hand = ppc * (st.cycles // t.nREFI) * ce.ref_pJ
    counted = energy_from_counts(ce, {"REF": st.commands.get("REF", 0)}, active_ns=0.0,
                                 precharged_ns=0.0)["dram_refresh"]
    return hand, counted
