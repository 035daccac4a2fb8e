"""Up-front checks of a sweep's resolved points, before any point runs (CLI exit 2).

:func:`~sieveopt.sweep.spec.parse_sweep` checks the file's shape and names; this checks what
needs the resolved specs or the solvers: solver parameters against the registered solver's
signature (a misspelt ``time_limt_s`` would otherwise be a per-point failure, or be ignored),
their values (finite, in range), the sweep's context length, each point's model fit
(weights + KV cache, :func:`sieveopt.models.catalog.check_fits`) and its memory estimate.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from sieveopt.errors import SpecError

#: Ranges of the solver parameters the built-in solvers share (name -> (low, high)).
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "time_limit_s": (1e-3, 7 * 86400), "seed": (0, 2**31 - 1), "workers": (1, 1024),
    "time_quantum_ns": (1, 10**9),
}
_POSITIONAL = ("dag", "instance", "cost")


def solver_parameters(policy: str) -> dict[str, inspect.Parameter]:
    """Named keyword parameters of the registered solver ``policy`` (a ``**_`` catch-all, which
    lets every solver ignore the shared ones, accepts nothing by itself)."""
    from sieveopt.solvers import SOLVERS

    fn = SOLVERS.get(policy)
    target = getattr(fn, "lazy_target", None)
    if target is not None:
        import importlib

        fn = getattr(importlib.import_module(target[0]), target[1])
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {n: p for n, p in sig.parameters.items() if n not in _POSITIONAL
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _same_kind(default: Any, v: Any) -> bool:
    if isinstance(default, bool) or isinstance(v, bool):
        return isinstance(default, bool) and isinstance(v, bool)
    if isinstance(default, (int, float)):
        return isinstance(v, (int, float))
    return isinstance(v, type(default))


def check_solver_params(source: str, policy: str, params: dict[str, list[Any]]) -> None:
    """Every ``[solver.<policy>]`` key is a parameter of that solver, with a sane value."""
    known = solver_parameters(policy)
    for key, values in params.items():
        field = f"solver.{policy}.{key}"
        if key not in known:
            raise SpecError(source, field, f"'{policy}' has no parameter {key!r}",
                            f"use one of: {', '.join(sorted(known))}" if known else
                            f"remove [solver.{policy}]: '{policy}' takes no parameters")
        default = known[key].default if key in known else inspect.Parameter.empty
        for v in values:
            if default is not None and default is not inspect.Parameter.empty and \
                    isinstance(default, (bool, int, float, str)) and not _same_kind(default, v):
                raise SpecError(source, field, f"expected {type(default).__name__}, got {v!r}",
                                f"e.g. {key} = {default!r}")
            if isinstance(default, bool) and not isinstance(v, bool):
                raise SpecError(source, field, f"expected true/false, got {v!r}", "write true or false")
            if isinstance(v, float) and not math.isfinite(v):
                raise SpecError(source, field, f"got {v}, allowed: a finite number", "write a finite number")
            if key in PARAM_RANGES:
                lo, hi = PARAM_RANGES[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                    raise SpecError(source, field, f"got {v!r}, allowed: [{lo:g}, {hi:g}]",
                                    f"use a value in [{lo:g}, {hi:g}]")


def validate_sweep(spec: Any, configs: list[dict[str, Any]], *, max_memory_gib: float | None = None) -> None:
    """Raise a :class:`SpecError` (exit 2) for the first point that cannot run."""
    from sieveopt.models.catalog import check_fits
    from sieveopt.models.specs import ModelSpec, SystemSpec
    from sieveopt.resources import check_memory, estimate_run_bytes
    from sieveopt.tomlspec import from_dict

    src = spec.source
    if spec.context_len is not None and not 1 <= spec.context_len <= 16 * 2**20:
        raise SpecError(src, "sweep.context_len", f"got {spec.context_len}, allowed: [1, {16 * 2**20}] tokens",
                        "e.g. context_len = 4096")
    for policy, params in spec.solver.items():
        check_solver_params(src, policy, params)
    if set(spec.grid.get("overlap", ["serial"])) - {"serial"}:
        from sieveopt.overlap import OVERLAP_SOLVER_PARAMS

        for policy, params in spec.solver.items():
            bad = sorted(set(params) - set(OVERLAP_SOLVER_PARAMS))
            if bad:
                raise SpecError(src, f"solver.{policy}.{bad[0]}", "not used under an overlapped execution model "
                                f"(the periodic path takes {', '.join(OVERLAP_SOLVER_PARAMS)})",
                                'drop it, or run it in a separate sweep with overlap = "serial"')
    seen: set[tuple] = set()
    for cfg in configs:
        p = cfg["point"]
        key = (p["model"], p["system"], p["gpus"], str(p["set"]), p["batch"])
        if key in seen:
            continue
        seen.add(key)
        model = from_dict(ModelSpec, cfg["model_spec"], f"{src}: model {p['model']}")
        system = from_dict(SystemSpec, cfg["system_spec"], f"{src}: system {p['system']}")
        try:
            check_fits(model, system, batch=p["batch"], context_len_tokens=p.get("context_len"))
        except SpecError as exc:
            raise SpecError(src, f"grid (model={p['model']}, gpus={system.num_gpus}, batch={p['batch']})",
                            exc.problem, exc.fix.replace("--gpus ", "grid.gpus = ")) from None
        if max_memory_gib is not None:
            check_memory(estimate_run_bytes(model, system.num_gpus, p["batch"], layers=p["layers"], steps=4),
                         max_memory_gib)
