"""Compact npz format: round trip and validation on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sieveopt.errors import TraceError
from sieveopt.workload import generate_routing, load_npz, save_npz


def test_round_trip(tmp_path: Path) -> None:
    tr = generate_routing(128, 8, 3, 16, 4, "qwen128", seed=3, num_shared_experts=1, model="m")
    p = save_npz(tr, tmp_path / "t.npz")
    back = load_npz(p)
    assert np.array_equal(back.expert_ids, tr.expert_ids)
    assert np.array_equal(back.request_ids, tr.request_ids)
    assert (back.num_experts, back.top_k, back.num_shared_experts) == (128, 8, 1)
    assert (back.model, back.seed, back.profile, back.layer_ids) == ("m", 3, "qwen128", (0, 1, 2))
    assert not list(tmp_path.glob(".*tmp"))


def _write(path: Path, ids: np.ndarray, **meta_over: object) -> Path:
    meta = {"format": "sieveopt-routing", "version": 1, "model": "", "num_experts": 8,
            "top_k": 2, "num_shared_experts": 0, "source": "x", "seed": None, "profile": None}
    meta.update(meta_over)
    np.savez(path, expert_ids=ids, layer_ids=np.arange(ids.shape[1], dtype=np.int32),
             meta=np.array(json.dumps(meta)))
    return path


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    good = np.array([[[[0, 1], [2, 3]]]], dtype=np.int16)
    assert load_npz(_write(tmp_path / "ok.npz", good)).batch == 2
    cases = {
        "range.npz": (np.array([[[[0, 9], [2, 3]]]], dtype=np.int16), {}, "outside"),
        "dup.npz": (np.array([[[[1, 1], [2, 3]]]], dtype=np.int16), {}, "duplicate"),
        "dtype.npz": (good.astype(np.int64), {}, "int16"),
        "k.npz": (good, {"top_k": 3}, "top_k"),
        "fmt.npz": (good, {"format": "other"}, "format"),
        "ver.npz": (good, {"version": 2}, "version"),
    }
    for name, (ids, meta, msg) in cases.items():
        path = _write(tmp_path / name, ids, **meta)
        with pytest.raises(TraceError, match=msg) as info:
            load_npz(path)
        assert name in str(info.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TraceError, match="junk.npz"):
        load_npz(tmp_path / "junk.npz")
    with pytest.raises(TraceError, match="not found"):
        load_npz(tmp_path / "missing.npz")
