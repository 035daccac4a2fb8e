"""TriMoE's offloading tier (issue 16): policies, utilisation, ablation, replayed vs predicted.

System ``trimoe-h100-xeon-ndp`` (one H100, AMX Xeon 8470, 16 DDR5-4800 DIMM-NDPs; OPEN values as
in its TOML), models DeepSeek-V2, Qwen3-235B-A22B and GLM-4.5-Air (BF16 experts), decode batches
64..512. Execution model: **serial** (one MoE layer's DAG, no micro-batch overlap); cost model:
**roofline** (the targets' cost hooks, :mod:`sieveopt.offload_tiers`); no scheduler latency
charged (0 ns for every policy, so the policies are compared on their decisions alone). Each
sampled layer (seed 0) is drawn at decode step 8 of the routing generator, the 8 steps before it
being the prefetch predictor's history (:func:`sieveopt.trimoe_prefetch.sample_with_history`).
Every policy's schedule is list-scheduled (predicted) and replayed on the
simulators (the H100's HBM on the DRAM simulator, PCIe on the interconnect simulator, host reads
and rank-level NDP jobs on the DDR5 simulator; :mod:`sieveopt.validation.replay_offload`).

Policies: ``trimoe`` (hot/warm/cold + bottleneck-aware greedy), the paper's baselines
``gpu-cpu``, ``gpu-ndp``, ``gpu-fetch``, ``cpsat`` (2 s wall limit, warm-started from trimoe) and
two ablations of trimoe's planner (``trimoe-nocpu``: the same planner with the CPU unit's times
set above any makespan, so it is never chosen; ``trimoe-norefine``: the planner's ``refine=False``,
the greedy pass without the bottleneck moves). Variants of the same layer, each with ``trimoe``
and ``cpsat`` (rows ``<policy>+<variant>``; gaps against the variant's own cpsat): ``prefetch``
(the 2 EMA-predicted experts of this layer are HBM-resident, 2 of the next layer's are fetched
over PCIe during this one: :mod:`sieveopt.trimoe_prefetch`; left out where the HBM cannot hold
4 expert buffers) and ``hostmem`` (CPU jobs and PCIe fetches share the host memory bandwidth:
:mod:`sieveopt.offload_host_memory`). The relayout-off ablation runs on its own evaluator
(``trimoe_relayout.csv``, :func:`relayout_rows`: static layout vs the EMA relayout over a
drifting trace, B = 64). Throughput = B / (median layer makespan x MoE layers): MoE layers only (their
attention included), dense layers, embeddings and the LM head left out.

Outputs (``--out``, default ae/out/trimoe): ``trimoe.csv`` (one row per model, batch, layer,
policy), ``trimoe_summary.md`` (with the relayout table), ``trimoe_relayout.csv``, figures ``trimoe_throughput.png`` (tokens/s by policy over B),
``trimoe_util.png`` (replayed GPU/PCIe/CPU/NDP busy fractions), ``trimoe_replay.png`` (replayed
vs predicted).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from _common import done, group_bars, parse_args, pyplot, save_figure, write_csv

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH, MODE_NDP
from sieveopt.pipeline import run_layer
from sieveopt.solvers import solve
from sieveopt.solvers.sieve import finish
from sieveopt.solvers.trimoe import trimoe_inputs
from sieveopt.solvers.trimoe_ref import trimoe_plan_ref
from sieveopt.targets import MODE_GPU
from sieveopt.trimoe_prefetch import prefetch_buffers, prefetch_options, sample_with_history
from sieveopt.validation.gpu_model import GpuModel
from sieveopt.validation.replay import make_timer, replay

SYSTEM = "trimoe-h100-xeon-ndp"
MODELS = ("deepseek-v2", "qwen3-235b-a22b", "glm-4.5-air")
POLICIES = ("trimoe", "gpu-cpu", "gpu-ndp", "gpu-fetch", "cpsat")
ABLATIONS = ("trimoe-nocpu", "trimoe-norefine")
#: DAG variants of the same layer, each run with trimoe and cpsat: next-layer prefetch of
#: ``PREFETCH_EXPERTS`` EMA-predicted experts (sieveopt.trimoe_prefetch), and host memory shared by
#: CPU jobs and PCIe fetches (sieveopt.offload_host_memory).
PREFETCH_EXPERTS = 2
VARIANTS = ("prefetch", "hostmem")
VARIANT_ROWS = tuple(f"{p}+{v}" for v in VARIANTS for p in ("trimoe", "cpsat"))
CPSAT_LIMIT_S = 2.0
RELAYOUT_HISTORY = 32
_UNIT_MODE = (MODE_GPU_FETCH, MODE_CPU, MODE_NDP)


def ablation(name: str, dag, inst, cost):
    """A trimoe ablation's schedule (list-scheduled like every policy). Refinement off is the
    planner's own switch (``trimoe`` with ``refine=False``)."""
    if name == "trimoe-norefine":
        return solve("trimoe", dag, inst, cost, impl="ref", refine=False)
    t0 = time.perf_counter()
    modes: dict[int, str] = {}
    for inp in trimoe_inputs(dag, inst):
        big = inp.t_cpu.copy()               # CPU tier off: its times above any makespan
        big[:] = 1 << 50
        unit, _, _ = trimoe_plan_ref(inp.t_gpu.tolist(), big.tolist(), inp.t_ndp.tolist(), inp.tokens.tolist(),
                                     inp.n_warm, inp.base_gpu_ns, inp.num_dimms,
                                     homes=None if inp.homes is None else inp.homes.tolist())
        for e, u in zip(inp.experts.tolist(), unit, strict=True):
            modes[e] = _UNIT_MODE[min(u, 2)]
    return finish(dag, name, modes, attention=MODE_GPU, wall_t0=t0, decision_ns=0)


def _util(rep, dag, gpu_model, g: int = 0) -> dict[str, float]:
    """Replayed busy fractions of the GPU stream, PCIe, CPU and NDP units, and the GPU's compute
    fraction (its tasks' FLOP time in the replay's GPU model / the replayed makespan: the GPU
    stream is "busy" while a fetch job waits for PCIe)."""
    u = rep.utilisation
    out = {k: round(u.get(f"{k}[{g}]", 0.0), 4) for k in ("gpu", "pcie", "cpu", "ndp")}
    gpu_rid = dag.resource("gpu", g).rid
    flops_ns = sum(gpu_model.kernel(t.work).compute_ns for t in dag.tasks
                   if t.work is not None and gpu_rid in t.modes[rep.schedule.modes[t.tid]].resources)
    out["gpu_compute"] = round(flops_ns / max(1, rep.makespan_ns), 4)
    return out


def _variant_dags(inst, hist, cost, batch: int) -> dict[str, Any]:
    """The layer's DAG per variant ("" = the preset's; prefetch rows are left out when the HBM
    cannot hold 2 x PREFETCH_EXPERTS expert buffers at this batch)."""
    system, model = inst.system, inst.model
    dags = {"": build_layer_dag(inst, cost, DagOptions.for_system(system, scheduler_latency_ns=0))}
    if 2 * PREFETCH_EXPERTS <= prefetch_buffers(model, system, batch):
        dags["prefetch"] = build_layer_dag(inst, cost, prefetch_options(system, model, batch, hist, PREFETCH_EXPERTS,
                                                                        scheduler_latency_ns=0))
    dags["hostmem"] = build_layer_dag(inst, cost, DagOptions.for_system(system, scheduler_latency_ns=0,
                                                                        host_memory="shared"))
    return dags


def run(models, batches, layers: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for name in models:
        model, system = load_model(name), load_system(SYSTEM)
        timer = make_timer(system, model)
        gpu_model = GpuModel(system, timer.stream_ns)
        cost = RooflineCostModel(system, model)
        for batch in batches:
            for inst, hist in sample_with_history(model, system, batch, layers, seed):
                dags = _variant_dags(inst, hist, cost, batch)
                runs = [(p, "") for p in (*POLICIES, *ABLATIONS)]
                runs += [(p, v) for v in VARIANTS if v in dags for p in ("trimoe", "cpsat")]
                for pol, variant in runs:
                    dag = dags[variant]
                    t0 = time.perf_counter()
                    if pol in ABLATIONS:
                        res = ablation(pol, dag, inst, cost)
                        ok = check(res.schedule, dag).ok
                    else:
                        params = {"time_limit_s": CPSAT_LIMIT_S} if pol == "cpsat" else {}
                        lr = run_layer(inst, pol, dag=dag, cost=cost, **params)
                        res, ok = lr.result, lr.check.ok
                    wall = time.perf_counter() - t0
                    rep = replay(res.schedule, dag, system, instance=inst, timer=timer, scheduler_latency_ns=0)
                    modes = [res.schedule.modes[t.tid] for t in dag.tasks if t.kind == "expert"]
                    rows.append({
                        "model": name, "precision": model.expert_precision, "batch": batch,
                        "moe_layer": inst.moe_layer, "policy": f"{pol}+{variant}" if variant else pol,
                        "execution_model": "serial",
                        "cost_model": "roofline", "predicted_ns": res.makespan_ns, "replayed_ns": rep.makespan_ns,
                        "replay_error_pct": round(rep.makespan_error_pct, 3),
                        "bound_ns": res.bound_ns, "status": res.status, "check_ok": ok, "solve_wall_s": round(wall, 4),
                        "experts_gpu_fetch": modes.count(MODE_GPU_FETCH), "experts_gpu_hit": modes.count(MODE_GPU),
                        "prefetched": dag.options.prefetch_experts, "experts_cpu": modes.count(MODE_CPU),
                        "experts_ndp": modes.count(MODE_NDP), "moe_layers": model.num_moe_layers,
                        **{f"util_{k}": v for k, v in _util(rep, dag, gpu_model).items()},
                    })
    return rows


def relayout_rows(models, batch: int, steps: int, seed: int) -> list[dict[str, Any]]:
    """The relayout-off ablation: ``static`` (relayout off: the layout decided from the history,
    kept) vs ``relayout-ema`` (TriMoE's EMA predictor) over a drifting generator trace, two MoE
    layers, as ``sieveopt trimoe relayout`` (execution model: TriMoE's unit-load sum, expert phase
    only; movement charged serially on its step)."""
    import numpy as np

    from sieveopt.placement.evaluate import drifting_trace
    from sieveopt.trimoe_relayout import compare_relayout

    out = []
    for name in models:
        model, system = load_model(name), load_system(SYSTEM)
        rng = np.random.default_rng(seed)
        sample = sorted(int(x) for x in rng.choice(model.num_moe_layers, 2, replace=False))
        trace = drifting_trace(model, batch, RELAYOUT_HISTORY + steps, seed, sample, 4)
        data = compare_relayout(model, system, trace=trace, history=RELAYOUT_HISTORY, every=16,
                                predictors=["ema"], cache_experts=None, max_moves=16, batch=batch, layers=[0, 1])
        for p in data["policies"]:
            out.append({"model": name, "batch": batch, "steps": data["steps"],
                        "policy": "relayout-off" if p["policy"] == "static" else p["policy"],
                        "execution_model": data["execution_model"], "cost_model": data["cost_model"],
                        "precision": data["precision"], "layer_mean_us": p["layer_mean_ns"] / 1e3,
                        "layer_mean_with_move_us": p["layer_mean_with_move_ns"] / 1e3,
                        "relayouts": p["relayouts"], "moved_GB": p["moved_bytes"] / 1e9,
                        "speedup_vs_relayout_off": p["speedup_vs_static"]})
    return out


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over layers per (model, batch, policy), with throughput and gaps."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["batch"], r["policy"])].append(r)
    out = []
    for (m, b, p), rs in groups.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("predicted_ns", "replayed_ns", "replay_error_pct",
                                                                 "util_gpu", "util_pcie", "util_cpu", "util_ndp",
                                                                 "util_gpu_compute")}
        L = rs[0]["moe_layers"]
        out.append({"model": m, "batch": b, "policy": p, "layers": len(rs), **med,
                    "tokens_per_s_predicted": b / (med["predicted_ns"] * 1e-9 * L),
                    "tokens_per_s_replayed": b / (med["replayed_ns"] * 1e-9 * L)})
    best = {}
    for s in out:
        pol, _, variant = s["policy"].partition("+")
        if pol == "cpsat":
            best[(s["model"], s["batch"], variant)] = s["predicted_ns"]
    for s in out:
        ref = best.get((s["model"], s["batch"], s["policy"].partition("+")[2]))
        s["gap_to_cpsat_pct"] = None if not ref else 100.0 * (s["predicted_ns"] / ref - 1.0)
    return out


def _md(summary: list[dict[str, Any]]) -> str:
    lines = ["| model | B | policy | layer us (pred.) | layer us (replayed) | error | tok/s (replayed) | gap to cpsat | "
             "GPU | GPU compute | PCIe | CPU | NDP |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in sorted(summary, key=lambda s: (s["model"], s["batch"], (*POLICIES, *ABLATIONS, *VARIANT_ROWS).index(s["policy"]))):
        gap = "-" if s["gap_to_cpsat_pct"] is None else f"{s['gap_to_cpsat_pct']:+.1f}%"
        lines.append(f"| {s['model']} | {s['batch']} | {s['policy']} | {s['predicted_ns'] / 1e3:.0f} | "
                     f"{s['replayed_ns'] / 1e3:.0f} | {s['replay_error_pct']:+.1f}% | {s['tokens_per_s_replayed']:.0f} | {gap} | "
                     + " | ".join(f"{100 * s[f'util_{k}']:.1f}%" for k in ("gpu", "gpu_compute", "pcie", "cpu", "ndp")) + " |")
    return "\n".join(lines) + "\n"


def _relayout_md(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | B | steps | policy | expert phase us | with movement us | relayouts | moved GB | "
             "speed-up vs relayout off |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['batch']} | {r['steps']} | {r['policy']} | {r['layer_mean_us']:.0f} | "
                     f"{r['layer_mean_with_move_us']:.0f} | {r['relayouts']} | {r['moved_GB']:.2f} | "
                     f"{r['speedup_vs_relayout_off']:.3f} |")
    return "\n".join(lines) + "\n"


def plots(summary: list[dict[str, Any]], out) -> None:
    plt = pyplot()
    models = sorted({s["model"] for s in summary})
    pols = [p for p in (*POLICIES, *ABLATIONS, *VARIANT_ROWS) if any(s["policy"] == p for s in summary)]
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, m in zip(axes[0], models, strict=True):
        for p in pols:
            pts = sorted((s["batch"], s["tokens_per_s_replayed"]) for s in summary if s["model"] == m and s["policy"] == p)
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=p,
                    linestyle="--" if p in ABLATIONS else ":" if p in VARIANT_ROWS else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("decode batch B")
        ax.set_ylabel("MoE-layer tokens/s (replayed)")
        ax.set_title(f"{m} (BF16)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("trimoe-h100-xeon-ndp: serial execution, roofline cost model, replayed on the simulators")
    fig.tight_layout()
    save_figure(fig, out / "trimoe_throughput")

    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    kinds = ("gpu", "pcie", "cpu", "ndp")
    bmax = max(s["batch"] for s in summary)
    for ax, m in zip(axes[0], models, strict=True):
        rows = [s for s in summary if s["model"] == m and s["batch"] == bmax]
        rows.sort(key=lambda s: pols.index(s["policy"]))
        for j, k in enumerate(kinds):
            x, w = group_bars(len(rows), j, len(kinds))
            ax.bar(x, [100 * s[f"util_{k}"] for s in rows], width=w, label=k.upper())
        ax.set_xticks(list(range(len(rows))), [s["policy"] for s in rows], rotation=40, ha="right", fontsize=7)
        ax.set_ylabel("busy % of the replayed layer")
        ax.set_title(f"{m}, B={bmax}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "trimoe_util")

    fig, ax = plt.subplots(figsize=(5, 5))
    for p in pols:
        pts = [(s["predicted_ns"] / 1e3, s["replayed_ns"] / 1e3) for s in summary if s["policy"] == p]
        ax.scatter([a for a, _ in pts], [b for _, b in pts], label=p, s=14)
    lo = min(min(s["predicted_ns"], s["replayed_ns"]) for s in summary) / 1e3
    hi = max(max(s["predicted_ns"], s["replayed_ns"]) for s in summary) / 1e3
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted layer us (roofline cost model)")
    ax.set_ylabel("replayed layer us (simulators)")
    ax.legend(fontsize=7)
    ax.set_title("replayed vs predicted (median over layers)")
    fig.tight_layout()
    save_figure(fig, out / "trimoe_replay")


def main(argv=None) -> int:
    args = parse_args("trimoe", __doc__, argv)
    models = ("glm-4.5-air",) if args.quick else MODELS
    batches = (64,) if args.quick else (64, 128, 256, 512)
    layers = 1 if args.quick else 3
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run(models, batches, layers, args.seed)
    summary = summarise(rows)
    write_csv(args.out / "trimoe.csv", rows)
    write_csv(args.out / "trimoe_summary.csv", summary)
    relayout = relayout_rows(models, 64, 32 if args.quick else 128, args.seed)
    write_csv(args.out / "trimoe_relayout.csv", relayout)
    from sieveopt.fileio import atomic_write_text

    atomic_write_text(args.out / "trimoe_summary.md", _md(summary) + "\n" + _relayout_md(relayout))
    plots(summary, args.out)
    done(args, "trimoe")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
