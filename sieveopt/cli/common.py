"""Argument groups shared by commands: model/system/GPUs/batch selection and ``--json``."""

from __future__ import annotations

import argparse

from sieveopt.errors import SieveoptError

DEFAULT_MODEL = "qwen3-30b-a3b"
DEFAULT_SYSTEM = "sieve-b200-hbm3e-pim"


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_problem_args(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    """--model, --system, --gpus, --batch, --seed, --layer, --set overrides."""
    p.add_argument("--model", default=DEFAULT_MODEL, help="catalog model name or a model .toml file")
    p.add_argument("--system", default=DEFAULT_SYSTEM, help="catalog system name or a system .toml file")
    p.add_argument("--gpus", type=int, default=None, help="number of GPUs (default: the system preset's)")
    if batch:
        p.add_argument("--batch", type=int, default=64, help="decode batch size (requests)")
    p.add_argument("--seed", type=int, default=0, help="seed of the routing generator")
    p.add_argument("--layer", type=int, default=None, help="MoE layer index to sample (default: seeded pick)")
    p.add_argument("--context-len", type=int, default=None, help="context length per request (tokens)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a system field, e.g. --set gpu.kernel_overhead_ns=1000 (repeatable)")


def add_scheduler_latency_arg(p: argparse.ArgumentParser) -> None:
    """``--scheduler-latency-ns``: the charge of the scheduler task (same default in every command)."""
    p.add_argument("--scheduler-latency-ns", default="default", metavar="default|calibrated|N",
                   help="scheduler task duration per layer: 'default' (documented per-policy table), "
                        "'calibrated' (this machine's measured median, cached) or N ns; policies declaring an "
                        "offline or static decision are charged 0 (see sieveopt.solvers.sched_latency)")


def add_solver_param(p: argparse.ArgumentParser) -> None:
    """--solver-param KEY=VALUE (repeatable), checked against the policies' declared parameters."""
    p.add_argument("--solver-param", dest="solver_params", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the policy (declared in its registry entry, see `sieveopt plugins`), "
                        "e.g. --solver-param workers=8 (repeatable; unknown keys are rejected)")


def solver_params_for(args: argparse.Namespace, policies: list[str] | tuple[str, ...],
                      **knobs: object) -> dict[str, dict[str, object]]:
    """Per policy: the generic knobs it declares (``time_limit_s``, ``seed``) overlaid with the
    ``--solver-param`` values (validated: unknown keys raise, naming the known ones)."""
    from sieveopt.solvers import common_params, parse_solver_params

    extra = parse_solver_params(list(getattr(args, "solver_params", []) or []), list(policies))
    return {p: {**common_params(p, **knobs), **extra[p]} for p in policies}


def parse_overrides(items: list[str]) -> dict[str, object]:
    import tomllib

    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise SieveoptError(f"--set {item!r}: expected KEY=VALUE (e.g. gpu.hbm_bw_GBps=9000)")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


def load_problem(args: argparse.Namespace):
    """(model, system) from the common arguments, checked to fit."""
    from sieveopt.models.catalog import check_fits, load_model, load_system

    model = load_model(args.model)
    system = load_system(args.system, args.gpus, parse_overrides(getattr(args, "overrides", [])))
    check_fits(model, system)
    if getattr(args, "batch", 1) < 1:
        raise SieveoptError(f"--batch must be >= 1, got {args.batch}")
    return model, system


def load_instance(args: argparse.Namespace, model, system):
    """One sampled layer for the common arguments (seeded)."""
    import numpy as np

    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
    from sieveopt.workload import generate_for_model

    ctx = args.context_len or DEFAULT_CONTEXT_LEN_TOKENS
    if args.layer is not None and not 0 <= args.layer < model.num_moe_layers:
        raise SieveoptError(f"--layer must be in [0, {model.num_moe_layers}), got {args.layer}")
    layer = args.layer if args.layer is not None else int(np.random.default_rng(args.seed).integers(model.num_moe_layers))
    trace = generate_for_model(model, args.batch, 1, args.seed, layers=[layer])
    return LayerInstance.from_expert_ids(model, system, trace.expert_ids[0, 0], moe_layer=layer,
                                         context_lens=np.full(args.batch, ctx), meta={"seed": args.seed})
