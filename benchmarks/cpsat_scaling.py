"""CP-SAT scaling on the paper's configurations: time to proved optimality, or gap at 10 s / 60 s.

Layers come from the calibrated routing generator (``sample_layers``). For every (model, batch,
layer) it solves once with the full time limit and reads the 10 s figures off the same run's
trajectory. ``--ablate`` re-solves each layer with one lever removed at a time.

    .venv/bin/python benchmarks/cpsat_scaling.py                 # all 3 configs x B in {32..256}
    .venv/bin/python benchmarks/cpsat_scaling.py --ablate --layers 1 --time-limit 20 \
        --configs gpt-oss-120b:4 --batches 64
    --json FILE writes every row (atomically); the table goes to stdout (markdown).

Defaults: 1 layer per (config, B), 10 s for the 1-GPU model and 60 s for the others, 2 workers:
about 9 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_configs, configs

from sieveopt.fileio import atomic_write_text
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import solve
from sieveopt.solvers.cpsat import ALL_LEVERS


def at_time(traj, t_s: float) -> tuple[int | None, int | None]:
    """(best objective, best bound) reached by ``t_s`` seconds on a trajectory."""
    obj = bnd = None
    for t, o, b in traj:
        if t <= t_s:
            obj = o if obj is None else min(obj, o)
            bnd = b if bnd is None else max(bnd, b)
    return obj, bnd


def run(model_name: str, gpus: int, batch: int, layers: int, seed: int, time_limit_s: float,
        workers: int, levers=None) -> list[dict]:
    model, system = load_model(model_name), load_system(SYSTEM, gpus)
    rows = []
    for i, inst in enumerate(sample_layers(model, system, batch, layers, seed)):
        dag, cost = build_dag(inst)
        r = solve("cpsat", dag, inst, cost, time_limit_s=time_limit_s, workers=workers, levers=levers)
        o10, b10 = at_time(r.trajectory, 10.0)
        proved_s = None
        if r.status == "OPTIMAL":
            proved_s = r.wall_s
        rows.append({
            "model": model_name, "gpus": gpus, "batch": batch, "layer": i, "moe_layer": inst.moe_layer,
            "tasks": len(dag.tasks), "experts": sum(t.kind == "expert" for t in dag.tasks),
            "status": r.status, "objective_ns": r.objective_ns, "bound_ns": r.bound_ns, "gap": r.gap,
            "wall_s": round(r.wall_s, 2), "proved_s": None if proved_s is None else round(proved_s, 2),
            "hint_ns": r.meta["hint_makespan_ns"], "hint_policy": r.meta["hint_policy"],
            "static_lb_ns": r.meta["static_lb_ns"], "obj10_ns": o10, "bound10_ns": b10,
            "levers": sorted(levers) if levers is not None else sorted(ALL_LEVERS),
            "time_limit_s": time_limit_s, "workers": workers,
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_configs(ap, listed=True)
    ap.add_argument("--batches", nargs="+", type=int, default=[32, 64, 128, 256])
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds (default 10 for 1 GPU, else 60)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ablate", action="store_true", help="also solve with each lever removed")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    rows: list[dict] = []
    for name, gpus in configs(args.configs):
        tl = args.time_limit or (10.0 if gpus == 1 else 60.0)
        for b in args.batches:
            variants = [None] + ([ALL_LEVERS - {lv} for lv in sorted(ALL_LEVERS)] + [frozenset()] if args.ablate else [])
            for lev in variants:
                rows += run(name, gpus, b, args.layers, args.seed, tl, args.workers, lev)
    print(table(rows, ablate=args.ablate))
    print(f"\n(total {time.time() - t0:.0f} s)")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def table(rows: list[dict], ablate: bool = False) -> str:
    out = ["| model | GPUs | B | layers | experts | proved optimal | time to proof (median s) | gap @10 s (median / max) | gap @limit (median / max) | limit s | levers |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["gpus"], r["batch"], ",".join(r["levers"])), []).append(r)
    for (m, g, b, lev), rs in groups.items():
        g10 = [(r["obj10_ns"] - r["bound10_ns"]) / r["obj10_ns"] if r["obj10_ns"] and r["bound10_ns"] else 0.0
               for r in rs]
        g10 = [0.0 if r["proved_s"] is not None and r["proved_s"] <= 10 else x for r, x in zip(rs, g10, strict=True)]
        gl = [r["gap"] or 0.0 for r in rs]
        proved = [r["proved_s"] for r in rs if r["proved_s"] is not None]
        out.append(f"| {m} | {g} | {b} | {len(rs)} | {statistics.median(r['experts'] for r in rs):.0f} | "
                   f"{len(proved)}/{len(rs)} | {statistics.median(proved) if proved else '-'} | "
                   f"{_pct(statistics.median(g10))} / {_pct(max(g10))} | {_pct(statistics.median(gl))} / {_pct(max(gl))} | "
                   f"{rs[0]['time_limit_s']:.0f} | {lev if lev != ','.join(sorted(ALL_LEVERS)) else 'all'} |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
