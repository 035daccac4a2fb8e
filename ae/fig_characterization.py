"""Expert-token distribution per model and batch: share of activated experts with N = 1, 2,
3-4 and > 4 tokens (Sieve Fig. 5 bins), from the calibrated routing generator
(``sieveopt.workload.workload_stats``; shared experts counted with N = B, as in the paper)."""

from __future__ import annotations

import numpy as np
from _common import done, parse_args, pyplot, save_figure, write_csv

from sieveopt.models.catalog import load_model
from sieveopt.workload import generate_for_model, workload_stats

MODELS = ("qwen3-30b-a3b", "gpt-oss-120b", "qwen3.5-397b-a17b", "qwen3-next-80b-a3b", "mixtral-8x7b")
BINS = ("1", "2", "3-4", ">4")


def main(argv=None) -> int:
    args = parse_args("characterization", __doc__, argv)
    models = MODELS[:2] if args.quick else MODELS
    batches = (4, 64) if args.quick else (1, 4, 16, 64, 256, 1024)
    steps, n_layers = (2, 2) if args.quick else (8, 8)
    rows = []
    for name in models:
        model = load_model(name)
        layers = sorted(np.random.default_rng(args.seed).choice(model.num_moe_layers, n_layers, replace=False).tolist())
        for b in batches:
            st = workload_stats(generate_for_model(model, b, steps, args.seed, layers=layers), include_shared=True)
            share = st["summary"]["activated_share"]
            row = {"model": name, "batch": b, "1": share["1"], "2": share["2"], "3-4": share["3-4"],
                   ">4": share["5-8"] + share[">8"], "activated_experts_mean": st["summary"]["activated_experts_mean"]}
            rows.append(row)
    write_csv(args.out / "characterization.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(models), figsize=(2.6 * len(models), 3.0), sharey=True, squeeze=False)
    colors = ("#08519c", "#4292c6", "#9ecae1", "#fdae6b")
    for ax, name in zip(axes[0], models, strict=True):
        sub = [r for r in rows if r["model"] == name]
        x = np.arange(len(sub))
        bottom = np.zeros(len(sub))
        for bin_, c in zip(BINS, colors, strict=True):
            vals = np.array([r[bin_] for r in sub])
            ax.bar(x, vals, bottom=bottom, color=c, label=f"N={bin_}" if bin_ != ">4" else "N>4")
            bottom += vals
        ax.set_xticks(x, [str(r["batch"]) for r in sub], fontsize=7)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("batch", fontsize=8)
    axes[0][0].set_ylabel("share of activated experts")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, args.out / "characterization")
    done(args, "characterization")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
