"""Placement study: policy x GPU variability x forecast horizon, and forecast error by predictor.

Writes ``placement_study.json`` and figures ``placement_*.png`` under ``--out`` (default
docs/figures). Every number names its layer-time measure: ``surrogate`` (the placement
surrogate, by default the GPU/PIM-overlapped expert work, roofline) or ``dag`` (layer DAG +
Sieve, roofline cost model, serialized execution model).

    python benchmarks/placement_study.py            # ~15 min on a shared 2-core machine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sieveopt.models.catalog import load_model, load_system
from sieveopt.placement import compare_policies, drifting_trace, forecast_error, predict
from sieveopt.variability import variability_spec, with_variability


def system_for(name: str, gpus: int, var: float, seed: int = 0):
    return with_variability(load_system("sieve-b200-hbm3e-pim", gpus), variability_spec(var, seed=seed))


def grid(args) -> list[dict]:
    """Surrogate runs: policy x variability x re-placement period (forecast horizon)."""
    model = load_model("deepseek-v3")
    rows = []
    for var in (0.0, 0.1, 0.2):
        system = system_for("deepseek-v3", 8, var)
        for K in (0, 32, 16):
            pols = ["round-robin", "eplb", "gem"] + (["exact"] if K == 0 else [])
            d = compare_policies(model, system, policies=pols, steps=args.steps, history=32, batch=256,
                                 layers=[20], seed=args.seed, predictor="window", replace_every=K,
                                 mode="surrogate", time_limit_s=args.exact_time, workers=8,
                                 drift_segments=2)
            for p in d["policies"]:
                rows.append({"variability": var, "replace_every": K, "spread": d["variability"]["spread"], **p})
            print(f"grid var={var} K={K}: " + ", ".join(f"{p['policy']}={p['layer_mean_ns'] / 1e3:.1f}us"
                                                         for p in d["policies"]), flush=True)
    return rows


def dag_runs(args) -> list[dict]:
    """DAG + Sieve runs (static placement): DeepSeek-V3/8 at three spreads (with the exact
    optimiser on the overlap surrogate), paper configs at 0.1."""
    cases = [("deepseek-v3", 8, v) for v in (0.0, 0.1, 0.2)]
    cases += [("gpt-oss-120b", 4, 0.1), ("qwen3.5-397b-a17b", 8, 0.1)]
    rows = []
    for name, gpus, var in cases:
        model = load_model(name)
        pols = ["round-robin", "eplb", "gem"] + (["exact"] if name == "deepseek-v3" else [])
        d = compare_policies(model, system_for(name, gpus, var), policies=pols,
                             steps=args.dag_steps, history=32, batch=256, layers=[model.num_moe_layers // 2],
                             seed=args.seed, mode="dag", drift_segments=1, time_limit_s=args.exact_time)
        for p in d["policies"]:
            rows.append({"model": name, "gpus": gpus, "variability": var, "spread": d["variability"]["spread"], **p})
        print(f"dag {name}/{gpus} var={var}: " + ", ".join(
            f"{p['policy']}={p['layer_mean_ns'] / 1e3:.1f}us (share {p['straggler_share_mean']:.3f})"
            for p in d["policies"]), flush=True)
    return rows


def forecasts(args) -> list[dict]:
    """Forecast error (WAPE, hot-set recall) by predictor and horizon, 4 layers, drifting trace."""
    model = load_model("deepseek-v3")
    tr = drifting_trace(model, 256, 256, args.seed, [5, 20, 35, 50], segments=2)
    cnt = tr.counts().astype(float)
    rows = []
    for name in ("last", "mean", "ema", "window"):
        for K in (1, 8, 32, 128):
            errs = []
            for t in range(32, cnt.shape[0] - K + 1, 8):
                for j in range(cnt.shape[1]):
                    errs.append(forecast_error(predict(name, cnt[t - 32:t, j], window=32), cnt[t:t + K, j]))
            rows.append({"predictor": name, "horizon": K,
                         "wape": float(np.mean([e["wape"] for e in errs])),
                         "hot_recall": float(np.mean([e["hot_recall"] for e in errs]))})
            print(f"forecast {name} K={K}: {rows[-1]}", flush=True)
    return rows


def predictor_placements(args) -> list[dict]:
    """Straggler (surrogate) of GEM placements re-made every 16 steps from each predictor."""
    model = load_model("deepseek-v3")
    system = system_for("deepseek-v3", 8, 0.1)
    rows = []
    for name in ("last", "mean", "ema", "window", "oracle"):
        d = compare_policies(model, system, policies=["gem"], steps=args.steps, history=32, batch=256,
                             layers=[20], seed=args.seed, predictor=name, replace_every=16, mode="surrogate",
                             drift_segments=2)
        rows.append({"predictor": name, **d["policies"][0]})
        print(f"predictor {name}: gem re-placed every 16 -> {d['policies'][0]['layer_mean_ns'] / 1e3:.1f}us", flush=True)
    return rows


def per_step(args) -> list[dict]:
    """Per-step layer time (dag + Sieve), DeepSeek-V3/8, with and without variability."""
    model = load_model("deepseek-v3")
    rows = []
    for var in (0.0, 0.2):
        d = compare_policies(model, system_for("deepseek-v3", 8, var), policies=["round-robin", "gem"],
                             steps=args.dag_steps * 2, history=32, batch=256, layers=[29], seed=args.seed,
                             mode="dag", per_step=True)
        for p in d["policies"]:
            rows.append({"variability": var, "spread": d["variability"]["spread"], "policy": p["policy"],
                         "layer_ns": [x[0] for x in p["per_step"]["layer_ns"]],
                         "straggler_share": [x[0] for x in p["per_step"]["straggler_share"]]})
        print(f"per-step var={var} done", flush=True)
    return rows


def per_step_figure(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    for r in rows:
        ls = "-" if r["policy"] == "gem" else "--"
        lab = f"{r['policy']}, spread {r['spread']:.2f}"
        ax[0].plot(np.array(r["layer_ns"]) / 1e3, ls, label=lab)
        ax[1].plot(r["straggler_share"], ls, label=lab)
    ax[0].set(xlabel="decode step", ylabel="layer time, us (dag + Sieve)", title="DeepSeek-V3, 8 GPUs, B=256")
    ax[1].set(xlabel="decode step", ylabel="1 - mean/max expert-phase end", title="straggler share")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "placement_per_step.png", dpi=120)
    plt.close(fig)


def figures(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = res["grid"]
    pols = ["round-robin", "eplb", "gem", "exact"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
    for ax, K in zip(axes, (0, 32, 16), strict=True):
        for i, pol in enumerate(pols):
            pts = [r for r in g if r["replace_every"] == K and r["policy"] == pol]
            if pts:
                ax.bar(np.arange(3) + 0.2 * i - 0.3, [r["moe_tpot_with_move_ns"] / 1e6 for r in pts], 0.2, label=pol)
        ax.set_xticks(range(3), ["0", "0.1", "0.2"])
        ax.set(title="static" if K == 0 else f"re-place every {K} steps", xlabel="GPU speed spread")
    axes[0].set_ylabel("MoE part of TPOT, ms (surrogate)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "placement_policy_variability_horizon.png", dpi=120)
    plt.close(fig)

    f = res["forecast"]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    for name in ("last", "mean", "ema", "window"):
        pts = [r for r in f if r["predictor"] == name]
        ax[0].plot([r["horizon"] for r in pts], [r["wape"] for r in pts], marker="o", label=name)
        ax[1].plot([r["horizon"] for r in pts], [r["hot_recall"] for r in pts], marker="o", label=name)
    for a, lab in zip(ax, ("WAPE of mean per-expert load", "top-10 % hot-set recall"), strict=True):
        a.set(xscale="log", xlabel="forecast horizon (steps)", title=lab)
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "placement_forecast_error.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--dag-steps", type=int, default=24)
    ap.add_argument("--exact-time", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["per-step", "dag"], default=None,
                    help="run one part only (dag: replaces the dag rows of an existing placement_study.json)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only == "per-step":
        rows = per_step(args)
        (out / "placement_per_step.json").write_text(json.dumps(rows))
        per_step_figure(rows, out)
        return
    if args.only == "dag":
        path = out / "placement_study.json"
        res = json.loads(path.read_text())
        res["dag"] = dag_runs(args)
        path.write_text(json.dumps(res, indent=1, default=float))
        return
    t0 = time.time()
    res = {"forecast": forecasts(args), "predictor_placements": predictor_placements(args),
           "grid": grid(args), "dag": dag_runs(args)}
    res["wall_s"] = time.time() - t0
    (out / "placement_study.json").write_text(json.dumps(res, indent=1, default=float))
    figures(res, out)
    print(f"done in {res['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
