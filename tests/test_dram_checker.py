"""Every issued command obeys the timing table: the independent checker replays command logs
of random mixed traffic (and PIM) on every preset and policy; tampered logs are caught."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.validation.dram.api import load_dram_preset, stream_requests
from sieveopt.validation.dram.checker import check_log
from sieveopt.validation.dram.pim import expert_matrices, pim_program
from sieveopt.validation.dram.sim import CommandLog, DramSim
from sieveopt.validation.dram.timing import CMD


@pytest.mark.parametrize("preset", ["sieve_b200_hbm3e_pim", "hbm3_5200", "samsung_hbm2_pim",
                                    "attacc_hbm3_pim"])
@pytest.mark.parametrize("policy", ["open", "closed"])
@pytest.mark.parametrize("scheduler", ["frfcfs", "fcfs"])
def test_random_traffic_never_violates(preset, policy, scheduler):
    cfg = load_dram_preset(preset, row_policy=policy, scheduler=scheduler, nREFI=1500,
                           command_bus="per_channel" if policy == "open" else "per_pseudo_channel")
    rng = np.random.default_rng(hash((preset, policy, scheduler)) % 2**32)
    log = CommandLog()
    sim = DramSim(cfg, channels=2, observer=log, log_capacity=512)  # small buffer: drained often
    n = 4000
    hot = rng.integers(0, 1 << 12, n) * 32  # some locality: rows get hits and conflicts
    cold = rng.integers(0, 1 << 26, n) * 32
    addr = np.where(rng.random(n) < 0.5, hot, cold)
    sim.feed_addresses(addr[: n // 2], rng.integers(0, 2, n // 2))
    sim.feed_addresses(addr[n // 2:], rng.integers(0, 2, n - n // 2))
    st = sim.finish()
    rec = log.records
    assert st.reads + st.writes == n
    assert len(rec) == sum(st.commands.values())
    assert st.commands.get("REF", 0) > 0
    assert check_log(cfg, rec) == []


@pytest.mark.parametrize("sharing", ["dual_row_buffer", "exclusive"])
def test_pim_and_stream_never_violate(sharing):
    cfg = load_dram_preset("sieve_b200_hbm3e_pim", nREFI=2500)
    prog = pim_program(cfg, expert_matrices(2048, 768), 2)
    log = CommandLog()
    sim = DramSim(cfg, channels=1, pim=prog, sharing=sharing, observer=log,
                  frontend_requests_per_cycle=0)
    r = stream_requests(cfg, 1500, row_base=cfg.org.rows // 2)
    sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    st = sim.finish()
    assert st.commands["MAC"] > 0 and st.commands["RD"] == 3000
    assert check_log(cfg, log.records, sharing=sharing) == []


def _log(cfg, n=200):
    log = CommandLog()
    sim = DramSim(cfg, channels=1, observer=log)
    rng = np.random.default_rng(3)
    sim.feed_addresses(rng.integers(0, 1 << 16, n) * 32, np.zeros(n, dtype=np.int64))
    sim.finish()
    return log.records


def test_checker_catches_tampering():
    cfg = load_dram_preset("hbm3_5200")
    rec = _log(cfg)
    assert check_log(cfg, rec) == []
    # move one RD earlier than its ACT allows (tRCD)
    bad = rec.copy()
    i = int(np.flatnonzero(bad["cmd"] == CMD["RD"])[0])
    act = int(np.flatnonzero((bad["cmd"] == CMD["ACT"]) & (bad["bank"] == bad["bank"][i])
                             & (bad["bg"] == bad["bg"][i]) & (bad["pch"] == bad["pch"][i]))[0])
    bad["cycle"][i] = bad["cycle"][act] + 1
    bad = bad[np.argsort(bad["cycle"], kind="stable")]
    errs = check_log(cfg, bad)
    assert any("ACT->RD" in e for e in errs)
    # drop a PRE: the next ACT to that bank hits an open bank
    j = int(np.flatnonzero(rec["cmd"] == CMD["PRE"])[0])
    errs = check_log(cfg, np.delete(rec, j))
    assert any("open bank" in e for e in errs)
    # two column commands in one cycle on one bus
    k = np.flatnonzero(rec["cmd"] == CMD["RD"])[:2]
    dup = rec.copy()
    dup["cycle"][k[1]] = dup["cycle"][k[0]]
    dup = dup[np.argsort(dup["cycle"], kind="stable")]
    assert check_log(cfg, dup) != []
