"""Speed of the channel-scope (Ramulator-parity) DRAM controller, end to end and side by side.

Writes seeded 2 M-request LoadStoreTrace files (the generator of the Ramulator parity traces,
``tests/fixtures/dram/ramulator2/README.md``: ``seq`` = 0, 32, 64 ...; ``random`` = uniform
32 B-aligned over one channel, seed 1; ``random_rw`` adds 30 % stores) and

1. times ``sieveopt dram run --trace T --config ramulator2_hbm3_2gbps --channels 1 --json``
   from process start to exit (median of --repeat), with the run's own ``parse_s`` /
   ``simulate_s`` split;
2. with ``--before REV``, runs the engine of git revision REV (its ``engine.py`` + ``sim.py``
   copied to a temporary package) and this tree's engine in one process on the same request
   arrays, interleaved, and checks that every statistic is identical (ratio measured side by
   side, so machine load affects both alike).

    .venv/bin/python benchmarks/dram_chscope_speed.py --repeat 3 [--before 22fac16] [--n 2e6]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The traces and preset of the Ramulator parity fixtures: one generator for both.
from sieveopt.validation.dram.ramulator_parity import PRESET, make_trace, write_trace


def cli_run(path: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "sieveopt", "dram", "run", "--trace", str(path),
                        "--config", PRESET, "--channels", "1", "--json"],
                       check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, json.loads(r.stdout)


def old_engine(rev: str, root: Path):
    """DramSim of git revision ``rev`` (engine.py + sim.py in a temporary package)."""
    repo = Path(__file__).resolve().parents[1]
    pkg = root / "dram_before"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for f in ("engine.py", "sim.py"):
        src = subprocess.run(["git", "show", f"{rev}:validation/dram/{f}"], cwd=repo, check=True,
                             capture_output=True, text=True).stdout
        src = src.replace("from sieveopt.validation.dram import engine as E",
                          "from dram_before import engine as E")
        (pkg / f).write_text(src)
    sys.path.insert(0, str(root))
    return importlib.import_module("dram_before.sim").DramSim


def simulate(sim_cls, cfg, a, wr) -> tuple[float, object]:
    t0 = time.perf_counter()
    s = sim_cls(cfg, channels=1)
    s.feed_addresses(a, wr)
    st = s.finish()
    return time.perf_counter() - t0, st


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=float, default=2e6, help="requests per trace")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kinds", default="seq,random")
    ap.add_argument("--before", default=None, help="git revision to compare side by side")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI runs")
    args = ap.parse_args()
    n = int(args.n)
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.dram.sim import DramSim

    cfg = load_dram_preset(PRESET)
    rows = []
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        classes = [("after", DramSim)]
        if args.before:
            classes.insert(0, ("before", old_engine(args.before, Path(d))))
        warm = np.arange(1000, dtype=np.int64) * 32
        for _, cls in classes:  # numba cache load / compile outside the timings
            simulate(cls, cfg, warm, np.zeros_like(warm))
        for kind in args.kinds.split(","):
            a, wr = make_trace(kind, n, 1)
            row: dict = {"trace": kind, "requests": n}
            if not args.no_cli:
                p = Path(d) / f"{kind}.trace"
                write_trace(p, a, wr)
                walls, parses, sims = [], [], []
                for _ in range(args.repeat):
                    w, out = cli_run(p)
                    walls.append(w)
                    parses.append(out["parse_s"])
                    sims.append(out["simulate_s"])
                    row["cycles"] = out["cycles"]
                row.update(process_wall_s=float(np.median(walls)), parse_s=float(np.median(parses)),
                           simulate_s=float(np.median(sims)))
            if args.before:
                times: dict[str, list[float]] = {k: [] for k, _ in classes}
                stats = {}
                for _ in range(args.repeat):
                    for k, cls in classes:
                        t, stats[k] = simulate(cls, cfg, a, wr)
                        times[k].append(t)
                if repr(stats["before"]) != repr(stats["after"]):
                    raise SystemExit(f"{kind}: statistics differ before/after:\n{stats['before']}\n"
                                     f"{stats['after']}")
                row.update(cycles=stats["after"].cycles,
                           engine_before_s=float(np.median(times["before"])),
                           engine_after_s=float(np.median(times["after"])))
                row["speedup"] = row["engine_before_s"] / row["engine_after_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
