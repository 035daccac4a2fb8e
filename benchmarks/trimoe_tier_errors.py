"""Cost hooks vs replay timers of TriMoE's host tiers, per token count (issue 16; like the PIM
roofline-vs-simulator table of ``benchmarks/replay_studies.py --study pimroof``).

    python benchmarks/trimoe_tier_errors.py [--model deepseek-v2]

For one routed expert of ``--model`` on ``trimoe-h100-xeon-ndp``, each tier's predicted time (the
target's cost hook, roofline) and its replayed alone time (the target's replay timer: DDR5 / HBM
DRAM simulators and the PCIe link on the interconnect simulator), and the error
``(predicted - replayed) / replayed`` (docs/metrics.md). No tuning: both sides as shipped.
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.work import expert_work
from sieveopt.offload_tiers import TRIMOE_MODES
from sieveopt.targets import get_target
from sieveopt.validation.gpu_model import GpuModel
from sieveopt.validation.replay import ReplayTimers, make_timer

TOKENS = (1, 2, 4, 8, 16, 64, 256, 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deepseek-v2")
    args = ap.parse_args()
    system, model = load_system("trimoe-h100-xeon-ndp"), load_model(args.model)
    cost = RooflineCostModel(system, model)
    timer = make_timer(system, model)
    ctx = ReplayTimers(GpuModel(system, timer.stream_ns), timer, None)
    print(f"{args.model} on {system.name}: one routed expert (BF16), predicted = cost hook, replayed = replay timer\n")
    print("| tokens | " + " | ".join(f"{m} pred. us | {m} replayed us | {m} error" for m in TRIMOE_MODES) + " |")
    print("|---|" + "---|---|---|" * len(TRIMOE_MODES))
    for n in TOKENS:
        work = expert_work(model, n)
        task = SimpleNamespace(kind="expert", tokens=n, work=work)
        cells = []
        for mode in TRIMOE_MODES:
            tgt = get_target(mode)
            pred = tgt.duration_ns(cost, work)
            tt = tgt.replay_timer()(ctx, task, mode)
            rep = tt.overhead_ns + tt.body_ns
            cells.append(f"{pred / 1e3:.1f} | {rep / 1e3:.1f} | {100 * (pred - rep) / rep:+.1f}%")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
