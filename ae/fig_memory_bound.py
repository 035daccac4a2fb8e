"""Memory-bound fraction of activated routed experts per model and batch, three thresholds:

* N <= 4 (the paper's "memory-bound" definition, Sieve §3.3);
* N below the GPU ridge: the expert GEMM is bandwidth-bound on the GPU under the roofline cost
  model (FLOPs / sustained FLOP/s < bytes / sustained B/s), i.e. N < N_ridge;
* N below the PIM crossover: the expert runs faster on PIM (``pim_gemv_ns``: job overhead +
  N serial GEMVs + token I/O) than as a GPU GEMM body (no launch overhead: inside a grouped GEMM).

Thresholds come from the roofline cost model of the paper's system preset as shipped (per GPU,
so independent of the GPU count); routed experts only (the shared expert always has N = B).
"""

from __future__ import annotations

import numpy as np
from _common import SYSTEM, done, parse_args, pyplot, save_figure, write_csv

from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import MODE_GPU, Work
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.workload import generate_for_model

MODELS = ("qwen3-30b-a3b", "gpt-oss-120b", "qwen3.5-397b-a17b", "qwen3-next-80b-a3b")


def thresholds(model, system) -> tuple[int, int]:
    """(N_ridge, N_cross): smallest N that is compute-bound on the GPU / faster on the GPU."""
    cm = RooflineCostModel(system, model, include_kernel_overhead=False)
    H, act = model.hidden_size, model.activation_bytes
    ridge = cross = None
    for n in range(1, 1 << 14):
        w = Work("expert", n, model.expert_flops(n), model.expert_weight_bytes, 2 * n * H * act, launches=0)
        if ridge is None and w.flops / cm.gpu_flops_per_ns >= (w.weight_bytes + w.act_bytes) / cm.gpu_bytes_per_ns:
            ridge = n
        if cross is None and cm.pim_gemv_ns(model.expert_weight_bytes, n) > cm.duration_ns(w, MODE_GPU):
            cross = n
        if ridge and cross:
            break
    return int(ridge or 1 << 14), int(cross or 1 << 14)


def main(argv=None) -> int:
    args = parse_args("memory_bound", __doc__, argv)
    models = MODELS[:1] if args.quick else MODELS
    batches = (4, 64) if args.quick else (1, 4, 16, 64, 256, 1024)
    steps, n_layers = (2, 2) if args.quick else (8, 8)
    system = load_system(SYSTEM, 1)
    rows = []
    for name in models:
        model = load_model(name)
        ridge, cross = thresholds(model, system)
        layers = sorted(np.random.default_rng(args.seed).choice(model.num_moe_layers, n_layers, replace=False).tolist())
        for b in batches:
            cnt = generate_for_model(model, b, steps, args.seed, layers=layers).counts()
            act = cnt[cnt > 0]
            rows.append({"model": name, "batch": b, "n_ridge": ridge, "n_pim_crossover": cross,
                         "frac_n_le_4": float((act <= 4).mean()), "frac_below_ridge": float((act < ridge).mean()),
                         "frac_below_pim_crossover": float((act < cross).mean()),
                         "activated_experts_mean": float((cnt > 0).sum(-1).mean())})
    write_csv(args.out / "memory_bound.csv", rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.1), sharey=True)
    keys = (("frac_n_le_4", "N <= 4"), ("frac_below_ridge", "N < GPU ridge"),
            ("frac_below_pim_crossover", "N < PIM crossover"))
    for ax, (key, label) in zip(axes, keys, strict=True):
        for name in models:
            sub = [r for r in rows if r["model"] == name]
            extra = {"frac_below_ridge": f" (N<{sub[0]['n_ridge']})",
                     "frac_below_pim_crossover": f" (N<{sub[0]['n_pim_crossover']})"}.get(key, "")
            ax.plot([r["batch"] for r in sub], [r[key] for r in sub], marker="o", label=name + extra)
        ax.set_xscale("log", base=2)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("batch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("share of activated routed experts")
    fig.tight_layout()
    save_figure(fig, args.out / "memory_bound")
    done(args, "memory_bound")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
