"""Optimality gap of the fast policies against CP-SAT per model and batch: a thin wrapper over
``sieveopt compare --json`` (list-scheduled makespans on the same sampled layers; gap vs the
CP-SAT solution and vs its proved lower bound, median and p95)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from _common import CONFIGS, SYSTEM, done, parse_args, pyplot, save_figure, write_csv

POLICIES = ("sieve", "sieve-plus", "duplex", "cpsat")


def compare(model: str, gpus: int, batch: int, layers: int, time_limit: float, seed: int) -> dict:
    cmd = [sys.executable, "-m", "sieveopt", "compare", "--model", model, "--system", SYSTEM, "--gpus", str(gpus),
           "--batch", str(batch), "--layers", str(layers), "--policies", ",".join(POLICIES),
           "--time-limit", str(time_limit), "--seed", str(seed), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv=None) -> int:
    args = parse_args("gap", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batches = (16,) if args.quick else (16, 64, 256)
    layers, tl = (1, 0.5) if args.quick else (4, 5.0)
    rows = []
    for name, gpus in configs:
        for b in batches:
            d = compare(name, gpus, b, layers, tl, args.seed)
            gaps = d.get("bounds", {}).get("cpsat", {}).get("gaps", {})
            for pol in POLICIES[:-1]:
                g = gaps.get(pol, {})
                vs_sol, vs_bd = g.get("vs_solution", {}), g.get("vs_bound", {})
                rows.append({"model": name, "gpus": gpus, "batch": b, "policy": pol, "layers": layers,
                             "cpsat_time_limit_s": tl,
                             "gap_vs_cpsat_median": vs_sol.get("median"), "gap_vs_cpsat_p95": vs_sol.get("p95"),
                             "gap_vs_bound_median": vs_bd.get("median"), "gap_vs_bound_p95": vs_bd.get("p95"),
                             "median_makespan_us": d["summary"][pol]["median_ns"] / 1e3,
                             "cpsat_median_makespan_us": d["summary"]["cpsat"]["median_ns"] / 1e3})
    write_csv(args.out / "gap.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(configs), figsize=(4.2 * len(configs), 3.0), squeeze=False, sharey=True)
    width = 0.8 / (len(POLICIES) - 1)
    for ax, (name, gpus) in zip(axes[0], configs, strict=True):
        for i, pol in enumerate(POLICIES[:-1]):
            sub = [r for r in rows if r["model"] == name and r["policy"] == pol]
            x = np.arange(len(sub)) + (i - (len(POLICIES) - 2) / 2) * width
            ax.bar(x, [100 * (r["gap_vs_cpsat_median"] or 0) for r in sub], width, label=pol)
        ax.set_xticks(np.arange(len(batches)), [f"B={b}" for b in batches])
        ax.set_title(f"{name}, {gpus} GPU(s)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("makespan gap to CP-SAT (%, median)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, args.out / "gap")
    done(args, "gap")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
