"""Sweep files: a grid over model x system x GPUs x batch x policy x seed x DAG options x
system overrides x solver parameters, validated strictly and expanded into points.

```toml
[sweep]                       # scalars for every point
name = "small"
layers = 2                    # sampled MoE layers per point
cost_model = "roofline"
context_len = 4096            # tokens per request (optional)
trace = false                 # write trace.json.gz (first layer) per point
gantt = false                 # write gantt.png (first layer) per point
window_layers = 2             # overlap microbatch/ideal: consecutive layers of each cyclic window
runtime_order_evaluations = 1000  # overlap microbatch: pipeline runtime's order descent cap (0: off)

[grid]                        # each value: a scalar or a list (an axis)
model = ["qwen3-30b-a3b", "gpt-oss-120b"]
system = "sieve-b200-hbm3e-pim"
gpus = [1, 4]
batch = [16, 64]
policy = ['sieve', 'gpu_only', 'cpsat']
seed = [0, 1]
overlap = ["serial", "microbatch"]   # execution model (default "serial"; also "ideal")
microbatches = [2, 4]         # M with overlap microbatch/ideal (serial points ignore it)

[dag]                         # DagOptions fields; a list is an axis (attention_modes: a list of lists);
                              # without scheduler_latency_ns each policy gets its default charge
gpu_kernel = ["grouped", "per_expert"]

[set]                         # dotted system overrides; a list is an axis
"gpu.kernel_overhead_ns" = [1000, 2000]

[solver.cpsat]                # parameters of one policy (only its points); a list is an axis
time_limit_s = 2
```
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sieveopt.errors import SpecError

SWEEP_KEYS = {"name": str, "description": str, "layers": int, "cost_model": str, "context_len": int,
              "trace": bool, "gantt": bool, "window_layers": int,
              "runtime_order_evaluations": int}
GRID_KEYS = ("model", "system", "gpus", "batch", "policy", "seed", "overlap", "microbatches")
GRID_DEFAULTS: dict[str, list[Any]] = {"system": ["sieve-b200-hbm3e-pim"], "gpus": [None], "seed": [0],
                                       "overlap": ["serial"], "microbatches": [None]}
#: Point keys of the execution model; a serial point carries none of them (so serial points keep
#: the hashes they had before execution models existed, and serial x M collapses to one point).
OVERLAP_KEYS = ("overlap", "microbatches", "window_layers", "runtime_order_evaluations")
TOP_KEYS = ("sweep", "grid", "dag", "set", "solver")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: fixed settings, grid axes and per-policy solver axes."""

    source: str
    name: str
    layers: int
    cost_model: str
    context_len: int | None
    trace: bool
    gantt: bool
    grid: dict[str, list[Any]]
    dag: dict[str, list[Any]]
    overrides: dict[str, list[Any]]
    solver: dict[str, dict[str, list[Any]]]
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    #: Layers of each cyclic window of an overlapped point (None: the execution model's default).
    window_layers: int | None = None
    #: Cap on the pipeline runtime's order descent of ``microbatch`` points (None: the default).
    runtime_order_evaluations: int | None = None


def _axis(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _table(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(source, key, f"expected a table, got {type(value).__name__}", f"write it as [{key}]")
    return value


def _unknown(source: str, prefix: str, keys: Any, known: Any) -> None:
    bad = sorted(set(keys) - set(known))
    if bad:
        raise SpecError(source, prefix + bad[0], "unknown key", f"remove it or use one of: {', '.join(sorted(known))}")


def _positive_ints(source: str, field: str, values: list[Any], allow_none: bool = False) -> None:
    for v in values:
        if v is None and allow_none:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SpecError(source, field, f"expected positive integers, got {v!r}", f"e.g. {field.split('.')[-1]} = [1, 4]")


def parse_sweep(data: dict[str, Any], source: str = "<sweep>") -> SweepSpec:
    """Validate a parsed sweep file; every problem names the key and the fix."""
    from sieveopt.dag import DagOptions
    from sieveopt.models.costmodel import COST_MODELS
    from sieveopt.solvers import SOLVERS

    _unknown(source, "", data, TOP_KEYS)
    sweep, grid = _table(data, "sweep", source), _table(data, "grid", source)
    dag, overrides, solver = _table(data, "dag", source), _table(data, "set", source), _table(data, "solver", source)
    _unknown(source, "sweep.", sweep, SWEEP_KEYS)
    for k, tp in SWEEP_KEYS.items():
        if k in sweep and (not isinstance(sweep[k], tp) or (tp is int and isinstance(sweep[k], bool))):
            raise SpecError(source, f"sweep.{k}", f"expected {tp.__name__}, got {sweep[k]!r}", f"e.g. {k} = {_example(tp)}")
    layers = sweep.get("layers", 1)
    if layers < 1:
        raise SpecError(source, "sweep.layers", f"must be >= 1, got {layers}", "e.g. layers = 2")
    cost_model = sweep.get("cost_model", "roofline")
    if cost_model not in COST_MODELS.names():
        _bad_name(source, "sweep.cost_model", cost_model, COST_MODELS.names())

    _unknown(source, "grid.", grid, GRID_KEYS)
    axes: dict[str, list[Any]] = {}
    for k in GRID_KEYS:
        if k not in grid and k not in GRID_DEFAULTS:
            raise SpecError(source, f"grid.{k}", "missing key", f"add `{k} = [...]` under [grid]")
        axes[k] = _axis(grid[k]) if k in grid else list(GRID_DEFAULTS[k])
        if not axes[k]:
            raise SpecError(source, f"grid.{k}", "empty list", "give at least one value")
    for k in ("model", "system", "policy"):
        for v in axes[k]:
            if not isinstance(v, str):
                raise SpecError(source, f"grid.{k}", f"expected names, got {v!r}", f'e.g. {k} = ["..."]')
    _positive_ints(source, "grid.gpus", axes["gpus"], allow_none=True)
    _check_overlap_axes(source, axes, sweep.get("window_layers"), sweep.get("runtime_order_evaluations"))
    _positive_ints(source, "grid.batch", axes["batch"])
    for s in axes["seed"]:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise SpecError(source, "grid.seed", f"expected integers >= 0, got {s!r}", "e.g. seed = [0, 1]")
    known_policies = SOLVERS.names()
    for p in axes["policy"]:
        if p not in known_policies:
            _bad_name(source, "grid.policy", p, known_policies)

    dag_fields = {f.name: f for f in dataclasses.fields(DagOptions)}
    _unknown(source, "dag.", dag, dag_fields)
    dag_axes: dict[str, list[Any]] = {}
    for k, v in dag.items():
        tuple_field = "tuple" in str(dag_fields[k].type)
        dag_axes[k] = (list(v) if v and isinstance(v[0], list) else [v]) if tuple_field and isinstance(v, list) else _axis(v)
    for combo in _product(dag_axes):  # type-check every value through the strict loader
        _dag_options(combo, source)

    override_axes = {k: _axis(v) for k, v in overrides.items()}
    for k, v in overrides.items():
        if isinstance(v, dict):
            raise SpecError(source, f"set.{k}", "expected a value, got a table", f'quote dotted keys: "{k}.field" = value')

    solver_axes: dict[str, dict[str, list[Any]]] = {}
    for pol, params in solver.items():
        if pol not in axes["policy"]:
            raise SpecError(source, f"solver.{pol}", "parameters for a policy the grid does not run",
                            f"add it to grid.policy or remove [solver.{pol}] (grid policies: {', '.join(axes['policy'])})")
        if not isinstance(params, dict):
            raise SpecError(source, f"solver.{pol}", "expected a table", f"write [solver.{pol}] with key = value lines")
        solver_axes[pol] = {k: _axis(v) for k, v in params.items()}

    spec = SweepSpec(source, sweep.get("name", Path(source).stem), layers, cost_model, sweep.get("context_len"),
                     sweep.get("trace", False), sweep.get("gantt", False), axes, dag_axes, override_axes,
                     solver_axes, sweep.get("description", ""), data, sweep.get("window_layers"),
                     sweep.get("runtime_order_evaluations"))
    return spec


def _check_overlap_axes(source: str, axes: dict[str, list[Any]], window_layers: int | None,
                        runtime_order_evaluations: int | None = None) -> None:
    from sieveopt.execution_model import OVERLAPS

    for v in axes["overlap"]:
        if v not in OVERLAPS:
            raise SpecError(source, "grid.overlap", f"unknown execution model {v!r}",
                            f"use one of: {', '.join(OVERLAPS)}")
    _positive_ints(source, "grid.microbatches", axes["microbatches"], allow_none=True)
    if set(axes["overlap"]) == {"serial"} and any(m not in (None, 1) for m in axes["microbatches"]):
        raise SpecError(source, "grid.microbatches", "micro-batches need an overlapped execution model",
                        'add overlap = ["microbatch"] (or "ideal") under [grid], or drop microbatches')
    if "microbatch" in axes["overlap"] and 1 in axes["microbatches"]:
        raise SpecError(source, "grid.microbatches", "overlap microbatch needs microbatches >= 2 "
                        "(one micro-batch is overlap serial)", "e.g. microbatches = [2, 4]")
    if window_layers is not None and window_layers < 1:
        raise SpecError(source, "sweep.window_layers", f"must be >= 1, got {window_layers}", "e.g. window_layers = 2")
    if runtime_order_evaluations is not None:
        if runtime_order_evaluations < 0:
            raise SpecError(source, "sweep.runtime_order_evaluations", f"must be >= 0, got {runtime_order_evaluations}",
                            "e.g. runtime_order_evaluations = 1000 (0: constructive pipeline runtime only)")
        if "microbatch" not in axes["overlap"]:
            raise SpecError(source, "sweep.runtime_order_evaluations", "sets the pipeline runtime of overlap "
                            "microbatch, which the grid does not run", 'add overlap = ["microbatch"] or drop it')


def _example(tp: type) -> str:
    return {str: '"..."', int: "2", bool: "true"}[tp]


def _bad_name(source: str, field: str, name: str, known: list[str]) -> None:
    raise SpecError(source, field, f"unknown name {name!r}", f"use one of: {', '.join(known)}")


def _dag_options(values: dict[str, Any], source: str) -> Any:
    from sieveopt.dag import DagOptions
    from sieveopt.tomlspec import from_dict

    return from_dict(DagOptions, values, source, prefix="dag.")


def _product(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(axes[k] for k in keys))]


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep TOML file."""
    from sieveopt.tomlspec import read_toml

    return parse_sweep(read_toml(path), str(path))


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every point of the grid as a plain dict (deterministic order)."""
    points: list[dict[str, Any]] = []
    for g in _product(spec.grid):
        if g["overlap"] == "serial":
            g = {k: v for k, v in g.items() if k not in OVERLAP_KEYS}
        else:
            g = {**g, "window_layers": spec.window_layers}
            if g["overlap"] == "microbatch" and spec.runtime_order_evaluations is not None:
                g["runtime_order_evaluations"] = spec.runtime_order_evaluations  # absent: the default (hash kept)
        for d in _product(spec.dag):
            for o in _product(spec.overrides):
                for s in _product(spec.solver.get(g["policy"], {})):
                    points.append({**g, "layers": spec.layers, "cost_model": spec.cost_model,
                                   "context_len": spec.context_len, "dag": d, "set": o, "solver": s,
                                   "trace": spec.trace, "gantt": spec.gantt})
    return points
