"""Surrogate vs dag, per GPU and step: the serial and the overlap-aware placement surrogates.

The headline window (DeepSeek-V3, 8 GPUs, variability 0.1, seed 0, B = 256, 32 history steps):
GEM's placement and the annealing of it under each surrogate (``serial``: best-unit serial work,
the previous rounds' objective; ``overlap``: the fractional Sieve GPU/PIM split, the default;
annealing: the exact optimiser's incumbent search, its default steps, seed 0) are evaluated at
the steps after the window by the layer DAG solved by Sieve (roofline, serialized execution
model). Per GPU the dag's *expert phase* is the time from its first to its last expert task;
the table gives, per placement, the dag makespan (mean over the steps), the mean surrogate
straggler, and per (step, GPU) the error of each surrogate against the expert phase (mean
absolute error, Pearson r), plus the correlation of each surrogate's straggler with the
makespan over steps and placements. ~2 min on a quiet core.

    python benchmarks/placement_surrogate_vs_dag.py [--steps 16]
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


def expert_phase(timer: _DagTimer, G: int) -> np.ndarray:
    """Per GPU: last expert end - first expert start of the layer the timer solved last (ns)."""
    dag, res = timer.last
    start, end = np.full(G, np.inf), np.zeros(G)
    for task in dag.tasks:
        if task.kind == EXPERT:
            start[task.gpu] = min(start[task.gpu], res.schedule.start_ns[task.tid])
            end[task.gpu] = max(end[task.gpu], res.schedule.end_ns[task.tid])
    return np.where(np.isfinite(start), end - start, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16, help="evaluated steps after the 32-step window")
    args = ap.parse_args()
    model = load_model("deepseek-v3")
    system = with_variability(load_system("sieve-b200-hbm3e-pim", 8), variability_spec(0.1, seed=0))
    G = system.num_gpus
    cap = slots_per_gpu(model, system)
    lids = sorted(int(x) for x in np.random.default_rng(0).choice(model.num_moe_layers, 1, replace=False))
    trace = drifting_trace(model, 256, 32 + args.steps, 0, lids)
    counts = trace.counts()[:, 0, :]
    surs = {k: Surrogate(model, system, 256, kind=k) for k in ("serial", "overlap")}
    prob = PlacementProblem(256, G, cap, 0, surs["overlap"])
    window = counts[:32]
    pg = gem(window.astype(float), prob)
    places = {"gem": pg}
    for k, sur in surs.items():
        a, _, _ = anneal((window, sur.level_ns), pg.slot_gpu, cap, np.full(256, -1),
                         iters=ANNEAL_ITERS_PER_ITEM * 256, seed=0)
        places[f"annealed ({k})"] = from_gpu_map(a, prob, f"annealed-{k}")
    timer = _DagTimer(model, system, "sieve", 2048)
    steps = range(32, 32 + args.steps)
    print("speeds", np.round(speed_factors(system).compute, 3).tolist())
    print("| placement | slots per GPU | dag makespan us | serial surr. window / straggler us | "
          "overlap surr. window / straggler us | serial vs phase MAE us, r | overlap vs phase MAE us, r |")
    print("|---|---|---|---|---|---|---|")
    mk_all, strag = [], {k: [] for k in surs}
    for name, p in places.items():
        phase, mk = [], []
        per = {k: [] for k in surs}
        for t in steps:
            ns, _ = timer(p, trace.expert_ids[t, 0], int(trace.layer_ids[0]), t)
            mk.append(ns)
            phase.append(expert_phase(timer, G))
            for k, sur in surs.items():
                per[k].append(sur.gpu_loads(p, counts[t][None, :])[0])
        phase = np.array(phase)
        mk_all += mk
        cells = []
        for k in surs:
            s = np.array(per[k])
            strag[k] += s.max(axis=1).tolist()
            cells.append(f"{surs[k].step_times(p, window).mean() / 1e3:.2f} / {s.max(axis=1).mean() / 1e3:.2f}")
        errs = [f"{np.abs(np.array(per[k]) - phase).mean() / 1e3:.2f}, "
                f"{np.corrcoef(np.array(per[k]).ravel(), phase.ravel())[0, 1]:.2f}" for k in surs]
        print(f"| {name} | {p.slots_per_gpu().tolist()} | {np.mean(mk) / 1e3:.1f} | {cells[0]} | {cells[1]} | "
              f"{errs[0]} | {errs[1]} |")
    for k in surs:
        print(f"straggler ({k}) vs dag makespan over steps and placements: r = "
              f"{np.corrcoef(strag[k], mk_all)[0, 1]:.2f}")


if __name__ == "__main__":
    main()
