"""PIM fidelity knobs: activation width separate from weight width, the PU compute limit
(ops per byte), and the cache reset of the API."""

from __future__ import annotations

import math

import pytest

from sieveopt.validation.dram import api
from sieveopt.validation.dram.api import load_dram_preset, pim_expert_ns, pim_gemv_ns
from sieveopt.validation.dram.pim import gemv_layout, pim_program
from sieveopt.validation.dram.sim import DramSim

SIEVE = "sieve_b200_hbm3e_pim"
MXFP4 = 0.53125


def test_token_writes_and_readbacks_use_act_bytes():
    cfg = load_dram_preset(SIEVE)
    rows, cols = 256 * 24 * 4, 2880
    lay = gemv_layout(cfg, rows, cols, bytes_per_element=MXFP4)           # BF16 activations
    assert lay.gwr == math.ceil(cols * 2.0 / 32)
    assert lay.rdres == math.ceil(lay.partials * 2.0 / 32)
    assert lay.bytes_per_bank == math.ceil(rows // 256 * cols * MXFP4 / 24)
    fp8 = gemv_layout(cfg, rows, cols, bytes_per_element=MXFP4, act_bytes=1.0)
    assert fp8.gwr == math.ceil(cols / 32) and fp8.macs == lay.macs
    assert pim_gemv_ns(cfg, rows, cols, 2, bytes_per_element=MXFP4, act_bytes=1.0) < \
        pim_gemv_ns(cfg, rows, cols, 2, bytes_per_element=MXFP4)
    job = api.PimJob.expert(2880, 2880, 2, bytes_per_element=MXFP4)
    assert job.act_bytes == 2.0
    only = api.concurrent_ns(cfg, 0, [job])
    assert only.pim_end_ns == pim_expert_ns(cfg, 2880, 2880, 2, bytes_per_element=MXFP4)


def test_compute_limit_stretches_narrow_weights_only():
    cfg = load_dram_preset(SIEVE)                              # 1 op/B (Sieve, Table 1)
    free = load_dram_preset(SIEVE, **{"pim.ops_per_byte": 0.0})  # no compute limit
    rows, cols = 256 * 24 * 8, 4096
    # BF16: 2 ops per 2 B = 1 op/B, exactly balanced -> the limit changes nothing
    assert gemv_layout(cfg, rows, cols) == gemv_layout(free, rows, cols)
    assert pim_gemv_ns(cfg, rows, cols, 1) == pim_gemv_ns(free, rows, cols, 1)
    # MXFP4: 3.76 ops/B; at 1 op/B a MAC may feed only 32 x 0.53125 / 2 = 8.5 B per PU
    lim, unl = gemv_layout(cfg, rows, cols, MXFP4), gemv_layout(free, rows, cols, MXFP4)
    assert lim.mac_bytes == pytest.approx(8.5) and unl.mac_bytes == 32
    ratio = lim.total_macs / unl.total_macs
    assert 2 / MXFP4 * 0.97 < ratio < 2 / MXFP4 * 1.03
    # MACs per byte never exceed the limit: ops = 2 x elements <= ops_per_byte x MAC slot bytes
    elems = lim.bytes_per_bank / MXFP4
    assert 2 * elems <= cfg.pim.ops_per_byte * lim.total_macs * cfg.pim.pu_bytes_per_access
    t_lim = pim_gemv_ns(cfg, rows, cols, 1, bytes_per_element=MXFP4)
    t_unl = pim_gemv_ns(free, rows, cols, 1, bytes_per_element=MXFP4)
    assert t_lim > 2.5 * t_unl
    # compute-bound MXFP4 at 1 op/B costs about what BF16 costs (same MAC count)
    bf16 = gemv_layout(cfg, rows, cols)
    assert abs(lim.total_macs - bf16.total_macs) <= lim.dram_rows
    # a faster PU (8 op/B, Duplex-like) is bandwidth-bound again for MXFP4
    fast = load_dram_preset(SIEVE, **{"pim.ops_per_byte": 8.0})
    assert gemv_layout(fast, rows, cols, MXFP4) == unl
    # half the compute (0.5 op/B) doubles BF16's MAC slots
    slow = load_dram_preset(SIEVE, **{"pim.ops_per_byte": 0.5})
    assert gemv_layout(slow, rows, cols).total_macs == 2 * bf16.total_macs


def test_compute_bound_program_runs_its_mac_count():
    cfg = load_dram_preset(SIEVE, refresh=False)
    prog = pim_program(cfg, [(256 * 24, 2048)], 1, bytes_per_element=MXFP4)
    lay = gemv_layout(cfg, 256 * 24, 2048, MXFP4)
    st = DramSim(cfg, channels=1, pim=prog).finish()
    assert st.commands["MAC"] == 2 * lay.total_macs
    # MAC slots are nCCDMAC apart: the GEMV part takes at least that long
    assert st.cycles >= lay.total_macs * cfg.pim.nCCDMAC


def test_clear_caches():
    cfg = load_dram_preset(SIEVE, nWR=41)
    pim_gemv_ns(cfg, 4096, 1024, 1)
    api.weight_stream_ns(cfg, 1 << 20)
    assert api._pim_cycles.cache_info().currsize > 0
    api.clear_caches()
    assert api._pim_cycles.cache_info().currsize == 0
    assert api._stream_cycles.cache_info().currsize == 0
    assert api._concurrent.cache_info().currsize == 0
