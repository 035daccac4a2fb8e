"""Batches x policies sweeps of the decode-step model, the Pareto front and the output files.

Every point is recorded: a policy that raises on one batch gets a row with ``check=error`` and
the message (NaN metrics), never a silent gap. Outputs are written atomically, after the sweep.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sieveopt.cli.output import atomic_write_bytes, atomic_write_text, dumps_json
from sieveopt.e2e.policies import ReplayFn, policy_params
from sieveopt.e2e.step import StepResult, StepSettings, failed_step, prepare_step, run_step
from sieveopt.errors import SieveoptError
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
        raise SieveoptError(f"--batches {text!r}: expected comma-separated integers, e.g. 1,2,4,...,256")
    out: list[int] = []
    i = 0
    while i < len(parts):
        p = parts[i]
        if p == "...":
            if len(out) < 2 or i + 1 >= len(parts):
                raise SieveoptError(f"--batches {text!r}: '...' needs two values before it and one after")
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
                raise SieveoptError(f"--batches {text!r}: '...' needs an increasing sequence")
            if out[-1] != end:
                out.append(end)
            i += 2
            continue
        out.append(_int(p, text))
        i += 1
    bad = [b for b in out if not 1 <= b <= MAX_BATCH]
    if bad:
        raise SieveoptError(f"--batches {text!r}: batch sizes must be in [1, {MAX_BATCH}], got {bad[0]}")
    if len(set(out)) != len(out):
        raise SieveoptError(f"--batches {text!r}: a batch size is listed twice")
    return out


def _int(s: str, text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", s):
        raise SieveoptError(f"--batches {text!r}: {s!r} is not an integer (e.g. 1,2,4,...,256)")
    return int(s)


@dataclass(frozen=True)
class SweepSpec:
    model: ModelSpec
    system: SystemSpec
    batches: tuple[int, ...]
    policies: tuple[str, ...]
    settings: StepSettings
    time_limit_s: float = 2.0


def run_sweep(spec: SweepSpec, *, replay: ReplayFn | None = None,
              progress: Callable[[str, int], None] | None = None) -> list[StepResult]:
    """Every (batch, policy) point; the layers of a batch are sampled once and shared."""
    out: list[StepResult] = []
    # Sieve's runtime cost table lives across the whole replayed run (layers and steps).
    tables = (ObservedTables(spec.system, spec.model)
              if replay is not None and spec.settings.observed_table else None)
    for batch in spec.batches:
        problem = prepare_step(spec.model, spec.system, batch, spec.settings)
        for policy in spec.policies:
            if progress:
                progress(policy, batch)
            try:
                res = run_step(problem, policy, solver_params=policy_params(policy, time_limit_s=spec.time_limit_s),
                               replay=replay, tables=tables)
            except SieveoptError:
                raise
            except Exception as exc:  # a broken solver is recorded, not dropped
                res = failed_step(problem, policy, exc)
            out.append(res)
    return out


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


def result_rows(spec: SweepSpec, results: Sequence[StepResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        row = {"model": spec.model.name, "precision": spec.model.expert_precision, "system": spec.system.name, "gpus": spec.system.num_gpus,
               "prefill": spec.settings.prefill.requests, "prefill_len": spec.settings.prefill.len_tokens,
               "layers_sampled": spec.settings.num_layers, **r.row()}
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


def sweep_meta(spec: SweepSpec, wall_s: float, replay: bool) -> dict[str, Any]:
    import platform

    import numpy
    import ortools

    from sieveopt import __version__

    s = spec.settings
    return {"model": spec.model.name, "precision": spec.model.expert_precision, "system": spec.system.name,
            "gpus": spec.system.num_gpus, "batches": list(spec.batches), "policies": list(spec.policies), "layers": s.num_layers,
            "seed": s.seed, "context": asdict(s.context), "prefill": asdict(s.prefill),
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
    return {k: str(v) for k, v in paths.items()}


def timed_sweep(spec: SweepSpec, **kw: Any) -> tuple[list[StepResult], float]:
    t0 = time.perf_counter()
    res = run_sweep(spec, **kw)
    return res, time.perf_counter() - t0
