"""Optimality gap of the fast policies against CP-SAT per model and batch: the study layer's gap
study (:func:`sieveopt.study.run_gap_study` on the sweep engine, ``--cache DIR`` to resume; gap
vs the CP-SAT solution and vs its proved lower bound, median and p95, docs/metrics.md)."""

from __future__ import annotations

import numpy as np
from _common import CONFIGS, SYSTEM, done, group_bars, parse_args, pyplot, save_figure, write_csv

from sieveopt.solvers import policy_with_role
from sieveopt.study import gap_summary, run_gap_study

#: The registry's reference policy (CP-SAT): the gaps are measured against it.
REF = policy_with_role("reference")
POLICIES = ("sieve", "sieve-plus", "duplex", REF)


def main(argv=None) -> int:
    args = parse_args("gap", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batches = (16,) if args.quick else (16, 64, 256)
    layers, tl = (1, 0.5) if args.quick else (4, 5.0)
    recs = run_gap_study(list(configs), list(batches), layers=layers, seed=args.seed, policies=POLICIES[:-1],
                         reference=REF, reference_params={"time_limit_s": tl}, system=SYSTEM,
                         cache_dir=args.cache, out_dir=args.out)
    rows = []
    for name, gpus in configs:
        for b in batches:
            per_layer = [r["policies"] for r in recs if (r["model"], r["batch"]) == (name, b)]
            gaps = gap_summary(per_layer, POLICIES, REF)["gaps"]
            for pol in POLICIES[:-1]:
                vs_sol, vs_bd = gaps[pol]["vs_solution"], gaps[pol]["vs_bound"]
                rows.append({"model": name, "gpus": gpus, "batch": b, "policy": pol, "layers": layers,
                             "cpsat_time_limit_s": tl,
                             "gap_vs_cpsat_median": vs_sol["median"], "gap_vs_cpsat_p95": vs_sol["p95"],
                             "gap_vs_bound_median": vs_bd["median"], "gap_vs_bound_p95": vs_bd["p95"],
                             "median_makespan_us": float(np.median([x[pol]["makespan_ns"] for x in per_layer])) / 1e3,
                             "cpsat_median_makespan_us":
                                 float(np.median([x[REF]["makespan_ns"] for x in per_layer])) / 1e3})
    write_csv(args.out / "gap.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(configs), figsize=(4.2 * len(configs), 3.0), squeeze=False, sharey=True)
    for ax, (name, gpus) in zip(axes[0], configs, strict=True):
        for i, pol in enumerate(POLICIES[:-1]):
            sub = [r for r in rows if r["model"] == name and r["policy"] == pol]
            x, width = group_bars(len(sub), i, len(POLICIES) - 1)
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
