"""Certified gap of the exact placement optimiser per objective on the headline window (issue 17).

The 32-step window of ``sieveopt place --model deepseek-v3 --gpus 8 --steps 200 --variability
0.1`` (seed 0; overlap surrogate, roofline cost model, FP8 experts; GEM and EPLB as hints inside
the time limit, exactly as the command's exact policy runs: ``exact_with_report``): ``solve_exact`` with the ``mean`` objective and with
``cvar`` (mean of the worst ``1 - alpha`` share of the steps' stragglers, a quantile-like
objective) at each ``--alphas`` value and ``--seeds`` seed, ``--time-limit`` s each. Prints
the objective, the bound, the certified gap, the status, the wall time and the stage times.

    nice .venv/bin/python benchmarks/placement_quantile.py
    nice .venv/bin/python benchmarks/placement_quantile.py --alphas 0.9 --seeds 0,1,2 --no-mean
"""

from __future__ import annotations

import argparse
import resource

from _args import placement_headline_window

from sieveopt.placement.exact import exact_with_report, worst_count
from sieveopt.placement.policies import PlacementProblem
from sieveopt.placement.surrogate import Surrogate

HISTORY = 32


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alphas", default="0.5,0.75,0.9,0.95", help="cvar levels (comma-separated)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=8, help="CP-SAT workers (the command's default)")
    ap.add_argument("--no-mean", action="store_true", help="skip the mean objective's row")
    ap.add_argument("--window-starts", default="0", help="first step of each 32-step window of the trace "
                                                         "(0: the command's window; later ones: other routing)")
    args = ap.parse_args(argv)
    model, system, cap, counts = placement_headline_window(HISTORY, 200)
    sur = Surrogate(model, system, 256)
    prob = PlacementProblem(counts.shape[1], system.num_gpus, cap, 32, sur, time_limit_s=args.time_limit,
                            workers=args.workers)
    runs = ([] if args.no_mean else [("mean", 0.9)]) + [("cvar", float(a)) for a in args.alphas.split(",")]
    print("| window start | objective | worst steps | seed | objective (us) | bound (us) | gap | status | wall (s) "
          "| stages (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for w0 in (int(x) for x in args.window_starts.split(",")):
        L = counts[w0:w0 + HISTORY].astype(float)
        for kind, alpha, seed in ((k_, a_, int(s_)) for k_, a_ in runs for s_ in args.seeds.split(",")):
            r = exact_with_report(L, prob, objective_kind=kind, alpha=alpha, seed=seed)
            k = worst_count(alpha, HISTORY) if kind == "cvar" else HISTORY
            stages = ", ".join(f"{s} {v:.1f}" for s, v in r.meta.get("stage_s", {}).items())
            print(f"| {w0} | {kind}{'' if kind == 'mean' else f' (alpha {alpha})'} | {k} | {seed} | {r.objective_ns / 1e3:.3f} "
                  f"| {r.bound_ns / 1e3:.3f} | {100 * r.gap:.2f} % | {r.status} | {r.wall_s:.1f} | {stages} |",
                  flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
