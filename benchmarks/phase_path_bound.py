"""Joint-phase path relaxation vs the per-resource load bound on the multi-GPU rows (issue 11).

One cyclic window per (config, B), seed 0, ``microbatch`` execution (M = 2 micro-batches, L
window layers), roofline cost model, BF16 dense / the catalog's expert precision (GPT-OSS MXFP4).
All values are superperiods Lambda in ns (divide by L for the period).

Columns: the load bound (CP-SAT over the modes), the path bound (``phase_path_bound``: min over
the 2L * C(4L-1, 2L-1) paths of the LP with relaxed modes), the path LP with the modes *fixed*
to the load optimum's / Sieve's (``--fixed``): the min over paths at one integral mode set is an
upper limit on what the integer variant (binary modes) could certify, since that mode set is a
feasible point of every path's MIP; with ``--mip S`` the integer variant itself (min over
every path of its MIP dual bound); and the phase model value (``phase_balanced_modes``, the sum
of its phase lengths: an estimate, not a bound).

    nice .venv/bin/python benchmarks/phase_path_bound.py --configs gpt-oss-120b:4,qwen3.5-397b-a17b:8 --batches 64,256 --fixed
"""

from __future__ import annotations

import argparse
import time

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import add_configs, microbatch_rows

from sieveopt.overlap import plan_modes
from sieveopt.periodic import resource_loads_ns
from sieveopt.periodic_phase_bound import phase_path_bound
from sieveopt.periodic_search import phase_balanced_modes
from sieveopt.solvers.cpsat_periodic import load_bound_ns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap, default=("gpt-oss-120b:4", "qwen3.5-397b-a17b:8"))
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--cut-width", type=int, default=2, help="window cuts over up to this many phases (0: none)")
    ap.add_argument("--fixed", action="store_true", help="also the path LP at the load-optimal and Sieve's modes")
    ap.add_argument("--mip", type=float, default=None, metavar="S",
                    help="also the integer variant: every path's MIP (binary modes), at most S seconds each")
    ap.add_argument("--time-limit", type=float, default=5.0, help="CP-SAT seconds for the load bound and phase model")
    args = ap.parse_args(argv)
    head = "| config | B | tasks | load bound | path bound | path s |"
    if args.fixed:
        head += " path @ load modes (their load) | path @ sieve modes (their load) |"
    if args.mip is not None:
        head += " path MIP bound | MIP s |"
    head += " phase model |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, gpus, b, prob in microbatch_rows(args.configs, args.batches, args.window_layers):
        load, _, load_modes = load_bound_ns(prob, time_limit_s=args.time_limit)
        t0 = time.perf_counter()
        bound, info = phase_path_bound(prob, cut_width=args.cut_width)
        wall = time.perf_counter() - t0
        row = f"| {name} x{gpus} | {b} | {len(prob.dag.tasks)} | {load} | {bound} | {wall:.1f} |"
        if args.fixed:
            for modes in (load_modes, plan_modes(prob, "sieve")[0]):
                v, _ = phase_path_bound(prob, cut_width=args.cut_width, modes=modes)
                row += f" {v} ({int(resource_loads_ns(prob.dag, modes).max())}) |"
        if args.mip is not None:
            t0 = time.perf_counter()
            v, _ = phase_path_bound(prob, cut_width=args.cut_width, mip_s=args.mip)
            row += f" {v} | {time.perf_counter() - t0:.1f} |"
        pb = phase_balanced_modes(prob, time_limit_s=args.time_limit)
        row += f" {int(pb[1].sum()) if pb else '-'} |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
