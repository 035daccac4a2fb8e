"""Samsung PIMSimulator's 4096 x 4096 FP16 GEMV against sieveopt: the stored reference and the
one way sieveopt runs the same work.

The fixture ``tests/fixtures/dram/pimsimulator/pimsimulator.json`` holds the cycles Samsung's
PIMSimulator (SAITPublic/PIMSimulator, commit in the file) printed for its
``PIMBenchFixture.gemv`` test -- the GEMV on PIM and the same data movement without PIM -- on 64
pseudo-channels at tCK = 1 ns, plus a summary of its channel-0 command trace; the build, the
command and the configuration are in that folder's README. Both
``tests/test_dram_pimsimulator_parity.py`` and ``sieveopt validate`` read the cases through
:func:`load_fixture` and run sieveopt through :func:`sieveopt_cycles`, so the two cannot drift
apart.

What sieveopt runs (execution model: the cycle-level DRAM/PIM simulator, FP16 weights and
activations, cost model: none -- simulated cycles):

- ``pim_gemv``: :func:`~sieveopt.validation.dram.pim.pim_program` of one 4096 x 4096 GEMV
  sharded over the 64 pCHs of 4 stacks (``org.stacks = 4``), every pCH running the same program,
  so one channel is simulated; cycles to the last command (the kernel's result read-back
  included).
- ``nopim_gemv``: PIMSimulator's baseline ``GemvPIMBenchTest::measureCycle(false)``: reads of
  the weights (32 MiB) and the input vector (8 KiB) at consecutive 32 B addresses from 0, drained,
  then writes of the 8 KiB output after them, drained; both through the preset's address
  mapping (PIMSimulator's Scheme8 = ``RoCoBgBaCh``) over all 64 pCHs with no frontend limit
  (PIMSimulator queues every request up front). The two phases are simulated one after the other
  and their cycles added.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

FIXTURE = (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "dram" / "pimsimulator"
           / "pimsimulator.json")
STACKS = 4  # 4 stacks x 8 channels x 2 pCH = PIMSimulator's 64 channels


def load_fixture(path: Path = FIXTURE) -> dict | None:
    """The stored PIMSimulator outputs (``printed``, ``cases``: kind, preset, reference_cycles,
    tolerance; ``trace_channel0``), or ``None`` when absent (a source tree without tests)."""
    return json.loads(path.read_text()) if path.exists() else None


@lru_cache(maxsize=16)
def pim_gemv_cycles(preset: str, rows: int = 4096, cols: int = 4096, *, refresh: bool = True) -> int:
    """Cycles of sieveopt's PIM GEMV kernel on ``preset`` over 4 stacks (64 pCHs)."""
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.dram.pim import pim_program
    from sieveopt.validation.dram.sim import DramSim

    cfg = load_dram_preset(preset, stacks=STACKS, refresh=refresh)
    prog = pim_program(cfg, [(rows, cols)], 1)
    return int(DramSim(cfg, channels=1, pim=prog).finish().cycles)


@lru_cache(maxsize=16)
def nopim_gemv_cycles(preset: str, rows: int = 4096, cols: int = 4096, *, refresh: bool = True) -> int:
    """Cycles of PIMSimulator's no-PIM GEMV data movement on ``preset`` (module docstring)."""
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.dram.sim import DramSim

    cfg = load_dram_preset(preset, stacks=STACKS, refresh=refresh)
    step = cfg.org.access_bytes
    read_end = rows * cols * 2 + cols * 2          # weights, then the input vector (FP16)
    total = 0
    for lo, hi, wr in ((0, read_end, 0), (read_end, read_end + rows * 2, 1)):
        a = np.arange(lo, hi, step, dtype=np.int64)
        sim = DramSim(cfg, frontend_requests_per_cycle=0)
        sim.feed_addresses(a, np.full(len(a), wr, dtype=np.int64))
        total += int(sim.finish().cycles)
    return total


def sieveopt_cycles(kind: str, preset: str) -> int:
    """sieveopt's cycles for one fixture case."""
    if kind == "pim_gemv":
        return pim_gemv_cycles(preset)
    if kind == "nopim_gemv":
        return nopim_gemv_cycles(preset)
    raise ValueError(f"unknown PIMSimulator case kind {kind!r} (use pim_gemv or nopim_gemv)")
