"""Integral joint-state model as an incumbent construction (issue 11, round 9).

Per (config, B), M = 2, one cyclic window of ``--window-layers`` sampled layers (seed 0): the
load bound (``load_bound_ns``), the phase model's modes (``phase_balanced_modes``, deterministic
CP-SAT), the ``--paths`` joint-state paths with the smallest path-LP value at those modes
(``best_paths``) plus the path the phase construction (``staggered_schedule``) follows; per path
the integral state model (``solve_states``, fixed modes, deterministic CP-SAT, one worker,
``--model-limit`` deterministic seconds; ``--chains``: the per-state chain condition instead of
per-state no-overlap) and its construction (``state_schedule``: exact shortest superperiod of its
orders, ``check_periodic`` and ``check_unrolled``). The best construction and the phase
construction are then each polished by ``local_search`` for ``--descent-s`` s of wall time
(seed 0; clock-bound, so the evaluation count depends on the machine's load).

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
from sieveopt.periodic_states import best_paths, schedule_states, solve_states, state_schedule
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
    ap.add_argument("--paths", type=int, default=3, help="paths by smallest path-LP value at the phase modes")
    ap.add_argument("--model-limit", type=float, default=5.0, help="deterministic CP-SAT seconds per path")
    ap.add_argument("--chains", action="store_true", help="per-state chain condition instead of no-overlap")
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds for the load bound and phase model")
    ap.add_argument("--descent-s", type=float, default=30.0, help="descent from each construction (s)")
    args = ap.parse_args(argv)
    print("| config | B | load bound | state model (best path) | state construction | after descent | "
          "phase construction | phase after descent | state model s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, gpus, b, prob in microbatch_rows(args.configs, args.batches, args.window_layers):
        load, _, _ = load_bound_ns(prob, time_limit_s=args.time_limit)
        modes = phase_balanced_modes(prob, time_limit_s=args.time_limit, deterministic=True)[0]
        pm, why = phase_map(prob)
        if pm is None:
            print(f"| {name} x{gpus} | {b} | {load} | - ({why}) | | | | | |")
            continue
        phase = staggered_schedule(prob, modes)
        t0 = time.perf_counter()
        hint = schedule_states(prob, pm, phase)
        paths = [(None, hint.path)] + [(v, p) for v, p in best_paths(prob, modes, args.paths, pm) if p != hint.path]
        best_sol, best_ps = None, None
        for lp, path in paths:
            sol = solve_states(prob, path, modes=modes, time_limit_s=args.model_limit, pm=pm,
                               disjunctive=not args.chains, hint=hint if path == hint.path else None)
            ps = None if sol is None else state_schedule(prob, sol)
            print(f"  path {path} LP {lp}: model {None if sol is None else (sol.value_ns, sol.status, round(sol.wall_s, 1))}"
                  f" -> {None if ps is None else ps.superperiod_ns}", file=sys.stderr, flush=True)
            if ps is not None and (best_ps is None or ps.superperiod_ns < best_ps.superperiod_ns):
                best_sol, best_ps = sol, ps
        model_s = time.perf_counter() - t0
        if best_ps is None:
            print(f"| {name} x{gpus} | {b} | {load} | - | - | - | {phase.superperiod_ns} | - | {model_s:.1f} |")
            continue
        ok = _valid(prob, best_ps)
        desc = local_search(prob, best_ps, max_evaluations=10**9, seed=0, deadline=time.perf_counter() + args.descent_s)
        pdesc = local_search(prob, phase, max_evaluations=10**9, seed=0, deadline=time.perf_counter() + args.descent_s)
        ok = ok and _valid(prob, desc) and _valid(prob, pdesc)
        print(f"| {name} x{gpus} | {b} | {load} | {_pct(best_sol.value_ns, load)} | {_pct(best_ps.superperiod_ns, load)} | "
              f"{_pct(desc.superperiod_ns, load)} | {_pct(phase.superperiod_ns, load)} | {_pct(pdesc.superperiod_ns, load)} | "
              f"{model_s:.1f} |{'' if ok else ' CHECK FAIL'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
