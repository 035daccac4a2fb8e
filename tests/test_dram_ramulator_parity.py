"""`sieveopt dram run --config ramulator2_hbm3_2gbps --json` against cycle counts printed by
Ramulator 2.0 itself (tag v2.0a, HBM3_2Gbps, refresh effectively off, FR-FCFS, open row,
LoadStoreTrace), stored with the command and config in tests/fixtures/dram/ramulator2/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sieveopt.cli.main import main

FIX = Path(__file__).parent / "fixtures" / "dram" / "ramulator2"
CASES = json.loads((FIX / "parity.json").read_text())


def make_trace(kind: str, n: int, channels: int, seed: int = 1):
    """The generator that wrote the traces Ramulator ran (fixtures/dram/ramulator2/README.md)."""
    cap = channels * 2 * 16 * 8192 * 1024
    rng = np.random.default_rng(seed)
    wr = np.zeros(n, dtype=np.int64)
    if kind == "seq":
        a = np.arange(n) * 32
    elif kind == "stride1k":
        a = (np.arange(n) * 1024) % cap
    elif kind == "samebank":
        a = (np.arange(n) * 32 * 32 * 32 * channels) % cap
    elif kind == "random":
        a = rng.integers(0, cap // 32, n) * 32
    elif kind == "random_rw":
        a = rng.integers(0, cap // 32, n) * 32
        wr = (rng.random(n) < 0.3).astype(np.int64)
    elif kind == "seq_rw":
        a = np.arange(n) * 32
        wr = (np.arange(n) % 3 == 2).astype(np.int64)
    else:
        raise ValueError(kind)
    return a, wr


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c['trace']}-{c['channels']}ch")
def test_cycles_match_ramulator(case, tmp_path, capsys):
    a, wr = make_trace(case["trace"], CASES["requests"], case["channels"])
    p = tmp_path / "t.trace"
    p.write_text("".join(("ST " if w else "LD ") + hex(x) + "\n"
                         for x, w in zip(a.tolist(), wr.tolist(), strict=True)))
    rc = main(["dram", "run", "--trace", str(p), "--config", "ramulator2_hbm3_2gbps",
               "--set", f"org.channels_per_stack={case['channels']}", "--json"])
    assert rc == 0
    ours = json.loads(capsys.readouterr().out)["cycles"]
    err = abs(ours - case["ramulator_cycles"]) / case["ramulator_cycles"]
    assert err <= case["tolerance"], (ours, case["ramulator_cycles"], err)
