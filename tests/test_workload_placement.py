"""Token / expert placement and the count and dispatch matrices."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.workload import count_matrix, dispatch_tokens, expert_gpu, token_gpu


def test_token_gpu_contiguous_blocks() -> None:
    assert token_gpu(8, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    tg = token_gpu(10, 4)
    assert (np.diff(tg) >= 0).all() and set(np.bincount(tg)) <= {2, 3}
    assert token_gpu(2, 4).tolist() == [0, 2]


def test_expert_gpu_default_and_override() -> None:
    assert expert_gpu(6, 4).tolist() == [0, 1, 2, 3, 0, 1]
    assert expert_gpu(4, 2, np.array([1, 1, 0, 0])).tolist() == [1, 1, 0, 0]
    with pytest.raises(SpecError, match=r"placement\[2\]"):
        expert_gpu(4, 2, np.array([0, 1, 2, 0]))
    with pytest.raises(SpecError, match="shape"):
        expert_gpu(4, 2, np.array([0, 1]))
    with pytest.raises(SpecError, match="integers"):
        expert_gpu(2, 2, np.array([0.5, 1.0]))


def test_count_matrix_by_hand() -> None:
    ids = np.array([[0, 1], [1, 2], [3, 0], [3, 2]], dtype=np.int16)
    cnt = count_matrix(ids, token_gpu(4, 2), 2, 4)
    assert cnt.dtype == np.int32
    assert cnt.tolist() == [[1, 2, 1, 0], [1, 0, 1, 2]]


def test_dispatch_deduplicates_per_destination() -> None:
    # 4 experts on 2 GPUs: e%2; token 0 picks experts 0 and 2 (both GPU 0) -> counted once
    ids = np.array([[0, 2], [0, 1], [1, 3], [2, 3]])
    tok = dispatch_tokens(ids, token_gpu(4, 2), expert_gpu(4, 2), 2)
    assert tok.dtype == np.int32
    assert tok.tolist() == [[2, 1], [1, 2]]


def test_count_and_dispatch_are_consistent_on_random_routing() -> None:
    rng = np.random.default_rng(1)
    b, e, k, g = 64, 32, 4, 8
    ids = np.argsort(rng.random((b, e)), axis=1)[:, :k]
    tg, eg = token_gpu(b, g), expert_gpu(e, g, rng.integers(0, g, e))
    cnt = count_matrix(ids, tg, g, e)
    tok = dispatch_tokens(ids, tg, eg, g)
    assert cnt.sum() == b * k and (cnt.sum(axis=1) == k * np.bincount(tg, minlength=g)).all()
    # per (src, dst): dedup tokens <= routed token-expert pairs, and >= 1 iff any pair
    pairs = np.zeros((g, g), dtype=int)
    np.add.at(pairs, (tg[:, None].repeat(k, 1), eg[ids]), 1)
    assert (tok <= pairs).all() and ((tok > 0) == (pairs > 0)).all()
    assert (tok.sum(axis=1) <= k * np.bincount(tg, minlength=g)).all()


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(SpecError, match="does not match"):
        count_matrix(np.zeros((3, 2), dtype=int), token_gpu(4, 2), 2, 4)
