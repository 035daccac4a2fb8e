"""CPU time of one pipeline-runtime call (issue 11, round 7): ``overlap.pipeline_schedule`` on a
policy's modes, descent off and on, with the schedule's digest so that two code versions can be
compared call for call (the digest must not change: the runtime's speed change keeps its
schedules bit for bit).

Per instance (seed-0 cyclic window, L = 2, M micro-batches, roofline costs, the policy charged
its declared scheduler latency, as ``sieveopt compare --overlap microbatch`` builds it): one
warm-up call (numba's cached kernels load, DAG caches fill), then ``--repeats`` timed calls per
``--evaluations`` cap, CPU seconds (``time.process_time``), median. Run it pinned
(``taskset -c 1``); for a before/after comparison run the same script against the old tree
(``PYTHONPATH=<old checkout> python benchmarks/runtime_speed.py ...``: it only uses the public
API).

    taskset -c 1 python benchmarks/runtime_speed.py --instances qwen3.5-397b-a17b:8:256,gpt-oss-120b:4:64
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

from _args import SYSTEM


def _instance(text: str) -> tuple[str, int, int]:
    name, g, b = (text.split(":") + ["", ""])[:3]
    if not (name and g.isdigit() and b.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL:GPUS:BATCH, e.g. gpt-oss-120b:4:64")
    return name, int(g), int(b)


def _digest():
    """:func:`sieveopt.testing.schedule_digest`; from this checkout's file when the tree on
    ``PYTHONPATH`` is older than it (a before/after comparison)."""
    try:
        from sieveopt.testing import schedule_digest
    except ImportError:
        path = Path(__file__).resolve().parents[1] / "sieveopt" / "testing.py"
        spec = importlib.util.spec_from_file_location("_sieveopt_testing_here", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        schedule_digest = mod.schedule_digest
    return schedule_digest


def measure(name: str, gpus: int, batch: int, policy: str, microbatches: int, evaluations: list[int],
            repeats: int) -> dict:
    from sieveopt.execution_model import make_execution_model
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.overlap import charged_problem, pipeline_schedule, plan_modes, sample_problem
    schedule_digest = _digest()
    model, system = load_model(name), load_system(SYSTEM, gpus)
    cost = make_cost_model("roofline", system, model)
    ex = make_execution_model("microbatch", microbatches, window_layers=2, batch=batch, num_gpus=gpus)
    prob, _ = charged_problem(sample_problem(model, system, batch, ex, 0, cost), policy)
    modes, _ = plan_modes(prob, policy)
    pipeline_schedule(prob, modes, policy=policy, order_evaluations=0)  # warm-up
    out: dict = {"instance": f"{name} x{gpus} B={batch} M={microbatches}", "policy": policy,
                 "tasks": len(prob.dag.tasks)}
    for ev in evaluations:
        runs = []
        for _ in range(repeats):
            t0 = time.process_time()
            ps = pipeline_schedule(prob, modes, policy=policy, order_evaluations=ev)
            runs.append(time.process_time() - t0)
        out[f"evaluations_{ev}"] = {"median_cpu_s": statistics.median(runs), "cpu_s": [round(x, 3) for x in runs],
                                    "superperiod_ns": int(ps.superperiod_ns), "digest": schedule_digest(ps)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", default="qwen3.5-397b-a17b:8:256,gpt-oss-120b:4:64",
                    help="comma-separated MODEL:GPUS:BATCH")
    ap.add_argument("--policy", default="sieve")
    ap.add_argument("--microbatches", type=int, default=2)
    ap.add_argument("--evaluations", default="0,1000", help="comma-separated --runtime-order-evaluations caps")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    try:
        insts = [_instance(x) for x in a.instances.split(",")]
        evals = [int(x) for x in a.evaluations.split(",")]
    except (argparse.ArgumentTypeError, ValueError) as exc:
        ap.error(f"--instances/--evaluations: {exc}")
    if a.repeats < 1 or any(e < 0 for e in evals):
        ap.error("--repeats must be >= 1 and --evaluations >= 0")
    for name, g, b in insts:
        print(json.dumps(measure(name, g, b, a.policy, a.microbatches, evals, a.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
