"""Every policy on sampled cyclic windows under an overlapped execution model (``microbatch`` or
``ideal``): the one implementation behind ``sieveopt compare --overlap`` and the overlapped main
job ``sieveopt run --overlap``.

Why this job exists: Sieve's objective ``max(T_comm, T_GPU, T_PIM)`` assumes overlap (the paper
takes the maximum over resources because fine-grained compute/communication overlap hides the
shorter ones; papers.md §1.5), so the steady state of a micro-batch pipeline is the regime that
judges Sieve on its own terms (docs/design-notes/overlap.md, "Round 10").

* :func:`solve_window`: one window, every policy charged its scheduler latency (as the serial
  ``compare``), the exact solvers last and hinted with the heuristics' schedules; with
  ``replay`` each policy's periodic schedule is replayed on the DRAM/PIM + NVLink simulators
  (:func:`sieveopt.validation.replay_periodic.replay_periodic`, the charge of ``replay --overlap``)
  right after its solve, and only the replay's summary is kept (replays stream).
* :func:`summarize_windows`: per-policy medians, gaps to CP-SAT's best and bound.
* :func:`compute_overlap_window_point` / :func:`run_overlap_points`: one sweep-engine point per
  window (point kind ``overlap_window``), so ``run --overlap`` caches (``--cache``), resumes and
  runs windows in parallel (``--workers``, ``--executor``) exactly as the serial ``run`` does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sieveopt.execution_model import ExecutionModel, make_execution_model
from sieveopt.solvers import policy_info, policy_with_role
from sieveopt.study import percentile_or_none as _q

#: Iterations of the cyclic window drawn in a steady-state Gantt/trace (the middle one is a full
#: superperiod): ``viz gantt|trace --overlap microbatch``, ``solve --gantt`` and ``run --overlap``.
VIEW_ITERATIONS = 3


def replay_settings(*, iterations: int | None = None, memory: str = "dram", interference: bool = True,
                    dram_preset: str | None = None) -> dict[str, Any]:
    """The replay of a periodic schedule as ``replay --overlap microbatch`` runs it by default
    (recorded in results and hashed into cached points)."""
    from sieveopt.validation.replay_periodic import DEFAULT_REPLAY_ITERATIONS, DEFAULT_TRIM

    return {"iterations": DEFAULT_REPLAY_ITERATIONS if iterations is None else int(iterations),
            "trim": DEFAULT_TRIM, "memory": memory, "interference": bool(interference), "dram_preset": dram_preset}


def solve_window(base: Any, policies: list[str] | tuple[str, ...], *, seed: int, spec: str | int | None,
                 calibration: dict[str, Any] | None, time_limit_s: float, workers: int, latency_weight: float,
                 replay: dict[str, Any] | None = None, keep: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict]:
    """Every policy on the periodic problem ``base`` (one sampled cyclic window).

    Returns ``(row, kept)``: ``row["policies"][p]`` holds the :class:`OverlapResult` fields, the
    scheduler charge and (``replay`` given, a schedule to replay) ``row["policies"][p]["replay"]``;
    ``kept[p] = (charged problem, OverlapResult)`` for the policies named in ``keep`` (pictures)."""
    from sieveopt.overlap import charged_problem, solve_overlap

    row: dict[str, Any] = {"moe_layers": [r[0].moe_layer for r in base.window], "policies": {}}
    done: dict[str, Any] = {}
    kept: dict[str, tuple[Any, Any]] = {}
    for pol in sorted(policies, key=lambda p: policy_info(p).offline):  # exact solvers last: hinted
        prob, lat = charged_problem(base, pol, spec, calibration=calibration)
        r = solve_overlap(prob, pol, time_limit_s=time_limit_s, workers=workers, seed=seed,
                          latency_weight=latency_weight, hints=done)
        done[pol] = r
        entry = {**{k: v for k, v in r.to_dict().items() if k not in ("meta", "policy", "execution_model")},
                 "scheduler_latency_ns": lat.ns, "scheduler_latency_source": lat.source}
        if replay is not None and r.schedule is not None:
            entry["replay"] = _replay_summary(prob, r.schedule, lat.ns, replay)
        row["policies"][pol] = entry
        if pol in keep:
            kept[pol] = (prob, r)
    return row, kept


def _replay_summary(prob: Any, schedule: Any, charge_ns: int, settings: dict[str, Any]) -> dict[str, Any]:
    """The replay of one periodic schedule (the scheduler task lasts the policy's charge, as in
    the prediction); the replayed schedule itself is dropped here."""
    from sieveopt.validation.replay_periodic import replay_periodic

    rep = replay_periodic(prob, schedule, iterations=settings["iterations"], trim=settings["trim"],
                          memory=settings["memory"], interference=settings["interference"],
                          scheduler_latency_ns=charge_ns, dram_preset=settings["dram_preset"])
    return {k: rep[k] for k in ("predicted_period_ns", "replayed_period_ns", "period_error_pct", "kind_error",
                                "converged", "memory", "iterations", "trim", "tasks", "wall_s")}


def summarize_windows(windows: list[dict[str, Any]], policies: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Per policy over the windows: median period, latency, decision time, checks, and (CP-SAT,
    the ``reference`` policy, listed) the gaps to its best period and its bound; with replays,
    the median replayed period and replay error. Adds each window's gap fields in place."""
    ref = policy_with_role("reference")
    ref = ref if ref in policies else None
    if ref:
        for w in windows:
            best, bound = w["policies"][ref]["period_ns"], w["policies"][ref]["bound_ns"]
            rb = (w["policies"][ref].get("replay") or {}).get("replayed_period_ns")
            for v in w["policies"].values():
                v["gap_to_cpsat_best"] = v["period_ns"] / best - 1.0
                v["gap_to_cpsat_bound"] = None if not bound else v["period_ns"] / bound - 1.0
                if v.get("replay") and rb:
                    v["replay"]["replayed_gap_to_cpsat"] = v["replay"]["replayed_period_ns"] / rb - 1.0
    summary: dict[str, Any] = {}
    for p in policies:
        per = [w["policies"][p] for w in windows]
        reps = [x["replay"] for x in per if x.get("replay")]
        s = {"median_period_ns": _q([x["period_ns"] for x in per], 50),
             "median_latency_ns": _q([x["latency_ns"] for x in per if x["latency_ns"] is not None], 50),
             "median_decision_ns": _q([x["decision_ns"] for x in per if x["decision_ns"] is not None], 50),
             "scheduler_latency_ns": per[0]["scheduler_latency_ns"],
             "scheduler_latency_source": per[0]["scheduler_latency_source"],
             "checks_ok": sum(1 for x in per if x["check_ok"] is not False)}
        if reps:
            gaps = [r["replayed_gap_to_cpsat"] for r in reps if r.get("replayed_gap_to_cpsat") is not None]
            s.update({"replayed_windows": len(reps), "replays_converged": sum(1 for r in reps if r["converged"]),
                      "median_replayed_period_ns": _q([r["replayed_period_ns"] for r in reps], 50),
                      "median_period_error_pct": _q([r["period_error_pct"] for r in reps], 50),
                      "median_replayed_gap_to_cpsat": _q(gaps, 50)})
        if ref:
            gaps = [x["gap_to_cpsat_best"] for x in per]
            vsb = [x["gap_to_cpsat_bound"] for x in per if x["gap_to_cpsat_bound"] is not None]
            s.update({"median_gap_to_cpsat_best": _q(gaps, 50), "max_gap_to_cpsat_best": max(gaps),
                      "median_gap_to_cpsat_bound": _q(vsb, 50),
                      "median_cpsat_bound_ns": _q([w["policies"][ref]["bound_ns"] for w in windows
                                                   if w["policies"][ref]["bound_ns"]], 50)})
            if p == ref:
                s["max_cpsat_certified_gap"] = max((x["gap"] for x in per if x["gap"] is not None), default=None)
        summary[p] = s
    return summary


def all_checks_ok(windows: list[dict[str, Any]]) -> bool:
    """No schedule of any window failed ``check()`` (a bound has none to check)."""
    return all(v["check_ok"] is not False for w in windows for v in w["policies"].values())


# ------------------------------------------------------------------ steady-state pictures
def steady_state_item(name: str, prob: Any, result: Any, ex: ExecutionModel) -> tuple[str, Any, Any]:
    """``(label, schedule, dag)`` of :data:`VIEW_ITERATIONS` unrolled iterations of ``result``'s
    periodic schedule, for :func:`sieveopt.viz.gantt.gantt_compare` or a trace."""
    from sieveopt.periodic import unroll

    big, sched = unroll(prob, result.schedule, VIEW_ITERATIONS)
    return f"{name}, {ex.label}: period {result.period_ns / 1e3:.2f} us", sched, big


def steady_state_title(model_name: str, gpus: int, batch: int) -> str:
    return (f"{model_name}, {gpus} GPU(s), B={batch}: {VIEW_ITERATIONS} iterations of the steady state "
            "(the middle one is a full superperiod)")


def gantt_policies(policies: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Which policies ``run --overlap`` draws: Sieve (the ``paper`` policy) and CP-SAT (the
    ``reference``) when listed, else the first two."""
    picks = tuple(p for p in (policy_with_role("paper"), policy_with_role("reference")) if p in policies)
    return picks or tuple(policies[:2])


def steady_state_gantt_png(kept: dict[str, tuple[Any, Any]], ex: ExecutionModel, title: str) -> bytes | None:
    """The policies of ``kept`` (with a schedule) stacked on one time axis, coloured by
    micro-batch, as PNG bytes (None when none has a schedule, e.g. ``ideal``)."""
    from sieveopt.viz.gantt import gantt_compare

    items = [steady_state_item(p, prob, r, ex) for p, (prob, r) in kept.items() if r.schedule is not None]
    if not items:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gantt.png"
        gantt_compare(items, path, color_by="microbatch", title=title)
        return path.read_bytes()


# ------------------------------------------------------------------ the sweep engine's point
def overlap_window_configs(model: Any, system: Any, ex: ExecutionModel, *, batch: int, windows: int, seed: int,
                           policies: list[str] | tuple[str, ...], time_limit_s: float, workers: int,
                           latency_weight: float, scheduler_latency: str | int, cost_model: str,
                           replay: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One ``overlap_window`` engine point per window (window i: seed ``seed + i``, as ``compare
    --overlap``); the hash covers every input of the window's results."""
    from sieveopt.sweep.point import make_config
    from sieveopt.tomlspec import to_dict

    base = {"model_spec": to_dict(model), "system_spec": to_dict(system), "batch": int(batch),
            "execution": ex.to_dict(), "seed": int(seed), "policies": list(policies),
            "time_limit_s": float(time_limit_s), "cpsat_workers": int(workers),
            "latency_weight": float(latency_weight), "scheduler_latency": scheduler_latency,
            "cost_model": cost_model, "replay": replay, "gantt": list(gantt_policies(policies))}
    return [make_config("overlap_window", {**base, "window": i}) for i in range(windows)]


def _execution(d: dict[str, Any], batch: int, num_gpus: int) -> ExecutionModel:
    return make_execution_model(d["overlap"], d["microbatches"], window_layers=d["window_layers"], batch=batch,
                                num_gpus=num_gpus,
                                runtime_order_evaluations=d["runtime_order_evaluations"]
                                if d["overlap"] == "microbatch" else None)


def compute_overlap_window_point(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One window of ``run --overlap`` (runs in an engine worker): its row and, for window 0,
    the steady-state Gantt PNG."""
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.models.specs import ModelSpec, SystemSpec
    from sieveopt.overlap import sample_problem
    from sieveopt.tomlspec import from_dict

    src = f"point {config['hash']}"
    model = from_dict(ModelSpec, config["model_spec"], f"{src}: model")
    system = from_dict(SystemSpec, config["system_spec"], f"{src}: system")
    batch, i = config["batch"], config["window"]
    ex = _execution(config["execution"], batch, system.num_gpus)
    cost = make_cost_model(config["cost_model"], system, model)
    seed = config["seed"] + i
    base = sample_problem(model, system, batch, ex, seed, cost)
    row, kept = solve_window(base, config["policies"], seed=config["seed"], spec=config["scheduler_latency"],
                             calibration={"model": model, "system": system, "batch": batch},
                             time_limit_s=config["time_limit_s"], workers=config["cpsat_workers"],
                             latency_weight=config["latency_weight"], replay=config["replay"],
                             keep=tuple(config["gantt"]) if i == 0 else ())
    row = {"window": i, "seed": seed, **row}
    files: dict[str, bytes] = {}
    if kept:
        png = steady_state_gantt_png(kept, ex, steady_state_title(model.name, system.num_gpus, batch))
        if png is not None:
            files["gantt.png"] = png
    return {"hash": config["hash"], "window": row}, files


WindowRows = tuple[list[dict[str, Any]], bytes | None]


def run_overlap_points(configs: list[dict[str, Any]], *, cache_dir: str | Path | None, manifest: dict[str, Any],
                       executor: str = "local", workers: int = 1, address: str | None = None,
                       progress: bool = False, out_dir: str | Path | None = None) -> WindowRows:
    """Run the window points on the sweep engine: the window rows in order and window 0's Gantt
    PNG. Points are kept as :func:`sieveopt.sweep.runner.point_store_dir` says (``cache_dir``, else
    until every window is finished in ``out_dir`` so a re-run after Ctrl-C resumes, else a
    temporary store), the rule of the serial ``run``."""
    from sieveopt.sweep.runner import point_store_dir, run_points

    with point_store_dir(cache_dir, out_dir) as root:
        report, store = run_points(configs, root, manifest, executor=executor, workers=workers, address=address,
                                   progress=progress)
        report.require_complete(store)
        rows = [store.read_metrics(c["hash"])["window"] for c in configs]
        gantt = store.point_dir(configs[0]["hash"]) / "gantt.png"
        return rows, (gantt.read_bytes() if gantt.is_file() else None)


__all__ = ["VIEW_ITERATIONS", "all_checks_ok", "compute_overlap_window_point", "gantt_policies",
           "overlap_window_configs", "replay_settings", "run_overlap_points", "solve_window",
           "steady_state_gantt_png", "steady_state_item", "steady_state_title", "summarize_windows"]
