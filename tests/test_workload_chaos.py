"""Patterns-behind-Chaos JSON loader: parsing, interleaving, validation errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sieveopt.errors import TraceError
from sieveopt.workload import load_chaos_trace, parse_request
from sieveopt.workload.chaos import iter_requests

FIX = Path(__file__).parent / "fixtures" / "chaos"
GOOD = FIX / "good"
BAD = FIX / "bad"
E, K = 8, 2


def test_parse_one_request() -> None:
    req = parse_request((GOOD / "mmlu/algebra/0.json").read_bytes(), "0.json", E, K)
    assert req.moe_layers == (1, 2)
    assert req.prefill.shape == (2, 3, 2)
    assert req.decode.shape == (4, 2, 2) and req.decode.dtype == np.int16
    assert req.decode[0].tolist() == [[0, 2], [7, 1]]
    empty = parse_request((GOOD / "mmlu/algebra/2.json").read_bytes(), "2.json", E, K)
    assert empty.decode.shape == (0, 2, 2)


def test_interleave_with_continuous_batching() -> None:
    tr = load_chaos_trace(GOOD, E, K, batch=2, model="toy")
    # slot 0: file 0 (4 decode steps); slot 1: file 1 (2 steps), then file 2 (prefill
    # only, skipped), then file 3; the trace stops when slot 0 cannot be refilled.
    assert tr.expert_ids.shape == (4, 2, 2, 2)
    assert tr.layer_ids == (1, 2) and tr.source == "chaos" and tr.model == "toy"
    assert tr.request_ids.tolist() == [[0, 1], [0, 1], [0, 2], [0, 2]]
    assert tr.expert_ids[2, 0].tolist() == [[1, 2], [2, 5]]
    assert tr.expert_ids[3, 1].tolist() == [[7, 6], [3, 5]]


def test_steps_limit_and_recycle() -> None:
    tr = load_chaos_trace(GOOD, E, K, batch=2, steps=3)
    assert tr.steps == 3
    with pytest.raises(TraceError, match="fill only 4 of 9"):
        load_chaos_trace(GOOD, E, K, batch=2, steps=9)
    long = load_chaos_trace(GOOD, E, K, batch=3, steps=20, recycle=True)
    assert long.steps == 20
    with pytest.raises(TraceError, match="recycle"):
        load_chaos_trace(GOOD, E, K, batch=2, recycle=True)


def test_too_few_requests_for_batch() -> None:
    with pytest.raises(TraceError, match="only 3 request"):
        load_chaos_trace(GOOD, E, K, batch=4)


def test_explicit_file_list() -> None:
    files = [GOOD / "mmlu/algebra/3.json", GOOD / "mmlu/algebra/1.json"]
    tr = load_chaos_trace(files, E, K, batch=2)
    assert tr.steps == 2 and tr.expert_ids[0, 0].tolist() == [[2, 5], [5, 7]]  # step 0 is prefill


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("id_out_of_range.json", r"step 1, layer 1, token 0: expert id 8 outside \[0, 8\)"),
        ("wrong_row_length.json", "step 1, layer 2, token 0: row must list k=2 expert ids, got 3"),
        ("duplicate_id.json", r"step 1, layer 1, token 0: duplicate expert id in row \[3, 3\]"),
        ("null_layers_differ.json", "step 1: layer set differs from step 0"),
        ("decode_two_tokens.json", "step 1, layer 1: a decode step must hold exactly 1 token"),
        ("truncated.json", "malformed JSON"),
        ("not_a_list.json", "expected a non-empty JSON list"),
        ("non_integer_id.json", "expert id 1.5 is not an integer"),
    ],
)
def test_malformed_files_name_file_step_layer(name: str, message: str) -> None:
    with pytest.raises(TraceError, match=message) as info:
        list(iter_requests(BAD / name, E, K))
    assert name in str(info.value)


def test_files_with_different_layers_are_rejected() -> None:
    files = [GOOD / "mmlu/algebra/0.json", BAD / "other_layers.json"]
    with pytest.raises(TraceError, match="other_layers.json: MoE layers"):
        load_chaos_trace(files, E, K, batch=2)


def test_wrong_k_or_missing_path() -> None:
    with pytest.raises(TraceError, match="k=3"):
        load_chaos_trace(GOOD, E, 3, batch=1)
    with pytest.raises(TraceError, match="no such file"):
        load_chaos_trace(FIX / "nope", E, K, batch=1)
