"""The ahead-of-time built DRAM kernels (validation/dram/native.py): identical results to numba's
JIT dispatchers, a stale or failed build is never used, and a ``sieveopt dram run`` process
that finds the module does not import numba (its start-up cost)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sieveopt.validation.dram import native
from sieveopt.validation.dram.api import load_dram_preset
from sieveopt.validation.dram.sim import CommandLog, DramSim
from sieveopt.validation.dram.trace import simulate_trace

FIX = Path(__file__).parent / "fixtures" / "dram"


def _aot() -> native.Kernels:
    """The module of the current sources (built if missing); skips where it cannot be built."""
    k = native.aot_kernels()
    if k is None:
        pytest.skip("ahead-of-time DRAM kernels unavailable here: "
                    + native.failure_reason()[:300])
    return k


def _run(monkeypatch, k: native.Kernels, cfg, feed, **kw):
    monkeypatch.setattr(native, "_loaded", k)
    log = CommandLog()
    sim = DramSim(cfg, observer=log, log_capacity=4096, **kw)  # small buffer: many drains
    feed(sim)
    st = sim.finish()
    h = hashlib.sha256()
    rec = log.records
    for name in rec.dtype.names:
        h.update(np.ascontiguousarray(rec[name], dtype="<i8").tobytes())
    return st, h.hexdigest(), len(rec)


@pytest.mark.parametrize("preset,writes", [("ramulator2_hbm3_2gbps", 0.3), ("hbm3_5200", 0.2)])
def test_aot_and_jit_issue_identical_commands(monkeypatch, preset, writes):
    cfg = load_dram_preset(preset)
    rng = np.random.default_rng(5)
    n = 6000
    addr = rng.integers(0, 1 << 20, n) * cfg.org.access_bytes
    addr[::3] = np.arange(0, n, 3) * cfg.org.access_bytes  # sequential runs among random ones
    wr = (rng.random(n) < writes).astype(np.int64)

    def feed(sim):
        sim.feed_addresses(addr[:2500], wr[:2500])  # two chunks: the engine resumes
        sim.feed_addresses(addr[2500:], wr[2500:])

    aot = _run(monkeypatch, _aot(), cfg, feed, channels=1)
    jit = _run(monkeypatch, native.jit_kernels(), cfg, feed, channels=1)
    assert aot[2] > n  # ACT / PRE as well as the column commands
    assert repr(aot[0]) == repr(jit[0])
    assert aot[1] == jit[1]


def test_aot_parser_matches_jit_parser(monkeypatch, tmp_path):
    lines = ["LD 0x1f40", "ST 4096", "LD 0XABCDEF", "ST 0x0"] * 500
    p = tmp_path / "t.trace"
    p.write_text("\n".join(lines) + "\n")
    cfg = load_dram_preset("ramulator2_hbm3_2gbps")
    out = []
    for k in (_aot(), native.jit_kernels()):
        monkeypatch.setattr(native, "_loaded", k)
        u = np.frombuffer(p.read_bytes(), dtype=np.uint8)
        a, w = np.empty(len(lines), np.int64), np.empty(len(lines), np.int64)
        assert k.parse_lines(u, a, w) == len(lines)
        out.append((a.tolist(), w.tolist(), repr(simulate_trace(cfg, p, channels=1))))
        bad = np.frombuffer(b"LD 0x12\nXX 1\n", dtype=np.uint8)
        assert k.parse_lines(bad, a, w) == -1
    assert out[0] == out[1]
    assert out[0][0][:3] == [0x1F40, 4096, 0xABCDEF]


def test_module_name_follows_the_sources(monkeypatch, tmp_path):
    for f in native._SOURCES:
        (tmp_path / f).write_bytes((native._HERE / f).read_bytes())
    monkeypatch.setattr(native, "_HERE", tmp_path)
    a = native.module_name()
    assert a == native.module_name()
    with open(tmp_path / "engine.py", "a") as fh:
        fh.write("\n# edited\n")
    assert native.module_name() != a  # an edited engine never loads the old module


def test_failed_build_falls_back_to_jit_once(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_cache_dirs", lambda: [tmp_path])
    monkeypatch.setattr(native, "_loaded", None)
    monkeypatch.delenv("SIEVEOPT_DRAM_NATIVE", raising=False)
    calls = []

    def failing_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "error: no C compiler found")

    monkeypatch.setattr(native.subprocess, "run", failing_run)
    k = native.kernels()
    assert k.backend == "jit" and len(calls) == 1
    assert "no C compiler" in (tmp_path / (native.module_name() + ".failed")).read_text()
    assert not list(tmp_path.glob(native.module_name() + ".*/"))  # the build folder is gone
    monkeypatch.setattr(native, "_loaded", None)
    assert native.kernels().backend == "jit" and len(calls) == 1  # not retried
    assert "no C compiler" in native.failure_reason()


def test_env_forces_jit(monkeypatch):
    monkeypatch.setattr(native, "_loaded", None)
    monkeypatch.setenv("SIEVEOPT_DRAM_NATIVE", "0")
    assert native.kernels().backend == "jit"


def test_dram_run_process_does_not_import_numba(tmp_path):
    """The start-up saving itself: with the module built, a ``dram run`` process runs the
    trace without importing numba, and prints the same result."""
    _aot()
    code = ("import sys; from sieveopt.cli.main import main; rc = main(); "
            "print('NUMBA', 'numba' in sys.modules, file=sys.stderr); sys.exit(rc)")
    args = ["dram", "run", "--trace", str(FIX / "small_loadstore.trace"), "--config",
            "ramulator2_hbm3_2gbps", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "SIEVEOPT_DRAM_NATIVE"}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, check=True)
    assert "NUMBA False" in proc.stderr
    got = json.loads(proc.stdout)
    cfg = load_dram_preset("ramulator2_hbm3_2gbps")
    want = simulate_trace(cfg, FIX / "small_loadstore.trace")
    assert got["cycles"] == want.cycles > 0 and got["commands"] == want.commands
