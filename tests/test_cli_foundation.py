"""CLI behaviour of the foundation commands: tables, JSON, files, and exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sieveopt.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_catalog_json(capsys):
    code, out, _ = run(capsys, "catalog", "--json")
    data = json.loads(out)
    assert code == 0
    assert "gpt-oss-120b" in [m["name"] for m in data["models"]]
    assert "sieve-b200-hbm3e-pim" in [s["name"] for s in data["systems"]]


def test_show_system_table_and_json(capsys):
    code, out, _ = run(capsys, "show", "system", "sieve-b200-hbm3e-pim", "--gpus", "4")
    assert code == 0 and "num_gpus" in out
    code, out, _ = run(capsys, "show", "model", "qwen3-30b-a3b", "--json")
    assert json.loads(out)["top_k"] == 8


def test_plugins_lists_registries(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    assert "roofline" in data["sieveopt.cost_models"]
    assert {"sieve", "cpsat", "noexp"} <= set(data["sieveopt.solvers"])


def test_dag_writes_dot_and_json(capsys, tmp_path):
    dot = tmp_path / "layer.dot"
    code, out, _ = run(capsys, "dag", "--model", "gpt-oss-120b", "--gpus", "4", "--batch", "32", "--out", str(dot), "--json")
    assert code == 0
    assert dot.read_text().startswith("digraph")
    info = json.loads(out)
    assert info["tasks_by_kind"]["dispatch"] > 0
    js = tmp_path / "layer.json"
    assert run(capsys, "dag", "--batch", "8", "--gpus", "1", "--out", str(js))[0] == 0
    assert json.loads(js.read_text())["tasks"]


@pytest.mark.parametrize("argv, needle", [
    (["show", "model", "no-such-model"], "no model preset"),
    (["dag", "--batch", "0", "--out", "x.dot"], "--batch"),
    (["dag", "--model", "qwen3.5-397b-a17b", "--gpus", "2", "--out", "x.dot"], "--gpus"),
    (["dag", "--out", "x.png"], ".dot or .json"),
    (["dag", "--set", "gpu.hbm_bw_GBps=-1", "--out", "x.dot"], "gpu.hbm_bw_GBps"),
    (["dag", "--set", "nonsense", "--out", "x.dot"], "KEY=VALUE"),
])
def test_bad_input_exit_2_no_traceback_no_file(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_corrupt_user_toml_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\nnum_layers = [\n")
    code, _, err = run(capsys, "show", "model", str(bad))
    assert code == 2 and "malformed TOML" in err and str(bad) in err


def test_python_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "sieveopt", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "sieveopt" in res.stdout
