"""Cycle parity against Ramulator 2.0: the stored reference cycles and the one trace generator.

The fixture ``tests/fixtures/dram/ramulator2/parity.json`` holds ``memory_system_cycles`` printed
by Ramulator 2.0 (tag v2.0a, HBM3_2Gbps, refresh effectively off, FR-FCFS, open row,
LoadStoreTrace) for traces written by :func:`make_trace`; the config and command that made them are
in that folder's README. Both ``tests/test_dram_ramulator_parity.py`` and ``sieveopt validate``
read the cases through :func:`load_cases` and run sieveopt through :func:`sieveopt_cycles`, the
path of ``sieveopt dram run --trace T --config ramulator2_hbm3_2gbps --set
org.channels_per_stack=C --json`` (field ``cycles``), so the two cannot drift apart.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

PRESET = "ramulator2_hbm3_2gbps"
FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "dram" / "ramulator2" / "parity.json"


def make_trace(kind: str, n: int, channels: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Addresses and write flags of the traces Ramulator ran (fixtures/dram/ramulator2/README.md)."""
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
        raise ValueError(f"unknown trace kind {kind!r}")
    return a, wr


def load_cases(path: Path = FIXTURE) -> dict | None:
    """The stored fixture (``requests``, ``cases``: trace, channels, ramulator_cycles, tolerance),
    or ``None`` when it is absent (a source tree without tests)."""
    return json.loads(path.read_text()) if path.exists() else None


def write_trace(path: Path, a: np.ndarray, wr: np.ndarray) -> None:
    """A LoadStoreTrace file (``LD``/``ST`` + hex address per line), as Ramulator read it."""
    path.write_text("".join(("ST " if w else "LD ") + hex(x) + "\n"
                            for x, w in zip(a.tolist(), wr.tolist(), strict=True)))


def sieveopt_cycles(kind: str, requests: int, channels: int) -> int:
    """sieveopt's ``cycles`` for one case, through the trace reader ``sieveopt dram run`` uses."""
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.dram.trace import simulate_trace

    cfg = load_dram_preset(PRESET, **{"org.channels_per_stack": channels})
    a, wr = make_trace(kind, requests, channels)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{kind}.trace"
        write_trace(p, a, wr)
        return int(simulate_trace(cfg, p).cycles)
