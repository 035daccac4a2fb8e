"""Convergence of Sieve's runtime PIM cost table: its error vs decode step on a replayed trace.

Sieve keeps "an exponential moving average of the observed PIM GEMV execution times" per token
count and uses the roofline "only as a one-time fallback"; the table "converges within the
first few iterations" (papers.md §1.5). Here one MoE layer is followed for N decode steps of a
routing trace (calibrated generator): at every step Sieve plans on its table so far
(:class:`sieveopt.models.table.ObservedTables`, smoothing 0.25), the schedule is replayed on the
DRAM/PIM + NVLink simulators (serialized execution model: one layer's DAG), and the table's
mean |error| on that step's PIM expert jobs *before* folding them in is recorded, next to the
roofline's error on the same jobs. Qwen3-30B-A3B on 1 GPU and GPT-OSS-120B (MXFP4 experts) on 4,
B = 64 (bf16 for Qwen3, MXFP4 for GPT-OSS: the public checkpoints' precisions).
"""

from __future__ import annotations

import numpy as np
from _common import SYSTEM, done, parse_args, pyplot, save_figure, write_csv

from sieveopt.dag import DagOptions
from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.table import ObservedTables
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers.sched_latency import resolve
from sieveopt.validation.replay import replay
from sieveopt.workload import generate_for_model

CONFIGS = (("qwen3-30b-a3b", 1), ("gpt-oss-120b", 4))
BATCH = 64


def trace_errors(name: str, gpus: int, steps: int, seed: int) -> list[dict]:
    model, system = load_model(name), load_system(SYSTEM, gpus)
    layer = model.num_moe_layers // 2
    trace = generate_for_model(model, BATCH, steps, seed, layers=[layer])
    tables = ObservedTables(system, model)
    opts = DagOptions(scheduler_latency_ns=resolve("sieve").ns)
    for step in range(steps):
        inst = LayerInstance.from_expert_ids(model, system, trace.expert_ids[step, 0], moe_layer=layer,
                                             step=step, context_lens=np.full(BATCH, DEFAULT_CONTEXT_LEN_TOKENS))
        table = tables.table("sieve")
        dag, _ = build_dag(inst, table, opts)
        run = run_layer(inst, "sieve", dag=dag, cost=table)
        tables.observe("sieve", replay(run.result.schedule, run.dag, system, instance=inst), run.dag)
    return [{"model": name, "precision": model.expert_precision, "gpus": gpus, "batch": BATCH, "step": i,
             **{k: v for k, v in h.items() if k not in ("policy", "layer")}} for i, h in enumerate(tables.history)]


def main(argv=None) -> int:
    args = parse_args("table_convergence", __doc__, argv)
    configs = CONFIGS[:1] if args.quick else CONFIGS
    steps = 6 if args.quick else 24
    rows = [r for name, g in configs for r in trace_errors(name, g, steps, args.seed)]
    write_csv(args.out / "table_convergence.csv", rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (name, _g), color in zip(configs, ("#d62728", "#1f77b4"), strict=False):
        mine = [r for r in rows if r["model"] == name]
        x = [r["step"] for r in mine]
        prec = mine[0]["precision"]
        ax.plot(x, [100 * r["mean_abs_err"] for r in mine], marker="o", markersize=3, color=color,
                label=f"{name} ({prec}): runtime table")
        ax.plot(x, [100 * r["roofline_mean_abs_err"] for r in mine], linestyle="--", color=color, alpha=0.6,
                label=f"{name} ({prec}): roofline")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("decode step (one MoE layer, B = 64)")
    ax.set_ylabel("mean |error| of PIM expert time (%)")
    ax.set_title("Sieve's runtime PIM cost table vs replayed PIM job times", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, args.out / "table_convergence")
    done(args, "table_convergence")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
