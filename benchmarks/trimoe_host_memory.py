"""When does host memory bandwidth bind? Per-layer time with and without CPU/PCIe contention.

Usage: ``python benchmarks/trimoe_host_memory.py [--layers 3] [--batches 64,256] [--option host_memory]``
(``--option ndp_placement`` compares NDP jobs on any DIMM vs each on its home DIMM instead). For each catalog
model on ``trimoe-h100-xeon-ndp`` (seed 0, serial execution, roofline cost model, BF16 experts)
it list-schedules ``trimoe``, ``gpu-cpu`` and ``gpu-ndp`` on the same layer with
``host_memory = "independent"`` (the paper's objective) and ``"shared"``
(:mod:`sieveopt.offload_host_memory`: a CPU job and a fetch overlap only if their bandwidths fit),
and prints the median makespans with trimoe's host-read floor: the bytes its CPU jobs and fetches
read from host memory at the achievable bandwidth C. Above the independent makespan, the floor
says contention binds even under ideal (fluid) sharing; the shared model's serialisation is the
conservative end.
"""

from __future__ import annotations

import argparse
import statistics

from sieveopt.check import check
from sieveopt.dag import DagOptions, build_layer_dag
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.offload_host_memory import host_bytes_per_ns
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH
from sieveopt.solvers import solve

POLICIES = ("trimoe", "gpu-cpu", "gpu-ndp")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--option", default="host_memory", choices=("host_memory", "ndp_placement"))
    a = ap.parse_args()
    values = {"host_memory": ("independent", "shared"), "ndp_placement": ("any", "home")}[a.option]
    system = load_system("trimoe-h100-xeon-ndp")
    C = host_bytes_per_ns(system)
    print(f"host memory C = {C:.1f} GB/s achievable; median layer us over {a.layers} layers (seed 0)")
    print(f"{a.option}: {values[0]} vs {values[1]}")
    print("model | B | " + " | ".join(f"{p} {values[0]} | {p} {values[1]}" for p in POLICIES) + " | trimoe host-read floor us")
    for name in ("deepseek-v2", "qwen3-235b-a22b", "glm-4.5-air"):
        model = load_model(name)
        cost = RooflineCostModel(system, model)
        for batch in (int(b) for b in a.batches.split(",")):
            spans: dict[tuple[str, str], list[float]] = {}
            floor = []
            for inst in sample_layers(model, system, batch, a.layers, 0):
                for hm in values:
                    dag = build_layer_dag(inst, cost, DagOptions.for_system(system, **{a.option: hm}))
                    for pol in POLICIES:
                        r = solve(pol, dag, inst, cost)
                        assert check(r.schedule, dag).ok
                        spans.setdefault((pol, hm), []).append(r.makespan_ns / 1e3)
                        if pol == "trimoe" and hm == values[0]:
                            n = sum(m in (MODE_CPU, MODE_GPU_FETCH) for m in r.schedule.expert_modes(dag).values())
                            floor.append(n * model.expert_weight_bytes / C / 1e3)
            cells = " | ".join(f"{statistics.median(spans[(p, values[0])]):.0f} | "
                               f"{statistics.median(spans[(p, values[1])]):.0f}" for p in POLICIES)
            print(f"{name} | {batch} | {cells} | {statistics.median(floor):.0f}")


if __name__ == "__main__":
    main()
