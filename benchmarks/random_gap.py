"""Gap of the fast policies on small *random* instances (issue 15), beside the paper configurations
of benchmarks/gap_study.py: sieve-plus was tuned on the paper's three configurations, so its gap
is reported here on instances it never saw.

Each instance: a random tiny MoE model (4-32 experts, top-1..4, 0-1 shared expert, random FFN
sizes), 1, 2 or 4 GPUs of a random catalog system (Sieve B200, H100 HBM3-PIM, Duplex Logic-PIM),
batch 2-32, Zipf skew 0.3-1.5, random context lengths. CP-SAT (deterministic time, 1 worker, so results are reproducible) gives the
reference optimum; only instances it proves optimal count. Execution model: single layer DAG,
roofline cost model, list-scheduled makespans (every schedule passes check()).

    .venv/bin/python benchmarks/random_gap.py --instances 30 --md benchmarks/results/random_gap.md
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from sieveopt.check import check
from sieveopt.fileio import atomic_write_text
from sieveopt.models.catalog import list_systems, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import solve
from sieveopt.solvers.base import OPTIMAL
from sieveopt.testing import random_instance, tiny_model

POLICIES = ("sieve", "sieve-plus", "duplex", "noexp", "allexp")


def one(seed: int, det_time: float) -> dict | None:
    rng = np.random.default_rng(seed)
    experts = int(rng.choice([4, 8, 16, 32]))
    model = tiny_model(num_experts=experts, top_k=int(rng.integers(1, 5)), hidden=int(rng.choice([512, 1024, 2048])),
                       inter=int(rng.choice([256, 512, 1024])), shared=int(rng.integers(0, 2)), name=f"rand{seed}")
    system = load_system(str(rng.choice(list_systems())), int(rng.choice([1, 2, 4])))
    inst = random_instance(rng, model, system, int(rng.integers(2, 33)), skew=float(rng.uniform(0.3, 1.5)),
                           context_len_tokens=int(rng.choice([256, 1024, 4096])))
    dag, cost = build_dag(inst)
    ref = solve("cpsat", dag, inst, cost, deterministic=True, workers=1, time_limit_s=det_time, seed=0)
    assert check(ref.schedule, dag).ok
    if ref.status != OPTIMAL:
        return None
    row = {"seed": seed, "experts": experts, "gpus": system.num_gpus, "batch": inst.batch, "opt_ns": ref.objective_ns}
    for p in POLICIES:
        r = solve(p, dag, inst, cost)
        assert check(r.schedule, dag).ok, p
        row[p] = r.makespan_ns / ref.objective_ns - 1.0
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--deterministic-time", type=float, default=20.0)
    ap.add_argument("--md", default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, unproved = [], 0
    for s in range(a.seed, a.seed + a.instances):
        r = one(s, a.deterministic_time)
        if r is None:
            unproved += 1
        else:
            rows.append(r)
    wall = time.perf_counter() - t0
    lines = ["# Gap on random small instances (vs the CP-SAT optimum)", "",
             f"`python benchmarks/random_gap.py --instances {a.instances} --seed {a.seed}` on "
             f"{time.strftime('%Y-%m-%d')}: {len(rows)} instances proved optimal by CP-SAT "
             f"(deterministic time {a.deterministic_time:g}, 1 worker), {unproved} not proved (left out); "
             f"{wall:.0f} s on a shared 2-core machine. Single-layer DAG, roofline cost model, BF16 tiny "
             "models, list-scheduled makespans, every schedule checked. Tiny models: 4-32 experts, "
             "top-1..4, 1/2/4 GPUs of a random catalog system, batch 2-32.", "",
             "| policy | median gap | p95 | max | optimal on |", "|---|---|---|---|---|"]
    for p in POLICIES:
        g = np.array([r[p] for r in rows])
        lines.append(f"| {p} | {100 * np.median(g):.2f} % | {100 * np.percentile(g, 95):.2f} % | "
                     f"{100 * g.max():.2f} % | {int((g <= 1e-12).sum())}/{len(g)} |")
    worst = max(rows, key=lambda r: r["sieve-plus"])
    lines += ["", f"Worst sieve-plus instance: seed {worst['seed']} ({worst['experts']} experts, {worst['gpus']} "
              f"GPU(s), batch {worst['batch']}): {100 * worst['sieve-plus']:.2f} % above the optimum.", ""]
    text = "\n".join(lines)
    print(text)
    if a.md:
        atomic_write_text(a.md, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
