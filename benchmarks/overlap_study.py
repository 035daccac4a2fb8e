"""Execution-model study (issue 11): serial vs micro-batch pipelined (M = 2, 3, 4) vs ideal, for
the paper's three configurations and B in {1, 4, 16, 64, 256}, predicted and replayed.

Per (configuration, B) one cyclic window of ``--window-layers`` consecutive sampled MoE layers
(seed 0, routing of the synthetic generator, context 2048 tokens); every execution model sees
the same layers and routing:

* ``serial``: the full batch through each of the window's layers (layer DAG, phases in
  sequence); time per layer = mean makespan over the window's layers;
* ``microbatch M``: the steady-state period of M micro-batches pipelined through the window
  (``sieveopt.overlap``: modulo list scheduling for heuristics, periodic CP-SAT for ``cpsat``);
* ``ideal M``: the busiest resource's load of each policy's modes (a bound, not a schedule); M = 1
  is the whole batch with no weight re-streaming (Sieve's max() with every task counted), M = 2
  the two-micro-batch split.

Every policy's scheduler task is charged its declared default (``sched_latency``: sieve, pimoe,
duplex 1 us, sieve-plus 1.5 us, sieve-pipe 1 us (round 3-4: 1.5 us under serial) per layer and slot;
static baselines and offline
CP-SAT 0), in every model. CP-SAT runs with ``--time-limit`` seconds per layer (serial) / per
window (microbatch, ideal), ``--workers`` workers, so its numbers are what it found in that time.

M must divide the requests per GPU: M = 2, 4 run where B / G is a multiple of M; M = 3 never
divides a power of two, so it runs at B' = the largest multiple of 3 G <= B (for B >= 16, and
B' also gets its own serial and M = 2 rows for a like-for-like comparison). Points that cannot
exist (B < M G) are listed as such.

Replay (``--replay``): the best heuristic's and CP-SAT's schedules of every serial and
micro-batch point on the DRAM/PIM and NVLink simulators (``validation/replay_periodic.py``
for the pipeline: 4 unrolled iterations, first and last dropped as fill and drain).

Throughput and interactivity are those of the MoE layers alone (dense layers, LM head left out,
they do not depend on the policy): per GPU ``B / (N_moe * T_layer) / G`` tokens/s, per user
``1 / (N_moe * T_layer)`` tokens/s, with T_layer the time per layer of the execution model.

    python benchmarks/overlap_study.py --time-limit 5 --replay            # all (~1 h on a shared 2-core VM)
    python benchmarks/overlap_study.py --configs qwen3-30b-a3b:1 --batches 64 --time-limit 2
    python benchmarks/overlap_study.py --redraw                           # tables from the JSON only

Output (``--out``, default ``benchmarks/results``): ``overlap_study.json`` (every point, written
after each one: a re-run skips finished points), ``overlap_study.md`` (the tables),
``overlap_study_gantt.png`` and ``overlap_study_trace.json`` (a steady-state period);
``--uncharged``: ``overlap_study_uncharged.json`` (sieve, sieve-plus, sieve-pipe at scheduler
charge 0 on every point, their algorithmic gap to CP-SAT); ``--refresh``: ``overlap_study_refresh.json``
(every policy and CP-SAT re-run on the microbatch points with the current code; earlier refreshed
runs kept as ``overlap_study_refresh_<round>.json`` still count towards the best known value).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_configs, split_config

from sieveopt.fileio import atomic_write_text

BATCHES = (1, 4, 16, 64, 256)
HEURISTICS = ("sieve", "sieve-plus", "sieve-pipe", "duplex", "pimoe", "noexp", "allexp")
SUCCESSOR = "sieve-pipe"


def _setup(name: str, gpus: int):
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.models.costmodel import make_cost_model

    model = load_model(name)
    system = load_system(SYSTEM, gpus)
    return model, system, make_cost_model("roofline", system, model)


def serial_point(name: str, gpus: int, batch: int, L: int, tl: float, workers: int, replay: bool) -> dict:
    """Every policy on the window's layers, full batch, layer DAG (charged like ``compare``)."""
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers import policy_info
    from sieveopt.solvers.sched_latency import resolve, with_scheduler_latency

    model, system, cost = _setup(name, gpus)
    insts = full_batch_window(model, system, batch, L)
    out: dict[str, Any] = {}
    runs: dict[str, list] = {}
    for pol in (*HEURISTICS, "cpsat"):
        lat = resolve(pol).ns
        spans, decs, ok, bounds = [], [], True, []
        runs[pol] = []
        for inst in insts:
            dag, _ = build_dag(inst, cost)
            params = {k: v for k, v in {"time_limit_s": tl, "workers": workers}.items()
                      if k in policy_info(pol).params}
            r = run_layer(inst, pol, dag=with_scheduler_latency(dag, lat), cost=cost, **params)
            spans.append(r.result.makespan_ns)
            ok &= r.check.ok
            bounds.append(r.result.bound_ns)
            if r.result.decision_ns is not None:
                decs.append(r.result.decision_ns)
            runs[pol].append(r)
        out[pol] = {"time_per_layer_ns": float(np.mean(spans)), "latency_ns": float(np.mean(spans)),
                    "check_ok": ok, "decision_ns": statistics.median(decs) if decs else None,
                    "scheduler_latency_ns": lat,
                    "bound_ns": float(np.mean(bounds)) if all(b is not None for b in bounds) else None}
    if replay:
        from sieveopt.validation.replay import replay as replay_layer

        for pol in (_best_heuristic(out), "cpsat"):
            reps = [replay_layer(r.result.schedule, r.dag, system, instance=r.instance).makespan_ns for r in runs[pol]]
            out[pol]["replayed_ns"] = float(np.mean(reps))
    return out


def full_batch_window(model, system, batch: int, L: int) -> list:
    """The window's layers (the same first layer and routing as ``sample_window(..., seed=0)``,
    whose micro-batches are request slices of this batch) with the whole batch, also when B is
    not a multiple of G (B < G: some GPUs hold no request)."""
    from sieveopt.instance import LayerInstance
    from sieveopt.workload import generate_for_model

    first = int(np.random.default_rng(0).integers(0, model.num_moe_layers - L + 1))
    ids = list(range(first, first + L))
    trace = generate_for_model(model, batch, 1, 0, layers=ids)
    return [LayerInstance.from_expert_ids(model, system, trace.expert_ids[0, i], moe_layer=lid,
                                          context_lens=np.full(batch, 2048), meta={"seed": 0})
            for i, lid in enumerate(ids)]


def _best_heuristic(pols: dict) -> str:
    return min(HEURISTICS, key=lambda p: pols[p]["time_per_layer_ns"])


def overlap_point(name: str, gpus: int, batch: int, overlap: str, M: int, L: int, tl: float, workers: int,
                  replay: bool) -> dict:
    """Every policy's steady state (microbatch) or load bound (ideal) on the window."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.overlap import charged_problem, sample_problem, solve_overlap

    model, system, cost = _setup(name, gpus)
    ex = make_execution_model(overlap, M, window_layers=L, batch=batch, num_gpus=gpus)
    base = sample_problem(model, system, batch, ex, 0, cost)
    out: dict[str, Any] = {}
    done: dict[str, Any] = {}
    probs = {}
    for pol in (*HEURISTICS, "cpsat"):
        prob, lat = charged_problem(base, pol)
        r = solve_overlap(prob, pol, time_limit_s=tl, workers=workers, seed=0, hints=done)
        done[pol], probs[pol] = r, prob
        out[pol] = {"time_per_layer_ns": r.period_ns, "latency_ns": r.latency_ns, "check_ok": r.check_ok,
                    "decision_ns": r.decision_ns, "scheduler_latency_ns": lat.ns, "bound_ns": r.bound_ns,
                    "status": r.status}
    if replay and overlap == "microbatch":
        from sieveopt.validation.replay_periodic import replay_periodic

        for pol in (_best_heuristic(out), "cpsat"):
            rep = replay_periodic(probs[pol], done[pol].schedule, iterations=4,
                                  scheduler_latency_ns=out[pol]["scheduler_latency_ns"])
            out[pol]["replayed_ns"] = rep["replayed_period_ns"]
            out[pol]["replay_kind_error"] = {k: v["mean_signed_pct"] for k, v in rep["kind_error"].items()}
    return out


#: Heuristics also run uncharged (scheduler 0, like offline CP-SAT): their algorithmic gap.
UNCHARGED = ("sieve", "sieve-plus", "sieve-pipe")


def uncharged_point(p: dict, L: int) -> dict[str, float]:
    """Time per layer of :data:`UNCHARGED` at scheduler charge 0 (same window as ``p``)."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.overlap import charge_scheduler, sample_problem, solve_overlap
    from sieveopt.pipeline import build_dag, run_layer

    name, g = split_config(p["config"])
    model, system, cost = _setup(name, g)
    out = {}
    if p["model"] == "serial":
        insts = full_batch_window(model, system, p["batch"], L)
        for pol in UNCHARGED:
            out[pol] = float(np.mean([run_layer(i, pol, dag=build_dag(i, cost)[0], cost=cost).result.makespan_ns
                                      for i in insts]))
        return out
    ex = make_execution_model(p["model"], p["M"], window_layers=L, batch=p["batch"], num_gpus=g)
    prob = charge_scheduler(sample_problem(model, system, p["batch"], ex, 0, cost), 0)
    return {pol: solve_overlap(prob, pol).period_ns for pol in UNCHARGED}


def successor_point(p: dict, L: int, runtime_order_evaluations: int | None = None) -> dict[str, float]:
    """:data:`SUCCESSOR` charged its declared figure for the point's execution model and
    uncharged, and Sieve charged, on the point's window (a re-run of the successor alone: the
    pass that measures a change to it without re-running CP-SAT). ``runtime_order_evaluations``:
    the pipeline runtime's order-descent cap on microbatch points (None: the default)."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.overlap import charge_scheduler, sample_problem, solve_overlap
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers.sched_latency import resolve, with_scheduler_latency

    name, g = split_config(p["config"])
    model, system, cost = _setup(name, g)
    runs = {f"{SUCCESSOR}": (SUCCESSOR, None), f"{SUCCESSOR}@0": (SUCCESSOR, 0), "sieve": ("sieve", None)}
    out: dict[str, float] = {}
    if p["model"] == "serial":
        insts = full_batch_window(model, system, p["batch"], L)
        for k, (pol, ns) in runs.items():
            ns = resolve(pol).ns if ns is None else ns
            out[k] = float(np.mean([run_layer(i, pol, dag=with_scheduler_latency(build_dag(i, cost)[0], ns),
                                              cost=cost).result.makespan_ns for i in insts]))
            out[f"{k}:charge_ns"] = ns
        return out
    ex = make_execution_model(p["model"], p["M"], window_layers=L, batch=p["batch"], num_gpus=g,
                              runtime_order_evaluations=runtime_order_evaluations if p["model"] == "microbatch"
                              else None)
    base = sample_problem(model, system, p["batch"], ex, 0, cost)
    for k, (pol, ns) in runs.items():
        ns = resolve(pol, overlap=p["model"]).ns if ns is None else ns
        r = solve_overlap(charge_scheduler(base, ns), pol)
        out[k] = r.period_ns
        out[f"{k}:charge_ns"] = ns
        out[f"{k}:decision_ns"] = r.decision_ns
    return out


def successor_name(args: argparse.Namespace) -> str:
    """File stem of the successor pass: ``overlap_study_successor``, with ``_runtime<N>`` when
    ``--runtime-order-evaluations N`` is given (e.g. 0: the constructive pipeline runtime only)."""
    n = args.runtime_order_evaluations
    return "overlap_study_successor" + ("" if n is None else f"_runtime{n}")


def run_successor(args: argparse.Namespace) -> None:
    """The successor pass over the finished points (``<successor_name>.json``)."""
    out = Path(args.out)
    rows = json.loads((out / "overlap_study.json").read_text())["points"]
    spath = out / f"{successor_name(args)}.json"
    done = json.loads(spath.read_text()) if spath.exists() else {}
    for p in rows:
        if "policies" in p and key(p) not in done:
            t0 = time.perf_counter()
            done[key(p)] = successor_point(p, args.window_layers, args.runtime_order_evaluations)
            atomic_write_text(spath, json.dumps(done, indent=1))
            print(f"{key(p)} successor: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def run_refresh(args: argparse.Namespace) -> None:
    """Re-run every policy (CP-SAT hinted with the current heuristics' schedules) on the finished
    microbatch points (``overlap_study_refresh.json``), so the successor's gap is also taken
    against a CP-SAT that saw its schedules."""
    out = Path(args.out)
    rows = json.loads((out / "overlap_study.json").read_text())["points"]
    rpath = out / "overlap_study_refresh.json"
    done = json.loads(rpath.read_text()) if rpath.exists() else {}
    for p in rows:
        if "policies" in p and p["model"] == "microbatch" and key(p) not in done:
            name, g = split_config(p["config"])
            t0 = time.perf_counter()
            done[key(p)] = overlap_point(name, g, p["batch"], p["model"], p["M"], args.window_layers,
                                         args.time_limit, args.workers, False)
            atomic_write_text(rpath, json.dumps(done, indent=1))
            print(f"{key(p)} refresh: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def successor_markdown(rows: list[dict], done: dict, refresh: dict | None = None,
                       earlier: list[dict] | None = None) -> str:
    """Medians of the successor pass: gap to the best known time per layer of each point (the
    study's, this pass's and, where present, the refreshed run's and ``earlier`` refreshed runs',
    CP-SAT included: a schedule found once stays known)."""
    refresh = refresh or {}
    runs = [refresh, *(earlier or [])]
    groups: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        d = done.get(key(r))
        if d is None:
            continue
        fresh = [v["time_per_layer_ns"] for f in runs for v in f.get(key(r), {}).values()]
        ref = min(reference_ns(r), *fresh, *(v for k, v in d.items() if ":" not in k))
        tag = r["model"] + (f" M={r['M']}" if r["model"] != "serial" else "")
        groups.setdefault(tag, []).append({k: d[k] / ref - 1 for k in d if ":" not in k} | {"point": key(r)})
    cols = (SUCCESSOR, f"{SUCCESSOR}@0", "sieve")
    lines = [f"| execution model | points | {SUCCESSOR} charged median / max | uncharged median / max | "
             "sieve charged median / max | worst point (charged) |", "|---|---|---|---|---|---|"]
    for tag, sel in groups.items():
        cells = [f"{100 * statistics.median([x[c] for x in sel]):+.2f}% / {100 * max(x[c] for x in sel):+.1f}%"
                 for c in cols]
        worst = max(sel, key=lambda x: x[SUCCESSOR])["point"]
        lines.append(f"| {tag} | {len(sel)} | " + " | ".join(cells) + f" | {worst} |")
    if refresh:
        lines += ["", f"Refreshed points (every policy and CP-SAT re-run with the current code; {SUCCESSOR} "
                  "charged as declared, CP-SAT 0): gap to the refreshed CP-SAT alone, and to the best known", "",
                  f"| execution model | points | {SUCCESSOR} vs CP-SAT median / max | vs best known median / max | "
                  "sieve vs CP-SAT median / max |", "|---|---|---|---|---|"]
        by: dict[str, list[tuple[float, float, float]]] = {}
        for r in rows:
            f = refresh.get(key(r))
            if f is None:
                continue
            d = done.get(key(r), {})
            ref = min(reference_ns(r), *(v["time_per_layer_ns"] for g in runs for v in g.get(key(r), {}).values()),
                      *(v for k, v in d.items() if ":" not in k))
            cp = f["cpsat"]["time_per_layer_ns"]
            tp = f[SUCCESSOR]["time_per_layer_ns"]
            by.setdefault(f"microbatch M={r['M']}", []).append(
                (tp / cp - 1, tp / ref - 1, f["sieve"]["time_per_layer_ns"] / cp - 1))
        for tag, v in sorted(by.items()):
            cells = [f"{100 * statistics.median(x[i] for x in v):+.2f}% / {100 * max(x[i] for x in v):+.1f}%"
                     for i in range(3)]
            lines.append(f"| {tag} | {len(v)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plan(configs: list[str], batches: list[int]) -> list[dict]:
    """Every (configuration, B, execution model) point; ``skip`` says why one cannot exist."""
    pts = []
    for cfg in configs:
        G = split_config(cfg)[1]
        for B in batches:
            pts.append({"config": cfg, "batch": B, "model": "serial", "M": 1})
            for M in (2, 4):
                ok = B % G == 0 and (B // G) % M == 0
                pts.append({"config": cfg, "batch": B, "model": "microbatch", "M": M,
                            **({} if ok else {"skip": f"B/G = {B / G:g} requests per GPU: M = {M} does not divide"})})
            pts.append({"config": cfg, "batch": B, "model": "ideal", "M": 1,
                        **({} if B % G == 0 else {"skip": f"B = {B} < G = {G}: the periodic window needs B a multiple of G"})})
            if B % G == 0 and (B // G) % 2 == 0:
                pts.append({"config": cfg, "batch": B, "model": "ideal", "M": 2})
            b3 = (B // (3 * G)) * 3 * G
            if B >= 16 and b3 >= 3 * G:
                pts += [{"config": cfg, "batch": b3, "model": "serial", "M": 1, "m3_of": B},
                        {"config": cfg, "batch": b3, "model": "microbatch", "M": 3, "m3_of": B}]
                if (b3 // G) % 2 == 0:
                    pts.append({"config": cfg, "batch": b3, "model": "microbatch", "M": 2, "m3_of": B})
    return pts


def key(p: dict) -> str:
    return f"{p['config']}|B={p['batch']}|{p['model']}|M={p['M']}"


def run(args: argparse.Namespace) -> list[dict]:
    out = Path(args.out)
    path = out / "overlap_study.json"
    rows: list[dict] = json.loads(path.read_text())["points"] if path.exists() else []
    have = {key(r) for r in rows}
    for p in plan(args.configs.split(","), [int(b) for b in args.batches.split(",")]):
        if key(p) in have:
            continue
        name, g = split_config(p["config"])
        t0 = time.perf_counter()
        if "skip" not in p:
            if p["model"] == "serial":
                p["policies"] = serial_point(name, g, p["batch"], args.window_layers, args.time_limit,
                                             args.workers, args.replay)
            else:
                p["policies"] = overlap_point(name, g, p["batch"], p["model"], p["M"], args.window_layers,
                                              args.time_limit, args.workers, args.replay)
        p["wall_s"] = time.perf_counter() - t0
        rows.append(p)
        have.add(key(p))
        atomic_write_text(path, json.dumps({"meta": meta(args), "points": rows}, indent=1))
        print(f"{key(p)}: {p['wall_s']:.0f} s", file=sys.stderr, flush=True)
    return rows


def run_uncharged(args: argparse.Namespace) -> None:
    """The uncharged pass over the finished points (its own file, so it can run beside the main one)."""
    out = Path(args.out)
    rows = json.loads((out / "overlap_study.json").read_text())["points"]
    upath = out / "overlap_study_uncharged.json"
    done = json.loads(upath.read_text()) if upath.exists() else {}
    for p in rows:
        if "policies" in p and key(p) not in done:
            t0 = time.perf_counter()
            done[key(p)] = uncharged_point(p, args.window_layers)
            atomic_write_text(upath, json.dumps(done, indent=1))
            print(f"{key(p)} uncharged: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def load_rows(out: Path) -> list[dict]:
    rows = json.loads((out / "overlap_study.json").read_text())["points"]
    upath = out / "overlap_study_uncharged.json"
    if upath.exists():
        unc = json.loads(upath.read_text())
        for r in rows:
            if key(r) in unc:
                r["uncharged_ns"] = unc[key(r)]
    return rows


def meta(args: argparse.Namespace) -> dict:
    import platform

    import ortools

    return {"system": SYSTEM, "cost_model": "roofline", "precision": "model catalog dtypes (Qwen bf16, GPT-OSS MXFP4)",
            "window_layers": args.window_layers, "seed": 0, "context_len_tokens": 2048,
            "cpsat_time_limit_s": args.time_limit, "cpsat_workers": args.workers, "replay": args.replay,
            "scheduler_charge": "declared defaults (sieveopt.solvers.sched_latency), CP-SAT 0 (offline)",
            "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "ortools": ortools.__version__,
            "note": "shared 2-core VM (load 8-12): wall-clock-limited CP-SAT numbers are not reproducible exactly"}


# -- tables ---------------------------------------------------------------------------------------
def _us(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e3:.1f}"


def _n_moe(cfg: str) -> int:
    from sieveopt.models.catalog import load_model

    return load_model(split_config(cfg)[0]).num_moe_layers


def to_markdown(rows: list[dict]) -> str:
    lines = []
    by = {key(r): r for r in rows}
    cfgs = list(dict.fromkeys(r["config"] for r in rows))
    lines.append("### Time per layer, throughput and interactivity (best policy of each execution model)\n")
    lines.append("T = time per MoE layer for the whole batch (us; serial: makespan, microbatch: steady-state "
                 "period, ideal: busiest resource's load, a bound); lat = a micro-batch's layer entry-to-exit "
                 "time (us); thr = MoE-layer tokens/s/GPU, int = MoE-layer tokens/s/user (dense layers and "
                 "LM head excluded); best = fastest policy incl. CP-SAT; rep = replayed T of that schedule.\n")
    lines.append("| config | B | execution model | best | T us | lat us | thr tok/s/GPU | int tok/s/user | "
                 "replayed T us (best heur. / CP-SAT) | vs serial |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for cfg in cfgs:
        G, nm = split_config(cfg)[1], _n_moe(cfg)
        for r in [x for x in rows if x["config"] == cfg]:
            tag = f"{r['model']}" + (f" M={r['M']}" if r["model"] != "serial" else "")
            b = r["batch"]
            bl = f"{b}" + (f" (M=3 set, B'<= {r['m3_of']})" if r.get("m3_of") else "")
            if "skip" in r:
                lines.append(f"| {cfg} | {bl} | {tag} | - | - | - | - | - | - | {r['skip']} |")
                continue
            pols = r["policies"]
            best = min(pols, key=lambda p: pols[p]["time_per_layer_ns"])
            T = pols[best]["time_per_layer_ns"]
            lat = pols[best]["latency_ns"]
            rep_h = pols[_best_heuristic(pols)].get("replayed_ns")
            rep_c = pols["cpsat"].get("replayed_ns")
            ser = by.get(f"{cfg}|B={b}|serial|M=1")
            vs = "-"
            if ser and "policies" in ser and r["model"] != "serial":
                s = min(v["time_per_layer_ns"] for v in ser["policies"].values())
                vs = f"{100 * (T / s - 1):+.1f}%"
            lines.append(f"| {cfg} | {bl} | {tag} | {best} | {_us(T)} | {_us(lat) if r['model'] != 'ideal' else '-'} | "
                         f"{b / (nm * T * 1e-9) / G:,.0f} | {1 / (nm * T * 1e-9):,.0f} | "
                         f"{_us(rep_h)} / {_us(rep_c)} | {vs} |")
    lines.append("\n### Gap of every heuristic to CP-SAT's best (same execution model, same window)\n")
    lines.append("(T_policy / T_ref - 1, T_ref = CP-SAT's time per layer, or the best heuristic's where CP-SAT "
                 "returned worse within its limit (marked *; under ideal CP-SAT is not hinted); heuristics "
                 "charged their scheduler latency, CP-SAT 0. Under ideal, CP-SAT's value is the load-optimal "
                 "modes it found.)\n")
    lines.append("| config | B | execution model | " + " | ".join(HEURISTICS) + " | CP-SAT T us | CP-SAT bound us |")
    lines.append("|---|---|---|" + "---|" * len(HEURISTICS) + "---|---|")
    for r in rows:
        if "skip" in r:
            continue
        pols = r["policies"]
        c = reference_ns(r)
        cp = pols["cpsat"]["time_per_layer_ns"]
        tag = f"{r['model']}" + (f" M={r['M']}" if r["model"] != "serial" else "")
        cells = [f"{100 * (pols[p]['time_per_layer_ns'] / c - 1):+.1f}%" for p in HEURISTICS]
        lines.append(f"| {r['config']} | {r['batch']} | {tag} | " + " | ".join(cells) +
                     f" | {_us(cp)}{' *' if cp > c else ''} | {_us(pols['cpsat'].get('bound_ns'))} |")
    if any("uncharged_ns" in r for r in rows):
        lines.append("\n### Algorithmic gap: heuristics charged 0 (like offline CP-SAT) vs CP-SAT\n")
        lines.append("(The table above charges each heuristic its scheduler latency and CP-SAT none, what a serving "
                     "system sees; here the heuristics are charged 0 too. Median / max over the points of each model.)\n")
        lines.append("| execution model | points | " + " | ".join(f"{p} median / max" for p in UNCHARGED) + " |")
        lines.append("|---|---|" + "---|" * len(UNCHARGED))
        groups: dict[str, list[dict[str, float]]] = {}
        for r in rows:
            if "uncharged_ns" not in r:
                continue
            c = reference_ns(r)
            tag = r["model"] + (f" M={r['M']}" if r["model"] != "serial" else "")
            groups.setdefault(tag, []).append({p: r["uncharged_ns"][p] / c - 1 for p in UNCHARGED})
        for tag, sel in groups.items():
            cells = [f"{100 * statistics.median([x[p] for x in sel]):+.2f}% / {100 * max(x[p] for x in sel):+.1f}%"
                     for p in UNCHARGED]
            lines.append(f"| {tag} | {len(sel)} | " + " | ".join(cells) + " |")
    lines.append("\n### Medians of the gap to CP-SAT per execution model, heuristics charged (all points of that model)\n")
    lines.append("| execution model | points | " + " | ".join(f"{p} median / max" for p in HEURISTICS) + " |")
    lines.append("|---|---|" + "---|" * len(HEURISTICS))
    for tag, sel in gap_groups(rows).items():
        cells = []
        for p in HEURISTICS:
            g = [x[p] for x in sel]
            cells.append(f"{100 * statistics.median(g):+.2f}% / {100 * max(g):+.1f}%")
        lines.append(f"| {tag} | {len(sel)} | " + " | ".join(cells) + " |")
    dec = [r["policies"][p]["decision_ns"] for r in rows if "policies" in r for p in ("sieve", SUCCESSOR)
           if r["policies"][p]["decision_ns"]]
    if dec:
        sv = [r["policies"]["sieve"]["decision_ns"] for r in rows if "policies" in r and r["policies"]["sieve"]["decision_ns"]]
        sp = [r["policies"][SUCCESSOR]["decision_ns"] for r in rows if "policies" in r and r["policies"][SUCCESSOR]["decision_ns"]]
        lines.append(f"\nDecision latency (median over points, slowest GPU's planner call, wall clock on the loaded "
                     f"VM): sieve {statistics.median(sv) / 1e3:.1f} us, {SUCCESSOR} {statistics.median(sp) / 1e3:.1f} us "
                     f"({statistics.median(sp) / statistics.median(sv):.2f}x).")
    return "\n".join(lines) + "\n"


def reference_ns(r: dict) -> float:
    """The best time per layer found on the point: CP-SAT's, or a heuristic's when CP-SAT (wall-
    clock limited, and under ``ideal`` not hinted) returned worse; uncharged runs count too."""
    vals = [v["time_per_layer_ns"] for v in r["policies"].values()]
    return min(vals + list(r.get("uncharged_ns", {}).values()))


def gap_groups(rows: list[dict]) -> dict[str, list[dict[str, float]]]:
    """execution model tag -> per point {heuristic: gap to CP-SAT}."""
    groups: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        if "skip" in r:
            continue
        pols = r["policies"]
        c = reference_ns(r)
        tag = r["model"] + (f" M={r['M']}" if r["model"] != "serial" else "")
        groups.setdefault(tag, []).append({p: pols[p]["time_per_layer_ns"] / c - 1 for p in HEURISTICS})
    return groups


def figure(out: Path) -> dict[str, str]:
    """Gantt (PNG) and Perfetto/Chrome trace of three unrolled iterations of a steady state:
    Qwen3-30B-A3B, 1 GPU, B = 64, M = 2, sieve-pipe (the middle iteration is a full superperiod)."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.overlap import charged_problem, sample_problem, solve_overlap
    from sieveopt.periodic import unroll
    from sieveopt.viz import gantt, write_trace

    model, system, cost = _setup("qwen3-30b-a3b", 1)
    ex = make_execution_model("microbatch", 2, window_layers=2, batch=64, num_gpus=1)
    prob, _ = charged_problem(sample_problem(model, system, 64, ex, 0, cost), SUCCESSOR)
    r = solve_overlap(prob, SUCCESSOR)
    big, sched = unroll(prob, r.schedule, 3)
    png = gantt(sched, big, out / "overlap_study_gantt.png", color_by="microbatch",
                label=f"{SUCCESSOR}, {ex.label}: period {r.period_ns / 1e3:.1f} us, Qwen3-30B-A3B x1, B=64")
    trace = write_trace(sched, big, out / "overlap_study_trace.json")
    return {"gantt": str(png), "trace": str(trace)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap)
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=5.0, help="CP-SAT seconds per layer / window")
    ap.add_argument("--workers", type=int, default=1, help="CP-SAT workers")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--uncharged", action="store_true",
                    help=f"also run {', '.join(UNCHARGED)} with scheduler charge 0 (their gap to CP-SAT without it)")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--uncharged-only", action="store_true", help="only the uncharged pass over finished points")
    ap.add_argument("--redraw", action="store_true", help="tables (and figure) from the JSON, no runs")
    ap.add_argument("--refresh", action="store_true",
                    help="re-run every policy incl. CP-SAT on the finished microbatch points (current code)")
    ap.add_argument("--successor", action="store_true",
                    help=f"only re-run {SUCCESSOR} (charged, uncharged) and sieve over the finished points; "
                         "gap to the best known time per layer of each point")
    ap.add_argument("--runtime-order-evaluations", type=int, default=None, metavar="N",
                    help="with --successor: the pipeline runtime's order-descent cap on microbatch points "
                         "(default 1000; 0: constructive runtime only); writes overlap_study_successor_runtime<N>.*")
    ap.add_argument("--no-figure", action="store_true")
    args = ap.parse_args(argv)
    if args.runtime_order_evaluations is not None and (args.runtime_order_evaluations < 0 or not args.successor):
        ap.error("--runtime-order-evaluations takes an integer >= 0 and goes with --successor")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.uncharged_only:
        run_uncharged(args)
        return 0
    if args.refresh:
        run_refresh(args)
        return 0
    if args.successor:
        run_successor(args)
        rpath = out / "overlap_study_refresh.json"
        earlier = [json.loads(p.read_text()) for p in sorted(out.glob("overlap_study_refresh_*.json"))]
        md = successor_markdown(load_rows(out), json.loads((out / f"{successor_name(args)}.json").read_text()),
                                json.loads(rpath.read_text()) if rpath.exists() else None, earlier)
        atomic_write_text(out / f"{successor_name(args)}.md", md)
        print(md)
        return 0
    if not args.redraw:
        run(args)
        if args.uncharged:
            run_uncharged(args)
    rows = load_rows(out)
    md = to_markdown(rows)
    atomic_write_text(out / "overlap_study.md", md)
    print(md)
    if not args.no_figure:
        print(figure(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
