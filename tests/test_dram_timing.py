"""Hand-derived timing oracles for the DRAM/PIM simulator (each expected value is computed
here from the timing parameters, never read back from the simulator)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sieveopt.validation.dram.api import load_dram_preset, pim_gemv_ns, stream_requests
from sieveopt.validation.dram.checker import check_log
from sieveopt.validation.dram.pim import gemv_layout, pim_program
from sieveopt.validation.dram.sim import CommandLog, DramSim, simulate_accesses
from sieveopt.validation.dram.timing import CMD

SIEVE = "sieve_b200_hbm3e_pim"


def _one_pch(cfg, bg, bank, row, col, wr=None, **kw):
    n = len(bg)
    z = np.zeros(n, dtype=np.int64)
    log = CommandLog()
    st = simulate_accesses(cfg, z, bg, bank, row, col, z if wr is None else wr, channels=1,
                           observer=log, **kw)
    assert check_log(cfg, log.records) == []
    return st, log.records


@pytest.mark.parametrize("preset", [SIEVE, "hbm3_5200", "samsung_hbm2_pim"])
def test_single_read_latency(preset):
    cfg = load_dram_preset(preset, refresh=False)
    t = cfg.timing
    st, rec = _one_pch(cfg, [1], [2], [7], [3])
    assert st.cycles == t.nRCDRD + t.nCL + t.nBL
    assert st.avg_read_latency_cycles == t.nRCDRD + t.nCL + t.nBL
    assert [CMD["ACT"], CMD["RD"]] == list(rec["cmd"])
    assert st.row_misses == 1 and st.row_hits == 0


def test_sequential_stream_reaches_data_bus_limit():
    cfg = load_dram_preset(SIEVE, refresh=False)
    n = 20000  # per pCH; 24 banks x 32 columns per row, bank groups interleaved (RoCoBaBgCh)
    r = stream_requests(cfg, n)
    sim = DramSim(cfg, channels=1, frontend_requests_per_cycle=0)
    sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    st = sim.finish()
    bus_limit_cycles = n * cfg.timing.nBL  # one burst per nBL cycles per pCH
    assert st.cycles >= bus_limit_cycles
    assert st.cycles <= 1.03 * bus_limit_cycles
    peak = 2 * cfg.peak_bw_GBps_per_pch()
    assert st.bandwidth_GBps == pytest.approx(peak, rel=0.03)
    assert st.row_hits >= n * 2 * (1 - 1 / 24)


@pytest.mark.parametrize("preset", [SIEVE, "hbm3_5200"])
@pytest.mark.parametrize("scheduler", ["frfcfs", "fcfs"])
def test_same_bank_row_conflict_stride(preset, scheduler):
    cfg = load_dram_preset(preset, refresh=False, scheduler=scheduler)
    t = cfg.timing
    n = 50
    st, rec = _one_pch(cfg, [0] * n, [0] * n, list(range(1, n + 1)), [0] * n)
    period = max(t.nRC, t.nRAS + t.nRP, t.nRCDRD + t.nRTP + t.nRP)
    assert st.cycles == (n - 1) * period + t.nRCDRD + t.nCL + t.nBL
    acts = rec["cycle"][rec["cmd"] == CMD["ACT"]]
    assert np.all(np.diff(acts) == period)
    assert st.row_conflicts == n - 1 and st.row_misses == 1


def test_tfaw_and_trrd_limit_activations():
    # HBM3 preset: nRRDS 2, nRRDL 4, nFAW 39 -> the four-activation window binds
    cfg = load_dram_preset("hbm3_5200", refresh=False, frontend_requests_per_cycle=0)
    t = cfg.timing
    k = 16
    bg = [i % 4 for i in range(k)]
    bank = [i // 4 for i in range(k)]
    _, rec = _one_pch(cfg, bg, bank, [5] * k, [0] * k)
    acts = rec["cycle"][rec["cmd"] == CMD["ACT"]]
    expect = [0]
    for i in range(1, k):  # oldest-first, rotating bank groups: tRRD_S apart, tFAW per 4
        nxt = expect[-1] + t.nRRDS
        if i >= 4:
            nxt = max(nxt, expect[i - 4] + t.nFAW)
        if i >= 4 and bg[i] == bg[i - 4]:
            nxt = max(nxt, expect[i - 4] + t.nRRDL)
        expect.append(nxt)
    assert list(acts) == expect
    assert acts[4] - acts[0] == t.nFAW


def test_sieve_tfaw_is_non_binding():
    cfg = load_dram_preset(SIEVE, refresh=False, frontend_requests_per_cycle=0)
    k = 24
    _, rec = _one_pch(cfg, [i % 6 for i in range(k)], [i // 6 for i in range(k)], [5] * k, [0] * k)
    acts = rec["cycle"][rec["cmd"] == CMD["ACT"]]
    assert np.all(np.diff(acts) == cfg.timing.nRRDS)  # tRRD (6) paces, tFAW (12) never binds
    bound = load_dram_preset(SIEVE, refresh=False, frontend_requests_per_cycle=0, nFAW=40)
    _, rec2 = _one_pch(bound, [i % 6 for i in range(k)], [i // 6 for i in range(k)], [5] * k,
                       [0] * k)
    acts2 = rec2["cycle"][rec2["cmd"] == CMD["ACT"]]
    assert acts2[4] - acts2[0] == 40


def test_refresh_overhead_close_to_trfc_over_trefi():
    n = 60000
    cycles = {}
    for on in (False, True):
        cfg = load_dram_preset(SIEVE, refresh=on)
        r = stream_requests(cfg, n)
        sim = DramSim(cfg, channels=1, frontend_requests_per_cycle=0)
        sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
        st = sim.finish()
        cycles[on] = st.cycles
        if on:
            refs = st.commands["REF"]
            assert refs == 2 * (st.cycles // cfg.timing.nREFI) or refs == 2 * (
                st.cycles // cfg.timing.nREFI + 1)
    t = cfg.timing
    # a refresh stalls the data bus for tRFC plus the precharge and re-activation around it
    overhead = cycles[True] / cycles[False] - 1
    nominal = t.nRFC / t.nREFI
    assert nominal <= overhead <= nominal * 1.35


def test_write_to_read_turnaround():
    cfg = load_dram_preset(SIEVE, refresh=False, write_low_watermark=0)
    t = cfg.timing
    st, rec = _one_pch(cfg, [0, 0], [0, 0], [3, 3], [0, 1], wr=np.array([1, 0]))
    wr_c = int(rec["cycle"][rec["cmd"] == CMD["WR"]][0])
    rd_c = int(rec["cycle"][rec["cmd"] == CMD["RD"]][0])
    assert wr_c == t.nRCDWR
    assert rd_c - wr_c == t.nCWL + t.nBL + t.nWTRL  # same bank group: tWTR_L
    assert st.cycles == rd_c + t.nCL + t.nBL
    # different bank group: tWTR_S
    st2, rec2 = _one_pch(cfg, [0, 1], [0, 0], [3, 3], [0, 1], wr=np.array([1, 0]))
    wr2 = int(rec2["cycle"][rec2["cmd"] == CMD["WR"]][0])
    rd2 = int(rec2["cycle"][rec2["cmd"] == CMD["RD"]][0])
    act2 = int(rec2["cycle"][(rec2["cmd"] == CMD["ACT"]) & (rec2["bg"] == 1)][0])
    assert rd2 == max(wr2 + t.nCWL + t.nBL + t.nWTRS, act2 + t.nRCDRD)
    # read-to-write turnaround: RD then WR on one bank (reads are served first)
    st3, rec3 = _one_pch(cfg, [0, 0], [0, 0], [3, 3], [0, 1], wr=np.array([0, 1]))
    rd3 = int(rec3["cycle"][rec3["cmd"] == CMD["RD"]][0])
    wr3 = int(rec3["cycle"][rec3["cmd"] == CMD["WR"]][0])
    assert wr3 - rd3 == t.nCL + t.nBL + t.nRTW - t.nCWL


def _gemv_cycles_by_hand(cfg, G, A, M, R, tokens):
    """Recurrence over the command counts: GWR x G, A x (ACTAB, MAC x M, PREAB), RDRES x R."""
    t, p = cfg.timing, cfg.pim
    rcd = t.nRCDRD + p.nABSTAG
    ras = t.nRAS + p.nABSTAG
    rc = t.nRC + p.nABSTAG
    start, a_prev, pre_prev, end = 0, -10**9, -10**9, 0
    for _ in range(tokens):
        g_last = start + (G - 1) * t.nCCDS
        a = max(g_last + 1, pre_prev + t.nRP, a_prev + rc)
        for r in range(A):
            mac0 = max(a + rcd, g_last + t.nCWL + t.nBL)
            mac_last = mac0 + (M - 1) * p.nCCDMAC
            pre = max(a + ras, mac_last + t.nRTP)
            a_prev, pre_prev = a, pre
            if r < A - 1:
                a = max(pre + t.nRP, a + rc)
        rd0 = max(pre + 1, mac_last + p.nMACLAT)
        rd_last = rd0 + (R - 1) * t.nCCDS
        end = rd_last + t.nCL + t.nBL
        start = max(rd_last + 1, rd_last + t.nCL + t.nBL + t.nRTW - t.nCWL)
    return end


@pytest.mark.parametrize("tokens", [1, 2, 5])
def test_pim_gemv_time_matches_command_count_formula(tokens):
    cfg = load_dram_preset(SIEVE, refresh=False)
    P, banks = cfg.org.pseudo_channels, cfg.org.banks
    rows, cols = P * banks * 2, 1024  # 48 output rows per pCH, 2 per bank, 4 KB per bank
    lay = gemv_layout(cfg, rows, cols)
    G = cols * 2 // 32
    A = 2 * cols * 2 // 1024
    M = 1024 // 32
    R = math.ceil(48 * 2 / 32)
    assert (lay.gwr, lay.dram_rows, lay.macs, lay.rdres) == (G, A, (M,) * A, R)
    expect = _gemv_cycles_by_hand(cfg, G, A, M, R, tokens)
    log = CommandLog()
    sim = DramSim(cfg, channels=1, pim=pim_program(cfg, [(rows, cols)], tokens), observer=log)
    st = sim.finish()
    assert st.cycles == expect
    assert check_log(cfg, log.records) == []
    assert pim_gemv_ns(cfg, rows, cols, tokens) == math.ceil(expect * cfg.timing.tCK_ps / 1000)
    counts = st.commands
    n_pch = 2
    assert counts["MAC"] == n_pch * tokens * A * M
    assert counts["GWR"] == n_pch * tokens * G and counts["RDRES"] == n_pch * tokens * R


def test_pim_bank_pair_halves_throughput():
    per_bank = load_dram_preset(SIEVE, refresh=False)
    pair = load_dram_preset(SIEVE, refresh=False, banks_per_pu=2)
    assert pair.pim_bw_GBps_per_pch() * 2 == pytest.approx(per_bank.pim_bw_GBps_per_pch())
    rows, cols = 256 * 24 * 8, 4096
    assert gemv_layout(pair, rows, cols).total_macs == 2 * gemv_layout(per_bank, rows, cols).total_macs
    assert pim_gemv_ns(pair, rows, cols, 1) > 1.5 * pim_gemv_ns(per_bank, rows, cols, 1)
