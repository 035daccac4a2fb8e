"""Mixed prefill + decode batches: a few prompts ride in each decode batch (their tokens are
routed, add to expert token counts and dispatch; their attention runs on the GPU, added to the
layer time, see ``sieveopt.e2e.extras``). Decode throughput per policy, decode-only vs mixed."""

from __future__ import annotations

import numpy as np
from _common import CONFIGS, SYSTEM, done, group_bars, parse_args, pyplot, save_figure, write_csv

from sieveopt.e2e import PrefillSpec, StepSettings, prepare_step, run_step
from sieveopt.models.catalog import load_model, load_system

POLICIES = ("gpu_only", "noexp", "allexp", "pimoe", "duplex", "sieve", "sieve-plus")


def main(argv=None) -> int:
    args = parse_args("mixed_prefill", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batch = 64
    prefills = ((0, 0), (1, 256)) if args.quick else ((0, 0), (1, 1024), (2, 2048))
    policies = ("noexp", "sieve") if args.quick else POLICIES
    layers = 1 if args.quick else 4
    rows = []
    for name, gpus in configs:
        model, system = load_model(name), load_system(SYSTEM, gpus)
        for p, plen in prefills:
            prob = prepare_step(model, system, batch, StepSettings(num_layers=layers, seed=args.seed,
                                                                   prefill=PrefillSpec(p, plen)))
            for pol in policies:
                res = run_step(prob, pol)
                r = res.row()
                rows.append({"model": name, "gpus": gpus, "batch": batch, "prefill": p, "prefill_len": plen,
                             **{k: r[k] for k in ("policy", "throughput_tok_s_per_gpu", "interactivity_tok_s_per_user",
                                                  "step_us", "prefill_attn_us", "cp_experts_gpu_us",
                                                  "cp_experts_pim_us", "pim_busy_mean", "check")}})
    write_csv(args.out / "mixed_prefill.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(configs), figsize=(4.6 * len(configs), 3.2), squeeze=False)
    for ax, (name, gpus) in zip(axes[0], configs, strict=True):
        for i, (p, plen) in enumerate(prefills):
            vals = [next(r["throughput_tok_s_per_gpu"] for r in rows if r["model"] == name and r["policy"] == pol
                         and r["prefill"] == p) for pol in policies]
            x, width = group_bars(len(policies), i, len(prefills))
            ax.bar(x, vals, width, label="decode only" if p == 0 else f"+{p} x {plen}-token prefill")
        ax.set_xticks(np.arange(len(policies)), policies, rotation=40, fontsize=7)
        ax.set_title(f"{name}, {gpus} GPU(s), B={batch}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("decode tokens/s per GPU")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, args.out / "mixed_prefill")
    done(args, "mixed_prefill")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
