"""Alternating vs synchronized phase structure on the multi-GPU rows (issue 11, round 8).

Per (config, B), M = 2, one cyclic window of ``--window-layers`` sampled layers (seed 0): the
load bound (``load_bound_ns``), and for each phase offset (:func:`task_phases`; 1 = alternating,
today's structure; M = synchronized: both micro-batches' dense chains in one phase, one layer
apart, both their experts in the next) the phase model's value (``phase_balanced_modes``, sum
of phase lengths at its best modes, deterministic CP-SAT, ``--time-limit`` s) and the explicit
construction at those modes (``staggered_schedule``, exact shortest superperiod, ``check_periodic``);
with ``--descent-s S`` also ``local_search`` from that construction for S s of wall time (seed 0;
clock-bound, so its evaluation count depends on the machine's load). ``--breakdown`` prints, per
phase of each phase model, its length, the busiest GPU's and PIM's work in it and its idle time
per compute resource (length minus the phase's GPU + PIM work spread evenly over all of them).

Execution model ``microbatch``, roofline cost model, catalog precisions. Values are superperiods
(ns); percentages are over the load bound.

    nice .venv/bin/python benchmarks/phase_structures.py
    nice .venv/bin/python benchmarks/phase_structures.py --configs gpt-oss-120b:4 --offsets 1,2 --descent-s 30
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _args import add_configs, microbatch_rows

from sieveopt.periodic import check_periodic
from sieveopt.periodic_search import (
    local_search,
    phase_balanced_modes,
    staggered_schedule,
    task_phases,
)
from sieveopt.solvers.cpsat_periodic import load_bound_ns


def breakdown(prob, modes, phase_ns: np.ndarray, offset: int) -> str:
    """Per phase: length, busiest GPU / PIM work and idle time per GPU-or-PIM resource (ns)."""
    dag = prob.dag
    ph = task_phases(prob, offset)
    loads = np.zeros((len(phase_ns), len(dag.resources)), dtype=np.int64)
    for t in dag.tasks:
        c = t.modes[modes[t.tid]]
        for rid in c.resources:
            loads[ph[t.tid], rid] += c.duration_ns
    gpu = [r.rid for r in dag.resources if r.name.startswith("gpu[")]
    pim = [r.rid for r in dag.resources if r.name.startswith("pim[")]
    idle = phase_ns - loads[:, gpu + pim].sum(axis=1) / len(gpu + pim)
    return f"idle {int(idle.sum())}; " + "; ".join(
        f"P{p} {int(phase_ns[p])} (gpu {int(loads[p, gpu].max())}, pim {int(loads[p, pim].max())}, "
        f"idle {int(idle[p])})" for p in range(len(phase_ns)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap, default=("gpt-oss-120b:4", "qwen3.5-397b-a17b:8"))
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--offsets", default="1,2", help="phase offsets between the micro-batches (1 alternating, 2 "
                                                      "synchronized)")
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds for the load bound and each "
                                                                   "phase model")
    ap.add_argument("--descent-s", type=float, default=0.0, help="descent from each construction (s; 0: none)")
    ap.add_argument("--breakdown", action="store_true", help="per-phase lengths, busiest GPU / PIM, idle (stderr)")
    args = ap.parse_args(argv)
    offsets = [int(x) for x in args.offsets.split(",")]
    head = "| config | B | tasks | load bound |" + "".join(
        f" phase model o={o} | construction o={o} |" + (f" descent o={o} |" if args.descent_s > 0 else "")
        for o in offsets)
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, gpus, b, prob in microbatch_rows(args.configs, args.batches, args.window_layers):
        load, _, _ = load_bound_ns(prob, time_limit_s=args.time_limit)
        row = f"| {name} x{gpus} | {b} | {len(prob.dag.tasks)} | {load} |"
        for o in offsets:
            t0 = time.perf_counter()
            pb = phase_balanced_modes(prob, time_limit_s=args.time_limit, deterministic=True, offset=o)
            if pb is None:
                row += " - | - |" + (" - |" if args.descent_s > 0 else "")
                continue
            value = int(pb[1].sum())
            if args.breakdown:
                print(f"  {name} x{gpus} B={b} offset {o}: {breakdown(prob, pb[0], pb[1], o)}", file=sys.stderr)
            st = staggered_schedule(prob, pb[0], offset=o)
            ok = st is not None and check_periodic(st, prob).ok
            cons = "-" if st is None else f"{st.superperiod_ns} ({100 * (st.superperiod_ns / load - 1):+.2f} %)"
            row += (f" {value} ({100 * (value / load - 1):+.2f} %) | {cons}{'' if ok else ' CHECK FAIL'} |")
            if args.descent_s > 0:
                if st is None:
                    row += " - |"
                else:
                    ds = local_search(prob, st, max_evaluations=10**9, seed=0,
                                      deadline=time.perf_counter() + args.descent_s)
                    ok = check_periodic(ds, prob).ok
                    row += (f" {ds.superperiod_ns} ({100 * (ds.superperiod_ns / load - 1):+.2f} %, "
                            f"{ds.meta.get('local_search_evaluations')} evaluations)"
                            f"{'' if ok else ' CHECK FAIL'} |")
            print(f"  offset {o}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
