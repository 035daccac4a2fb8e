"""One sweep point: its resolved configuration, its content hash, and the pure function that
computes its metrics (run in a worker process or on a Ray node; the driver writes the files).

The hash covers everything that changes results: the grid values, the resolved model and
system specs (so editing a catalog TOML invalidates old points), DAG options, overrides, solver
parameters and the sieveopt version. Output switches (trace, gantt) are not part of it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

OUTPUT_ONLY = ("trace", "gantt")
#: Point kinds the engine runs: kind -> "module:function" computing ``(metrics, files)`` from a
#: resolved configuration (imported in the worker). ``layers``: one policy on sampled layers
#: (``sieveopt sweep``, the gap study); ``e2e_step``: one (batch, policy) decode step
#: (``sieveopt pareto``, ae/); ``study_layer``: every policy on one sampled layer, replayed
#: (``sieveopt run``); ``overlap_window``: every policy on one cyclic window, replayed as a
#: steady-state pipeline (``sieveopt run --overlap``).
POINT_KINDS = {"layers": "sieveopt.sweep.point:_compute",
               "e2e_step": "sieveopt.e2e.sweep:compute_step_point",
               "study_layer": "sieveopt.study:compute_study_point",
               "overlap_window": "sieveopt.overlap_study:compute_overlap_window_point"}


def make_config(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A resolved configuration of a point of ``kind`` (not ``layers``: see :func:`resolve`),
    hashed over everything in ``body`` and the sieveopt version."""
    from sieveopt import __version__

    if kind not in POINT_KINDS:
        raise ValueError(f"unknown point kind {kind!r} (known: {', '.join(POINT_KINDS)})")
    full = {"kind": kind, **body, "sieveopt_version": __version__}
    digest = hashlib.sha256(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"hash": digest, **full}


def resolve(point: dict[str, Any], spec_cache: dict[tuple, Any] | None = None) -> dict[str, Any]:
    """The full configuration of a point (specs resolved), with its ``hash``.

    Raises :class:`~sieveopt.errors.SieveoptError` for unknown names / bad overrides."""
    from sieveopt import __version__
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.tomlspec import to_dict

    cache = spec_cache if spec_cache is not None else {}
    mkey = ("model", point["model"])
    if mkey not in cache:
        cache[mkey] = to_dict(load_model(point["model"]))
    skey = ("system", point["system"], point["gpus"], json.dumps(point["set"], sort_keys=True))
    if skey not in cache:
        cache[skey] = to_dict(load_system(point["system"], point["gpus"], dict(point["set"])))
    if point.get("overlap", "serial") != "serial":
        _check_execution(point, cache[mkey], cache[skey])
    body = {"point": {k: v for k, v in point.items() if k not in OUTPUT_ONLY},
            "model_spec": cache[mkey], "system_spec": cache[skey], "sieveopt_version": __version__}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"hash": digest, **body, "outputs": {k: bool(point.get(k)) for k in OUTPUT_ONLY}}


#: CLI option -> sweep-file field, for execution-model errors raised while resolving a point.
_SWEEP_FIELDS = {"--microbatches": "grid.microbatches", "--batch": "grid.batch", "--overlap": "grid.overlap",
                 "--window-layers": "sweep.window_layers",
                 "--runtime-order-evaluations": "sweep.runtime_order_evaluations"}


def _check_execution(point: dict[str, Any], model_spec: dict[str, Any], system_spec: dict[str, Any]) -> Any:
    """The point's :class:`~sieveopt.execution_model.ExecutionModel`; an impossible one (M not
    dividing the requests per GPU, a window longer than the model) fails before any point runs,
    naming the sweep-file field."""
    from sieveopt.errors import SieveoptError
    from sieveopt.execution_model import make_execution_model

    gpus = int(system_spec.get("num_gpus") or point["gpus"] or 1)
    try:
        return make_execution_model(point["overlap"], point.get("microbatches"), window_layers=point.get("window_layers"),
                                    batch=point["batch"], num_gpus=gpus,
                                    num_moe_layers=model_spec.get("num_moe_layers"),
                                    runtime_order_evaluations=point.get("runtime_order_evaluations"))
    except SieveoptError as exc:
        msg = str(exc)
        for opt, fld in _SWEEP_FIELDS.items():
            msg = msg.replace(opt, fld)
        raise SieveoptError(f"grid point (model={point['model']}, gpus={gpus}, batch={point['batch']}, "
                            f"overlap={point['overlap']}, microbatches={point.get('microbatches')}): {msg}") from None


def compute_point(config: dict[str, Any]) -> dict[str, Any]:
    """Run every sampled layer of one point; never raises (errors come back as data).

    Returns ``{"hash", "ok": True, "metrics", "files": {name: bytes}}`` or
    ``{"hash", "ok": False, "error": {"type", "message", "traceback"}}``."""
    import importlib

    t0 = time.perf_counter()
    try:
        mod, attr = POINT_KINDS[config.get("kind", "layers")].split(":")
        metrics, files = getattr(importlib.import_module(mod), attr)(config)
        metrics["wall_s"] = time.perf_counter() - t0
        return {"hash": config["hash"], "ok": True, "metrics": metrics, "files": files}
    except Exception as exc:  # recorded, reported, retried next run; never dropped
        return {"hash": config["hash"], "ok": False, "wall_s": time.perf_counter() - t0,
                "error": error_record(exc)}


def error_record(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc)), "host": platform.node()}


def _compute(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    from sieveopt.check import check  # noqa: F401  (import early: fail fast in a broken env)
    from sieveopt.dag import DagOptions
    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, sample_layers
    from sieveopt.models.catalog import check_fits
    from sieveopt.models.specs import ModelSpec, SystemSpec
    from sieveopt.pipeline import run_layer
    from sieveopt.tomlspec import from_dict

    p = config["point"]
    model = from_dict(ModelSpec, config["model_spec"], f"point {config['hash']}: model")
    system = from_dict(SystemSpec, config["system_spec"], f"point {config['hash']}: system")
    check_fits(model, system)
    options = from_dict(DagOptions, dict(p["dag"]), f"point {config['hash']}: dag")
    if "scheduler_latency_ns" not in p["dag"]:
        # The same modelled scheduler charge as run/replay/pareto/compare (its deterministic
        # default, :mod:`sieveopt.solvers.sched_latency`) unless [dag] sets one explicitly.
        from dataclasses import replace

        from sieveopt.solvers.sched_latency import resolve as resolve_latency

        options = replace(options, scheduler_latency_ns=resolve_latency(p["policy"]).ns)
    ctx = p.get("context_len") or DEFAULT_CONTEXT_LEN_TOKENS
    if p.get("overlap", "serial") != "serial":
        return _compute_overlap(config, model, system, options, ctx)
    layers = sample_layers(model, system, p["batch"], p["layers"], p["seed"], context_len_tokens=ctx)
    rows: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    energy = _energy_fn(system, model)
    for i, inst in enumerate(layers):
        run = run_layer(inst, p["policy"], cost_model=p["cost_model"], options=options, **p["solver"])
        res = run.result
        sched = res.schedule
        em = list(sched.expert_modes(run.dag).values()) if sched is not None else []
        rows.append({"layer_index": i, "moe_layer": int(inst.moe_layer), "step": int(inst.step),
                     "makespan_ns": res.makespan_ns, "check_ok": run.check.ok,
                     "violations": len(run.check.violations), "status": res.status,
                     "execution_model": "serial", "time_per_layer_ns": res.makespan_ns,
                     "objective_ns": res.objective_ns, "bound_ns": res.bound_ns, "gap": res.gap,
                     "decision_ns": res.decision_ns, "solve_wall_s": run.wall_s, "tasks": len(run.dag.tasks),
                     "experts_gpu": em.count("gpu"), "experts_pim": em.count("pim"),
                     "energy_J": None if energy is None or sched is None else energy(run.dag, sched)})
        if i == 0 and sched is not None and (config["outputs"].get("trace") or config["outputs"].get("gantt")):
            files.update(_pictures(config, sched, run.dag, system))
    return {"hash": config["hash"], "layers": rows, "summary": summarise(rows)}, files


def _compute_overlap(config: dict[str, Any], model: Any, system: Any, options: Any,
                     context_len: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A point under ``microbatch``/``ideal``: ``layers`` cyclic windows (seeds seed, seed+1, ...,
    as ``compare --overlap``), each solved with the policy charged its scheduler latency; one
    row per window with the period (time per layer of the whole batch), latency and bound."""
    from sieveopt.errors import SieveoptError
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.overlap import (
        OVERLAP_SOLVER_PARAMS,
        charged_problem,
        sample_problem,
        solve_overlap,
    )

    p = config["point"]
    ex = _check_execution(p, config["model_spec"], config["system_spec"])
    bad = sorted(set(p["solver"]) - set(OVERLAP_SOLVER_PARAMS))
    if bad:
        raise SieveoptError(f"solver.{p['policy']}.{bad[0]} is not used with overlap {ex.overlap}: the periodic "
                            f"path takes {', '.join(OVERLAP_SOLVER_PARAMS)}; drop it for these points")
    cost = make_cost_model(p["cost_model"], system, model)
    spec = options.scheduler_latency_ns if "scheduler_latency_ns" in p["dag"] else "default"
    rows: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    for i in range(p["layers"]):
        base = sample_problem(model, system, p["batch"], ex, p["seed"] + i, cost, context_len_tokens=context_len,
                              options=options)
        prob, lat = charged_problem(base, p["policy"], spec)
        r = solve_overlap(prob, p["policy"], **{"seed": p["seed"], **p["solver"]})
        modes = [m for t, m in zip(prob.dag.tasks, r.schedule.modes if r.schedule else (), strict=False)
                 if t.kind.value == "expert"]
        rows.append({"layer_index": i, "moe_layer": int(prob.window[0][0].moe_layer), "step": 0,
                     "execution_model": ex.label, "time_per_layer_ns": r.period_ns, "period_ns": r.period_ns,
                     "latency_ns": r.latency_ns, "makespan_ns": None, "check_ok": r.check_ok is not False,
                     "violations": 0 if r.check_ok is not False else 1, "status": r.status,
                     "objective_ns": r.period_ns, "bound_ns": r.bound_ns, "gap": r.gap, "decision_ns": r.decision_ns,
                     "solve_wall_s": r.wall_s, "tasks": len(prob.dag.tasks), "scheduler_latency_ns": lat.ns,
                     "experts_gpu": modes.count("gpu") if r.schedule else None,
                     "experts_pim": modes.count("pim") if r.schedule else None, "energy_J": None})
        if i == 0 and r.schedule is not None and (config["outputs"].get("trace") or config["outputs"].get("gantt")):
            from sieveopt.periodic import unroll

            big, sched = unroll(prob, r.schedule, 3)  # the middle iteration is a full steady-state superperiod
            files.update(_pictures(config, sched, big, system))
    return {"hash": config["hash"], "layers": rows, "summary": summarise(rows)}, files


def _energy_fn(system: Any, model: Any):
    """Cost-model energy (J) of a schedule on ``system``, or None without energy data."""
    from sieveopt.solvers.cpsat_energy import schedule_energy_J
    from sieveopt.validation.energy.layer import energy_model_for

    em = energy_model_for(system, model)
    return None if em.unavailable else (lambda dag, sched: schedule_energy_J(dag, sched, em))


def _pictures(config: dict[str, Any], sched: Any, dag: Any, system: Any) -> dict[str, bytes]:
    from sieveopt import viz

    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if config["outputs"].get("trace"):
            out["trace.json.gz"] = viz.write_chrome_trace(sched, dag, Path(tmp) / "trace.json.gz", system=system).read_bytes()
        if config["outputs"].get("gantt"):
            out["gantt.png"] = viz.gantt(sched, dag, Path(tmp) / "gantt.png").read_bytes()
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-point summary over its layers (None-safe)."""
    def vals(k: str) -> list[float]:
        return [r[k] for r in rows if r.get(k) is not None]

    mk = vals("makespan_ns")
    tpl = vals("time_per_layer_ns")
    dec = vals("decision_ns")
    gaps = vals("gap")
    return {"layers": len(rows), "mean_makespan_ns": sum(mk) / len(mk) if mk else None,
            "max_makespan_ns": max(mk) if mk else None, "total_makespan_ns": sum(mk) if mk else None,
            "mean_time_per_layer_ns": sum(tpl) / len(tpl) if tpl else None,
            "all_checks_ok": all(r["check_ok"] for r in rows),
            "mean_decision_ns": sum(dec) / len(dec) if dec else None,
            "max_gap": max(gaps) if gaps else None,
            "statuses": sorted({r["status"] for r in rows}),
            "mean_energy_J": sum(en) / len(en) if (en := vals("energy_J")) else None}
