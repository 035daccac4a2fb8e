"""Which side of the periodic certified gap is loose (issue 11, round 6): on one small instance,
the 60 s pipeline, then a long CP-SAT solve from its result, CP-SAT neighbourhoods of one
(layer, micro-batch) slot, and fixed-Lambda feasibility runs between the bound and the incumbent
(INFEASIBLE certifies Lambda* > x, FEASIBLE is a better schedule), optionally on the relaxation
that keeps NoOverlap on one GPU's resources only.

Execution model ``microbatch`` (M micro-batches, cyclic window of L layers, seed 0), roofline
cost model, catalog precisions, CP-SAT with 2 workers. Values are superperiods (ns).

    nice .venv/bin/python benchmarks/periodic_settle.py --config gpt-oss-120b:2 --batch 32 --long-s 600
    nice .venv/bin/python benchmarks/periodic_settle.py --config gpt-oss-120b:2 --batch 32 --probe 0.5 --probe-s 180
    nice .venv/bin/python benchmarks/periodic_settle.py --config gpt-oss-120b:2 --batch 32 --probe 0.3 --relax-gpu 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _args import SYSTEM, split_config

from sieveopt.execution_model import make_execution_model
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.overlap import HINT_POLICIES, sample_problem, solve_overlap
from sieveopt.periodic import check_periodic
from sieveopt.periodic_search import compact
from sieveopt.solvers.base import INFEASIBLE
from sieveopt.solvers.cpsat_periodic import solve_periodic_cpsat


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=split_config, default=("gpt-oss-120b", 2), help="MODEL:GPUS")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--microbatches", type=int, default=2)
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--base", type=float, default=60.0, help="time limit of the pipeline call (s)")
    ap.add_argument("--long-s", type=float, default=0.0, help="CP-SAT from the pipeline's result (s)")
    ap.add_argument("--slot-s", type=float, default=0.0, help="per one-slot neighbourhood, two sweeps (s)")
    ap.add_argument("--probe", default="", help="comma list: fractions of (incumbent - bound) above the bound")
    ap.add_argument("--probe-s", type=float, default=120.0)
    ap.add_argument("--relax-gpu", type=int, default=None, help="probes keep NoOverlap on this GPU's resources only")
    args = ap.parse_args(argv)
    name, gpus = args.config
    model, system = load_model(name), load_system(SYSTEM, gpus)
    cost = make_cost_model("roofline", system, model)
    ex = make_execution_model("microbatch", args.microbatches, window_layers=args.window_layers, batch=args.batch,
                              num_gpus=gpus)
    prob = sample_problem(model, system, args.batch, ex, 0, cost)
    dag = prob.dag
    hints = {p: solve_overlap(prob, p) for p in HINT_POLICIES}
    c = solve_overlap(prob, "cpsat", time_limit_s=args.base, workers=2, hints=hints)
    best, bound = c.schedule, int(c.meta["bound_ns"])
    rec: dict = {"config": f"{name}:{gpus}", "batch": args.batch, "tasks": len(dag.tasks), "bound_ns": bound,
                 "pipeline_ns": int(best.superperiod_ns),
                 "phase_model_ns": c.meta["incumbent_search"].get("phase_model_ns")}
    print(json.dumps(rec), flush=True)
    if args.long_s > 0:
        ps, info = solve_periodic_cpsat(prob, best, time_limit_s=args.long_s, workers=2, load_bound=bound)
        rec["long"] = {"ns": int(ps.superperiod_ns), "conflicts": info["num_conflicts"]}
        best = compact(prob, ps) if ps.superperiod_ns < best.superperiod_ns else best
        bound = max(bound, int(info["bound_ns"]))
        print("long:", rec["long"], "compacted", best.superperiod_ns, flush=True)
    if args.slot_s > 0:
        slots = sorted({(t.layer, t.microbatch) for t in dag.tasks})
        for _ in range(2):
            for slot in slots:
                free = [t.tid for t in dag.tasks if (t.layer, t.microbatch) == slot]
                ps, _ = solve_periodic_cpsat(prob, best, time_limit_s=args.slot_s, workers=2, load_bound=bound,
                                             free=free)
                if ps.superperiod_ns < best.superperiod_ns:
                    best = compact(prob, ps)
        rec["slot_neighbourhoods_ns"] = int(best.superperiod_ns)
        print("slot neighbourhoods:", best.superperiod_ns, flush=True)
    rids: bool | frozenset[int] = True
    if args.relax_gpu is not None:
        rids = frozenset(r.rid for r in dag.resources if r.name.endswith(f"[{args.relax_gpu}]"))
    rec["probes"] = []
    for f in (float(x) for x in args.probe.split(",") if x):
        lam = int(bound + f * (best.superperiod_ns - bound))
        if not bound <= lam < best.superperiod_ns:
            continue
        t0 = time.perf_counter()
        ps, info = solve_periodic_cpsat(prob, None, time_limit_s=args.probe_s, workers=2, fixed_ns=lam,
                                        load_bound=bound, resources=rids)
        rec["probes"].append({"lambda_ns": lam, "status": info["status"], "wall_s": round(time.perf_counter() - t0, 1)})
        print("probe:", rec["probes"][-1], flush=True)
        if ps is not None and check_periodic(ps, prob).ok:
            best = compact(prob, ps)
        elif info["status"] == INFEASIBLE:
            bound = lam + 1
    rec.update(final_bound_ns=bound, final_ns=int(best.superperiod_ns))
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
