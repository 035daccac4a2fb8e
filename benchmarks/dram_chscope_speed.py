"""Speed of the channel-scope (Ramulator-parity) DRAM controller, end to end and side by side.

Writes seeded 2 M-request LoadStoreTrace files (the generator of the Ramulator parity traces,
``tests/fixtures/dram/ramulator2/README.md``: ``seq`` = 0, 32, 64 ...; ``random`` = uniform
32 B-aligned over one channel, seed 1; ``random_rw`` adds 30 % stores) and

1. times ``sieveopt dram run --trace T --config ramulator2_hbm3_2gbps --channels 1 --json``
   from process start to exit (median of --repeat; wall, user+system CPU and peak RSS of
   the process from ``wait4``), with the run's own ``parse_s`` / ``simulate_s`` split; with
   ``--ramulator BIN`` Ramulator 2.0 runs the same file (the config of
   ``tests/fixtures/dram/ramulator2/README.md``) alternately with sieveopt, so both see the
   same machine load, and the ratio of the medians is printed;
   ``--before-tree DIR`` also runs the CLI of another source tree (e.g. ``git archive REV |
   tar -x -C DIR``; its numba cache warmed once) in the same rotation, through this
   environment's editable install re-pointed at DIR (start-up before / after, side by side);
2. with ``--before REV``, runs the engine of git revision REV (its ``engine.py`` + ``sim.py``
   (+ ``layout.py``) copied to a temporary package, numba JIT) and this tree's engine
   (``SIEVEOPT_DRAM_NATIVE=0`` for JIT against JIT) in one process on the same request
   arrays, interleaved, and checks that every statistic is identical (ratio measured side by
   side, so machine load affects both alike).

    .venv/bin/python benchmarks/dram_chscope_speed.py --repeat 3 [--before 22fac16] [--n 2e6]
        [--ramulator /path/to/ramulator2/build/ramulator2]
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

RAMULATOR_CFG = """Frontend:
  impl: LoadStoreTrace
  clock_ratio: 1
  path: {trace}
MemorySystem:
  impl: GenericDRAM
  clock_ratio: 1
  DRAM:
    impl: HBM3
    org:
      preset: HBM3_2Gb
      channel: 1
      channel_width: 128
    timing:
      preset: HBM3_2Gbps
      nREFI: 100000000
  Controller:
    impl: Generic
    Scheduler:
      impl: FRFCFS
    RefreshManager:
      impl: AllBank
    RowPolicy:
      impl: OpenRowPolicy
    plugins:
  AddrMapper:
    impl: RoBaRaCoCh
"""


def timed(cmd: list[str], env: dict | None = None) -> tuple[dict, str]:
    """Run ``cmd`` to exit: wall seconds, user+system CPU seconds (``os.wait4``) and peak RSS
    (MiB, from ``/usr/bin/time``: a forked child's own ru_maxrss counts the parent's pages),
    and its stdout."""
    gnu_time = Path("/usr/bin/time")
    with tempfile.TemporaryDirectory() as d:
        rss_file = Path(d) / "rss"
        full = [str(gnu_time), "-f", "%M", "-o", str(rss_file), *cmd] if gnu_time.exists() else cmd
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, env=env)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read().decode()
        rss = (int(rss_file.read_text().split()[-1]) if rss_file.exists() else ru.ru_maxrss) / 1024
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{text[-2000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_MiB": rss}, text


# `sieveopt` of another source tree: the editable install's module map re-pointed at it
LAUNCH_TREE = """import sys
root = sys.argv.pop(1)
F = next(m for n, m in sys.modules.items() if n.startswith("__editable___sieveopt"))
here = F.MAPPING["sieveopt"].rsplit("/", 1)[0]
for k, v in F.MAPPING.items():
    F.MAPPING[k] = root + v[len(here):]
from sieveopt.cli.main import main
rc = main()
assert sys.modules["sieveopt.validation.dram.sim"].__file__.startswith(root)
sys.exit(rc)
"""


def cli_run(path: Path, tree: Path | None = None) -> tuple[dict, dict]:
    """``sieveopt dram run`` on ``path`` (of this install, or of source tree ``tree``)."""
    args = ["dram", "run", "--trace", str(path), "--config", PRESET, "--channels", "1", "--json"]
    exe = [str(Path(sys.executable).with_name("sieveopt"))] if tree is None else \
        [sys.executable, "-P", "-c", LAUNCH_TREE, str(tree.resolve())]
    m, text = timed([*exe, *args])
    return m, json.loads(text)


def ramulator_run(binary: Path, trace: Path, work: Path) -> tuple[dict, int]:
    cfg = work / f"{trace.stem}.yaml"
    cfg.write_text(RAMULATOR_CFG.format(trace=trace))
    env = dict(os.environ, LD_LIBRARY_PATH=str(binary.resolve().parents[1]))
    m, text = timed([str(binary), "-f", str(cfg)], env)
    cycles = [int(line.split(":")[1]) for line in text.splitlines()
              if "memory_system_cycles" in line]
    return m, cycles[0]


def med(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def old_engine(rev: str, root: Path):
    """DramSim of git revision ``rev`` (its engine.py, sim.py and, where it has them,
    layout.py in a temporary package; its engine through numba's JIT)."""
    repo = Path(__file__).resolve().parents[1]
    pkg = root / "dram_before"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "jit.py").write_text("from types import SimpleNamespace\n\n\ndef kernels():\n"
                                "    from dram_before.engine import run_engine\n"
                                "    return SimpleNamespace(run_engine=run_engine)\n")
    for f in ("engine.py", "sim.py", "layout.py"):
        proc = subprocess.run(["git", "show", f"{rev}:validation/dram/{f}"], cwd=repo,
                              capture_output=True, text=True)
        if proc.returncode != 0 and f == "layout.py":
            continue  # revisions before the layout module
        proc.check_returncode()
        src = proc.stdout
        for a, b in (("from sieveopt.validation.dram import engine as E",
                      "from dram_before import engine as E"),
                     ("from sieveopt.validation.dram import layout as L",
                      "from dram_before import layout as L"),
                     ("from sieveopt.validation.dram.layout import", "from dram_before.layout import"),
                     ("from sieveopt.validation.dram.native import kernels",
                      "from dram_before.jit import kernels")):
            src = src.replace(a, b)
        (pkg / f).write_text(src)
    sys.path.insert(0, str(root))
    return importlib.import_module("dram_before.sim").DramSim


def simulate(sim_cls, cfg, a, wr) -> tuple[float, float, object]:
    """Wall and CPU seconds of one engine run (mapping + engine) and its statistics."""
    t0, c0 = time.perf_counter(), time.process_time()
    s = sim_cls(cfg, channels=1)
    s.feed_addresses(a, wr)
    st = s.finish()
    return time.perf_counter() - t0, time.process_time() - c0, st


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=float, default=2e6, help="requests per trace")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kinds", default="seq,random")
    ap.add_argument("--before", default=None, help="git revision to compare side by side")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI runs")
    ap.add_argument("--ramulator", type=Path, default=None,
                    help="Ramulator 2.0 binary: run it on the same files, alternating")
    ap.add_argument("--before-tree", type=Path, default=None,
                    help="source tree whose `sieveopt dram run` joins the rotation (before/after)")
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
                runs, rams, parses, sims, olds = [], [], [], [], []
                for _ in range(args.repeat):  # sieveopt (before, after) and Ramulator alternate
                    if args.before_tree:
                        mo, out = cli_run(p, args.before_tree)
                        olds.append(mo)
                        row["before_cycles"] = out["cycles"]
                    ms, out = cli_run(p)
                    runs.append(ms)
                    parses.append(out["parse_s"])
                    sims.append(out["simulate_s"])
                    row["cycles"] = out["cycles"]
                    if args.ramulator:
                        mr, row["ramulator_cycles"] = ramulator_run(args.ramulator, p, Path(d))
                        rams.append(mr)
                row.update(process_wall_s=med(runs, "wall_s"), process_cpu_s=med(runs, "cpu_s"),
                           rss_MiB=max(r["rss_MiB"] for r in runs),
                           parse_s=float(np.median(parses)), simulate_s=float(np.median(sims)))
                if olds:
                    row.update(before_wall_s=med(olds, "wall_s"), before_cpu_s=med(olds, "cpu_s"),
                               before_walls=[round(r["wall_s"], 2) for r in olds],
                               before_cpus=[round(r["cpu_s"], 2) for r in olds])
                    if rams:
                        row.update(before_wall_ratio=med(olds, "wall_s") / med(rams, "wall_s"),
                                   before_cpu_ratio=med(olds, "cpu_s") / med(rams, "cpu_s"))
                if rams:
                    row.update(ramulator_wall_s=med(rams, "wall_s"),
                               ramulator_cpu_s=med(rams, "cpu_s"),
                               ramulator_rss_MiB=max(r["rss_MiB"] for r in rams),
                               wall_ratio=med(runs, "wall_s") / med(rams, "wall_s"),
                               cpu_ratio=med(runs, "cpu_s") / med(rams, "cpu_s"),
                               ramulator_walls=[round(r["wall_s"], 2) for r in rams],
                               ramulator_cpus=[round(r["cpu_s"], 2) for r in rams])
                row.update(walls=[round(r["wall_s"], 2) for r in runs],
                           cpus=[round(r["cpu_s"], 2) for r in runs])
            if args.before:
                times: dict[str, list[float]] = {k: [] for k, _ in classes}
                cpus: dict[str, list[float]] = {k: [] for k, _ in classes}
                stats = {}
                for _ in range(args.repeat):
                    for k, cls in classes:
                        t, c, stats[k] = simulate(cls, cfg, a, wr)
                        times[k].append(t)
                        cpus[k].append(c)
                if repr(stats["before"]) != repr(stats["after"]):
                    raise SystemExit(f"{kind}: statistics differ before/after:\n{stats['before']}\n"
                                     f"{stats['after']}")
                row.update(cycles=stats["after"].cycles,
                           engine_before_s=float(np.median(times["before"])),
                           engine_after_s=float(np.median(times["after"])))
                row.update(engine_before_cpu_s=float(np.median(cpus["before"])),
                           engine_after_cpu_s=float(np.median(cpus["after"])))
                row["speedup"] = row["engine_before_s"] / row["engine_after_s"]
                row["cpu_speedup"] = row["engine_before_cpu_s"] / row["engine_after_cpu_s"]
            row["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
