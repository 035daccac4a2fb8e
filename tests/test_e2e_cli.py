"""``sieveopt pareto``: a tiny run writes CSV + JSON + PNG + PDF; bad input exits 2 leaving nothing."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest

from sieveopt.cli.main import main

TINY = ["pareto", "--model", "qwen3-30b-a3b", "--gpus", "1", "--layers", "1", "--batches", "1,16",
        "--policies", "noexp,sieve"]


def test_pareto_tiny_run_writes_all_outputs(tmp_path, capsys):
    out = tmp_path / "res"
    assert main([*TINY, "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    # no temp files left; the tokens-per-joule plot because the system has energy data
    assert names == ["pareto.csv", "pareto.json", "pareto.pdf", "pareto.png", "pareto_compare.csv",
                     "pareto_compare.json", "pareto_energy.png"]
    rows = list(csv.DictReader((out / "pareto.csv").open()))
    assert [(r["policy"], r["batch"]) for r in rows] == [("noexp", "1"), ("sieve", "1"), ("noexp", "16"), ("sieve", "16")]
    for r in rows:
        assert r["check"] == "ok"
        step_s = float(r["step_us"]) * 1e-6
        assert float(r["interactivity_tok_s_per_user"]) == pytest.approx(1 / step_s, rel=1e-4)
        assert float(r["throughput_tok_s_per_gpu"]) == pytest.approx(int(r["batch"]) / step_s, rel=1e-4)
        assert float(r["moe_tokens_per_J"]) == pytest.approx(int(r["batch"]) / (float(r["moe_energy_mJ"]) / 1e3), rel=1e-4)
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "pareto.pdf").read_bytes()[:4] == b"%PDF"
    meta = json.loads((out / "pareto.json").read_text())["meta"]
    assert meta["policies"] == ["noexp", "sieve"] and meta["batches"] == [1, 16]
    assert len(data["rows"]) == 4


def test_pareto_table_output(tmp_path, capsys):
    assert main([*TINY[:-2], "--policies", "allexp", "--out", str(tmp_path / "t")]) == 0
    assert "allexp" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [
    ["--policies", "noexp,bogus"],
    ["--policies", "noexp,noexp"],
    ["--batches", "0"],
    ["--batches", "1,two"],
    ["--batches", "4,2,...,1"],
    ["--layers", "0"],
    ["--time-limit", "0"],
    ["--prefill", "2"],
    ["--gpus", "0"],
])
def test_pareto_bad_input_exits_2_without_files(tmp_path, capsys, bad):
    out = tmp_path / "never"
    args = [*TINY, "--out", str(out)]
    for i in range(0, len(bad), 2):   # replace or append the flag
        if bad[i] in args:
            args[args.index(bad[i]) + 1] = bad[i + 1]
        else:
            args += bad[i:i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert not out.exists()


def test_pareto_replay(tmp_path, capsys):
    """Exit 2 naming the replay engine when it is missing; otherwise every row carries a replayed
    step time or the replay's error (the schedule's own numbers are kept either way)."""
    out = tmp_path / "r"
    code = main([*TINY[:-2], "--policies", "noexp", "--batches", "4", "--out", str(out), "--replay"])
    if importlib.util.find_spec("sieveopt.validation.replay") is None:
        assert code == 2
        assert "replay" in capsys.readouterr().err
        assert not out.exists()
        return
    assert code == 0
    rows = list(csv.DictReader((out / "pareto.csv").open()))
    assert rows and all(r["check"] == "ok" and float(r["step_us"]) > 0 for r in rows)
    assert all((r["replay_step_us"] and float(r["replay_step_us"]) > 0) or r["error"].startswith("replay:")
               for r in rows)
