"""PIM utilisation per pseudo-channel: PIMoE's expert parallelism vs Sieve's tensor parallelism.

GPT-OSS-120B on 4 GPUs (the paper's configuration), both expert precisions (``gpt-oss-120b``:
MXFP4 experts as published; ``gpt-oss-120b-bf16``: the paper's bfloat16), B = 16/64/256
(``--quick``: MXFP4, B = 64). For each sampled MoE layer the policy's schedule is replayed on
the DRAM/PIM + NVLink simulators (roofline cost model for the DAG; serialized execution model:
one layer's DAG, no micro-batch overlap) and the busy fraction of the replayed layer is read per
PIM resource:

* PIMoE runs expert-parallel over channel groups (``DagOptions.pim_parallelism="ep"``, one group
  of C/32 = 8 pseudo-channels per expert the GPU holds): each group's busy fraction is drawn on
  its channels;
* Sieve shards every expert over all 256 pseudo-channels of its GPU: one busy fraction per GPU.

The Sieve paper (Fig. 10) shows the same contrast: PIMoE's expert parallelism over PIM channels
leaves "some channels heavily loaded and others idle", Sieve's tensor parallelism keeps them
uniform (papers.md §1.1, issue 12).
"""

from __future__ import annotations

import numpy as np
from _common import SYSTEM, done, parse_args, pyplot, save_figure, write_csv

from sieveopt.dag import DagOptions
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pim_groups import RES_PIM_GROUP
from sieveopt.pipeline import run_layer
from sieveopt.solvers.sched_latency import resolve
from sieveopt.validation.replay import replay

GPUS = 4
POLICIES = ("pimoe", "sieve")


def channel_util(rep, dag, num_gpus: int, channels: int) -> np.ndarray:
    """Busy fraction of every pseudo-channel (GPU-major) in a replayed layer."""
    util = rep.utilisation
    out = np.zeros(num_gpus * channels)
    groups = dag.meta.get("pim_group_channels")
    for g in range(num_gpus):
        if groups is None:
            out[g * channels:(g + 1) * channels] = util[f"pim[{g}]"]
            continue
        lo = 0
        for k, c in enumerate(groups):
            out[g * channels + lo:g * channels + lo + c] = util[f"{RES_PIM_GROUP}[{g}.{k}]"]
            lo += c
    return out


def main(argv=None) -> int:
    args = parse_args("pim_channels", __doc__, argv)
    models = ("gpt-oss-120b",) if args.quick else ("gpt-oss-120b", "gpt-oss-120b-bf16")
    batches = (64,) if args.quick else (16, 64, 256)
    layers = 1 if args.quick else 3
    rows, curves = [], {}
    for name in models:
        model, system = load_model(name), load_system(SYSTEM, GPUS)
        C = system.hbm_pim.pseudo_channels_per_gpu
        for b in batches:
            insts = sample_layers(model, system, b, layers, args.seed)
            for pol in POLICIES:
                acc = np.zeros(GPUS * C)
                for inst in insts:
                    run = run_layer(inst, pol, options=DagOptions(scheduler_latency_ns=resolve(pol).ns))
                    rep = replay(run.result.schedule, run.dag, system, instance=inst)
                    acc += channel_util(rep, run.dag, GPUS, C) / len(insts)
                curves[(name, b, pol)] = acc
                ep = run.dag.options.pim_parallelism == "ep"   # the DAG the policy executed on
                rows.append({"model": name, "precision": model.expert_precision, "gpus": GPUS, "batch": b,
                             "policy": pol, "pim_execution": run.dag.options.pim_parallelism,
                             "layers": len(insts), "mean": float(acc.mean()), "min": float(acc.min()),
                             "max": float(acc.max()), "cv": float(acc.std() / max(acc.mean(), 1e-12)),
                             "idle_channel_frac": float(np.mean(acc <= acc.min() + 1e-9)) if ep else 0.0})
    write_csv(args.out / "pim_channels.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(len(models) * len(batches), 1, figsize=(8.0, 1.9 * len(models) * len(batches)),
                             squeeze=False, sharex=True)
    i = 0
    for name in models:
        prec = load_model(name).expert_precision
        for b in batches:
            ax = axes[i, 0]
            i += 1
            for pol, color in zip(POLICIES, ("#9467bd", "#d62728"), strict=True):
                y = curves[(name, b, pol)]
                lbl = f"{pol} ({'expert-parallel groups' if pol == 'pimoe' else 'tensor-parallel'})"
                ax.step(np.arange(len(y)), y, where="post", color=color, linewidth=0.9, label=lbl)
            for g in range(1, GPUS):
                ax.axvline(g * len(y) / GPUS, color="#999999", linewidth=0.6, linestyle=":")
            ax.set_ylim(0, 1.02)
            ax.set_ylabel("busy")
            ax.set_title(f"{name} ({prec} experts), 4 GPUs, B={b}: PIM busy fraction per pseudo-channel "
                         f"(replayed, mean of {layers} layer(s))", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("pseudo-channel (GPU 0 .. 3, 256 each)")
    fig.tight_layout()
    save_figure(fig, args.out / "pim_channels")
    done(args, "pim_channels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
