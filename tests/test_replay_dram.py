"""Replay on the cycle-level DRAM/PIM simulator: closed-form timing, mapping, interference.

Every expectation is recomputed from ``sieveopt.validation.dram.api`` directly (the layer API
the timer wraps) or from the system spec; shapes are small and results cached per shape.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.errors import SieveoptError
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.dram import api
from sieveopt.validation.replay import make_timer, replay
from sieveopt.validation.replay_dram import DramTimer

MODEL = tiny_model(num_experts=16, top_k=2, hidden=1024, inter=512)


def _setup(sharing: str, gpus: int = 1, batch: int = 32, model=MODEL):
    system = load_system("sieve-b200-hbm3e-pim", gpus, {"hbm_pim.sharing": sharing})
    inst = random_instance(np.random.default_rng(0), model, system, batch)
    dag = build_layer_dag(inst, RooflineCostModel(system, model), DagOptions())
    return system, inst, dag


def _half_pim(dag):
    experts = sorted(dag.expert_task)
    return list_schedule(dag, modes_from_experts(dag, {e: ("pim" if i % 2 else "gpu") for i, e in enumerate(experts)}))


def test_dram_is_the_default_timer_and_raises_no_warning():
    system = load_system("sieve-b200-hbm3e-pim", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = make_timer(system, MODEL)
    assert isinstance(t, DramTimer) and t.name == "dram"
    with pytest.raises(SieveoptError, match="unknown memory timer"):
        make_timer(system, MODEL, "roofline")


def test_sieve_preset_agrees_with_the_system_spec_bandwidths():
    system = load_system("sieve-b200-hbm3e-pim", 1)
    t = DramTimer(system, MODEL)
    assert t.preset == "sieve_b200_hbm3e_pim" and t.cfg.pim.nCCDMAC == 4
    bw = t.bandwidth_check()
    assert abs(bw["preset_peak_GBps"] / bw["spec_hbm_GBps"] - 1) < 0.03           # 8192 vs 8000
    assert abs(bw["simulated_stream_GBps"] / bw["spec_sustained_GBps"] - 1) < 0.03  # refresh ~ 0.9 efficiency
    assert abs(bw["preset_pim_peak_GBps"] / bw["spec_pim_GBps"] - 1) < 0.03
    assert bw["simulated_pim_expert_GBps"] < bw["preset_pim_peak_GBps"]


@pytest.mark.parametrize("mult", [4.0, 8.0, 16.0, 32.0])
def test_pim_bandwidth_knob_is_pushed_into_the_preset(mult):
    system = load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.pim.internal_bw_multiplier": mult})
    t = DramTimer(system, MODEL)
    peak = t.cfg.pim_bw_GBps_per_pch() * t.cfg.org.pseudo_channels
    assert abs(peak / system.pim_bw_GBps - 1) < 0.05


def test_system_organisation_and_user_timing_reach_the_preset():
    h100 = load_system("h100-hbm3-pim", 1, {"hbm_pim.timing.CL": 21})
    t = DramTimer(h100, MODEL)
    assert t.preset == "attacc_hbm3_pim"
    assert t.cfg.org.stacks == 5 and t.cfg.org.pseudo_channels == 5 * 32
    assert t.cfg.timing.nCL == 21 and "timing.nRCDRD" not in t.overrides   # only the user's change
    assert abs(t.cfg.peak_bw_GBps_per_pch() * t.cfg.org.pseudo_channels / h100.gpu.hbm_bw_GBps - 1) < 0.03
    six = load_system("h100-hbm3-pim", 1, {"hbm_pim.stacks_per_gpu": 6})
    assert DramTimer(six, MODEL).cfg.org.stacks == 6


def test_stream_time_is_the_simulated_stream_within_interpolation_error():
    t = DramTimer(load_system("sieve-b200-hbm3e-pim", 1), MODEL)
    rng = np.random.default_rng(1)
    peak = t.cfg.peak_bw_GBps_per_pch() * t.cfg.org.pseudo_channels
    for nbytes in np.exp(rng.uniform(np.log(2e5), np.log(3e7), 8)):
        direct = api.weight_stream_ns(t.cfg, int(nbytes))
        got = t.stream_ns(float(nbytes))
        assert abs(got - direct) <= 0.03 * direct + 2
        assert nbytes / peak <= got <= 1.25 * nbytes / peak + 200     # near the external peak
    # small streams are exact (one burst per pCH granule)
    assert t.stream_ns(4096) == api.weight_stream_ns(t.cfg, 8192)


def test_gpu_expert_time_is_max_of_compute_and_simulated_stream_plus_overhead():
    system, inst, dag = _setup("exclusive")
    sched = list_schedule(dag, modes_from_experts(dag, {}, default_expert="gpu", attention="gpu"))
    timer = DramTimer(system, MODEL)
    r = replay(sched, dag, system, instance=inst, timer=timer)
    flops_per_ns = system.gpu.peak_TFLOPS * 1e3 * system.gpu.compute_efficiency
    for t in dag.tasks_of("expert"):
        w = t.work
        stream = timer.stream_ns(w.weight_bytes + w.act_bytes + w.kv_bytes)
        want = max(w.flops / flops_per_ns, stream) + w.launches * system.gpu.kernel_overhead_ns
        assert abs(r.replayed_duration_ns[t.tid] - want) <= 2


def test_pim_expert_and_attention_times_are_the_apis():
    system, inst, dag = _setup("exclusive")
    sched = list_schedule(dag, modes_from_experts(dag, {e: "pim" for e in dag.expert_task}, attention="pim"))
    timer = DramTimer(system, MODEL)
    r = replay(sched, dag, system, instance=inst, timer=timer)
    for t in dag.tasks_of("expert"):
        if t.tokens:
            assert r.replayed_duration_ns[t.tid] == api.pim_expert_ns(timer.cfg, 1024, 512, t.tokens)
    for t in dag.tasks_of("attn"):
        if t.work.kv_bytes > 0:
            rows, cols, act, passes = timer._attention_shape(t.work.kv_bytes, t.work.flops)
            assert cols == 2 * 64 and rows * cols * act >= t.work.kv_bytes
            assert passes == 8 // 2                   # GQA: 4 query heads share each KV head
            assert r.replayed_duration_ns[t.tid] == api.pim_gemv_ns(timer.cfg, rows, cols, passes,
                                                                    bytes_per_element=act)


def test_mxfp4_experts_use_their_bytes_per_param():
    m = load_model("gpt-oss-120b")
    t = DramTimer(load_system("sieve-b200-hbm3e-pim", 4), m)
    assert t.bpe == pytest.approx(0.53125)
    assert t.pim_expert_ns(3) == api.pim_expert_ns(t.cfg, m.hidden_size, m.expert_intermediate_size, 3,
                                                   bytes_per_element=0.53125)
    assert t.pim_expert_ns(3) < api.pim_expert_ns(t.cfg, m.hidden_size, m.expert_intermediate_size, 3)


def test_interference_direction_dual_row_buffer_vs_exclusive():
    timer = DramTimer(load_system("sieve-b200-hbm3e-pim", 1), MODEL)
    k_s, k_p = timer.interference("expert", 2)
    assert k_s >= 1.0 and k_p >= 1.0 and max(k_s, k_p) > 1.05
    # the pair run concurrently: dual row buffers overlap (no slower than the longer alone, faster
    # than serial; a small stream can hide entirely in the PIM job's gaps), exclusive serialises
    job = api.PimJob.expert(1024, 512, 8)
    p = api.pim_expert_ns(timer.cfg, 1024, 512, 8)
    nbytes = 4 << 20
    s = api.weight_stream_ns(timer.cfg, nbytes)
    dual = api.concurrent_ns(timer.cfg, nbytes, [job], sharing="dual_row_buffer")
    excl = api.concurrent_ns(timer.cfg, nbytes, [job], sharing="exclusive")
    assert max(s, p) <= max(dual) < max(excl) and max(excl) >= s + p - 50

    system, inst, dag = _setup("dual_row_buffer", batch=64)
    sched = _half_pim(dag)
    on = replay(sched, dag, system, instance=inst, timer=timer)
    off = replay(sched, dag, system, instance=inst, timer=timer, interference=False)
    assert on.interfered_ns.sum() > 0 and off.interfered_ns.sum() == 0
    assert on.makespan_ns > off.makespan_ns
    system_x, inst_x, dag_x = _setup("exclusive", batch=64)
    ex = replay(_half_pim(dag_x), dag_x, system_x, instance=inst_x, timer=DramTimer(system_x, MODEL))
    assert ex.interfered_ns.sum() == 0
    assert ex.makespan_ns > off.makespan_ns          # serialising GPU streams and PIM jobs costs time


def test_partitioned_sharing_splits_the_bandwidth():
    full = DramTimer(load_system("sieve-b200-hbm3e-pim", 1), MODEL)
    part = DramTimer(load_system("sieve-b200-hbm3e-pim", 1, {"hbm_pim.sharing": "partitioned",
                                                              "hbm_pim.pim_bank_fraction": 0.25}), MODEL)
    assert part.stream_ns(1 << 22) == pytest.approx(full.stream_ns(1 << 22) / 0.75)
    assert part.interference("expert", 4) == (1.0, 1.0)


def test_calibrated_cost_model_returns_simulator_durations():
    from sieveopt.models.costmodel import Work, make_cost_model
    from sieveopt.validation.calibrated import CalibratedCostModel

    system, inst, _ = _setup("exclusive")
    cm = make_cost_model("calibrated", system, MODEL)
    assert isinstance(cm, CalibratedCostModel) and isinstance(cm.timer, DramTimer)
    w = Work(kind="expert", tokens=5, flops=MODEL.expert_flops(5), weight_bytes=MODEL.expert_weight_bytes)
    assert cm.duration_ns(w, "pim") == api.pim_expert_ns(cm.timer.cfg, 1024, 512, 5)
    assert cm.duration_ns(w, "gpu") == pytest.approx(
        max(w.flops / (system.gpu.peak_TFLOPS * 1e3 * system.gpu.compute_efficiency),
            cm.timer.stream_ns(w.weight_bytes)) + system.gpu.kernel_overhead_ns)
    dag = build_layer_dag(inst, cm, DagOptions())
    r = replay(_half_pim(dag), dag, system, instance=inst, timer=cm.timer)
    for key in ("expert:pim", "expert:gpu"):
        assert r.kind_error[key].median_abs_pct < 1.0, key


def test_interference_cache_is_per_model_shape():
    """A second model replayed in the same process must not reuse the first model's factors."""
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.validation import replay_dram

    system = load_system("sieve-b200-hbm3e-pim", 1)
    a, b = load_model("qwen3-30b-a3b"), load_model("gpt-oss-120b")
    replay_dram.clear_cache()
    fresh_b = replay_dram.DramTimer(system, b).interference("expert", 4)
    replay_dram.clear_cache()
    replay_dram.DramTimer(system, a).interference("expert", 4)
    assert replay_dram.DramTimer(system, b).interference("expert", 4) == fresh_b
