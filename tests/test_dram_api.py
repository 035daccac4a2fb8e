"""Layer-level API used by replay: symmetry over channels, PIM jobs, concurrency, caching."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sieveopt.validation.dram.api import (
    ConcurrentResult,
    PimJob,
    concurrent_ns,
    load_dram_preset,
    pim_expert_ns,
    pim_gemv_ns,
    stream_requests,
    weight_stream_ns,
)
from sieveopt.validation.dram.pim import pim_program
from sieveopt.validation.dram.sim import DramSim

SIEVE = "sieve_b200_hbm3e_pim"


@pytest.mark.parametrize("bus", ["per_pseudo_channel", "per_channel"])
def test_every_channel_equals_representative_channel(bus):
    cfg = load_dram_preset(SIEVE, stacks=1, channels_per_stack=8, nREFI=3000, command_bus=bus)
    n_pch = cfg.org.pseudo_channels
    total_bytes = 16 * 1024 * n_pch
    # every channel, all requests interleaved in one in-order stream
    r = stream_requests(cfg, 16 * 1024 // 32, n_pch=n_pch)
    full = DramSim(cfg, frontend_requests_per_cycle=0)
    full.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    st = full.finish()
    assert st.reads == total_bytes // 32
    assert weight_stream_ns(cfg, total_bytes) == -(-st.cycles * cfg.timing.tCK_ps // 1000)
    # PIM: the same program on every pseudo-channel of every channel
    prog = pim_program(cfg, [(4096, 1024)], 2)
    full_pim = DramSim(cfg, pim=prog).finish()
    assert pim_gemv_ns(cfg, 4096, 1024, 2) == -(-full_pim.cycles * cfg.timing.tCK_ps // 1000)


def test_weight_stream_near_external_bandwidth():
    cfg = load_dram_preset(SIEVE)
    b = 25_000_000
    ns = weight_stream_ns(cfg, b)
    ideal = b / 8192.0  # 8.192 TB/s = 8192 B/ns
    assert ideal < ns < 1.12 * ideal  # refresh (~10%) and row switches on top
    assert weight_stream_ns(cfg, 0) == 0
    assert weight_stream_ns(cfg, b, channels=64) > 1.9 * ns  # half the channels


def test_pim_scales_with_tokens_and_bandwidth_knob():
    cfg = load_dram_preset(SIEVE)
    t1, t4 = pim_expert_ns(cfg, 4096, 1024, 1), pim_expert_ns(cfg, 4096, 1024, 4)
    assert 3.8 * t1 < t4 < 4.2 * t1
    assert pim_gemv_ns(cfg, 4096, 1024, 0) == 0
    slow = load_dram_preset(SIEVE, nCCDMAC=8)
    assert pim_expert_ns(slow, 4096, 1024, 1) > t1


def test_concurrent_modes():
    cfg = load_dram_preset(SIEVE)
    stream = 12_000_000
    alone_s = weight_stream_ns(cfg, stream)
    alone_p = pim_expert_ns(cfg, 2048, 768, 3)
    job = PimJob.expert(2048, 768, 3)
    dual = concurrent_ns(cfg, stream, [job], sharing="dual_row_buffer")
    excl = concurrent_ns(cfg, stream, [job], sharing="exclusive")
    assert isinstance(dual, ConcurrentResult)
    s_end, p_end = dual
    assert s_end >= alone_s and p_end >= alone_p
    assert s_end < alone_s + alone_p  # overlap helps in dual-row-buffer mode
    # exclusive: the PIM job runs first, the stream waits for it
    assert excl.pim_end_ns == pytest.approx(alone_p, rel=0.02)
    assert excl.stream_end_ns >= alone_s + 0.9 * alone_p
    only = concurrent_ns(cfg, 0, [(4096, 1024, 2)])
    assert only.stream_end_ns == 0 and only.pim_end_ns == pim_gemv_ns(cfg, 4096, 1024, 2)
    late = concurrent_ns(cfg, 0, [PimJob.gemv(4096, 1024, 1, start_ns=5000)])
    assert late.pim_end_ns >= 5000 + 0.95 * pim_gemv_ns(cfg, 4096, 1024, 1)


def test_whole_layer_is_cheap():
    """~65 experts per GPU of 25 MB each (Qwen3.5-like), 1..40 tokens: well under 2 s."""
    cfg = load_dram_preset(SIEVE, nRCDRD=29)  # a fresh config: nothing cached yet
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 41, 65)
    d, f = 4096, 1024
    t0 = time.perf_counter()
    total = 0
    for n in tokens:
        total += pim_expert_ns(cfg, d, f, int(n))
        total += weight_stream_ns(cfg, 3 * d * f * 2)
    assert total > 0
    assert time.perf_counter() - t0 < 2.0


def test_pim_priority_knob():
    """strict: a waiting PIM command is never delayed by GPU reads (the stream fills the gaps);
    ready: a saturating stream keeps pushing the PIM token writes back."""
    job = [PimJob.expert(4096, 1024, 2)]
    stream = 25_000_000
    strict = load_dram_preset(SIEVE, priority="strict")
    ready = load_dram_preset(SIEVE, priority="ready")
    alone_p = pim_expert_ns(strict, 4096, 1024, 2)
    s = concurrent_ns(strict, stream, job)
    r = concurrent_ns(ready, stream, job)
    assert s.pim_end_ns == alone_p
    assert r.pim_end_ns > 1.3 * alone_p
    assert s.stream_end_ns > r.stream_end_ns
