"""``sieveopt workload`` commands end to end (real catalog, real generator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sieveopt.cli.main import main
from sieveopt.workload import load_npz

CHAOS = Path(__file__).parent / "fixtures" / "chaos"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_synthetic_json(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["workload", "stats", "--model", "gpt-oss-120b", "--batch", "64",
                       "--steps", "3", "--layers", "4", "--seed", "2", "--json"])
    assert d["meta"]["batch"] == 64 and d["meta"]["layers"] == 4 and d["meta"]["steps"] == 3
    assert d["meta"]["profile"] == "gptoss" and d["meta"]["seed"] == 2
    shares = d["summary"]["experts_share"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert len(d["per_layer"]) == 4


def test_stats_table_and_same_seed_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["workload", "stats", "--model", "qwen3-30b-a3b", "--batch", "32", "--steps", "2",
            "--layers", "2", "--per-layer"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "Gini" in first and "Per layer" in first
    assert main(argv) == 0
    assert capsys.readouterr().out == first


def test_generate_then_stats_from_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.npz"
    d = _json(capsys, ["workload", "generate", "--model", "deepseek-v3", "--batch", "16",
                       "--steps", "2", "--layers", "3", "--out", str(out), "--json"])
    assert d["shape"] == [2, 3, 16, 8]
    tr = load_npz(out)
    assert tr.num_experts == 256 and tr.num_shared_experts == 1 and tr.profile == "deepseek"
    groups = tr.expert_ids.astype(np.int64) // 32
    assert max(len(set(r)) for r in groups.reshape(-1, 8)) <= 4
    s = _json(capsys, ["workload", "stats", "--model", "deepseek-v3", "--trace", str(out), "--json"])
    assert s["meta"]["steps"] == 2
    assert main(["workload", "stats", "--model", "gpt-oss-120b", "--trace", str(out)]) == 2
    assert "fix: --model" in capsys.readouterr().err


def test_stats_on_chaos_json_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["workload", "stats", "--model", "mixtral-8x7b", "--batch", "2",
                       "--trace", str(CHAOS / "good"), "--json"])
    assert d["meta"]["source"] == "chaos" and d["meta"]["steps"] == 4
    assert main(["workload", "stats", "--model", "mixtral-8x7b", "--batch", "1",
                 "--trace", str(CHAOS / "bad" / "duplicate_id.json")]) == 2
    err = capsys.readouterr().err
    assert "duplicate_id.json: step 1, layer 1" in err and "Traceback" not in err
    assert main(["workload", "stats", "--batch", "0"]) == 2
    assert main(["workload", "stats", "--model", "no-such-model"]) == 2


def test_calibrate_command(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["workload", "calibrate", "--layers", "8", "--steps", "2", "--json"])
    assert len(rows) == 11 and {r["profile"] for r in rows} == {"qwen128", "qwen512", "gptoss"}
