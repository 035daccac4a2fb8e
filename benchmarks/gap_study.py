"""Optimality gap of the fast policies against CP-SAT on the paper's three configurations.

For every (config, batch, layer) it runs sieve, sieve-plus and the baselines and CP-SAT (hinted with the best heuristic, ``--time-limit`` seconds,
2 workers), and reports per policy the gap two ways:

* against CP-SAT's best schedule (a lower estimate of the true gap),
* against CP-SAT's certified lower bound (an upper estimate),

as median / p95 / max per configuration, plus the per-layer table. Layers come from the
calibrated routing generator. The runs are the study layer's gap study
(:func:`sieveopt.study.run_gap_study`, on the sweep engine; ``--cache DIR`` to resume).

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

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_configs, split_config

from sieveopt.fileio import atomic_write_text
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import policy_with_role, solve
from sieveopt.study import gap_stats, run_gap_study

#: The registry's reference policy (CP-SAT): the gaps are measured against it.
REF = policy_with_role("reference")
POLICIES = ["sieve", "sieve-plus", "gpu_only", "noexp", "allexp", "pimoe", "duplex"]


def run(configs, batches, layers, seed, time_limit_s, workers, policies, cache=None) -> list[dict]:
    """Per-layer rows (makespan per policy, CP-SAT objective / bound / status) from the study
    layer's gap study (sieveopt.study.run_gap_study: the sweep engine, cached with ``cache``)."""
    recs = run_gap_study([split_config(c) for c in configs], list(batches), layers=layers,
                         seed=seed, policies=policies, reference=REF, system=SYSTEM, cache_dir=cache,
                         reference_params={"time_limit_s": time_limit_s, "workers": workers})
    rows = []
    for rec in recs:
        row = {k: rec[k] for k in ("model", "gpus", "batch", "layer", "moe_layer")}
        for p in policies:
            m = rec["policies"][p]
            row[p] = m["makespan_ns"]
            if m["decision_ns"] is not None:
                row[f"{p}_decision_ns"] = m["decision_ns"]
        c = rec["policies"][REF]
        row.update({REF: c["objective_ns"], "bound": c["bound_ns"], "status": c["status"]},
                   cpsat_wall_s=round(c["solve_wall_s"], 2))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _stats(xs: list[float]) -> str:
    g = gap_stats(xs)
    return f"{100 * g['median']:.2f} / {100 * g['p95']:.2f} / {100 * g['max']:.2f}"


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
            cells.append(_stats([r[p] / r[REF] - 1 for r in rs]))
            cells.append(_stats([r[p] / r["bound"] - 1 for r in rs]))
        proved = sum(r["status"] == "OPTIMAL" for r in rs)
        cg = np.median([(r[REF] - r["bound"]) / r[REF] for r in rs]) * 100
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
    for name, gpus in map(split_config, configs):
        model, system = load_model(name), load_system(SYSTEM, gpus)
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
            gaps[o].append(mk[o] / r[REF] - 1)
    lines = ["| sieve-plus order | vs CP-SAT best: median / p95 / max % |", "|---|---|"]
    lines += [f"| {o} | {_stats(gaps[o])} |" for o in orders]
    lines.append(f"\n(nondelay shorter than ready on {wins}/{len(rows)} layers)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_configs(ap, listed=True)
    ap.add_argument("--batches", nargs="+", type=int, default=[32, 64, 128, 256])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=None, metavar="DIR", help="sweep-engine cache: reuse finished points in DIR")
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
    policies = POLICIES
    rows = run(args.configs, args.batches, args.layers, args.seed, args.time_limit, args.workers, policies, args.cache)
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
