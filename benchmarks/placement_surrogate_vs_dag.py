"""Why the annealed (exact) placement loses to GEM in the dag evaluation: per-GPU times, surrogate vs dag.

The headline window (DeepSeek-V3, 8 GPUs, variability 0.1, seed 0, B = 256, 32 history steps):
GEM's placement and the annealing of GEM's placement (the exact optimiser's incumbent search,
default steps, seed 0) are scored per GPU at a few steps by the surrogate (best-unit *serial*
work) and by the layer DAG solved by Sieve (roofline, serialized execution model; per GPU the
end of its last expert task). Prints a table and the slot counts; ~2 min on a quiet core.

    python benchmarks/placement_surrogate_vs_dag.py [--steps 32,33,5]
"""

from __future__ import annotations

import argparse

import numpy as np

from sieveopt.dag import EXPERT
from sieveopt.models.catalog import load_model, load_system
from sieveopt.placement.anneal import anneal
from sieveopt.placement.core import slots_per_gpu
from sieveopt.placement.evaluate import _DagTimer, drifting_trace
from sieveopt.placement.exact import ANNEAL_ITERS_PER_ITEM
from sieveopt.placement.policies import PlacementProblem, from_gpu_map, gem
from sieveopt.placement.surrogate import Surrogate
from sieveopt.variability import speed_factors, variability_spec, with_variability


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="32,33,5", help="steps of the trace to evaluate")
    args = ap.parse_args()
    model = load_model("deepseek-v3")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 8), variability_spec(0.1, seed=0))
    cap = slots_per_gpu(model, system)
    lids = sorted(int(x) for x in np.random.default_rng(0).choice(model.num_moe_layers, 1, replace=False))
    trace = drifting_trace(model, 256, 40, 0, lids)
    counts = trace.counts()[:, 0, :]
    sur = Surrogate(model, system, 256)
    prob = PlacementProblem(256, 8, cap, 0, sur)
    window = counts[:32].astype(float)
    pg = gem(window, prob)
    cost = sur.item_costs(counts[:32])
    a, val, _ = anneal(cost, pg.slot_gpu, cap, np.full(256, -1), iters=ANNEAL_ITERS_PER_ITEM * 256, seed=0)
    pa = from_gpu_map(a, prob, "annealed")
    timer = _DagTimer(model, system, "sieve", 2048)
    print("speeds", np.round(speed_factors(system).compute, 3))
    for name, p in (("gem", pg), ("annealed", pa)):
        print(f"{name}: window surrogate {sur.step_times(p, counts[:32]).mean() / 1e3:.2f} us, "
              f"slots per GPU {p.slots_per_gpu().tolist()}")
        for t in (int(x) for x in args.steps.split(",")):
            ns, _ = timer(p, trace.expert_ids[t, 0], int(trace.layer_ids[0]), t)
            dag, res = timer.last
            end = np.zeros(8)
            for task in dag.tasks:
                if task.kind == EXPERT:
                    end[task.gpu] = max(end[task.gpu], res.schedule.end_ns[task.tid])
            s = sur.gpu_loads(p, counts[t][None, :])[0]
            print(f"  step {t}: dag makespan {ns / 1e3:.1f} us; per GPU dag expert end "
                  f"{np.round(end / 1e3, 1).tolist()}; surrogate {np.round(s / 1e3, 1).tolist()}")


if __name__ == "__main__":
    main()
