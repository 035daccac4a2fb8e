"""``sieveopt dram`` commands: tables by default, JSON with --json, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from sieveopt.cli.main import main

FIX = Path(__file__).parent / "fixtures" / "dram"


def test_dram_run_json(capsys):
    rc = main(["dram", "run", "--trace", str(FIX / "small_loadstore.trace"), "--config",
               "hbm3_5200", "--set", "controller.refresh=false", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reads"] == 320 and d["writes"] == 80 and d["ref"] == 0
    assert d["row_hits"] + d["row_misses"] + d["row_conflicts"] == 400


def test_dram_gemv_and_presets(capsys):
    assert main(["dram", "gemv", "--config", "sieve_b200_hbm3e_pim", "--rows", "4096",
                 "--cols", "1024", "--tokens", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["time_ns"] > 0 and d["per_pch_per_token"]["gwr"] == 64
    assert main(["dram", "presets"]) == 0
    assert "sieve_b200_hbm3e_pim" in capsys.readouterr().out


def test_dram_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.trace"
    bad.write_text("LD 0x0\nLD nothex\n")
    assert main(["dram", "run", "--trace", str(bad), "--config", "hbm3_5200"]) == 2
    assert "bad.trace:2" in capsys.readouterr().err
    assert main(["dram", "run", "--trace", str(bad), "--config", "no_such"]) == 2
    assert main(["dram", "gemv", "--config", "hbm3_5200", "--rows", "8", "--cols", "8"]) == 2
    assert "no PIM" in capsys.readouterr().err
