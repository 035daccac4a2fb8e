"""Speed of the cycle-level DRAM simulator (sieveopt.validation.dram).

Scenarios (Ramulator 2.0 LoadStoreTrace semantics: requests injected in order, one per DRAM
cycle, retried while the target queue is full):

  a) 2 M sequential 32-byte reads on one channel (both pseudo-channels),
  b) 8 M sequential reads over a 16-channel stack (32 pseudo-channels),
  c) the trace-file path: a LoadStoreTrace file parsed and simulated (streamed in chunks),
  d) the layer API: a Qwen3.5-like layer (65 experts x 25 MB, 1..40 tokens) on the Sieve preset.

``--cli-trace`` instead times ``sieveopt dram run`` end to end (process start to exit) on a
2 M-request LoadStoreTrace (sequential and uniform random 32 B reads, one channel), and
splits it into parse (file -> numpy) and simulate (mapping + engine) time with
``simulate_trace(timings=...)``; the reference is Ramulator 2.0 at ~0.5 M simulated cycles/s
on one channel (the issue's figure, times the simulated cycle count).

Request streams for a) and b) are generated in memory in chunks (no 8 M-line file). Reports
simulated cycles/s, requests/s (median and p99 over --repeat runs) and the peak RSS.

    .venv/bin/python benchmarks/dram_speed.py [--repeat 3] [--scale 1.0] [--preset hbm3_5200]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from sieveopt.validation.dram.api import load_dram_preset, pim_expert_ns, weight_stream_ns
from sieveopt.validation.dram.sim import DramSim
from sieveopt.validation.dram.trace import simulate_trace

CHUNK = 1 << 20


def sequential(cfg, n_req: int, channels: int) -> tuple[float, int]:
    """Sequential byte addresses 0, 32, 64 ... over ``channels`` channels."""
    t0 = time.perf_counter()
    sim = DramSim(cfg, channels=channels)
    for s in range(0, n_req, CHUNK):
        a = np.arange(s, min(n_req, s + CHUNK), dtype=np.int64) * cfg.org.access_bytes
        sim.feed_addresses(a, np.zeros(a.shape[0], dtype=np.int64))
    st = sim.finish()
    return time.perf_counter() - t0, st.cycles


def trace_file(cfg, n_req: int, channels: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "seq.trace"
        with p.open("w") as fh:
            for s in range(0, n_req, CHUNK):
                a = np.arange(s, min(n_req, s + CHUNK), dtype=np.int64) * cfg.org.access_bytes
                fh.write("".join(f"LD 0x{int(x):x}\n" for x in a))
        t0 = time.perf_counter()
        st = simulate_trace(cfg, p, channels=channels)
        return time.perf_counter() - t0, st.cycles


_LAYER_RUNS = iter(range(1 << 30))


def layer(_cfg, _n, _ch) -> tuple[float, int]:
    # a config not seen before (the API caches per config and shape): a cold layer
    cfg = load_dram_preset("sieve_b200_hbm3e_pim", nWR=33 + next(_LAYER_RUNS))
    tokens = np.random.default_rng(0).integers(1, 41, 65)
    t0 = time.perf_counter()
    for n in tokens:
        pim_expert_ns(cfg, 4096, 1024, int(n))
        weight_stream_ns(cfg, 3 * 4096 * 1024 * 2)
    return time.perf_counter() - t0, 0


def write_trace(path: Path, kind: str, n_req: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w") as fh:
        for s in range(0, n_req, CHUNK):
            k = min(n_req, s + CHUNK) - s
            a = (np.arange(s, s + k) if kind == "seq" else rng.integers(0, 1 << 27, k)) * 32
            fh.write("".join(f"LD 0x{int(x):x}\n" for x in a))


def cli_trace(preset: str, n_req: int, repeat: int) -> list[dict]:
    """``sieveopt dram run`` end to end + parse / simulate split, per trace kind."""
    import subprocess
    import sys

    out = []
    cfg = load_dram_preset(preset)
    with tempfile.TemporaryDirectory() as d:
        for kind in ("seq", "random"):
            p = Path(d) / f"{kind}.trace"
            write_trace(p, kind, n_req)
            walls, cpus, parses, sims, cycles = [], [], [], [], 0
            for _ in range(repeat):
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "sieveopt", "dram", "run", "--trace",
                                    str(p), "--config", preset, "--channels", "1", "--json"],
                                   check=True, capture_output=True, text=True)
                walls.append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                cycles = json.loads(r.stdout)["cycles"]
                tm: dict[str, float] = {}
                simulate_trace(cfg, p, channels=1, timings=tm)
                parses.append(tm["parse_s"])
                sims.append(tm["simulate_s"])
            ram_s = cycles / 0.5e6
            out.append({"scenario": f"sieveopt dram run, 2M {kind}, 1 channel", "requests": n_req,
                        "cycles": cycles, "process_wall_s_median": float(np.median(walls)),
                        "process_cpu_s_median": float(np.median(cpus)),
                        "parse_s_median": float(np.median(parses)),
                        "simulate_s_median": float(np.median(sims)),
                        "ramulator_s_at_0.5Mcyc_per_s": ram_s,
                        "fraction_of_ramulator": float(np.median(walls)) / ram_s})
    return out


def stats(xs: list[float]) -> tuple[float, float]:
    return float(np.median(xs)), float(np.percentile(xs, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--preset", default="hbm3_5200")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cli-trace", action="store_true",
                    help="time `sieveopt dram run` on 2M-request trace files (parse vs simulate)")
    args = ap.parse_args()
    cfg = load_dram_preset(args.preset)
    if args.cli_trace:
        sequential(cfg, 1000, 1)  # numba cache warm
        rows = cli_trace(args.preset, int(2e6 * args.scale), args.repeat)
        if args.json:
            print(json.dumps({"preset": args.preset, "runs": rows}, indent=2))
            return
        for r in rows:
            print(f"{r['scenario']:40s} cycles={r['cycles']:>9d} process {r['process_wall_s_median']:.2f}s"
                  f" (cpu {r['process_cpu_s_median']:.2f}s)"
                  f" (parse {r['parse_s_median']:.2f}s + simulate {r['simulate_s_median']:.2f}s)"
                  f" vs Ramulator ~{r['ramulator_s_at_0.5Mcyc_per_s']:.1f}s"
                  f" -> {r['fraction_of_ramulator']:.2f}x")
        return
    sequential(cfg, 1000, 1)  # load the compiled engine (numba cache) outside the timings
    scen = [("a) 2M seq reads, 1 channel", sequential, int(2e6 * args.scale), 1),
            ("b) 8M seq reads, 16-channel stack", sequential, int(8e6 * args.scale), 16),
            ("c) LoadStoreTrace file, 16 channels", trace_file, int(5e5 * args.scale), 16),
            ("d) layer API, 65 experts (s per layer)", layer, 65, 0)]
    out = []
    for name, fn, n, ch in scen:
        walls, cpus, cycles = [], [], 0
        for _ in range(args.repeat):
            c0 = time.process_time()
            w, cycles = fn(cfg, n, ch)
            cpus.append(time.process_time() - c0)
            walls.append(w)
        med, p99 = stats(walls)
        out.append({"scenario": name, "requests": n, "cycles": cycles, "wall_s_median": med,
                    "wall_s_p99": p99, "cpu_s_median": float(np.median(cpus)),
                    "Mcycles_per_s": cycles / med / 1e6,
                    "Mrequests_per_s": n / med / 1e6})
    rss_MiB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps({"preset": args.preset, "peak_rss_MiB": rss_MiB, "runs": out}, indent=2))
        return
    print(f"preset {args.preset}, {args.repeat} repeats, peak RSS {rss_MiB:.0f} MiB")
    for r in out:
        print(f"{r['scenario']:40s} n={r['requests']:>9d} cycles={r['cycles']:>10d} "
              f"wall {r['wall_s_median']:.3f}s (p99 {r['wall_s_p99']:.3f}, "
              f"cpu {r['cpu_s_median']:.3f}s) "
              f"{r['Mcycles_per_s']:.2f} Mcyc/s {r['Mrequests_per_s']:.2f} Mreq/s")


if __name__ == "__main__":
    main()
