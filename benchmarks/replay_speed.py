"""Replay speed: one Qwen3.5-397B-A17B layer at B=256 on 8 GPUs must replay in <= 5 s on one core.

Schedules several sampled layers with Sieve, then replays each one twice: with every DRAM
result cache cleared (cold: every stream grid point / PIM shape of that layer simulated; the
numba engine is loaded once before timing) and again (warm). Prints the median/max per layer,
the interconnect simulation counts and the peak RSS.

    .venv/bin/python benchmarks/replay_speed.py [--layers 5] [--memory dram|analytic]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

# benchmarks/ is on sys.path when a script runs as `python benchmarks/NAME.py`
from _args import SYSTEM, add_paper_instance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_paper_instance(ap)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--policy", default="sieve")
    ap.add_argument("--memory", default="dram", choices=("dram", "analytic"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.pipeline import run_layer
    from sieveopt.validation import replay_dram
    from sieveopt.validation.replay import make_timer, replay

    model = load_model(args.model)
    system = load_system(SYSTEM, args.gpus)
    layers = sample_layers(model, system, args.batch, args.layers, args.seed)
    runs = [run_layer(inst, args.policy) for inst in layers]
    if args.memory == "dram":   # load the numba engine (JIT cache) outside the timings
        t0 = time.perf_counter()
        warm_timer = make_timer(system, model, "dram")
        warm_timer.stream_ns(1 << 20)
        warm_timer.pim_expert_ns(1)
        print(f"numba engine load + first simulations: {time.perf_counter() - t0:.2f} s")
        print("DRAM mapping:", warm_timer.describe())
        print("bandwidths (GB/s):", {k: round(v) for k, v in warm_timer.bandwidth_check().items()})
    cold, warm, its, tasks = [], [], [], []
    for inst, run in zip(layers, runs, strict=True):
        replay_dram.clear_cache()
        t0 = time.perf_counter()
        timer = make_timer(system, model, args.memory)
        r = replay(run.result.schedule, run.dag, system, instance=inst, timer=timer)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        replay(run.result.schedule, run.dag, system, instance=inst, timer=make_timer(system, model, args.memory))
        warm.append(time.perf_counter() - t0)
        its.append(r.iterations)
        tasks.append(len(run.dag.tasks))
        print(f"layer {inst.moe_layer:3d}: {len(run.dag.tasks)} tasks, cold {cold[-1]:.3f} s, warm {warm[-1]:.3f} s, "
              f"{r.iterations} network simulations, predicted {r.predicted_makespan_ns / 1e3:.1f} us, "
              f"replayed {r.makespan_ns / 1e3:.1f} us ({timer.name})")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{args.model} B={args.batch} on {args.gpus} GPUs, {args.policy}, memory={args.memory}, "
          f"{len(layers)} layers (~{statistics.median(tasks):.0f} tasks each)")
    print(f"cold cache: median {statistics.median(cold):.3f} s, max {max(cold):.3f} s per layer")
    print(f"warm cache: median {statistics.median(warm):.3f} s, max {max(warm):.3f} s per layer")
    print(f"network simulations: median {statistics.median(its)}, max {max(its)}")
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
