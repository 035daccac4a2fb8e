"""Predicted (roofline layer DAG, list-scheduled) vs replayed (cycle-level DRAM/PIM simulator +
packet-level NVLink simulator, the schedule's modes and per-resource order kept) decode
throughput per policy and batch on the paper's three configurations. The same sampled layers
feed both numbers; the non-MoE parts of the step (dense projections of non-MoE layers, LM head,
embeddings) use the roofline in both. Writes ``replay.csv``, ``<model>.json`` and ``replay.png/.pdf``."""

from __future__ import annotations

from _common import CONFIGS, SYSTEM, done, parse_args, pyplot, save_figure, write_csv

from sieveopt.e2e import StepSettings
from sieveopt.e2e.plot import STYLE
from sieveopt.e2e.sweep import StepSweepSpec, result_rows, sweep_meta, timed_sweep, write_outputs
from sieveopt.models.catalog import load_model, load_system
from sieveopt.validation import replay_dram

POLICIES = ("noexp", "allexp", "duplex", "sieve", "sieve-plus", "cpsat")
BATCHES = (1, 16, 64, 256)
CPSAT_TIME_LIMIT_S = 1.0


def main(argv=None) -> int:
    args = parse_args("replay", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batches = (1, 16) if args.quick else BATCHES
    policies = ("noexp", "duplex", "sieve") if args.quick else POLICIES
    layers = 1 if args.quick else 4
    all_rows, per_model = [], []
    for name, gpus in configs:
        replay_dram.clear_cache()  # start each model with cold simulator caches (comparable run times)
        spec = StepSweepSpec(load_model(name), load_system(SYSTEM, gpus), tuple(batches), tuple(policies),
                         StepSettings(num_layers=layers, seed=args.seed), CPSAT_TIME_LIMIT_S)
        results, wall = timed_sweep(spec, args.cache, replay=True, out_dir=args.out)
        rows = result_rows(spec, results)
        for r in rows:
            rs = r.get("replay_step_us")
            r["replay_throughput_tok_s_per_gpu"] = (r["batch"] / (rs * 1e-6) / gpus) if rs else None
            r["replay_vs_predicted"] = (r["step_us"] / rs) if rs else None
        write_outputs(args.out, rows, sweep_meta(spec, wall, True), stem=name)
        all_rows += rows
        per_model.append((f"{name}, {gpus} GPU{'s' if gpus > 1 else ''}", rows))
        print(f"  {name}: {wall:.1f} s", flush=True)
    write_csv(args.out / "replay.csv", all_rows)
    plt = pyplot()
    fig, axes = plt.subplots(2, len(per_model), figsize=(4.6 * len(per_model), 6.4), squeeze=False, sharex=True)
    for col, (title, rows) in enumerate(per_model):
        top, bot = axes[0, col], axes[1, col]
        base = {(r["batch"], k): r[k] for r in rows if r["policy"] == "noexp"
                for k in ("throughput_tok_s_per_gpu", "replay_throughput_tok_s_per_gpu")}
        for i, pol in enumerate(policies):
            sub = sorted((r for r in rows if r["policy"] == pol), key=lambda r: r["batch"])
            color, marker = STYLE.get(pol, (f"C{i}", "o"))
            pred = [(r["batch"], r["throughput_tok_s_per_gpu"] / base[(r["batch"], "throughput_tok_s_per_gpu")])
                    for r in sub if base.get((r["batch"], "throughput_tok_s_per_gpu"))]
            rep = [(r["batch"], r["replay_throughput_tok_s_per_gpu"]
                    / base[(r["batch"], "replay_throughput_tok_s_per_gpu")])
                   for r in sub if r["replay_throughput_tok_s_per_gpu"]
                   and base.get((r["batch"], "replay_throughput_tok_s_per_gpu"))]
            top.plot(*zip(*pred, strict=True), color=color, marker=marker, linewidth=1.3, markersize=4, label=pol)
            if rep:
                top.plot(*zip(*rep, strict=True), color=color, marker=marker, linestyle="--", linewidth=1.0, markersize=4,
                         markerfacecolor="none")
            ratio = [(r["batch"], r["replay_throughput_tok_s_per_gpu"] / r["throughput_tok_s_per_gpu"])
                     for r in sub if r["replay_throughput_tok_s_per_gpu"]]
            if ratio:
                bot.plot(*zip(*ratio, strict=True), color=color, marker=marker, linewidth=1.2, markersize=4, label=pol)
        top.set_title(title, fontsize=9)
        top.axhline(1.0, color="grey", linewidth=0.8)
        bot.axhline(1.0, color="grey", linewidth=0.8)
        for ax in (top, bot):
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(batches), [str(b) for b in batches])
            ax.grid(True, alpha=0.25)
        bot.set_xlabel("batch size")
    axes[0, 0].set_ylabel("throughput / noexp's\n(solid: predicted, dashed: replayed)")
    axes[1, 0].set_ylabel("replayed / predicted throughput")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, args.out / "replay", dpi=80)
    done(args, "replay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
