"""`sieveopt dram run --config ramulator2_hbm3_2gbps --json` against cycle counts printed by
Ramulator 2.0 itself (tag v2.0a, HBM3_2Gbps, refresh effectively off, FR-FCFS, open row,
LoadStoreTrace), stored with the command and config in tests/fixtures/dram/ramulator2/."""

from __future__ import annotations

import json

import pytest

from sieveopt.cli.main import main
from sieveopt.validation.dram.ramulator_parity import load_cases, make_trace, write_trace

CASES = load_cases()


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c['trace']}-{c['channels']}ch")
def test_cycles_match_ramulator(case, tmp_path, capsys):
    a, wr = make_trace(case["trace"], CASES["requests"], case["channels"])
    p = tmp_path / "t.trace"
    write_trace(p, a, wr)
    rc = main(["dram", "run", "--trace", str(p), "--config", "ramulator2_hbm3_2gbps",
               "--set", f"org.channels_per_stack={case['channels']}", "--json"])
    assert rc == 0
    ours = json.loads(capsys.readouterr().out)["cycles"]
    err = abs(ours - case["ramulator_cycles"]) / case["ramulator_cycles"]
    assert err <= case["tolerance"], (ours, case["ramulator_cycles"], err)
