"""Replay studies (DESIGN.md §7): every number measured on the simulators, not the cost model.

Sub-studies (``--study all`` runs them in order):

* ``pimroof``: roofline vs simulated PIM expert time per token count (the paper reports the
  roofline overestimating by 1.8-4.2x; we report what our simulator says, untuned).
* ``gap``: optimality gap on replay. Sieve, sieve-plus and the baselines against CP-SAT's
  schedule, all replayed (scheduler latency 0, so only the decisions differ), per model and
  batch of the paper's three configurations; median and p95 over layers. CP-SAT's solve time
  is printed beside it (offline: never on the critical path here).
The measurements are the study layer's (:mod:`sieveopt.study`: ``run_study`` + ``layer_gaps``,
``fidelity_study``, ``replayed_latency_budget``, ``bandwidth_study``); this script formats them.

* ``fidelity``: roofline vs table (fed from replays of earlier layers, the paper's runtime
  behaviour) vs calibrated: cost-model error per task kind against the replay.
* ``latency``: replayed layer time as the scheduler latency grows from 0 to 100 us, with the
  paper's 20 us budget and our measured Sieve latency marked (CSV + PNG).
* ``pimbw``: sensitivity to the PIM internal bandwidth (``hbm_pim.pim.internal_bw_multiplier``
  4..16, mapped to the DRAM preset's ``pim.nCCDMAC``), Sieve vs GPU-only, replayed.

    .venv/bin/python benchmarks/replay_studies.py --study all --layers 3 --time-limit 3
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import time
from pathlib import Path

import numpy as np

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import PAPER_CONFIGS, SYSTEM, configs

from sieveopt.solvers import policy_with_role

RESULTS = Path(__file__).parent / "results"
CONFIGS = tuple(configs(list(PAPER_CONFIGS)))
#: The registry's reference policy (CP-SAT): the gaps are measured against it.
REF = policy_with_role("reference")
BASELINES = ("gpu_only", "noexp", "allexp", "pimoe", "duplex")


def _p95(xs: list[float]) -> float:
    return float(np.percentile(xs, 95)) if xs else float("nan")


def _md(title: str, cols: list[str], rows: list[list]) -> str:
    out = [f"\n#### {title}\n", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _layers(model_name: str, gpus: int, batch: int, n: int, seed: int, overrides=None):
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system

    _fresh_caches()
    model = load_model(model_name)
    system = load_system(SYSTEM, gpus, overrides)
    return model, system, sample_layers(model, system, batch, n, seed)


def _fresh_caches() -> None:
    """Start every configuration with empty simulator caches, so each configuration's replay
    times include its own simulations (the caches are keyed by preset and model shape)."""
    from sieveopt.validation import replay_dram

    replay_dram.clear_cache()


def _write_csv(path: Path, rows: list[dict]) -> None:
    from sieveopt.fileio import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------- gap
def study_gap(args) -> str:
    from sieveopt.study import layer_gaps, run_study
    from sieveopt.validation.replay import make_timer

    policies = ("sieve", "sieve-plus", *BASELINES)
    out = []
    for model_name, gpus in CONFIGS:
        for batch in args.batches:
            model, system, layers = _layers(model_name, gpus, batch, args.layers, args.seed)
            timer = make_timer(system, model, args.memory)
            rows_, runs = run_study(layers, (REF, *policies), time_limit_s=args.time_limit, replay=True,
                                    keep_runs=True, replay_kwargs={"timer": timer, "scheduler_latency_ns": 0})
            by_layer: dict[int, dict] = {}
            for r in rows_:
                by_layer.setdefault(r.layer_index, {})[r.policy] = r
            predicted = [{p: {"makespan_ns": r.makespan_ns} for p, r in lay.items()} for lay in by_layer.values()]
            replayed = [{p: {"makespan_ns": r.replay_makespan_ns} for p, r in lay.items()} for lay in by_layer.values()]
            gaps = {p: [100.0 * g for g in layer_gaps(replayed, p, REF)[0]] for p in policies}
            pred_gaps = {p: [100.0 * g for g in layer_gaps(predicted, p, REF)[0]] for p in policies}
            cp = [lay[REF] for lay in by_layer.values()]
            cp_solve = [run[REF].result.wall_s for run in runs]
            cp_status, cp_replay = [c.status for c in cp], [c.replay_makespan_ns for c in cp]
            rows = [[p, f"{statistics.median(gaps[p]):+.2f}%", f"{_p95(gaps[p]):+.2f}%",
                     f"{statistics.median(pred_gaps[p]):+.2f}%"] for p in policies]
            status = ",".join(sorted(set(cp_status)))
            out.append(_md(f"gap on replay vs CP-SAT: {model_name}, {gpus} GPU(s), B={batch}, {len(layers)} layers "
                           f"(CP-SAT replayed median {statistics.median(cp_replay) / 1e3:.1f} us, solve "
                           f"{statistics.median(cp_solve):.2f} s median, status {status})",
                           ["policy", "replay gap median", "replay gap p95", "predicted gap median"], rows))
            print(out[-1], flush=True)
    return "\n".join(out)


# --------------------------------------------------------------------------- fidelity
def study_fidelity(args) -> str:
    from sieveopt.study import fidelity_study
    from sieveopt.validation.replay import make_timer

    out = []
    for model_name, gpus in CONFIGS:
        batch = args.batches[-1]
        model, system, layers = _layers(model_name, gpus, batch, args.layers + args.warmup, args.seed + 1)
        timer = make_timer(system, model, args.memory)
        warm, test = layers[: args.warmup], layers[args.warmup:]
        errs, mk = fidelity_study(model, system, layers, warmup=args.warmup, timer=timer)
        kinds = [k for k in sorted(errs) if k not in ("sched", "launch")]
        rows = [[k, *(f"{statistics.median(errs[k][n]):.1f}%" if n in errs[k] else "-"
                      for n in ("roofline", "table", "calibrated"))] for k in kinds]
        rows.append(["**layer makespan**", *(f"{statistics.median(mk[n]):.1f}%" for n in ("roofline", "table", "calibrated"))])
        out.append(_md(f"cost-model error vs replay (median |%| per task kind): {model_name}, {gpus} GPU(s), "
                       f"B={batch}, {len(test)} layers after {len(warm)} table warm-up layers",
                       ["kind", "roofline", "table (fed)", "calibrated"], rows))
        print(out[-1], flush=True)
    return "\n".join(out)


# --------------------------------------------------------------------------- pimroof
def study_pimroof(args) -> str:
    """Roofline PIM expert time vs the DRAM/PIM simulator's, per token count (no tuning)."""
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.validation.replay import make_timer

    toks = (1, 2, 4, 8, 16, 32, 64)
    out = []
    for model_name, gpus in CONFIGS:
        model = load_model(model_name)
        system = load_system(SYSTEM, gpus)
        if args.memory != "dram":
            continue
        timer = make_timer(system, model, "dram")
        roof = make_cost_model("roofline", system, model)
        rows = []
        for n in toks:
            sim = timer.pim_expert_ns(n)
            rf = roof.pim_gemv_ns(model.expert_weight_bytes, n)
            rows.append([n, f"{rf / 1e3:.2f}", f"{sim / 1e3:.2f}", f"{rf / sim:.2f}x",
                         f"{n * model.expert_weight_bytes / sim:.0f}"])
        bw = timer.bandwidth_check()
        out.append(_md(f"roofline vs simulated PIM expert time: {model_name} (d={model.hidden_size}, "
                       f"f={model.expert_intermediate_size}, {model.expert_weight_bytes_per_param} B/param), "
                       f"preset {timer.preset}, PIM peak {bw['preset_pim_peak_GBps'] / 1e3:.1f} TB/s",
                       ["tokens", "roofline us", "simulated us", "roofline / simulated", "simulated GB/s"], rows))
        print(out[-1], flush=True)
    return "\n".join(out)


# --------------------------------------------------------------------------- latency
def study_latency(args) -> str:
    from sieveopt.study import replayed_latency_budget
    from sieveopt.validation.replay import make_timer

    lat_us = list(range(0, 101, 5))
    csv_rows, out = [], []
    fig_data = []
    for model_name, gpus in CONFIGS[1:]:
        batch = args.batches[-1]
        model, system, layers = _layers(model_name, gpus, batch, args.layers, args.seed + 2)
        timer = make_timer(system, model, args.memory)
        lb = replayed_latency_budget(layers, lat_us, timer=timer)
        per_lat, decision, dispatch_end = lb["layer_us"], lb["decision_us"], lb["dispatch_window_us"]
        base = statistics.median(per_lat[0])
        for x in lat_us:
            m = statistics.median(per_lat[x])
            csv_rows.append({"model": model_name, "gpus": gpus, "batch": batch, "sched_latency_us": x,
                             "replayed_us_median": round(m, 3), "slowdown_pct": round(100 * (m / base - 1), 3)})
        dec = statistics.median(decision)
        fig_data.append((model_name, gpus, batch, lat_us, [statistics.median(per_lat[x]) for x in lat_us], dec))
        rows = [[x, f"{statistics.median(per_lat[x]):.1f}", f"{100 * (statistics.median(per_lat[x]) / base - 1):+.1f}%"]
                for x in lat_us if x in (0, 5, 10, 20, 30, 50, 100)]
        out.append(_md(f"scheduler latency budget: {model_name}, {gpus} GPUs, B={batch}, {len(layers)} layers; "
                       f"measured Sieve decision latency {dec:.1f} us (median); dispatch window after the "
                       f"AllGather {statistics.median(dispatch_end):.1f} us",
                       ["sched latency us", "replayed layer us", "vs 0"], rows))
        print(out[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    _write_csv(RESULTS / "replay_latency.csv", csv_rows)
    _plot_latency(fig_data, RESULTS / "replay_latency.png")
    return "\n".join(out) + "\n\n(CSV: benchmarks/results/replay_latency.csv, plot: benchmarks/results/replay_latency.png)"


def _plot_latency(fig_data, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sieveopt.fileio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for model_name, gpus, batch, xs, ys, dec in fig_data:
        line, = ax.plot(xs, ys, marker="o", ms=3, label=f"{model_name} ({gpus} GPUs, B={batch})")
        ax.axvline(dec, color=line.get_color(), ls=":", lw=1)
    ax.axvline(20, color="k", ls="--", lw=1, label="paper's 20 us budget")
    ax.set_xlabel("scheduler latency on the critical path (us)")
    ax.set_ylabel("replayed layer time (us)")
    ax.set_title("Replayed layer time vs scheduler latency (dotted: measured Sieve)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- pimbw
def study_pimbw(args) -> str:
    from sieveopt.study import bandwidth_study

    out = []
    for model_name, gpus in CONFIGS[1:]:
        batch = args.batches[-1]
        rows = []
        ref = None
        for r in bandwidth_study(model_name, gpus, batch, (4, 6, 8, 12, 16), layers=args.layers, seed=args.seed + 3,
                                 memory=args.memory):
            s, gq = r["sieve_us"], r["gpu_only_us"]
            ref = ref or s
            rows.append([int(r["multiplier"]), f"{r['simulated_multiplier']:.1f}", r["nCCDMAC"],
                         f"{100 * r['pim_fraction']:.0f}%", f"{s:.1f}", f"{gq:.1f}", f"{gq / s:.2f}x"])
        out.append(_md(f"PIM internal bandwidth sensitivity: {model_name}, {gpus} GPUs, B={batch}, {args.layers} layers "
                       "(replayed medians)",
                       ["multiplier", "simulated x", "nCCDMAC", "experts on PIM", "Sieve us", "GPU-only us",
                        "Sieve speed-up"], rows))
        print(out[-1], flush=True)
    return "\n".join(out)


STUDIES = {"pimroof": study_pimroof, "gap": study_gap, "fidelity": study_fidelity, "latency": study_latency,
           "pimbw": study_pimbw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default="all", choices=(*STUDIES, "all"))
    ap.add_argument("--layers", type=int, default=3, help="sampled layers per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="layers that feed the table before the fidelity test")
    ap.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[64, 256])
    ap.add_argument("--time-limit", type=float, default=3.0, help="CP-SAT time limit per layer (s)")
    ap.add_argument("--memory", default="dram", choices=("dram", "analytic"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the markdown tables here")
    ap.add_argument("--configs", default=None,
                    help="comma-separated model names to keep (default: the paper's three)")
    args = ap.parse_args()
    if args.configs:
        keep = set(args.configs.split(","))
        global CONFIGS
        CONFIGS = tuple(c for c in CONFIGS if c[0] in keep)
    t0 = time.perf_counter()
    parts = [f"replay studies (memory={args.memory}, layers={args.layers}, batches={args.batches}, "
             f"CP-SAT limit {args.time_limit} s)"]
    for name, fn in STUDIES.items():
        if args.study in (name, "all"):
            parts.append(f"\n### {name}\n" + fn(args))
    parts.append(f"\n(total {time.perf_counter() - t0:.0f} s)")
    if args.out:
        from sieveopt.fileio import atomic_write_text

        atomic_write_text(args.out, "\n".join(parts) + "\n")
    print(parts[-1])


if __name__ == "__main__":
    main()
