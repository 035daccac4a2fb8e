"""Optimality gap of the fast policies against CP-SAT on the paper's three configurations.

For every (config, batch, layer) it runs sieve, sieve-plus and the baselines (whichever are
registered and importable) and CP-SAT (hinted with the best heuristic, ``--time-limit`` seconds,
2 workers), and reports per policy the gap two ways:

* against CP-SAT's best schedule (a lower estimate of the true gap),
* against CP-SAT's certified lower bound (an upper estimate),

as median / p95 / max per configuration, plus the per-layer table. Layers come from the
calibrated routing generator.

    .venv/bin/python benchmarks/gap_study.py                    # defaults: 2 layers, 60 s
    .venv/bin/python benchmarks/gap_study.py --layers 1 --time-limit 10 --md out.md
    .venv/bin/python benchmarks/gap_study.py --ordering rows.json   # sieve-plus list orders vs
        # the CP-SAT best stored in a previous --json run (same layers; no CP-SAT re-solve)

Defaults (2 layers per (config, B), 60 s, 2 workers) take about 12 minutes on 2 cores: the
1-GPU and most 4-GPU layers are proved optimal in seconds, the 8-GPU layers use the full limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from sieveopt.fileio import atomic_write_text
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import SOLVERS, solve

SYSTEM = "sieve-b200-hbm3e-pim"
CONFIGS = ["qwen3-30b-a3b:1", "gpt-oss-120b:4", "qwen3.5-397b-a17b:8"]
POLICIES = ["sieve", "sieve-plus", "gpu_only", "noexp", "allexp", "pimoe", "duplex"]


def available(policies: list[str]) -> list[str]:
    out = []
    for p in policies:
        try:
            SOLVERS.get(p)
            out.append(p)
        except Exception:  # noqa: BLE001 - a policy not written yet is skipped, and said so
            print(f"(skipping {p}: not available)", file=sys.stderr)
    return out


def run(configs, batches, layers, seed, time_limit_s, workers, policies) -> list[dict]:
    rows = []
    for cfg in configs:
        name, gpus = cfg.split(":")
        model, system = load_model(name), load_system(SYSTEM, int(gpus))
        for b in batches:
            for i, inst in enumerate(sample_layers(model, system, b, layers, seed)):
                dag, cost = build_dag(inst)
                row = {"model": name, "gpus": int(gpus), "batch": b, "layer": i, "moe_layer": inst.moe_layer}
                for p in policies:
                    r = solve(p, dag, inst, cost)
                    row[p] = r.makespan_ns
                    if r.decision_ns is not None:
                        row[f"{p}_decision_ns"] = r.decision_ns
                r = solve("cpsat", dag, inst, cost, time_limit_s=time_limit_s, workers=workers)
                row.update(cpsat=r.objective_ns, bound=r.bound_ns, status=r.status, cpsat_wall_s=round(r.wall_s, 2))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _stats(xs: list[float]) -> str:
    a = 100 * np.asarray(xs)
    return f"{np.median(a):.2f} / {np.percentile(a, 95):.2f} / {a.max():.2f}"


def markdown(rows: list[dict], policies: list[str], time_limit_s: float) -> str:
    lines = [f"CP-SAT: {time_limit_s:.0f} s, 2 workers, hinted; gaps in % as median / p95 / max.", ""]
    lines.append("| model | GPUs | B | layers | proved | " + " | ".join(
        f"{p} vs best | {p} vs LB" for p in policies[:2]) + " | CP-SAT gap (median) |")
    lines.append("|---|---|---|---|---|" + "---|---|" * 2 + "---|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["gpus"], r["batch"]), []).append(r)
    for (m, g, b), rs in groups.items():
        cells = []
        for p in policies[:2]:
            cells.append(_stats([r[p] / r["cpsat"] - 1 for r in rs]))
            cells.append(_stats([r[p] / r["bound"] - 1 for r in rs]))
        proved = sum(r["status"] == "OPTIMAL" for r in rs)
        cg = np.median([(r["cpsat"] - r["bound"]) / r["cpsat"] for r in rs]) * 100
        lines.append(f"| {m} | {g} | {b} | {len(rs)} | {proved}/{len(rs)} | " + " | ".join(cells) + f" | {cg:.2f} |")
    lines += ["", "All layers, every policy (gap in %: median / p95 / max):", "",
              "| policy | vs best | vs LB |", "|---|---|---|"]
    for p in policies:
        lines.append(f"| {p} | {_stats([r[p] / r['cpsat'] - 1 for r in rows])} | "
                     f"{_stats([r[p] / r['bound'] - 1 for r in rows])} |")
    lines += ["", "Per layer (makespans in ns):", "",
              "| model | B | layer | " + " | ".join(policies) + " | CP-SAT | bound | status |",
              "|---|---|---|" + "---|" * (len(policies) + 3)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['batch']} | {r['layer']} | " + " | ".join(str(r[p]) for p in policies)
                     + f" | {r['cpsat']} | {r['bound']} | {r['status']} |")
    return "\n".join(lines)


def latency(configs, batches, layers: int, seed: int, reps: int) -> str:
    """Decision latency of sieve vs sieve-plus, side by side on the same layers (max over GPUs
    of the per-GPU planning time, as both report it), median / p99 in us."""
    lines = ["| model | GPUs | B | sieve median / p99 us | sieve-plus median / p99 us | ratio of medians |",
             "|---|---|---|---|---|---|"]
    for cfg in configs:
        name, gpus = cfg.split(":")
        model, system = load_model(name), load_system(SYSTEM, int(gpus))
        for b in batches:
            lat: dict[str, list[float]] = {"sieve": [], "sieve-plus": []}
            for inst in sample_layers(model, system, b, layers, seed):
                dag, cost = build_dag(inst)
                for _ in range(reps):
                    for p in lat:
                        lat[p].append(solve(p, dag, inst, cost).decision_ns / 1e3)
            a, c = np.asarray(lat["sieve"]), np.asarray(lat["sieve-plus"])
            lines.append(f"| {name} | {gpus} | {b} | {np.median(a):.1f} / {np.percentile(a, 99):.1f} | "
                         f"{np.median(c):.1f} / {np.percentile(c, 99):.1f} | {np.median(c) / np.median(a):.2f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def ordering(path: str) -> str:
    """sieve-plus with each list-scheduling order (same modes) against the CP-SAT best of a stored
    run: median / p95 / max gap in %, and how often each order is the shorter one."""
    rows = json.loads(open(path).read())
    orders = ["ready", "nondelay", "best"]
    gaps: dict[str, list[float]] = {o: [] for o in orders}
    wins = 0
    cache: dict[tuple, list] = {}
    for r in rows:
        key = (r["model"], r["gpus"], r["batch"])
        if key not in cache:
            model, system = load_model(r["model"]), load_system(SYSTEM, r["gpus"])
            n = 1 + max(x["layer"] for x in rows if (x["model"], x["gpus"], x["batch"]) == key)
            cache[key] = sample_layers(model, system, r["batch"], n, r.get("seed", 0))
        inst = cache[key][r["layer"]]
        dag, cost = build_dag(inst)
        mk = {o: solve("sieve-plus", dag, inst, cost, order=o).makespan_ns for o in orders}
        wins += mk["nondelay"] < mk["ready"]
        for o in orders:
            gaps[o].append(mk[o] / r["cpsat"] - 1)
    lines = ["| sieve-plus order | vs CP-SAT best: median / p95 / max % |", "|---|---|"]
    lines += [f"| {o} | {_stats(gaps[o])} |" for o in orders]
    lines.append(f"\n(nondelay shorter than ready on {wins}/{len(rows)} layers)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=CONFIGS)
    ap.add_argument("--batches", nargs="+", type=int, default=[32, 64, 128, 256])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--md", default=None, help="write the markdown table here (atomically)")
    ap.add_argument("--json", default=None, help="write the per-layer rows here (atomically)")
    ap.add_argument("--latency", action="store_true",
                    help="instead: decision latency of sieve vs sieve-plus (--layers layers x 20 reps)")
    ap.add_argument("--ordering", default=None, metavar="JSON",
                    help="instead: sieve-plus per list order vs the CP-SAT best stored in a --json run")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.ordering:
        print(ordering(args.ordering))
        return 0
    if args.latency:
        print(latency(args.configs, args.batches, args.layers, args.seed, 20))
        return 0
    policies = available(POLICIES)
    rows = run(args.configs, args.batches, args.layers, args.seed, args.time_limit, args.workers, policies)
    md = markdown(rows, policies, args.time_limit)
    print(md)
    print(f"\n(total {time.time() - t0:.0f} s)")
    if args.md:
        atomic_write_text(args.md, md + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
