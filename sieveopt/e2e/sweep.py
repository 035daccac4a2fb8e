"""Batches x policies sweeps of the decode-step model, the Pareto front and the output files.

Each (batch, policy) step is a point of the one sweep engine (:mod:`sieveopt.sweep`: cached by
content hash, resumable, local process pool or Ray). Every point is recorded: a policy that
raises on one batch gets a row with ``check=error`` and the message (NaN metrics), never a
silent gap. Outputs are written atomically, after the sweep.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sieveopt.e2e.policies import policy_params
from sieveopt.e2e.step import StepResult, StepSettings, failed_step, prepare_step, run_step
from sieveopt.errors import SieveoptError
from sieveopt.fileio import atomic_write_bytes, atomic_write_text, dumps_json
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.models.table import ObservedTables
from sieveopt.solvers.sched_latency import describe as _sched_describe

MAX_BATCH = 1 << 16


def parse_batches(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]; ``"1,2,4,...,256"`` continues the last two terms up to the end
    value: geometrically when their ratio is an integer > 1, else arithmetically (``8,12,...,24``);
    the end value is always included."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise SieveoptError(f"--batches {text!r}: expected comma-separated integers (fix: e.g. 1,2,4,...,256)")
    out: list[int] = []
    i = 0
    while i < len(parts):
        p = parts[i]
        if p == "...":
            if len(out) < 2 or i + 1 >= len(parts):
                raise SieveoptError(f"--batches {text!r}: '...' needs two values before it and one after (fix: e.g. 1,2,4,...,256)")
            end = _int(parts[i + 1], text)
            a, b = out[-2], out[-1]
            ratio = b / a if a > 0 else 0
            if ratio > 1 and float(ratio).is_integer():
                while out[-1] * int(ratio) <= end:
                    out.append(out[-1] * int(ratio))
            elif b > a:
                while out[-1] + (b - a) <= end:
                    out.append(out[-1] + (b - a))
            else:
                raise SieveoptError(f"--batches {text!r}: '...' needs an increasing sequence (fix: e.g. 1,2,4,...,256)")
            if out[-1] != end:
                out.append(end)
            i += 2
            continue
        out.append(_int(p, text))
        i += 1
    bad = [b for b in out if not 1 <= b <= MAX_BATCH]
    if bad:
        raise SieveoptError(f"--batches {text!r}: batch sizes must be in [1, {MAX_BATCH}], got {bad[0]} (fix: use sizes in [1, {MAX_BATCH}])")
    if len(set(out)) != len(out):
        raise SieveoptError(f"--batches {text!r}: a batch size is listed twice (fix: list each size once)")
    return out


def _int(s: str, text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", s):
        raise SieveoptError(f"--batches {text!r}: {s!r} is not an integer (fix: e.g. 1,2,4,...,256)")
    return int(s)


@dataclass(frozen=True)
class StepSweepSpec:
    """Batches x policies of one (model, system): the points of ``sieveopt pareto``."""

    model: ModelSpec
    system: SystemSpec
    batches: tuple[int, ...]
    policies: tuple[str, ...]
    settings: StepSettings
    time_limit_s: float = 2.0


def step_configs(spec: StepSweepSpec, *, replay: bool = False) -> list[dict[str, Any]]:
    """One resolved engine point per (batch, policy), in spec order (see
    :func:`sieveopt.sweep.point.make_config`; the hash covers the specs, settings, solver
    parameters, the replay switch and the sieveopt version)."""
    from sieveopt.sweep.point import make_config
    from sieveopt.tomlspec import to_dict

    base = {"model_spec": to_dict(spec.model), "system_spec": to_dict(spec.system),
            "settings": to_dict(spec.settings), "replay": bool(replay)}
    return [make_config("e2e_step", {**base, "batch": int(b), "policy": p,
                                     "solver": policy_params(p, time_limit_s=spec.time_limit_s)})
            for b in spec.batches for p in spec.policies]


def compute_step_point(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One (batch, policy) decode step (runs in an engine worker). A policy that raises is
    recorded as a failed step row (NaN metrics, ``check=error``); a :class:`SieveoptError` (bad
    input) fails the point."""
    from sieveopt.e2e.policies import load_replay
    from sieveopt.tomlspec import from_dict

    src = f"point {config['hash']}"
    model = from_dict(ModelSpec, config["model_spec"], f"{src}: model")
    system = from_dict(SystemSpec, config["system_spec"], f"{src}: system")
    settings = from_dict(StepSettings, config["settings"], f"{src}: settings")
    problem = prepare_step(model, system, config["batch"], settings)
    # Sieve's runtime cost table, fed by the replayed PIM job times of the step's earlier layers
    # (one table per engine point: points are independent, so it does not carry across batches).
    tables = ObservedTables(system, model) if config["replay"] and settings.observed_table else None
    try:
        res = run_step(problem, config["policy"], solver_params=dict(config["solver"]),
                       replay=load_replay() if config["replay"] else None, tables=tables)
    except SieveoptError:
        raise
    except Exception as exc:  # a broken solver is recorded, not dropped
        res = failed_step(problem, config["policy"], exc)
    return {"hash": config["hash"], "row": res.row()}, {}


def run_step_sweep(spec: StepSweepSpec, cache_dir: str | Path | None = None, *, replay: bool = False,
                   executor: str = "local", workers: int = 1, address: str | None = None,
                   progress: bool = False, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every (batch, policy) step on the sweep engine; the step rows in spec order. With
    ``cache_dir`` the points persist under ``cache_dir/points/<hash>`` and finished ones are
    reused (resume, or extend a sweep); without, they wait in the output folder ``out_dir`` until
    every point is finished (a re-run after Ctrl-C resumes), or in a temporary store
    (:func:`sieveopt.sweep.runner.point_store_dir`)."""
    from sieveopt.sweep.runner import point_store_dir, run_points

    configs = step_configs(spec, replay=replay)
    manifest = {"name": "e2e-step", "model": spec.model.name, "system": spec.system.name,
                "gpus": spec.system.num_gpus, "batches": list(spec.batches), "policies": list(spec.policies)}
    with point_store_dir(cache_dir, out_dir) as root:
        report, store = run_points(configs, root, manifest, executor=executor, workers=workers,
                                   address=address, progress=progress)
        report.require_complete(store)
        return [store.read_metrics(c["hash"])["row"] for c in configs]


def pareto_flags(rows: Sequence[dict[str, Any]], x: str = "throughput_tok_s_per_gpu",
                 y: str = "interactivity_tok_s_per_user") -> list[bool]:
    """True for points no other point beats on both axes (higher is better on both)."""
    pts = [(r[x], r[y]) for r in rows]
    flags = []
    for i, (a, b) in enumerate(pts):
        if not (math.isfinite(a) and math.isfinite(b)):
            flags.append(False)
            continue
        dominated = any(j != i and c >= a and d >= b and (c > a or d > b)
                        for j, (c, d) in enumerate(pts) if math.isfinite(c) and math.isfinite(d))
        flags.append(not dominated)
    return flags


def result_rows(spec: StepSweepSpec, results: Sequence[StepResult | dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV/JSON rows of step results (or their rows) with the spec's columns and Pareto flags."""
    rows = []
    for r in results:
        row = {"model": spec.model.name, "precision": spec.model.expert_precision, "system": spec.system.name, "gpus": spec.system.num_gpus,
               "prefill": spec.settings.prefill.requests, "prefill_len": spec.settings.prefill.len_tokens,
               "layers_sampled": spec.settings.num_layers, **(r if isinstance(r, dict) else r.row())}
        rows.append(row)
    for row, flag in zip(rows, pareto_flags(rows), strict=True):
        row["pareto"] = flag
    return rows


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)) for k, v in r.items()})
    return buf.getvalue()


def _runtime_order(s: StepSettings) -> int | None:
    """The pipeline runtime's order-descent cap the steps ran with (``microbatch`` only)."""
    from sieveopt.execution_model import DEFAULT_RUNTIME_ORDER_EVALUATIONS

    if s.overlap != "microbatch":
        return None
    return DEFAULT_RUNTIME_ORDER_EVALUATIONS if s.runtime_order_evaluations is None else s.runtime_order_evaluations


def sweep_meta(spec: StepSweepSpec, wall_s: float, replay: bool) -> dict[str, Any]:
    import platform

    import numpy
    import ortools

    from sieveopt import __version__

    s = spec.settings
    return {"model": spec.model.name, "precision": spec.model.expert_precision, "system": spec.system.name,
            "gpus": spec.system.num_gpus, "batches": list(spec.batches), "policies": list(spec.policies), "layers": s.num_layers,
            "seed": s.seed, "context": asdict(s.context), "prefill": asdict(s.prefill),
            "execution_model": {"overlap": s.overlap, "microbatches": s.microbatches or None,
                                "window_layers": s.window_layers or None,
                                "runtime_order_evaluations": _runtime_order(s)},
            "cost_model": s.cost_model, "dag_options": {k: v for k, v in asdict(s.dag_options).items()},
            "scheduler_latency": _sched_describe(s.scheduler_latency),
            "observed_table": bool(replay and s.observed_table),
            "cpsat_time_limit_s": spec.time_limit_s, "replay": replay, "wall_s": wall_s,
            "versions": {"sieveopt": __version__, "python": platform.python_version(),
                         "numpy": numpy.__version__, "ortools": ortools.__version__}}


def write_outputs(out_dir: str | Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any],
                  stem: str = "pareto", title: str | None = None,
                  marks: dict[str, Any] | None = None) -> dict[str, str]:
    """CSV, JSON (rows + resolved config), PNG and PDF, each written atomically; ``marks``: one
    policy pair's curve-comparison points drawn on the plot (:mod:`sieveopt.e2e.curves`)."""
    from sieveopt.e2e.plot import pareto_figure_bytes

    out = Path(out_dir)
    png, pdf = pareto_figure_bytes(rows, marks=marks, title=title or f"{meta['model']} ({meta.get('precision', '?')} experts) on {meta['gpus']}x {meta['system']}")
    paths = {"csv": out / f"{stem}.csv", "json": out / f"{stem}.json", "png": out / f"{stem}.png",
             "pdf": out / f"{stem}.pdf"}
    atomic_write_text(paths["csv"], rows_to_csv(rows))
    atomic_write_text(paths["json"], dumps_json({"meta": meta, "rows": list(rows)}))
    atomic_write_bytes(paths["png"], png)
    atomic_write_bytes(paths["pdf"], pdf)
    from sieveopt.e2e.plot import energy_figure_bytes

    epng = energy_figure_bytes(rows, f"tokens per joule: {meta['model']} on {meta['gpus']}x {meta['system']}")
    if epng is not None:   # a tokens-per-joule axis when the system has energy data
        paths["energy_png"] = out / f"{stem}_energy.png"
        atomic_write_bytes(paths["energy_png"], epng)
    return {k: str(v) for k, v in paths.items()}


def timed_sweep(spec: StepSweepSpec, cache_dir: str | Path | None = None,
                **kw: Any) -> tuple[list[dict[str, Any]], float]:
    """:func:`run_step_sweep` and its wall time (s)."""
    t0 = time.perf_counter()
    rows = run_step_sweep(spec, cache_dir, **kw)
    return rows, time.perf_counter() - t0
