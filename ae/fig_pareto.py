"""Throughput (generated tokens/s per GPU) vs interactivity (tokens/s per user) for every policy,
batch 1..256, on the paper's three configurations (``sieveopt.e2e``; same sampled layers for
every policy). Writes ``<model>.csv/.json/.png/.pdf`` per configuration and ``pareto_all.png``."""

from __future__ import annotations

from _common import BATCHES, CONFIGS, SYSTEM, done, parse_args, pyplot, save_figure

from sieveopt.e2e import DEFAULT_POLICIES, StepSettings
from sieveopt.e2e.plot import pareto_axes
from sieveopt.e2e.sweep import StepSweepSpec, result_rows, sweep_meta, timed_sweep, write_outputs
from sieveopt.models.catalog import load_model, load_system

CPSAT_TIME_LIMIT_S = 2.0


def main(argv=None) -> int:
    args = parse_args("pareto", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batches = (1, 32) if args.quick else BATCHES
    policies = ("noexp", "duplex", "sieve") if args.quick else DEFAULT_POLICIES
    layers = 1 if args.quick else 4
    per_model = []
    for name, gpus in configs:
        spec = StepSweepSpec(load_model(name), load_system(SYSTEM, gpus), tuple(batches), tuple(policies),
                         StepSettings(num_layers=layers, seed=args.seed), CPSAT_TIME_LIMIT_S)
        results, wall = timed_sweep(spec, args.cache, out_dir=args.out)
        rows = result_rows(spec, results)
        write_outputs(args.out, rows, sweep_meta(spec, wall, False), stem=name)
        per_model.append((f"{name}, {gpus} GPU{'s' if gpus > 1 else ''}", rows))
        print(f"  {name}: {wall:.1f} s", flush=True)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(per_model), figsize=(5.2 * len(per_model), 4.2), squeeze=False)
    for ax, (title, rows) in zip(axes[0], per_model, strict=True):
        pareto_axes(ax, rows, title)
    fig.tight_layout()
    save_figure(fig, args.out / "pareto_all", dpi=80)
    done(args, "pareto")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
