"""Integral joint-state model as an incumbent construction (issue 11, round 9).

Per (config, B), M = 2, one cyclic window of ``--window-layers`` sampled layers (seed 0): the
load bound (``load_bound_ns``), the phase model (``phase_balanced_modes``, deterministic CP-SAT)
and, on the alternating path (``alternating_path``) hinted with the phase model's solution
(``phase_states``), plus the ``--paths`` paths with the smallest path-LP value at the phase modes
(``best_paths``, no hint), the two-stage state model (``two_stage``: chain-only assignment, then
per-state sequencing with the assignment fixed, the phase model's own assignment sequenced too
and the better kept; with ``--refine-limit`` the sequenced model with the assignment free from
it; deterministic CP-SAT, one worker, ``--assign-limit`` / ``--sequence-limit`` /
``--refine-limit`` deterministic seconds; ``--free-modes``: modes free in the first stage) and its construction (``state_schedule``: exact shortest superperiod of its
orders; ``check_periodic`` and ``check_unrolled``). The best construction and the phase
construction (``staggered_schedule`` at the phase modes) are each polished by ``local_search``
for ``--descent-s`` s of wall time (seed 0; clock-bound, so the evaluation count depends on the
machine's load).

Execution model ``microbatch``, roofline cost model, catalog precisions (BF16 dense, GPT-OSS
MXFP4 experts). Values are superperiods (ns); percentages are over the load bound.

    nice .venv/bin/python benchmarks/periodic_states.py --configs gpt-oss-120b:4 --batches 64
"""

from __future__ import annotations

import argparse
import sys
import time

from _args import add_configs, microbatch_rows

from sieveopt.periodic import check_periodic, check_unrolled
from sieveopt.periodic_phase_bound import phase_map
from sieveopt.periodic_search import local_search, phase_balanced_modes, staggered_schedule
from sieveopt.periodic_states import best_paths, phase_states, state_schedule, two_stage
from sieveopt.solvers.cpsat_periodic import load_bound_ns


def _pct(v: int, load: int) -> str:
    return f"{v} ({100 * (v / load - 1):+.2f} %)"


def _valid(prob, ps) -> bool:
    return check_periodic(ps, prob).ok and check_unrolled(prob, ps, 3).ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap, default=("gpt-oss-120b:4", "qwen3.5-397b-a17b:8"))
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--paths", type=int, default=0, help="also the paths with the smallest path-LP value (no hint)")
    ap.add_argument("--assign-limit", type=float, default=2.0, help="deterministic CP-SAT s, chain-only stage")
    ap.add_argument("--sequence-limit", type=float, default=2.0, help="deterministic CP-SAT s, sequencing stage")
    ap.add_argument("--refine-limit", type=float, default=0.0, help="deterministic CP-SAT s, sequenced model "
                                                                   "with the assignment free (0: none)")
    ap.add_argument("--free-modes", action="store_true", help="modes free in the chain-only stage")
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds for the load bound and phase model")
    ap.add_argument("--descent-s", type=float, default=30.0, help="descent from each construction (s)")
    args = ap.parse_args(argv)
    print("| config | B | load bound | phase model | state model (chain-only) | sequenced (best) | state construction | "
          "after descent | phase construction | phase after descent | state model s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, gpus, b, prob in microbatch_rows(args.configs, args.batches, args.window_layers):
        load, _, _ = load_bound_ns(prob, time_limit_s=args.time_limit)
        modes, phase_ns = phase_balanced_modes(prob, time_limit_s=args.time_limit, deterministic=True)
        pm, why = phase_map(prob)
        if pm is None:
            print(f"| {name} x{gpus} | {b} | {load} | {int(phase_ns.sum())} | - ({why}) | | | | | | |")
            continue
        phase = staggered_schedule(prob, modes)
        t0 = time.perf_counter()
        hint = phase_states(prob, pm, modes, phase_ns)
        paths = [hint.path] + [p for _, p in best_paths(prob, modes, args.paths, pm) if p != hint.path]
        best = None
        for path in paths:
            first, seq = two_stage(prob, path, modes=None if args.free_modes else modes,
                                   assign_limit_s=args.assign_limit, sequence_limit_s=args.sequence_limit,
                                   refine_limit_s=args.refine_limit, pm=pm,
                                   hint=hint if path == hint.path else None)
            ps = None if seq is None else state_schedule(prob, seq)
            print(f"  path {path}: chain-only {None if first is None else (first.value_ns, first.status)}, "
                  f"sequenced {None if seq is None else (seq.value_ns, seq.status)} -> "
                  f"{None if ps is None else ps.superperiod_ns} ({time.perf_counter() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
            if ps is not None and (best is None or ps.superperiod_ns < best[2].superperiod_ns):
                best = (first, seq, ps)
        model_s = time.perf_counter() - t0
        if best is None:
            print(f"| {name} x{gpus} | {b} | {load} | {int(phase_ns.sum())} | - | - | - | - | "
                  f"{phase.superperiod_ns} | - | {model_s:.1f} |")
            continue
        first, seq, ps = best
        ok = _valid(prob, ps)
        desc = local_search(prob, ps, max_evaluations=10**9, seed=0, deadline=time.perf_counter() + args.descent_s)
        pdesc = local_search(prob, phase, max_evaluations=10**9, seed=0, deadline=time.perf_counter() + args.descent_s)
        ok = ok and _valid(prob, desc) and _valid(prob, pdesc)
        print(f"| {name} x{gpus} | {b} | {load} | {_pct(int(phase_ns.sum()), load)} | {_pct(first.value_ns, load)} | "
              f"{_pct(seq.value_ns, load)} | {_pct(ps.superperiod_ns, load)} | {_pct(desc.superperiod_ns, load)} | "
              f"{_pct(phase.superperiod_ns, load)} | {_pct(pdesc.superperiod_ns, load)} | {model_s:.1f} |"
              f"{'' if ok else ' CHECK FAIL'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
