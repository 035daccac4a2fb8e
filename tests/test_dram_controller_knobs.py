"""Hand-derived oracles for the command-bus occupancy (2-cycle ACT), channel-scope queues and
oldest-ready arbitration (Ramulator 2.0's controller structure), on the
``ramulator2_hbm3_2gbps`` preset: nRCDRD = nRCDWR = 7, nRAS 17, nRP 7, nCL 7, nCWL 2, nBL 4,
nCCDL 2 (< nBL, so same-bank-group bursts are nBL = 4 apart), nRTPL 3, nRRDS 2."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.validation.dram.api import load_dram_preset
from sieveopt.validation.dram.checker import check_log
from sieveopt.validation.dram.sim import CommandLog, DramSim
from sieveopt.validation.dram.timing import CMD

RAM = "ramulator2_hbm3_2gbps"
ROTATE = {"queue_scope": "pseudo_channel", "arbitration": "rotate"}


def _run(cfg, pch, bg, bank, row, wr=None, col=None):
    n = len(pch)
    log = CommandLog()
    sim = DramSim(cfg, observer=log, frontend_requests_per_cycle=0)  # all arrive at cycle 0
    z = np.zeros(n, dtype=np.int64)
    sim.feed(np.asarray(pch), np.asarray(bg), np.asarray(bank), np.asarray(row),
             z if col is None else np.asarray(col), z if wr is None else np.asarray(wr))
    st = sim.finish()
    rec = log.records
    assert check_log(cfg, rec) == []
    return st, rec


def _times(rec, cmd):
    return [int(c) for c in rec["cycle"][rec["cmd"] == CMD[cmd]]]


@pytest.mark.parametrize("nactbus", [1, 2, 3])
@pytest.mark.parametrize("split", [True, False])
def test_act_bus_occupancy_spaces_row_commands(nactbus, split):
    """Four reads to closed banks, alternating pseudo-channels (so nRRDS never binds) on one
    shared command bus: ACT k issues at k x nACTBUS. Each RD then issues nRCDRD after its
    ACT: a column command is not held back by an ACT's extra bus cycles."""
    cfg = load_dram_preset("hbm3_5200", refresh=False, nACTBUS=nactbus, stacks=1,
                           channels_per_stack=1, command_bus="per_channel",
                           row_column_buses=split)
    st, rec = _run(cfg, [0, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 0], [5, 5, 5, 5])
    acts = _times(rec, "ACT")
    assert acts == [k * nactbus for k in range(4)]
    assert _times(rec, "RD") == sorted(a + cfg.timing.nRCDRD for a in acts)


def test_column_command_uses_the_second_act_cycle():
    """nACTBUS = 2 on one bus (Ramulator): an RD may issue the cycle after an ACT, a PRE may
    not. pCH0 streams row hits while pCH1 opens a row: some RD lands exactly 1 cycle after
    an ACT, and no row command lands within 2 cycles of an ACT."""
    cfg = load_dram_preset(RAM, **ROTATE, completion="last_data")
    rng = np.random.default_rng(3)
    n = 400
    st, rec = _run(cfg, rng.integers(0, 2, n), rng.integers(0, 4, n), rng.integers(0, 4, n),
                   rng.integers(0, 3, n), col=rng.integers(0, 32, n))
    acts = set(_times(rec, "ACT"))
    rows = [c for c, k in zip(rec["cycle"], rec["cmd"], strict=True)
            if k in (CMD["ACT"], CMD["PRE"])]
    assert any(c - 1 in acts for c in _times(rec, "RD"))
    assert not any(c - 1 in acts for c in rows)


def test_channel_scope_shares_the_write_mode():
    """8 row-hit reads to pCH0 and 2 writes to pCH1, all queued at cycle 0. Channel scope
    (one read/write mode per channel, as Ramulator): the writes wait until the read buffer
    is empty, so the write ACT issues the cycle after the last RD:
      RD_k = nRCDRD + 4k (k < 8, bursts nBL = 4 apart) -> last RD 35; ACT_w 36;
      WR 36 + nRCDWR = 43 and 47; data end 47 + nCWL + nBL = 53.
    Pseudo-channel scope: pCH1's controller has no reads, so its ACT follows pCH0's ACT after
    the 2-cycle ACT (cycle 2) and its WRs at 9 and 13."""
    pch = [0] * 8 + [1] * 2
    wr = [0] * 8 + [1] * 2
    z = [0] * 10
    cfg = load_dram_preset(RAM, completion="last_data")
    st, rec = _run(cfg, pch, z, z, z, wr=wr, col=list(range(8)) + [0, 1])
    assert _times(rec, "RD") == [7 + 4 * k for k in range(8)]
    assert _times(rec, "ACT") == [0, 36]
    assert _times(rec, "WR") == [43, 47]
    assert st.cycles == st.data_end_cycle == 53
    cfg_p = load_dram_preset(RAM, completion="last_data", **ROTATE)
    st_p, rec_p = _run(cfg_p, pch, z, z, z, wr=wr, col=list(range(8)) + [0, 1])
    assert _times(rec_p, "ACT") == [0, 2]
    assert _times(rec_p, "WR") == [9, 13]


def test_channel_scope_queue_depth_is_per_channel():
    """read_queue = 1. r0 (pCH0 row 0), r1 (pCH0 row 0, a hit), r2 (pCH1), in order.
    Channel scope (one buffer per channel, Ramulator): r0's ACT at 0 moves it to the active
    buffer, so r1 enters at 1; r1 stays queued until its RD (7 + nBL = 11), so r2 enters at
    12: ACT 12, RD 12 + nRCDRD = 19.
    Pseudo-channel scope (one buffer per pCH): r1 waits for r0's RD at 7 and enters at 8 with
    r2 right behind it (in-order frontend): ACT pCH1 at 8, RD 15."""
    kw = dict(completion="last_data", read_queue=1, write_queue=2, write_high_watermark=2,
              write_low_watermark=1)
    args = ([0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    st, rec = _run(load_dram_preset(RAM, **kw), *args)
    assert _times(rec, "ACT") == [0, 12] and _times(rec, "RD") == [7, 11, 19]
    st, rec = _run(load_dram_preset(RAM, **kw, **ROTATE), *args)
    assert _times(rec, "ACT") == [0, 8] and _times(rec, "RD") == [7, 11, 15]


def test_oldest_ready_versus_hits_first():
    """One bank: reads r0..r4 to row A, r5 to row B, r6 to row A, queued at cycle 0.
    Hits first (rotate): A stays open for its six hits, RD at 7, 11, ..., 27; PRE at
    27 + nRTPL = 30, ACT B at 37, RD r5 at 44; end 44 + nCL + nBL = 55.
    Oldest ready (Ramulator FRFCFS): RD r0..r2 at 7, 11, 15; at 18 r5's PRE is ready
    (RD 15 + nRTPL, ACT 0 + nRAS = 17) while r3's RD is not (19), so the older-than-nothing
    ready r5 precharges A. At 25 (PRE + nRP) r3 and r5 both need an ACT; r3 is older, so A is
    opened again: RD r3, r4, r6 at 32, 36, 40; PRE 43 (RD + nRTPL; ACT + nRAS = 42), ACT B 50,
    RD r5 57; end 57 + 11 = 68, with two conflicts."""
    row = [0, 0, 0, 0, 0, 1, 0]
    z = [0] * 7
    st_r, rec_r = _run(load_dram_preset(RAM, completion="last_data", **ROTATE), z, z, z, row)
    assert _times(rec_r, "RD") == [7, 11, 15, 19, 23, 27, 44]
    assert _times(rec_r, "PRE") == [30] and st_r.cycles == 55
    st_o, rec_o = _run(load_dram_preset(RAM, completion="last_data"), z, z, z, row)
    assert _times(rec_o, "RD") == [7, 11, 15, 32, 36, 40, 57]
    assert _times(rec_o, "PRE") == [18, 43] and _times(rec_o, "ACT") == [0, 25, 50]
    assert st_o.cycles == 68


def test_active_request_row_is_not_closed():
    """r0 row A, r1 row B, r2 row A (one bank). r0's ACT moves it to the active buffer; r1's
    PRE is not allowed to close A before r0 reads. RD r0 at 7; r2 (hit) RD at 11 (r1's PRE
    needs nRAS: 17); PRE 17, ACT 24, RD r1 31."""
    z = [0] * 3
    st, rec = _run(load_dram_preset(RAM, completion="last_data"), z, z, z, [0, 1, 0])
    assert _times(rec, "RD") == [7, 11, 31]
    assert _times(rec, "PRE") == [17]


def test_completion_conventions():
    """last_accepted = the cycle the last request entered a queue (Ramulator's printed
    count), last_data = the end of the last burst; both are reported."""
    cfg = load_dram_preset(RAM)
    n = 200
    sim = DramSim(cfg)
    sim.feed_addresses(np.arange(n) * 32, np.zeros(n, dtype=np.int64))
    st = sim.finish()
    assert st.completion == "last_accepted" and st.cycles == st.accepted_end_cycle
    assert st.accepted_end_cycle < st.data_end_cycle
    # 1 request per cycle and a 33-deep buffer: the last request enters no earlier than n - 1
    assert st.accepted_end_cycle >= n - 1


def test_preset_timing_rows_extend_the_table():
    """A row given as data (`timing_rows`) binds in the engine and in the checker: four row
    hits in one bank with an extra bank-level RD -> RD of 50 cycles issue 50 apart, and the
    log of the plain config violates the extended table."""
    kw = dict(refresh=False, stacks=1, channels_per_stack=1)
    plain = load_dram_preset("hbm3_5200", **kw)
    ext = load_dram_preset("hbm3_5200", timing_rows=["bank: RD -> RD = 50"], **kw)
    z = [0] * 4
    _, rec = _run(ext, z, z, z, z, col=[0, 1, 2, 3])
    rd = _times(rec, "RD")
    assert [b - a for a, b in zip(rd, rd[1:], strict=False)] == [50, 50, 50]
    _, rec_p = _run(plain, z, z, z, z, col=[0, 1, 2, 3])
    assert any("RD->RD at bank" in e for e in check_log(ext, rec_p))
    assert len(ext.table) == len(plain.table) + 1


# ---- the two knobs are independent: channel + rotate, pseudo_channel + oldest_ready --------
CH_ROTATE = {"queue_scope": "channel", "arbitration": "rotate"}
PCH_OLDEST = {"queue_scope": "pseudo_channel", "arbitration": "oldest_ready"}


def test_channel_rotate_shares_the_write_mode_and_serves_hits_first():
    """queue_scope = channel with arbitration = rotate: the channel's one read/write mode
    (the write-mode oracle above: write ACT at 36 after the last RD at 35, WRs 43/47, end 53)
    and FR-FCFS hits first (the one-bank oracle above: A's six hits at 7..27, PRE 30, ACT B
    37, RD 44, end 55), i.e. the queue-scope result of the first and the arbitration result
    of the second."""
    cfg = load_dram_preset(RAM, completion="last_data", **CH_ROTATE)
    pch = [0] * 8 + [1] * 2
    z = [0] * 10
    st, rec = _run(cfg, pch, z, z, z, wr=[0] * 8 + [1] * 2, col=list(range(8)) + [0, 1])
    assert _times(rec, "RD") == [7 + 4 * k for k in range(8)]
    assert _times(rec, "ACT") == [0, 36] and _times(rec, "WR") == [43, 47]
    assert st.cycles == 53
    z = [0] * 7
    st, rec = _run(cfg, z, z, z, [0, 0, 0, 0, 0, 1, 0])
    assert _times(rec, "RD") == [7, 11, 15, 19, 23, 27, 44]
    assert _times(rec, "PRE") == [30] and _times(rec, "ACT") == [0, 37] and st.cycles == 55


def test_channel_rotate_keeps_an_activated_request_queued():
    """read_queue = 1, r0 (pCH0 row 0), r1 (pCH0 row 0), r2 (pCH1). Rotate has no active
    buffer: r0 holds the channel's one slot until its RD at 7, r1 enters at 8 (the frontend
    retries the cycle after a slot frees) and reads at 11 (r0's RD + nBL), r2 enters at 12:
    ACT 12, RD 19 -- the same cycles as oldest_ready, where r1 enters at 1 but still reads at
    11."""
    kw = dict(completion="last_data", read_queue=1, write_queue=2, write_high_watermark=2,
              write_low_watermark=1, **CH_ROTATE)
    st, rec = _run(load_dram_preset(RAM, **kw), [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    assert _times(rec, "ACT") == [0, 12] and _times(rec, "RD") == [7, 11, 19]


def test_pseudo_channel_oldest_ready_has_a_mode_per_pch_and_serves_oldest_ready():
    """queue_scope = pseudo_channel with arbitration = oldest_ready. Write-mode case: pCH1's
    buffer holds only writes, so pCH1 is in write mode while pCH0 reads: ACT pCH0 at 0 (r0 is
    the oldest ready request), ACT pCH1 at 2 (after the 2-cycle ACT), WRs at 2 + nRCDWR = 9
    and 13 (nBL apart), interleaved on the shared command bus with pCH0's RDs 7 + 4k; end
    RD 35 + nCL + nBL = 46. One-bank case (a single pCH): Ramulator's ready-first-then-oldest
    order of the oldest-ready oracle above (PRE 18 and 43, ACT 0/25/50, end 68)."""
    cfg = load_dram_preset(RAM, completion="last_data", **PCH_OLDEST)
    pch = [0] * 8 + [1] * 2
    z = [0] * 10
    st, rec = _run(cfg, pch, z, z, z, wr=[0] * 8 + [1] * 2, col=list(range(8)) + [0, 1])
    assert _times(rec, "RD") == [7 + 4 * k for k in range(8)]
    assert _times(rec, "ACT") == [0, 2] and _times(rec, "WR") == [9, 13]
    assert st.cycles == 46
    z = [0] * 7
    st, rec = _run(cfg, z, z, z, [0, 0, 0, 0, 0, 1, 0])
    assert _times(rec, "RD") == [7, 11, 15, 32, 36, 40, 57]
    assert _times(rec, "PRE") == [18, 43] and _times(rec, "ACT") == [0, 25, 50]
    assert st.cycles == 68


def test_pseudo_channel_oldest_ready_queue_depth_is_per_pch():
    """read_queue = 1, r0 (pCH0 row 0), r1 (pCH0 row 0), r2 (pCH1), unlimited frontend.
    r0's ACT at 0 moves it to the active buffer and frees pCH0's slot, so r1 and r2 (pCH1's
    own buffer) enter at 1; ACT pCH1 at 2 (2-cycle ACT), RD r0 7, r2 2 + 7 = 9, r1 (hit) 7 +
    nBL = 11. Differs from both neighbours: channel + oldest_ready ACT 0/12, RD 7/11/19;
    pseudo_channel + rotate ACT 0/8, RD 7/11/15."""
    kw = dict(completion="last_data", read_queue=1, write_queue=2, write_high_watermark=2,
              write_low_watermark=1, **PCH_OLDEST)
    st, rec = _run(load_dram_preset(RAM, **kw), [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    assert _times(rec, "ACT") == [0, 2] and _times(rec, "RD") == [7, 9, 11]
    assert st.cycles == 22


@pytest.mark.parametrize("knobs,forwarded", [(CH_ROTATE, False), (PCH_OLDEST, True),
                                             ({}, True), (ROTATE, False)])
def test_read_forwarding_belongs_to_oldest_ready(knobs, forwarded):
    """A write then a read of the same address: oldest_ready (Ramulator's controller) serves
    the read from the write buffer (no RD command, still counted as a read); rotate reads
    DRAM."""
    cfg = load_dram_preset(RAM, completion="last_data", **knobs)
    st, rec = _run(cfg, [0, 0], [1, 1], [2, 2], [3, 3], wr=[1, 0], col=[4, 4])
    assert st.reads == 1 and st.writes == 1
    assert len(_times(rec, "RD")) == (0 if forwarded else 1)
    assert len(_times(rec, "WR")) == 1


@pytest.mark.parametrize("scope", ["pseudo_channel", "channel"])
@pytest.mark.parametrize("arb", ["rotate", "oldest_ready"])
def test_every_knob_combination_runs_random_traffic(scope, arb):
    """All four combinations accept a random read/write mix on 2 channels, every command
    log passes the checker, and every request completes."""
    cfg = load_dram_preset(RAM, completion="last_data", queue_scope=scope, arbitration=arb,
                           channels_per_stack=2)
    rng = np.random.default_rng(7)
    n = 600
    st, rec = _run(cfg, rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, 4, n),
                   rng.integers(0, 4, n), wr=(rng.random(n) < 0.3).astype(int),
                   col=rng.integers(0, 32, n))
    assert st.reads + st.writes == n


def test_knob_combinations_reject_what_is_not_modelled():
    """Closed-row policy and PIM programs need the per-pCH FR-FCFS controllers; the error
    names the field."""
    from sieveopt.errors import SpecError
    from sieveopt.validation.dram.sim import PimProgram

    with pytest.raises(SpecError, match="row_policy"):
        load_dram_preset(RAM, **PCH_OLDEST, row_policy="closed")
    with pytest.raises(SpecError, match="row_policy"):
        load_dram_preset(RAM, **CH_ROTATE, row_policy="closed")
    pim_cfg = load_dram_preset("samsung_hbm2_pim", **PCH_OLDEST)
    one = np.zeros(1, dtype=np.int64)
    with pytest.raises(SpecError, match="controller.arbitration"):
        DramSim(pim_cfg, pim=PimProgram(one + CMD["MAC"], one, one, one))
