"""``sieveopt bench latency``: the Sieve planner's per-GPU decision latency on one CPU core.

Times the compiled serving-path call over many distinct sampled layers (see
:mod:`sieveopt.solvers.sieve_latency`): median, p99, max, peak RSS, machine and date.
"""

from __future__ import annotations

import argparse

from sieveopt.cli.common import add_json, add_problem_args, load_problem, nonneg_int, positive_int
from sieveopt.cli.output import emit
from sieveopt.errors import SieveoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="micro-benchmarks (decision latency of the Sieve planner)")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH")
    lat = bsub.add_parser("latency", help="per-GPU Sieve plan latency over many distinct layers")
    add_problem_args(lat)
    lat.add_argument("--layers", type=positive_int, default=100, help="distinct sampled layers (x GPUs = distinct plans)")
    lat.add_argument("--calls", type=positive_int, default=20000, help="timed calls of the compiled planner")
    lat.add_argument("--warmup", type=nonneg_int, default=2000, help="untimed warm-up calls")
    lat.add_argument("--ref-calls", type=nonneg_int, default=1000, help="timed calls of the pure-Python reference (0: skip)")
    lat.add_argument("--pin-cpu", type=nonneg_int, default=None, help="pin the process to this CPU")
    add_json(lat)
    lat.set_defaults(handler=_latency)
    p.set_defaults(handler=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _latency(args: argparse.Namespace) -> int:
    from sieveopt.solvers.sieve_latency import render, run

    _check_pin_cpu(args.pin_cpu)
    model, system = load_problem(args)
    if args.layer is not None:
        raise SieveoptError(f"--layer {args.layer}: bench latency times --layers distinct sampled layers, not one "
                            "given layer (fix: drop --layer)")
    data = run(model, system, system.num_gpus, args.batch, layers=args.layers, calls=args.calls,
               warmup=args.warmup, ref_calls=args.ref_calls, seed=args.seed, pin_cpu=args.pin_cpu)
    return emit(args, data, lambda d: print(render(d)))


def _check_pin_cpu(cpu: int | None) -> None:
    """``--pin-cpu`` names a CPU this process may run on (else the pinning call fails after start-up)."""
    import os

    if cpu is None or not hasattr(os, "sched_getaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    if cpu not in allowed:
        raise SieveoptError(f"--pin-cpu {cpu}: not a CPU this process may use (fix: one of "
                            f"{', '.join(map(str, allowed))})")
