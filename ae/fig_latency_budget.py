"""Scheduling-latency budget: mean MoE-layer time (weighted over the sampled layers) as the
scheduler task's latency grows 0..100 us (``StepSettings(scheduler_latency=N)``: the
scheduler runs in parallel with the dispatch and sits on the critical path only when it is
longer), for the runtime policies. Vertical lines: the paper's ~20 us (B200, DeepSeek-R1
layer) and our measured Sieve decision latency (median ``SolveResult.decision_ns`` over the
sampled layers on this machine's CPU, after one warm-up)."""

from __future__ import annotations

from _common import CONFIGS, SYSTEM, done, parse_args, pyplot, save_figure, write_csv

from sieveopt.models.catalog import load_model, load_system
from sieveopt.study import modelled_latency_budget

PAPER_LATENCY_US = 20.0
POLICIES = ("sieve", "sieve-plus", "duplex")


def main(argv=None) -> int:
    args = parse_args("latency_budget", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batches = (64,) if args.quick else (64, 256)
    lats_us = (0, 20, 50, 100) if args.quick else tuple(range(0, 101, 5))
    policies = ("sieve",) if args.quick else POLICIES
    layers = 1 if args.quick else 4
    rows, measured = [], {}
    for name, gpus in configs:
        model, system = load_model(name), load_system(SYSTEM, gpus)
        for b in batches:
            study, measured[(name, b)] = modelled_latency_budget(model, system, b, list(lats_us), policies,
                                                                 layers=layers, seed=args.seed)
            rows += [{"model": name, "gpus": gpus, "batch": b, "policy": r["policy"],
                      "scheduler_latency_us": r["scheduler_latency_us"], "layer_us": r["layer_us"],
                      "step_us": r["step_us"], "sieve_decision_us_measured": measured[(name, b)]} for r in study]
    write_csv(args.out / "latency_budget.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(configs), figsize=(4.2 * len(configs), 3.2), squeeze=False)
    for ax, (name, gpus) in zip(axes[0], configs, strict=True):
        for b in batches:
            for pol in policies:
                sub = [r for r in rows if r["model"] == name and r["batch"] == b and r["policy"] == pol]
                ax.plot([r["scheduler_latency_us"] for r in sub], [r["layer_us"] for r in sub], marker=".",
                        label=f"{pol} B={b}")
        ax.axvline(PAPER_LATENCY_US, color="k", linestyle="--", linewidth=1, label="paper 20 us")
        m = max(measured[(name, b)] for b in batches)
        ax.axvline(m, color="tab:red", linestyle=":", linewidth=1.5, label=f"measured sieve {m:.1f} us")
        ax.set_xlabel("scheduler latency (us)")
        ax.set_title(f"{name}, {gpus} GPU(s)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("mean MoE layer time (us)")
    fig.tight_layout()
    save_figure(fig, args.out / "latency_budget")
    done(args, "latency_budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
