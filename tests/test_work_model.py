"""The layer-work model: one derivation of each work item, shared by the DAG and e2e."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.dag import build_layer_dag
from sieveopt.e2e import extras
from sieveopt.models import work as W
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.models.specs import AttentionSpec
from sieveopt.testing import random_instance, tiny_model


def test_qkv_o_split_follows_the_head_geometry():
    # Multi-head attention with as many KV heads as query heads: Q, K, V and O are four equal
    # H x H matrices, so QKV is exactly three quarters.
    mha = tiny_model(hidden=1024)
    mha = type(mha)(**{**mha.__dict__, "attention": AttentionSpec(num_q_heads=16, num_kv_heads=16, head_dim=64)})
    qkv, o = W.attention_projection_params(mha, "full")
    assert (qkv, o) == (3 * 1024 * 1024, 1024 * 1024)
    # GQA (8 query heads, 2 KV heads of 64): O is 512 x H, QKV (512 + 2 * 128) x H.
    gqa = tiny_model(hidden=1024)
    qkv, o = W.attention_projection_params(gqa, "full")
    assert (qkv, o) == ((512 + 256) * 1024, 512 * 1024)


@pytest.mark.parametrize("name", ["deepseek-v3", "gpt-oss-120b", "qwen3-next-80b-a3b", "qwen3.5-397b-a17b"])
def test_split_sums_to_the_catalog_attention_parameters(name):
    m = load_model(name)
    for kind in {m.attention.layer_kind(i) for i in range(m.num_layers)}:
        qkv, o = W.attention_projection_params(m, kind)
        assert qkv > 0 and o > 0
        assert qkv + o == m.attention.params_per_layer(m.hidden_size, "linear" if kind == "linear" else "full")


def test_dag_tasks_carry_the_work_models_items():
    model = tiny_model(shared=1)
    system = load_system("sieve-b200-hbm3e-pim", 2)
    inst = random_instance(np.random.default_rng(1), model, system, 16)
    dag = build_layer_dag(inst, make_cost_model("roofline", system, model))
    kind = model.moe_layer_attention_kind(inst.moe_layer)
    items = {"qkv": lambda n, t: W.qkv_work(model, kind, n), "oproj": lambda n, t: W.oproj_work(model, kind, n),
             "router": lambda n, t: W.router_work(model, n), "shared": lambda n, t: W.shared_expert_work(model, n),
             "reduce": lambda n, t: W.reduce_work(model, n),
             "expert": lambda n, t: W.expert_work(model, t.tokens, launches=0)}
    seen = set()
    for t in dag.tasks:
        if t.kind in items:
            assert t.work == items[t.kind](int(inst.tokens_per_gpu[t.gpu]), t)
            seen.add(t.kind)
    assert seen == set(items)


def test_dense_layer_is_the_moe_layers_attention_block_plus_the_ffn():
    m = load_model("deepseek-v3")
    system = load_system("sieve-b200-hbm3e-pim", 2)
    cost = make_cost_model("roofline", system, m)
    n, ctx = 8, 4096.0
    kind = m.attention.layer_kind(0)
    expect = (cost.duration_ns(W.qkv_work(m, kind, n), "gpu") + cost.duration_ns(W.oproj_work(m, kind, n), "gpu")
              + cost.duration_ns(W.decode_attention_work(m, kind, n, ctx), "pim")
              + cost.duration_ns(W.dense_ffn_work(m, n), "gpu"))
    got = extras.dense_layer_ns(m, cost, np.array([n, 0]), np.array([ctx, 0.0]), 0, "pim")
    assert got == pytest.approx(expect, rel=1e-12)
