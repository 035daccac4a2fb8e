"""Options and up-front checks shared by the commands that run one policy on one sampled layer
(``sieveopt solve`` and ``sieveopt replay``): one definition, so both accept and refuse the same
inputs with the same messages, before any work."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from sieveopt.cli.common import (
    add_problem_args,
    add_scheduler_latency_arg,
    add_solver_param,
    add_time_limit,
    check_cost_model,
    cpsat_params,
    load_problem,
    policy_names,
    solver_params_for,
)
from sieveopt.cli.overlap_cli import add_overlap_args, execution_from_args


def add_one_policy_args(p: argparse.ArgumentParser, *, policy_help: str, cost_model_help: str,
                        time_limit: float | None, time_limit_what: str) -> None:
    """The problem (model, system, GPUs, batch, ...), ``--policy``, ``--cost-model``, the CP-SAT
    limits, ``--scheduler-latency-ns``, ``--solver-param`` and the execution-model options."""
    add_problem_args(p)
    p.add_argument("--policy", default="sieve", help=policy_help)
    p.add_argument("--cost-model", default="roofline", help=cost_model_help)
    add_time_limit(p, time_limit, time_limit_what)
    add_scheduler_latency_arg(p)
    add_solver_param(p)
    add_overlap_args(p)


@dataclass(frozen=True)
class OnePolicy:
    """What the shared options resolve to: the problem, the policy's parameters and the parsed
    ``--scheduler-latency-ns`` (``"default"``, ``"calibrated"`` or ns)."""

    model: Any
    system: Any
    params: dict[str, Any]
    scheduler_latency: str | int


def load_one_policy(args: argparse.Namespace) -> OnePolicy:
    """Check every shared option (exit 2 naming the option and the fix) before any work:
    the scheduler-latency spec, the policy and cost-model names, the problem (capacity, memory,
    ``--layer``), the execution-model options and the ``--solver-param`` keys."""
    from sieveopt.solvers.sched_latency import parse_spec

    spec = parse_spec(args.scheduler_latency_ns)
    policy_names(args.policy, "--policy", single=True)
    check_cost_model(args.cost_model)
    model, system = load_problem(args)
    execution_from_args(args, model, system)
    params = solver_params_for(args, [args.policy], **cpsat_params(args))[args.policy]
    return OnePolicy(model, system, params, spec)
