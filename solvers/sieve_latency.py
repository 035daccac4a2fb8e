"""Sieve greedy decision latency: one GPU's plan per call, on one CPU core (the measurement
behind ``sieveopt bench latency`` and ``benchmarks/greedy_latency.py``).

Inputs are many distinct realistic layers from the calibrated routing generator (every GPU of
every sampled layer is one distinct plan input), prepared up front with the offline tooling
(DAG -> per-GPU planner inputs). The timed region is only the call a serving loop makes:
``sieve_plan(tokens, table, params, ws, order)`` on preallocated arrays, wrapped in
``time.perf_counter_ns``. Calls cycle through the inputs in a shuffled order (so caches are
as cold as in serving), warm-up calls are excluded. The pure-Python reference is timed on the
same inputs (fewer calls).

    sieveopt bench latency --model qwen3.5-397b-a17b --gpus 8 --batch 256
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass

import numpy as np

from sieveopt.models.specs import ModelSpec, SystemSpec

DEFAULT_SYSTEM = "sieve-b200-hbm3e-pim"


@dataclass
class PlanSet:
    """Distinct per-GPU planner inputs of sampled layers, plus the shared PIM table."""

    tokens: list[np.ndarray]      # int32 [E_g] each
    params: list[np.ndarray]      # float64 [NUM_PARAMS] each
    table: np.ndarray             # float64 [N+1]
    max_experts: int
    layers: int
    gpus: int


def prepare(model: str | ModelSpec, system: str | SystemSpec, gpus: int, batch: int, layers: int,
            seed: int) -> PlanSet:
    """Sample ``layers`` layers and extract every GPU's planner inputs (offline, not timed).
    ``model``/``system`` are catalog names (or TOML paths) or specs; ``gpus`` applies to names."""
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.pipeline import build_dag
    from sieveopt.solvers.plan_inputs import pim_table, plan_inputs

    model = load_model(model) if isinstance(model, str) else model
    system = load_system(system, gpus) if isinstance(system, str) else system
    insts = sample_layers(model, system, batch, layers, seed)
    tokens, params = [], []
    cost = table = None
    for inst in insts:
        dag, cost = build_dag(inst, cost if cost is not None else "roofline")
        for inp in plan_inputs(dag, inst, cost):
            tokens.append(np.ascontiguousarray(inp.tokens, dtype=np.int32))
            params.append(np.ascontiguousarray(inp.params, dtype=np.float64))
        if table is None:
            table = pim_table(cost, inst, batch)    # an expert never has more than B tokens
    return PlanSet(tokens, params, table, max(len(t) for t in tokens), len(insts), gpus)


def _stats(ns: np.ndarray) -> dict[str, float]:
    return {"calls": int(len(ns)), "median_us": float(np.median(ns)) / 1e3,
            "p99_us": float(np.percentile(ns, 99)) / 1e3, "max_us": float(ns.max()) / 1e3,
            "min_us": float(ns.min()) / 1e3, "mean_us": float(ns.mean()) / 1e3}


def time_compiled(ps: PlanSet, calls: int, warmup: int, seed: int) -> dict[str, float]:
    from sieveopt.solvers._sieve_numba import make_workspace, sieve_plan

    ws, order = make_workspace(ps.max_experts, len(ps.table) - 1)
    table = ps.table
    n = len(ps.tokens)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(np.resize(np.arange(n), calls + warmup))
    out = np.empty(calls, dtype=np.int64)
    toks, pars = ps.tokens, ps.params
    clock = time.perf_counter_ns
    for j in range(warmup):
        i = idx[j]
        sieve_plan(toks[i], table, pars[i], ws, order)
    for j in range(calls):
        i = idx[warmup + j]
        tk, pa = toks[i], pars[i]
        t0 = clock()
        sieve_plan(tk, table, pa, ws, order)
        out[j] = clock() - t0
    return _stats(out)


def time_reference(ps: PlanSet, calls: int, seed: int) -> dict[str, float]:
    from sieveopt.solvers.sieve_ref import sieve_plan_ref

    table = ps.table.tolist()
    toks = [t.tolist() for t in ps.tokens]
    pars = [p.tolist() for p in ps.params]
    rng = np.random.default_rng(seed + 1)
    idx = rng.permutation(np.resize(np.arange(len(toks)), calls))
    out = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for j in range(calls):
        i = idx[j]
        t0 = clock()
        sieve_plan_ref(toks[i], table, pars[i])
        out[j] = clock() - t0
    return _stats(out)


def timer_overhead_ns(samples: int = 20000) -> float:
    clock = time.perf_counter_ns
    out = np.empty(samples, dtype=np.int64)
    for j in range(samples):
        t0 = clock()
        out[j] = clock() - t0
    return float(np.median(out))


def machine() -> dict[str, object]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_avg": os.getloadavg()}


def run(model: str | ModelSpec, system: str | SystemSpec, gpus: int, batch: int, *, layers: int = 100, calls: int = 20000,
        warmup: int = 2000, ref_calls: int = 1000, seed: int = 0, pin_cpu: int | None = None) -> dict[str, object]:
    """Prepare inputs and time the compiled planner and the reference; a JSON-ready dict."""
    import numba

    from sieveopt.solvers._sieve_numba import warm_up

    if pin_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {pin_cpu})
    t0 = time.perf_counter()
    ps = prepare(model, system, gpus, batch, layers, seed)
    prep_s = time.perf_counter() - t0
    warm_up()
    experts = np.array([len(t) for t in ps.tokens])
    compiled = time_compiled(ps, calls, warmup, seed)
    ref = time_reference(ps, ref_calls, seed) if ref_calls > 0 else None
    return {
        "model": getattr(model, "name", model), "system": getattr(system, "name", system),
        "gpus": getattr(system, "num_gpus", gpus), "batch": batch,
        "distinct_plans": len(ps.tokens), "layers": ps.layers,
        "experts_per_plan": {"median": float(np.median(experts)), "max": int(experts.max())},
        "compiled": compiled, "reference": ref,
        "speedup_median": (ref["median_us"] / compiled["median_us"]) if ref else None,
        "timer_overhead_ns": timer_overhead_ns(),
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "prepare_s": prep_s, "numba": numba.__version__, "machine": machine(),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "entry_point": "sieveopt.solvers._sieve_numba.sieve_plan(tokens, table, params, ws, order)",
        "command": " ".join(sys.argv),
    }


def render(d: dict) -> str:
    c, r = d["compiled"], d["reference"]
    lines = [f"{d['model']} on {d['gpus']} GPU(s) of {d['system']}, B={d['batch']}: "
             f"{d['distinct_plans']} distinct plans ({d['layers']} layers), "
             f"experts/plan median {d['experts_per_plan']['median']:.0f} max {d['experts_per_plan']['max']}",
             f"  compiled : median {c['median_us']:.2f} us  p99 {c['p99_us']:.2f} us  max {c['max_us']:.1f} us"
             f"  min {c['min_us']:.2f} us  ({c['calls']} calls)"]
    if r:
        lines.append(f"  reference: median {r['median_us']:.1f} us  p99 {r['p99_us']:.1f} us  max {r['max_us']:.1f} us"
                     f"  ({r['calls']} calls; {d['speedup_median']:.0f}x slower)")
    lines.append(f"  timer overhead {d['timer_overhead_ns']:.0f} ns (included); peak RSS {d['peak_rss_MiB']:.0f} MiB;"
                 f" {d['machine']['cpu']}, load {d['machine']['load_avg'][0]:.1f}; {d['date']}")
    return "\n".join(lines)
