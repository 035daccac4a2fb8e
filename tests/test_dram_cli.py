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


def test_dram_run_process_equals_in_process(capsys):
    """``sieveopt dram run`` as its own process (numba's target started without scipy's
    BLAS probe, cyclic GC paused, only the dram command module imported) prints the same
    statistics as the same command called in-process, and imports no end-to-end modules."""
    import subprocess
    import sys

    args = ["dram", "run", "--trace", str(FIX / "small_loadstore.trace"), "--config",
            "ramulator2_hbm3_2gbps", "--json"]
    assert main(args) == 0
    inproc = json.loads(capsys.readouterr().out)
    code = ("import sys, json; from sieveopt.cli.main import main; rc = main(); "
            "print(json.dumps({'rc': rc, 'e2e': 'sieveopt.e2e' in sys.modules, "
            "'blas_probe': 'scipy.linalg' in sys.modules}), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       check=True)
    proc = json.loads(r.stdout)
    flags = json.loads(r.stderr.strip().splitlines()[-1])
    assert flags == {"rc": 0, "e2e": False, "blas_probe": False}
    for d in (inproc, proc):
        for k in ("wall_s", "parse_s", "simulate_s"):
            d.pop(k)
    assert proc == inproc and proc["reads"] + proc["writes"] == 400
