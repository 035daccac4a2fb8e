"""Decode-step model: formulas, layer sampling, critical-path breakdown, mixed prefill."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sieveopt.e2e import (
    ContextDist,
    PrefillSpec,
    StepSettings,
    extras,
    interactivity_tok_s_per_user,
    prepare_step,
    run_step,
    throughput_tok_s_per_gpu,
)
from sieveopt.e2e.breakdown import CATEGORIES, critical_path_breakdown
from sieveopt.e2e.sweep import pareto_flags, parse_batches
from sieveopt.e2e.workload import allocate_samples, sample_layer_ids
from sieveopt.errors import SieveoptError
from sieveopt.models.catalog import load_model, load_system
from sieveopt.testing import tiny_model


def test_throughput_and_interactivity_formulas_hand_checked():
    # 64 requests, 1 ms per step, 4 GPUs: 64 tokens/ms over 4 GPUs = 16,000 tok/s/GPU; 1,000 tok/s/user.
    assert throughput_tok_s_per_gpu(64, 1_000_000, 4) == pytest.approx(16_000.0)
    assert interactivity_tok_s_per_user(1_000_000) == pytest.approx(1_000.0)
    assert throughput_tok_s_per_gpu(1, 2_000_000, 1) == pytest.approx(500.0)


def test_step_time_is_weighted_layers_plus_lm_head_hand_checked():
    model = dataclasses.replace(tiny_model(), vocab_size=1000)   # 4 MoE layers, all full attention
    system = load_system("sieve-b200-hbm3e-pim", 1)
    prob = prepare_step(model, system, 8, StepSettings(num_layers=2, context=ContextDist("fixed", 512)))
    assert len(prob.samples) == 2 and all(s.weight == 2.0 for s in prob.samples)
    res = run_step(prob, "noexp")
    spans = [s.dag for s in prob.samples]
    assert spans and res.check_ok
    # LM head by hand (roofline): 8 tokens x (1000 x 1024) BF16 weights on one B200.
    g = system.gpu
    flops, bytes_ = 2.0 * 1000 * 1024 * 8, 1000 * 1024 * 2.0 + 8 * (1024 + 1000) * 2.0
    lm = max(flops / (g.peak_TFLOPS * 1e3 * g.compute_efficiency), bytes_ / (g.hbm_bw_GBps * g.bandwidth_efficiency))
    assert res.lm_head_ns == pytest.approx(lm + g.kernel_overhead_ns)
    from sieveopt.pipeline import run_layer

    moe = sum(2.0 * run_layer(s.instance, "noexp", dag=s.dag, cost=prob.cost).makespan_ns for s in prob.samples)
    assert res.moe_layers_ns == pytest.approx(moe)
    assert res.step_ns == pytest.approx(moe + res.lm_head_ns + res.embed_ns)
    assert res.throughput_tok_s_per_gpu == pytest.approx(8 / (res.step_ns * 1e-9))
    assert sum(res.breakdown_ns.values()) == pytest.approx(res.moe_layers_ns)


def test_critical_path_breakdown_sums_to_makespan():
    model = load_model("gpt-oss-120b")
    system = load_system("sieve-b200-hbm3e-pim", 4)
    prob = prepare_step(model, system, 32, StepSettings(num_layers=2))
    from sieveopt.pipeline import run_layer

    for policy in ("noexp", "allexp", "sieve"):
        for s in prob.samples:
            sch = run_layer(s.instance, policy, dag=s.dag, cost=prob.cost).result.schedule
            bd = critical_path_breakdown(sch, s.dag)
            assert set(bd) == set(CATEGORIES)
            assert sum(bd.values()) == sch.makespan_ns
            assert bd["idle"] == 0   # list schedules start every task at a binding predecessor
    allexp = run_step(prob, "allexp")
    assert allexp.breakdown_ns["experts_gpu"] == 0


def test_layer_sampling_covers_attention_kinds_weighted_by_count():
    model = load_model("qwen3.5-397b-a17b")   # 45 linear + 15 full layers
    chosen = sample_layer_ids(model, 4, seed=3)
    assert {k: len(v) for k, v in chosen.items()} == {"linear": 3, "full": 1}
    for kind, ids in chosen.items():
        assert all(model.moe_layer_attention_kind(i) == kind for i in ids)
    assert allocate_samples({"a": 1, "b": 100}, 2) == {"a": 1, "b": 1}
    prob = prepare_step(model, load_system("sieve-b200-hbm3e-pim", 8), 16, StepSettings(num_layers=4, seed=3))
    assert sum(s.weight for s in prob.samples) == pytest.approx(model.num_moe_layers)


def test_context_distribution_seeded_and_bounded():
    d = ContextDist()
    a, b = d.draw(256, 1), d.draw(256, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, d.draw(256, 2))
    assert a.min() >= 16 and a.max() <= 32768
    assert 1500 < np.median(a) < 2800
    assert (ContextDist("fixed", 100).draw(5, 0) == 100).all()
    with pytest.raises(SieveoptError):
        ContextDist("zipf")


def test_mixed_prefill_adds_prefill_tokens_to_expert_counts():
    model = load_model("qwen3-30b-a3b")
    system = load_system("sieve-b200-hbm3e-pim", 1)
    settings = StepSettings(num_layers=1, context=ContextDist("fixed", 1024))
    dec = prepare_step(model, system, 16, settings)
    mix = prepare_step(model, system, 16, dataclasses.replace(settings, prefill=PrefillSpec(2, 64)))
    di, mi = dec.samples[0].instance, mix.samples[0].instance
    assert di.expert_tokens.sum() == 16 * model.top_k
    assert mi.expert_tokens.sum() == (16 + 2 * 64) * model.top_k
    # every decode expert assignment is still there (same decode routing), prefill only adds
    assert (mi.expert_tokens >= di.expert_tokens).all()
    assert mi.tokens_per_gpu.sum() == 16 + 128
    assert mi.kv_tokens_per_gpu.sum() == di.kv_tokens_per_gpu.sum() == 16 * 1024
    assert mi.decode_requests_per_gpu.sum() == di.decode_requests_per_gpu.sum() == 16
    # Qwen3-30B has only MoE layers: prefill attention lives in the layer DAG, on the GPU
    assert mix.prefill_attn_ns == dec.prefill_attn_ns == 0
    assert [t.kind for t in mix.samples[0].dag.tasks].count("prefill_attn") == 1
    assert "prefill_attn" not in [t.kind for t in dec.samples[0].dag.tasks]
    r_dec, r_mix = run_step(dec, "noexp"), run_step(mix, "noexp")
    assert r_mix.step_ns > r_dec.step_ns
    assert r_mix.batch == 16   # only decode requests count as generated tokens


def test_prefill_attention_flops_by_kind():
    model = load_model("gpt-oss-120b")
    att = model.attention
    full = extras.prefill_attention_flops(model, "full", 1000)
    assert full == pytest.approx(4.0 * 1000 * 1001 / 2 * att.num_q_heads * att.head_dim)
    w = att.sliding_window_tokens
    slid = extras.prefill_attention_flops(model, "sliding", 1000)
    assert slid == pytest.approx(4.0 * (w * (w + 1) / 2 + (1000 - w) * w) * att.num_q_heads * att.head_dim)
    with pytest.raises(SieveoptError):
        PrefillSpec(2, 0)


@pytest.mark.parametrize("text,expected", [
    ("1,2,4,...,256", [1, 2, 4, 8, 16, 32, 64, 128, 256]),
    ("8,12,...,24", [8, 12, 16, 20, 24]),
    ("8,16,...,40", [8, 16, 32, 40]),
    ("1, 3 ,7", [1, 3, 7]),
])
def test_parse_batches(text, expected):
    assert parse_batches(text) == expected


@pytest.mark.parametrize("text", ["", "0", "1,,2", "1,x", "4,2,...,1", "1,2,2", "...,4", "-3"])
def test_parse_batches_rejects(text):
    with pytest.raises(SieveoptError):
        parse_batches(text)


def test_pareto_flags():
    rows = [{"throughput_tok_s_per_gpu": x, "interactivity_tok_s_per_user": y}
            for x, y in [(1, 10), (2, 5), (1.5, 4), (float("nan"), 1)]]
    assert pareto_flags(rows) == [True, True, False, False]
