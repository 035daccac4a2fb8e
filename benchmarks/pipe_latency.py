"""sieve-pipe's decision latency side by side with Sieve's (issue 11: the successor's declared
scheduler charge, and its "<= 2x Sieve's decision latency" target).

Each execution model's planner is timed on the inputs it plans from, interleaved call by call
with Sieve's compiled planner on the same inputs (same process, same core, same cache state):

* ``microbatch`` / ``ideal``: one micro-batch's routing (B / M requests, M = ``--microbatches``),
  what each (layer, micro-batch) slot's planner sees (:func:`sieveopt.overlap.plan_modes`);
  sieve-pipe's compiled sweep (:func:`sieveopt.solvers.sieve_pipe._sweep`) with the pipeline
  objective (microbatch: a carried load of one earlier slot, as for every slot after the first)
  and with the load only (ideal) vs ``sieve_plan``;
* ``serial``: the whole batch; sieve-pipe under serial makes sieve-plus's decision with its own
  kernel (:func:`sieveopt.solvers.sieve_pipe_serial.serial_sweep`: sorts inside the call, stops
  early) vs ``sieve_plan``; sieve-plus's kernel (:func:`sieveopt.solvers.sieve_plus.decide`'s
  per-GPU call, experts pre-sorted outside the call) is timed in the same rotation for reference.

Inputs (every GPU of ``--layers`` sampled layers, routing seed ``--seed``) are prepared up front,
as in :mod:`sieveopt.solvers.sieve_latency`; only the planner call is timed
(``time.perf_counter_ns``, timer overhead included and reported). Calls cycle through the inputs
in a shuffled order; in each round the planner timed first rotates.

    taskset -c 1 python benchmarks/pipe_latency.py --suite --json > pipe_latency.json
    python benchmarks/pipe_latency.py --model qwen3.5-397b-a17b --gpus 8 --batch 256 --pin-cpu 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import add_paper_instance, add_timing

from sieveopt.solvers.sieve_latency import DEFAULT_SYSTEM, _stats, machine, timer_overhead_ns

#: (model, GPUs, batch): the paper's three configurations at the study's two large batches.
SUITE = [("qwen3-30b-a3b", 1, 64), ("qwen3-30b-a3b", 1, 256), ("gpt-oss-120b", 4, 64), ("gpt-oss-120b", 4, 256),
         ("qwen3.5-397b-a17b", 8, 64), ("qwen3.5-397b-a17b", 8, 256)]
MODELS = ("serial", "microbatch", "ideal")

Call = Callable[[], object]


def _inputs(model: str, gpus: int, batch: int, execution: str, microbatches: int, layers: int,
            seed: int) -> dict[str, list[Call]]:
    """Planner name -> its calls on the same per-GPU inputs (arguments bound): ``sieve`` and
    ``sieve-pipe``, and under serial also ``sieve-plus`` (its kernel, for reference)."""
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.pipeline import build_dag
    from sieveopt.solvers._sieve_numba import make_workspace, sieve_plan
    from sieveopt.solvers.plan_inputs import P_T_COMM, pim_table, plan_inputs
    from sieveopt.solvers.sieve_pipe import _gpu_terms, _sweep, split_args
    from sieveopt.solvers.sieve_pipe_serial import serial_args, serial_sweep
    from sieveopt.solvers.sieve_plus import _compiled, plan_arrays

    m, system = load_model(model), load_system(DEFAULT_SYSTEM, gpus)
    b = batch if execution == "serial" else batch // microbatches
    cost = table = None
    calls: dict[str, list[Call]] = {"sieve": [], "sieve-pipe": [], **({"sieve-plus": []} if execution == "serial" else {})}
    kernel = _compiled()
    for inst in sample_layers(m, system, b, layers, seed):
        dag, cost = build_dag(inst, cost if cost is not None else "roofline")
        if table is None:
            table = pim_table(cost, inst, b)
        inputs = plan_inputs(dag, inst, cost)
        ws, order = make_workspace(max(len(x.tokens) for x in inputs), len(table) - 1)
        for inp in inputs:
            tok = np.ascontiguousarray(inp.tokens, dtype=np.int32)
            calls["sieve"].append(lambda tok=tok, t=table, p=inp.params, ws=ws, order=order:
                                  sieve_plan(tok, t, p, ws, order))
        if execution == "serial":
            pa = plan_arrays(dag)
            items, ginfo, lv = pa.items, pa.ginfo, pa.lv_ns
            work = np.zeros(len(pa.gpu_ns) + 5 * len(lv), dtype=np.int64)
            calls["sieve-plus"] += [lambda g=g, items=items, ginfo=ginfo, lv=lv, work=work:
                                    kernel(items, ginfo, lv, work, g, 0) for g in range(len(ginfo))]
            calls["sieve-pipe"] += [lambda a=a: serial_sweep(*a) for a in serial_args(dag)[0]]  # GPU 0..G-1
            continue
        exclusive = dag.meta.get("hbm_sharing") == "exclusive"
        for inp in inputs:
            terms = _gpu_terms(dag, inp.gpu)
            t_comm = float(inp.params[P_T_COMM])
            if execution == "ideal":
                terms, t_comm = {**terms, "pre": 0, "reduce": 0}, 0.0
            # a slot after the first: the window's earlier slot left a load of the same size
            carried = (float(terms["other"]), float(terms["other"]), float(terms["attn_pim"] + inp.pim_ns.sum()))
            args = split_args(inp.tokens, inp.gpu_ns, inp.pim_ns, terms, t_comm, microbatches, exclusive, carried, 1,
                              execution == "microbatch")
            tok, dur, scal, wsp, orderp = args
            calls["sieve-pipe"].append(lambda tok=tok, d=dur, s=scal, ws=wsp, order=orderp: _sweep(tok, d, s, ws, order))
    return calls


def time_calls(planners: list[list[Call]], calls: int, warmup: int, seed: int) -> list[np.ndarray]:
    """Per-call ns of every planner's call on input ``i``, timed back to back (the planner timed
    first rotates from one input to the next)."""
    n, p = len(planners[0]), len(planners)
    idx = np.random.default_rng(seed).permutation(np.resize(np.arange(n), calls + warmup))
    out = [np.empty(calls, dtype=np.int64) for _ in range(p)]
    clock = time.perf_counter_ns
    for j in range(warmup):
        for f in planners:
            f[idx[j]]()
    for j in range(calls):
        i = idx[warmup + j]
        for r in range(p):
            q = (j + r) % p
            f = planners[q][i]
            t0 = clock()
            f()
            out[q][j] = clock() - t0
    return out


def run(model: str, gpus: int, batch: int, *, microbatches: int = 2, layers: int = 50, calls: int = 20000,
        warmup: int = 2000, seed: int = 0) -> dict:
    from sieveopt.solvers._sieve_numba import warm_up as warm_sieve
    from sieveopt.solvers.sieve_pipe import warm_up as warm_pipe
    from sieveopt.solvers.sieve_pipe_serial import warm_up as warm_serial

    warm_sieve()
    warm_pipe()
    warm_serial()
    out = {"model": model, "gpus": gpus, "batch": batch, "microbatches": microbatches, "layers": layers}
    for ex in MODELS:
        planners = _inputs(model, gpus, batch, ex, microbatches, layers, seed)
        times = dict(zip(planners, time_calls(list(planners.values()), calls, warmup, seed), strict=True))
        st = {k: _stats(v) for k, v in times.items()}
        out[ex] = {"plans": len(planners["sieve"]), **st,
                   **{f"ratio_median{'' if k == 'sieve-pipe' else ':' + k}": st[k]["median_us"] / st["sieve"]["median_us"]
                      for k in st if k != "sieve"},
                   **{f"ratio_p99{'' if k == 'sieve-pipe' else ':' + k}": st[k]["p99_us"] / st["sieve"]["p99_us"]
                      for k in st if k != "sieve"},
                   "planner": "sieve-pipe serial kernel (full batch; sieve-plus's decision)" if ex == "serial" else
                   f"sieve-pipe sweep (B/M = {batch // microbatches} requests per slot)"}
    return out


def render(d: dict) -> str:
    lines = [f"{d['model']} x{d['gpus']} B={d['batch']} (M={d['microbatches']}):"]
    for ex in MODELS:
        r = d[ex]
        s, p = r["sieve"], r["sieve-pipe"]
        extra = ""
        if "sieve-plus" in r:
            q = r["sieve-plus"]
            extra = (f" | sieve-plus kernel median {q['median_us']:.2f} p99 {q['p99_us']:.2f} us "
                     f"({r['ratio_median:sieve-plus']:.2f}x / {r['ratio_p99:sieve-plus']:.2f}x)")
        lines.append(f"  {ex:10s} {r['plans']:5d} plans  sieve median {s['median_us']:.2f} p99 {s['p99_us']:.2f} us | "
                     f"sieve-pipe median {p['median_us']:.2f} p99 {p['p99_us']:.2f} us | "
                     f"ratio {r['ratio_median']:.2f}x / {r['ratio_p99']:.2f}x{extra}  [{r['planner']}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_paper_instance(ap)
    ap.add_argument("--microbatches", type=int, default=2)
    ap.add_argument("--layers", type=int, default=50)
    add_timing(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suite", action="store_true", help="every configuration of SUITE")
    a = ap.parse_args(argv)
    if a.pin_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.pin_cpu})
    configs = SUITE if a.suite else [(a.model, a.gpus, a.batch)]
    res = []
    for model, gpus, batch in configs:
        d = run(model, gpus, batch, microbatches=a.microbatches, layers=a.layers, calls=a.calls, warmup=a.warmup,
                seed=a.seed)
        res.append(d)
        if not a.json:
            print(render(d), flush=True)
    meta = {"machine": machine(), "timer_overhead_ns": timer_overhead_ns(), "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if a.json:
        print(json.dumps({"meta": meta, "results": res}, indent=1))
    else:
        print(f"timer overhead {meta['timer_overhead_ns']:.0f} ns (included); load {meta['machine']['load_avg'][0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
