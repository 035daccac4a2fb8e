"""Argument groups shared by commands: model/system/GPUs/batch selection and ``--json``.

Every numeric option is validated here, at the boundary, by an argparse ``type`` that names
the option, the value, the allowed range and a fix (argparse turns it into exit code 2).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from sieveopt.errors import SieveoptError
from sieveopt.models.specs import MAX_GPUS

DEFAULT_MODEL = "qwen3-30b-a3b"
DEFAULT_SYSTEM = "sieve-b200-hbm3e-pim"
#: CP-SAT's random_seed is a 32-bit int; every seed of the toolkit stays in its range.
MAX_SEED = 2**31 - 1
#: Longest context the toolkit models per request (tokens).
MAX_CONTEXT_LEN_TOKENS = 16 * 2**20
#: Default memory a run may plan to use (GiB), raised with --max-memory.
DEFAULT_MAX_MEMORY_GIB = 16.0


def int_in(lo: int, hi: int | None = None, what: str = "an integer") -> Callable[[str], int]:
    """argparse type: an integer in [lo, hi]."""
    rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"

    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} (allowed: an integer {rng})") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"got {v}, allowed: {rng} (fix: use a value {rng})")
        return v

    parse.__name__ = f"int {rng}"
    return parse


def float_in(*, gt: float | None = None, ge: float | None = None, le: float | None = None,
             lt: float | None = None, unit: str = "") -> Callable[[str], float]:
    """argparse type: a finite number in the given range (NaN and inf are always refused)."""
    lo = f"> {gt:g}" if gt is not None else f">= {ge:g}" if ge is not None else ""
    hi = f"< {lt:g}" if lt is not None else f"<= {le:g}" if le is not None else ""
    rng = " and ".join(x for x in (lo, hi) if x) or "finite"
    rng += f" {unit}".rstrip()

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (allowed: {rng})") from None
        bad = (not math.isfinite(v) or (gt is not None and v <= gt) or (ge is not None and v < ge)
               or (le is not None and v > le) or (lt is not None and v >= lt))
        if bad:
            raise argparse.ArgumentTypeError(f"got {text}, allowed: a finite number {rng} "
                                             f"(fix: use a value {rng})")
        return v

    parse.__name__ = f"number {rng}"
    return parse


positive_int = int_in(1)
nonneg_int = int_in(0)
seed_int = int_in(0, MAX_SEED, "a seed")
gpus_int = int_in(1, MAX_GPUS, "a GPU count")
context_len_int = int_in(1, MAX_CONTEXT_LEN_TOKENS, "a context length")
#: Seconds of wall time for CP-SAT (up to a week).
time_limit_s = float_in(gt=0, le=7 * 86400, unit="seconds")
#: CP-SAT deterministic time units (reproducible, machine-independent budget).
deterministic_time = float_in(gt=0, le=1e7, unit="deterministic-time units")
max_memory_gib = float_in(gt=0, le=2**20, unit="GiB")


def add_time_limit(p: argparse.ArgumentParser, default: float | None, what: str = "per layer") -> None:
    """``--time-limit`` (wall seconds, CP-SAT ``max_time_in_seconds``) and
    ``--deterministic-time`` (CP-SAT ``max_deterministic_time``: reproducible, replaces the
    wall-clock limit when given)."""
    shown = "" if default is None else f" (default {default:g})"
    p.add_argument("--time-limit", type=time_limit_s, default=default,
                   help=f"CP-SAT wall-clock limit in seconds {what}{shown}, model building and hint "
                        "heuristics included (the first call in a process also compiles them)")
    p.add_argument("--deterministic-time", type=deterministic_time, default=None,
                   help="CP-SAT deterministic-time budget instead of --time-limit: reproducible results "
                        "on any machine (about 1 unit per second on one core; not seconds)")


def cpsat_params(args: argparse.Namespace, seed: int | None = None) -> dict[str, object]:
    """CP-SAT parameters from ``--time-limit`` / ``--deterministic-time`` (and a seed)."""
    out: dict[str, object] = {}
    det = getattr(args, "deterministic_time", None)
    if det is not None:
        out.update(time_limit_s=float(det), deterministic=True)
    elif getattr(args, "time_limit", None) is not None:
        out["time_limit_s"] = float(args.time_limit)
    if seed is not None:
        out["seed"] = int(seed)
    return out


def add_ignore_capacity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ignore-capacity", action="store_true",
                   help="warn instead of failing when the model (weights + KV cache) does not fit in "
                        "the GPUs' HBM (e.g. to model a paper's configuration as published)")


def check_capacity(args: argparse.Namespace, model, system, *, batch: int | None,
                   context_len_tokens: int | None) -> None:
    """The capacity check (:func:`sieveopt.models.catalog.check_fits`); ``--ignore-capacity``
    turns its error into a warning on stderr."""
    import sys

    from sieveopt.errors import SpecError
    from sieveopt.models.catalog import check_fits

    try:
        check_fits(model, system, batch=batch, context_len_tokens=context_len_tokens)
    except SpecError as exc:
        if getattr(args, "ignore_capacity", False):
            print(f"sieveopt: warning (--ignore-capacity): {exc}", file=sys.stderr)
            return
        raise SpecError(exc.source, exc.field, exc.problem,
                        exc.fix + "; or --ignore-capacity to model it anyway") from None


def add_max_memory(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", type=max_memory_gib, default=DEFAULT_MAX_MEMORY_GIB, metavar="GIB",
                   help=f"refuse runs estimated to need more memory than this (GiB, default "
                        f"{DEFAULT_MAX_MEMORY_GIB:g})")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_model_system_args(p: argparse.ArgumentParser, *,
                          gpus_help: str = "number of GPUs (default: the system preset's)") -> None:
    """--model, --system and --gpus (one definition for every command that takes them)."""
    p.add_argument("--model", default=DEFAULT_MODEL, help="catalog model name or a model .toml file")
    p.add_argument("--system", default=DEFAULT_SYSTEM, help="catalog system name or a system .toml file")
    p.add_argument("--gpus", type=gpus_int, default=None, help=gpus_help)


def add_set_arg(p: argparse.ArgumentParser) -> None:
    """--set KEY=VALUE system overrides (read back with :func:`load_system_checked`)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a system field, e.g. --set gpu.kernel_overhead_ns=1000 (repeatable)")


def add_executor_args(p: argparse.ArgumentParser, *, cache_help: str | None, workers_default: int | None = 1,
                      workers_help: str = "parallel workers (local pool size / local Ray CPUs)") -> None:
    """--executor, --workers, --address (and --cache DIR when ``cache_help``) of the commands that
    run their points on the sweep engine (:mod:`sieveopt.sweep`). Without ``--cache`` the points
    wait in the output folder until the run completes (:func:`sieveopt.sweep.runner.point_store_dir`);
    the help says so once for every command."""
    from sieveopt.sweep.runner import RESUME_DIR

    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where the points run: a local process pool or a Ray cluster")
    p.add_argument("--workers", type=positive_int, default=workers_default, help=workers_help)
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    if cache_help is not None:
        p.add_argument("--cache", default=None, metavar="DIR",
                       help=f"{cache_help}; default: the finished points wait in {RESUME_DIR} inside --out, removed once "
                            "every point is finished (after Ctrl-C, re-run the same command to resume)")


def add_problem_args(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    """--model, --system, --gpus, --batch, --seed, --layer, --set overrides."""
    add_model_system_args(p)
    if batch:
        p.add_argument("--batch", type=positive_int, default=64, help="decode batch size (requests)")
    p.add_argument("--seed", type=seed_int, default=0, help=f"seed of the routing generator (0 to {MAX_SEED})")
    p.add_argument("--layer", type=nonneg_int, default=None, help="MoE layer index to sample (default: seeded pick)")
    p.add_argument("--context-len", type=context_len_int, default=None,
                   help="context length per request in tokens (default 2048)")
    add_set_arg(p)
    add_max_memory(p)
    add_ignore_capacity(p)


def scheduler_latency_spec(text: str) -> str | int:
    """argparse type of ``--scheduler-latency-ns``: ``default``, ``calibrated`` or whole ns >= 0
    (:func:`sieveopt.solvers.sched_latency.parse_spec`, the one parser)."""
    from sieveopt.solvers.sched_latency import parse_spec

    try:
        return parse_spec(text)
    except SieveoptError:
        raise argparse.ArgumentTypeError(f"got {text!r}, allowed: 'default', 'calibrated' or a whole number of ns "
                                         ">= 0 (fix: e.g. --scheduler-latency-ns 1000)") from None


def add_scheduler_latency_arg(p: argparse.ArgumentParser) -> None:
    """``--scheduler-latency-ns``: the charge of the scheduler task (same default in every command)."""
    p.add_argument("--scheduler-latency-ns", type=scheduler_latency_spec, default="default",
                   metavar="default|calibrated|N",
                   help="scheduler task duration per layer: 'default' (documented per-policy table), "
                        "'calibrated' (this machine's measured median, cached) or N ns; policies declaring an "
                        "offline or static decision are charged 0 (see sieveopt.solvers.sched_latency)")


def add_solver_param(p: argparse.ArgumentParser, *, more_help: str = "") -> None:
    """--solver-param KEY=VALUE (repeatable), checked against the policies' declared parameters
    (``more_help``: what else the command takes, appended to the help)."""
    p.add_argument("--solver-param", dest="solver_params", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the policy (declared in its registry entry, see `sieveopt plugins`), "
                        "e.g. --solver-param workers=8 (repeatable; unknown keys are rejected)" + more_help)


def solver_params_for(args: argparse.Namespace, policies: list[str] | tuple[str, ...],
                      **knobs: object) -> dict[str, dict[str, object]]:
    """Per policy: the generic knobs it declares (``time_limit_s``, ``seed``) overlaid with the
    ``--solver-param`` values (validated: unknown keys raise, naming the known ones)."""
    from sieveopt.solvers import common_params, parse_solver_params

    extra = parse_solver_params(list(getattr(args, "solver_params", []) or []), list(policies))
    return {p: {**common_params(p, **knobs), **extra[p]} for p in policies}


def _check_registered(registry, names: list[str], option: str, example: str) -> None:
    """Every name in ``registry`` (plugins included), else an error naming ``option`` and the fix."""
    if not names:
        raise SieveoptError(f"{option}: give at least one {registry.what} name (fix: e.g. {option} {example})")
    known = registry.names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SieveoptError(f"{option}: unknown {registry.what} {', '.join(map(repr, unknown))} (fix: use one of "
                            f"{', '.join(known)}; `sieveopt plugins` lists them)")


def policy_names(text: str, option: str = "--policies", *, single: bool = False) -> list[str]:
    """The registered policies of a comma-separated option value (``single``: exactly one), checked
    before any work: an empty list, an unknown name or a list where one is expected names ``option``."""
    from sieveopt.solvers import SOLVERS

    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if single and len(names) > 1:
        raise SieveoptError(f"{option}: one policy, got {names} (fix: give one name, e.g. {option} sieve)")
    _check_registered(SOLVERS, names, option, "sieve" if single else "sieve,noexp")
    return names


def check_cost_model(name: str, option: str = "--cost-model") -> str:
    """``name`` if it is a registered cost model, else an error naming ``option``."""
    from sieveopt.models.costmodel import COST_MODELS

    _check_registered(COST_MODELS, [name], option, "roofline")
    return name


def parse_overrides(items: list[str]) -> dict[str, object]:
    import tomllib

    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise SieveoptError(f"--set {item!r}: expected KEY=VALUE (fix: e.g. --set gpu.hbm_bw_GBps=9000)")
        key, raw = item.split("=", 1)
        if not key.strip():
            raise SieveoptError(f"--set {item!r}: empty KEY (fix: e.g. --set gpu.hbm_bw_GBps=9000)")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


def load_system_checked(name: str, gpus: int | None, overrides: list[str]):
    """A system with ``--set`` overrides; a bad override is blamed on ``--set``, not the file."""
    from sieveopt.errors import SpecError
    from sieveopt.models.catalog import load_system

    if not overrides:
        return load_system(name, gpus)
    load_system(name, gpus)  # the preset alone is fine (or its own error is reported)
    try:
        return load_system(name, gpus, parse_overrides(overrides))
    except SpecError as exc:
        raise SpecError(f"--set (on {exc.source})", exc.field, exc.problem,
                        exc.fix + "; check the --set KEY=VALUE option" if exc.fix else
                        "check the --set KEY=VALUE option") from None


def load_problem(args: argparse.Namespace):
    """(model, system) from the common arguments, checked to fit in memory and in the machine
    running the tool (``--max-memory``)."""
    from sieveopt.models.catalog import load_model

    model = load_model(args.model)
    system = load_system_checked(args.system, args.gpus, getattr(args, "overrides", []))
    layer = getattr(args, "layer", None)
    if layer is not None and not 0 <= layer < model.num_moe_layers:
        raise SieveoptError(f"--layer: got {layer}, allowed: [0, {model.num_moe_layers - 1}] for "
                            f"{model.name} (fix: a MoE layer index below num_moe_layers)")
    check_capacity(args, model, system, batch=getattr(args, "batch", None),
                   context_len_tokens=getattr(args, "context_len", None))
    check_run_memory(args, model, system, batch=getattr(args, "batch", 1) or 1,
                     layers=getattr(args, "layers", None) or 1)
    return model, system


def check_run_memory(args: argparse.Namespace, model, system, *, batch: int, layers: int = 1,
                     steps: int = 1) -> None:
    """Refuse (exit 2) a run estimated to need more host memory than ``--max-memory``."""
    from sieveopt.resources import check_memory, estimate_run_bytes

    limit = getattr(args, "max_memory", DEFAULT_MAX_MEMORY_GIB)
    check_memory(estimate_run_bytes(model, system.num_gpus, batch, layers=layers, steps=steps), limit)


def load_instance(args: argparse.Namespace, model, system):
    """One sampled layer for the common arguments (seeded)."""
    import numpy as np

    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
    from sieveopt.workload import generate_for_model

    ctx = DEFAULT_CONTEXT_LEN_TOKENS if args.context_len is None else args.context_len
    if args.layer is not None and not 0 <= args.layer < model.num_moe_layers:
        raise SieveoptError(f"--layer: got {args.layer}, allowed: [0, {model.num_moe_layers - 1}] for "
                            f"{model.name} (fix: a MoE layer index below num_moe_layers)")
    layer = args.layer if args.layer is not None else int(np.random.default_rng(args.seed).integers(model.num_moe_layers))
    trace = generate_for_model(model, args.batch, 1, args.seed, layers=[layer])
    return LayerInstance.from_expert_ids(model, system, trace.expert_ids[0, 0], moe_layer=layer,
                                         context_lens=np.full(args.batch, ctx), meta={"seed": args.seed})
