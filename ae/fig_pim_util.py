"""PIM utilisation: busy fraction of each GPU's PIM units over the MoE layers' time, per policy
and batch, from the schedules (``StepResult.pim_busy_frac``: PIM-held time / layer time,
weighted over the sampled layers). Per GPU, not per pseudo-channel: under tensor parallelism
every expert is sharded over all pseudo-channels of its GPU, so the channels of one GPU are
busy together (the replay engine reports per-GPU PIM resources too)."""

from __future__ import annotations

import numpy as np
from _common import CONFIGS, SYSTEM, done, group_bars, parse_args, pyplot, save_figure, write_csv

from sieveopt.e2e import StepSettings, policy_params, prepare_step, run_step
from sieveopt.models.catalog import load_model, load_system

POLICIES = ("noexp", "allexp", "pimoe", "duplex", "sieve", "sieve-plus")


def main(argv=None) -> int:
    args = parse_args("pim_util", __doc__, argv)
    configs = CONFIGS[1:2] if args.quick else CONFIGS
    batches = (64,) if args.quick else (16, 64, 256)
    policies = ("noexp", "sieve") if args.quick else POLICIES
    rows = []
    for name, gpus in configs:
        model, system = load_model(name), load_system(SYSTEM, gpus)
        for b in batches:
            prob = prepare_step(model, system, b, StepSettings(num_layers=1 if args.quick else 4, seed=args.seed))
            for pol in policies:
                res = run_step(prob, pol, solver_params=policy_params(pol))
                for g, (p, q) in enumerate(zip(res.pim_busy_frac, res.gpu_busy_frac, strict=True)):
                    rows.append({"model": name, "gpus": gpus, "batch": b, "policy": pol, "gpu": g,
                                 "pim_busy": p, "gpu_busy": q})
    write_csv(args.out / "pim_util.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(len(configs), 1, figsize=(7.5, 2.4 * len(configs)), squeeze=False)
    for ax, (name, gpus) in zip(axes[:, 0], configs, strict=True):
        for i, pol in enumerate(policies):
            means, lo, hi = [], [], []
            for b in batches:
                v = np.array([r["pim_busy"] for r in rows if r["model"] == name and r["policy"] == pol and r["batch"] == b])
                means.append(v.mean())
                lo.append(v.mean() - v.min())
                hi.append(v.max() - v.mean())
            x, width = group_bars(len(batches), i, len(policies))
            ax.bar(x, means, width, yerr=[lo, hi], capsize=2, label=pol)
        ax.set_xticks(np.arange(len(batches)), [f"B={b}" for b in batches])
        ax.set_ylabel("PIM busy fraction")
        ax.set_title(f"{name}, {gpus} GPU(s): mean over GPUs, bars = min..max GPU", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.tight_layout()
    save_figure(fig, args.out / "pim_util")
    done(args, "pim_util")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
