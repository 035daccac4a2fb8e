"""Replay speed of TriMoE layers (issue 16): cold (first layer: DDR5/HBM/PCIe simulations) and warm.

    python benchmarks/trimoe_replay_speed.py [--layers 5]

One H100 + AMX CPU + 16 DIMM-NDP (``trimoe-h100-xeon-ndp``), B = 256, the ``trimoe`` policy's
schedule of each sampled layer replayed with the DRAM memory timer; times in-process (numba
compiled before the clock starts). Prints median / max per model.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import run_layer
from sieveopt.validation.replay import make_timer, replay
from sieveopt.validation.replay_dram import clear_cache
from sieveopt.validation.replay_offload import clear_cache as clear_host_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    system = load_system("trimoe-h100-xeon-ndp")
    for name in ("deepseek-v2", "qwen3-235b-a22b", "glm-4.5-air"):
        model = load_model(name)
        runs = [(inst, run_layer(inst, "trimoe")) for inst in sample_layers(model, system, args.batch, args.layers, 0)]
        clear_cache()
        clear_host_cache()
        timer = make_timer(system, model)
        walls = []
        for inst, r in runs:
            t0 = time.perf_counter()
            replay(r.result.schedule, r.dag, system, instance=inst, timer=timer)
            walls.append(time.perf_counter() - t0)
        print(f"{name}: cold {walls[0]:.2f} s, warm median {statistics.median(walls[1:]):.3f} s, "
              f"max {max(walls[1:]):.3f} s over {len(walls) - 1} layers")


if __name__ == "__main__":
    main()
