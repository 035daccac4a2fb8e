"""Synthetic routing generator: determinism, exact top-k, group limits, batching, errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.workload import (
    PROFILES,
    RoutingProfile,
    generate_for_model,
    generate_routing,
    get_profile,
    topk_ids,
)
from sieveopt.workload.generator import layer_params


def test_same_seed_same_output_and_different_seed_differs() -> None:
    a = generate_routing(64, 4, 3, 16, 5, "gptoss", seed=7)
    b = generate_routing(64, 4, 3, 16, 5, "gptoss", seed=7)
    c = generate_routing(64, 4, 3, 16, 5, "gptoss", seed=8)
    assert np.array_equal(a.expert_ids, b.expert_ids)
    assert np.array_equal(a.request_ids, b.request_ids)
    assert not np.array_equal(a.expert_ids, c.expert_ids)
    assert a.expert_ids.dtype == np.int16 and a.expert_ids.shape == (5, 3, 16, 4)
    assert (a.seed, a.profile, a.source) == (7, "gptoss", "synthetic")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_gives_distinct_in_range_ids(name: str) -> None:
    e, k = (8, 2) if name == "mixtral" else (64, 4)
    tr = generate_routing(e, k, 2, 32, 3, name, seed=1)
    ids = tr.expert_ids
    assert ids.min() >= 0 and ids.max() < e
    srt = np.sort(ids, axis=-1)
    assert (np.diff(srt, axis=-1) > 0).all()
    tr.check_ids()


def test_topk_is_exact_and_ordered_best_first() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 40)).astype(np.float32)
    ids = topk_ids(z, 5).astype(int)
    ref = np.argsort(-z, axis=1)[:, :5]
    assert np.array_equal(ids, ref)


def test_group_limited_topk_matches_bruteforce() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((30, 32)).astype(np.float32)
    ids = topk_ids(z, 4, n_group=8, topk_group=2).astype(int)
    for row, chosen in zip(z, ids, strict=True):
        groups = row.reshape(8, 4)
        score = np.sort(groups, axis=1)[:, -2:].sum(axis=1)
        keep = np.argsort(-score)[:2]
        masked = np.full(32, -np.inf)
        for g in keep:
            masked[g * 4 : g * 4 + 4] = row[g * 4 : g * 4 + 4]
        assert list(chosen) == list(np.argsort(-masked)[:4])


def test_deepseek_profile_uses_at_most_topk_group_groups() -> None:
    tr = generate_routing(256, 8, 2, 64, 3, "deepseek", seed=2)
    groups = tr.expert_ids.astype(int) // 32
    n_groups = np.array([len(set(r)) for r in groups.reshape(-1, 8)])
    assert n_groups.max() <= 4
    # without the group limit tokens spread over more groups
    free = generate_routing(256, 8, 2, 64, 3, "deepseek", seed=2, n_group=1)
    free_groups = free.expert_ids.astype(int) // 32
    assert max(len(set(r)) for r in free_groups.reshape(-1, 8)) > 4


def test_layer_subset_equals_full_generation_restricted() -> None:
    full = generate_routing(128, 8, 6, 32, 4, "qwen128", seed=5)
    sub = generate_routing(128, 8, 6, 32, 4, "qwen128", seed=5, layer_ids=[1, 4])
    assert sub.layer_ids == (1, 4)
    assert np.array_equal(sub.expert_ids, full.expert_ids[:, [1, 4]])


def test_continuous_batching_replaces_finished_requests() -> None:
    prof = get_profile("qwen128").replace(decode_len_mean=4.0)
    tr = generate_routing(128, 8, 1, 32, 40, prof, seed=0, warmup_steps=0)
    rid = tr.request_ids
    assert rid is not None and rid.shape == (40, 32)
    changed = (rid[1:] != rid[:-1]).mean()
    assert 0.15 < changed < 0.4  # geometric lengths with mean 4: hazard 1/4 per step
    assert len(np.unique(rid)) > 32 * 5
    # a slot never goes back to an older request
    assert (np.diff(rid, axis=0) >= 0).all()


def test_requests_persist_routing_across_steps() -> None:
    """AR(1) drift + request topic: the same request reuses experts far above chance."""
    tr = generate_routing(128, 8, 1, 64, 6, "qwen128", seed=4, n_dom=4)
    ids = tr.expert_ids[:, 0].astype(int)
    same = tr.request_ids[1:] == tr.request_ids[:-1]
    reuse = [
        len(set(ids[t, b]) & set(ids[t + 1, b])) / 8
        for t in range(5) for b in range(64) if same[t, b]
    ]
    assert np.mean(reuse) > 3 * 8 / 128


def test_hot_experts_raise_load_concentration() -> None:
    base = get_profile("qwen512").replace(hot_frac=0.0, hot_boost=0.0)
    mu0, _ = layer_params(base, 512, 0, seed=1)
    mu1, _ = layer_params(base.replace(hot_frac=0.05, hot_boost=2.0), 512, 0, seed=1)
    boosted = mu1 - mu0
    assert (boosted >= 0).all() and int((boosted > 0).sum()) == round(0.05 * 512)


def test_generate_for_model_reads_spec_attributes() -> None:
    spec = SimpleNamespace(
        name="tiny-ds", num_routed_experts=64, top_k=4, num_moe_layers=5,
        num_shared_experts=1, routing_profile="deepseek", n_group=8, topk_group=2,
    )
    tr = generate_for_model(spec, batch=16, steps=3, seed=9, layers=2)
    assert tr.expert_ids.shape == (3, 2, 16, 4)
    assert tr.layer_ids == (0, 1) and tr.model == "tiny-ds" and tr.num_shared_experts == 1
    groups = tr.expert_ids.astype(int) // 8
    assert max(len(set(r)) for r in groups.reshape(-1, 4)) <= 2
    picked = generate_for_model(spec, batch=16, steps=3, seed=9, layers=[3])
    full = generate_for_model(spec, batch=16, steps=3, seed=9)
    assert np.array_equal(picked.expert_ids[:, 0], full.expert_ids[:, 3])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(num_experts=64, top_k=65), "top_k"),
        (dict(batch=0), "batch"),
        (dict(steps=0), "steps"),
        (dict(n_group=5), "n_group"),
        (dict(n_group=8, topk_group=9), "topk_group"),
        (dict(n_group=8, topk_group=1, top_k=9), "top_k"),
        (dict(layer_ids=[7]), "layer_ids"),
        (dict(domain_mix=[1.0]), "domain_mix"),
    ],
)
def test_bad_arguments_raise_spec_error(kwargs: dict, field: str) -> None:
    args = dict(num_experts=64, top_k=4, num_layers=2, batch=8, steps=2, profile="qwen128", seed=0)
    args.update(kwargs)
    with pytest.raises(SpecError, match=field):
        generate_routing(**args)


def test_unknown_profile_and_bad_knob() -> None:
    with pytest.raises(SpecError, match="unknown profile"):
        get_profile("nope")
    with pytest.raises(SpecError, match="phi"):
        RoutingProfile("x", phi=1.0)
