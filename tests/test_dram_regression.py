"""Bit-identical command logs: sha256 digests of the issued-command log (and the run's end
cycle) for fixed workloads, recorded before the scheduler speed-ups of 2026-11-23. Any change
to the engine that alters a single issued command (cycle, command, address) fails here."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sieveopt.validation.dram.api import load_dram_preset, stream_requests
from sieveopt.validation.dram.pim import expert_matrices, pim_program
from sieveopt.validation.dram.sim import CommandLog, DramSim


def _digest(sim: DramSim, log: CommandLog, feed) -> tuple[str, int]:
    feed(sim)
    st = sim.finish()
    rec = log.records
    h = hashlib.sha256()
    for name in rec.dtype.names:
        h.update(np.ascontiguousarray(rec[name], dtype="<i8").tobytes())
    h.update(np.int64(st.cycles).tobytes())
    return h.hexdigest()[:24], len(rec)


def _stream(cfg, n, ch=1):
    def feed(sim):
        a = np.arange(n, dtype=np.int64) * cfg.org.access_bytes
        sim.feed_addresses(a, np.zeros(n, dtype=np.int64))
    return feed


def _conflicts(cfg, n):
    rng = np.random.default_rng(7)
    # a handful of rows in 3 banks of one pCH, interleaved: hits, misses and conflicts
    bg = rng.integers(0, 2, n)
    bank = rng.integers(0, 2, n)
    row = rng.integers(0, 4, n)
    col = rng.integers(0, cfg.org.columns, n)
    pch = rng.integers(0, 2, n)

    def feed(sim):
        sim.feed(pch, bg, bank, row, col, np.zeros(n, dtype=np.int64))
    return feed


def _mixed(cfg, n):
    rng = np.random.default_rng(11)
    addr = rng.integers(0, 1 << 22, n) * cfg.org.access_bytes
    wr = (rng.random(n) < 0.3).astype(np.int64)
    # bursts: runs of sequential addresses mixed with random ones
    seq = np.arange(n) % 16
    addr = np.where(seq < 8, addr - addr % (8 * cfg.org.access_bytes) + seq * cfg.org.access_bytes, addr)

    def feed(sim):
        sim.feed_addresses(addr, wr)
    return feed


def _pim_stream(cfg, accesses, tokens, d=1024, f=256):
    def feed(sim):
        r = stream_requests(cfg, accesses, row_base=cfg.org.rows // 2)
        sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    prog = pim_program(cfg, expert_matrices(d, f), tokens)
    return feed, prog


def _case(name):
    if name == "stream":
        cfg = load_dram_preset("hbm3_5200")
        return cfg, {}, _stream(cfg, 20000)
    if name == "stream_4ch":
        cfg = load_dram_preset("hbm3_5200", **{"controller.address_mapping": "RoCoBaBgCh"})
        return cfg, {"channels": 4}, _stream(cfg, 20000)
    if name == "conflicts":
        cfg = load_dram_preset("hbm3_5200")
        return cfg, {}, _conflicts(cfg, 3000)
    if name == "conflicts_fcfs_closed":
        cfg = load_dram_preset("hbm3_5200", **{"controller.scheduler": "fcfs",
                                               "controller.row_policy": "closed"})
        return cfg, {}, _conflicts(cfg, 3000)
    if name == "mixed_rw":
        cfg = load_dram_preset("sieve_b200_hbm3e_pim")
        return cfg, {"channels": 2}, _mixed(cfg, 20000)
    if name == "mixed_rw_closed":
        cfg = load_dram_preset("hbm3_5200", **{"controller.row_policy": "closed"})
        return cfg, {"channels": 2}, _mixed(cfg, 12000)
    cfg = load_dram_preset("sieve_b200_hbm3e_pim")
    feed, prog = _pim_stream(cfg, 3000, 3)
    kw = {"channels": 1, "pim": prog, "frontend_requests_per_cycle": 0}
    if name == "pim_dual_strict":
        return cfg, kw, feed
    if name == "pim_dual_big":
        feed, prog = _pim_stream(cfg, 12000, 2, 4096, 1024)
        return cfg, {**kw, "pim": prog}, feed
    if name == "pim_dual_ready":
        cfg = load_dram_preset("sieve_b200_hbm3e_pim", **{"pim.priority": "ready"})
        feed, prog = _pim_stream(cfg, 3000, 3)
        return cfg, {**kw, "pim": prog}, feed
    assert name == "pim_exclusive"
    return cfg, {**kw, "sharing": "exclusive"}, feed


#: (digest, number of commands) recorded with the engine of commit 1074ff8 (before speed-ups)
EXPECTED = {
    'stream': ('3cd88dedc2faeae789bac3ad', 21900),
    'stream_4ch': ('905c61aa511aa86b322b42fc', 21728),
    'conflicts': ('e5c2b3c9125228a6f21a9274', 4593),
    'conflicts_fcfs_closed': ('60e76728b60eac02611937a7', 8315),
    'mixed_rw': ('78b9307a63a88a48a8124fb9', 61305),
    'mixed_rw_closed': ('c841b8b2fbc79927dc1c363c', 24780),
    'pim_dual_strict': ('19bfda3980b322de4f486bda', 6918),
    'pim_dual_big': ('f15240bb51d49fdd2f40d150', 27484),
    'pim_dual_ready': ('ead8e93c0a82797e346fd773', 6918),
    'pim_exclusive': ('0e2b9f18f6c0e90cdf858bdf', 6918),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_command_log_bit_identical(name):
    cfg, kw, feed = _case(name)
    log = CommandLog()
    sim = DramSim(cfg, observer=log, **kw)
    assert _digest(sim, log, feed) == EXPECTED[name]


if __name__ == "__main__":  # print the digests (to record them)
    for n in ("stream", "stream_4ch", "conflicts", "conflicts_fcfs_closed", "mixed_rw",
              "mixed_rw_closed", "pim_dual_strict", "pim_dual_big", "pim_dual_ready", "pim_exclusive"):
        cfg, kw, feed = _case(n)
        log = CommandLog()
        print(f"    {n!r}: {_digest(DramSim(cfg, observer=log, **kw), log, feed)!r},")
