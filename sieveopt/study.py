"""The study layer: schedule sampled layers with every policy, replay them, compare; and the
one gap study every caller shares.

* ``run_study`` is what ``sieveopt run`` calls; it returns plain rows so the CLI, notebooks and
  tests share it. Replay uses :mod:`sieveopt.validation.replay` (the cycle-level simulators).
* The gap of a policy against a reference (CP-SAT by default), see docs/metrics.md:
  :func:`gap_summary` (median / p95 / max of ``makespan / reference - 1`` against the
  reference's schedule and against its proved bound) over per-layer records, used by
  ``sieveopt run`` (:func:`summarize`), ``sieveopt compare``, ``benchmarks/gap_study.py`` and
  ``ae/fig_gap.py``; :func:`run_gap_study` produces those records for a grid of
  (model, GPUs, batch) on the sweep engine (cached with ``cache_dir``, resumable, pool or Ray).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sieveopt.instance import LayerInstance
from sieveopt.pipeline import LayerRun, build_dag, run_layer

#: GPU counts the Sieve paper uses per model (papers.md §1.2).
PAPER_GPUS = {"qwen3-30b-a3b": 1, "gpt-oss-120b": 4, "qwen3.5-397b-a17b": 8}
DEFAULT_POLICIES = ("gpu_only", "noexp", "allexp", "pimoe", "duplex", "sieve", "sieve-plus", "cpsat")
#: Policies whose decision path is compiled and allocation-free, so their measured latency is a
#: serving-path latency. The baselines here are reference Python (their cost is not modelled:
#: charged 0); gpu_only/noexp/allexp decide nothing; CP-SAT is offline.
SERVING_PLANNERS = frozenset({"sieve", "sieve-plus"})


@dataclass
class StudyRow:
    """One (layer, policy) result."""

    layer_index: int
    moe_layer: int
    policy: str
    makespan_ns: int
    check_ok: bool
    status: str
    decision_ns: int | None
    wall_s: float
    objective_ns: int | None = None
    bound_ns: int | None = None
    replay_makespan_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _solver_params(policy: str, time_limit_s: float, seed: int) -> dict[str, Any]:
    if policy == "cpsat":
        return {"time_limit_s": time_limit_s, "seed": seed}
    return {}


def run_study(layers: list[LayerInstance], policies: tuple[str, ...], *, time_limit_s: float = 5.0,
              seed: int = 0, replay: bool = True, keep_runs: bool = False,
              on_step: Callable[[str], None] | None = None,
              replay_kwargs: dict[str, Any] | None = None) -> tuple[list[StudyRow], list[dict[str, LayerRun]]]:
    """Solve every layer with every policy (same DAG, same cost model) and replay the schedules.
    ``on_step(description)`` is called after each (layer, policy) (progress reporting);
    ``replay_kwargs`` go to the replay (e.g. a shared ``timer``, or ``scheduler_latency_ns=0``
    instead of the serving planners' measured latency)."""
    replay_fn = None
    if replay:
        from sieveopt.validation.replay import replay as replay_fn  # noqa: PLC0415
    rows: list[StudyRow] = []
    runs: list[dict[str, LayerRun]] = []
    for li, inst in enumerate(layers):
        dag, cost = build_dag(inst)
        per_layer: dict[str, LayerRun] = {}
        for policy in policies:
            run = run_layer(inst, policy, dag=dag, cost=cost, **_solver_params(policy, time_limit_s, seed))
            res = run.result
            row = StudyRow(li, inst.moe_layer, policy, int(res.makespan_ns or 0), run.check.ok, res.status,
                           res.decision_ns, run.wall_s, res.objective_ns, res.bound_ns)
            if replay_fn is not None and res.schedule is not None:
                # The scheduler runs on the serving path (in parallel with the dispatch): its
                # measured decision latency sits in the replayed layer. CP-SAT is offline.
                kw = {"scheduler_latency_ns": res.decision_ns if policy in SERVING_PLANNERS else None,
                      **(replay_kwargs or {})}
                rep = replay_fn(res.schedule, dag, inst.system, instance=inst, **kw)
                row.replay_makespan_ns = int(rep.makespan_ns)
            rows.append(row)
            if keep_runs:
                per_layer[policy] = run
            if on_step is not None:
                on_step(f"layer {li + 1}/{len(layers)} {policy}")
        runs.append(per_layer)
    return rows, runs


def summarize(rows: list[StudyRow], policies: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per policy: median makespans, gaps to CP-SAT (best and bound), decision latency."""
    by_layer: dict[int, dict[str, StudyRow]] = {}
    for r in rows:
        by_layer.setdefault(r.layer_index, {})[r.policy] = r
    layers = [{p: vars(r) for p, r in layer.items()} for layer in by_layer.values()]
    replayed = [{p: {"makespan_ns": r.replay_makespan_ns} for p, r in layer.items()} for layer in by_layer.values()]
    out = []
    for p in policies:
        mine = [r for r in rows if r.policy == p]
        if not mine:
            continue
        gaps_best, gaps_bound = layer_gaps(layers, p, "cpsat")
        gaps_replay, _ = layer_gaps(replayed, p, "cpsat")
        dec = [r.decision_ns for r in mine if r.decision_ns is not None]
        rep = [r.replay_makespan_ns for r in mine if r.replay_makespan_ns is not None]
        out.append({
            "policy": p,
            "makespan_us": statistics.median(r.makespan_ns for r in mine) / 1e3,
            "replay_us": statistics.median(rep) / 1e3 if rep else None,
            "gap_vs_cpsat_best": statistics.median(gaps_best) if gaps_best else None,
            "gap_vs_cpsat_bound": statistics.median(gaps_bound) if gaps_bound else None,
            "replay_gap_vs_cpsat": statistics.median(gaps_replay) if gaps_replay else None,
            "decision_us": statistics.median(dec) / 1e3 if dec else None,
            "all_checked": all(r.check_ok for r in mine),
            "status": ",".join(sorted({r.status for r in mine})),
        })
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


# ------------------------------------------------------------------------------- gap study
def gap_stats(values: list[float]) -> dict[str, float | None]:
    """median / p95 / max / n of gap values (None when empty)."""
    v = np.asarray(values, dtype=float)
    return {"median": float(np.percentile(v, 50)) if len(v) else None,
            "p95": float(np.percentile(v, 95)) if len(v) else None,
            "max": float(v.max()) if len(v) else None, "n": len(v)}


def layer_gaps(layers: list[dict[str, dict[str, Any]]], policy: str, reference: str) -> tuple[list[float], list[float]]:
    """Per layer ``makespan / reference - 1`` of ``policy`` against the reference's schedule
    (its makespan, else its objective) and against the reference's proved bound (docs/metrics.md).
    ``layers``: per layer, policy -> {"makespan_ns", "objective_ns"?, "bound_ns"?}."""
    vs_sol, vs_bound = [], []
    for layer in layers:
        mine, ref = layer.get(policy, {}).get("makespan_ns"), layer.get(reference)
        if mine is None or ref is None:
            continue
        sol = ref.get("makespan_ns") if ref.get("makespan_ns") is not None else ref.get("objective_ns")
        if sol:
            vs_sol.append(mine / sol - 1.0)
        if ref.get("bound_ns"):
            vs_bound.append(mine / ref["bound_ns"] - 1.0)
    return vs_sol, vs_bound


def gap_summary(layers: list[dict[str, dict[str, Any]]], policies: list[str] | tuple[str, ...],
                reference: str) -> dict[str, Any]:
    """Gaps of every other policy against ``reference`` (:func:`layer_gaps`, as
    :func:`gap_stats`), the reference's own optimality gap ``(objective - bound) / objective``
    and its solver statuses."""
    gaps = {}
    for p in policies:
        if p != reference:
            vs_sol, vs_bound = layer_gaps(layers, p, reference)
            gaps[p] = {"vs_solution": gap_stats(vs_sol), "vs_bound": gap_stats(vs_bound)}
    own = [layer[reference] for layer in layers if reference in layer]
    own_gap = [(o["objective_ns"] - o["bound_ns"]) / o["objective_ns"] for o in own
               if o.get("objective_ns") and o.get("bound_ns") is not None]
    return {"gaps": gaps, "own_gap": gap_stats(own_gap), "statuses": sorted({str(o.get("status")) for o in own})}


def run_gap_study(configs: list[tuple[str, int]], batches: list[int], *, layers: int, seed: int = 0,
                  policies: list[str] | tuple[str, ...], reference: str = "cpsat",
                  reference_params: dict[str, Any] | None = None, system: str = "sieve-b200-hbm3e-pim",
                  cost_model: str = "roofline", cache_dir: str | Path | None = None, executor: str = "local",
                  workers: int = 1, progress: bool = False) -> list[dict[str, Any]]:
    """The gap study's per-layer records on the sweep engine: for every (model, GPUs) of
    ``configs`` and batch, ``layers`` sampled layers (seed ``seed``) solved by every policy and
    the reference (``reference_params``, e.g. CP-SAT's ``time_limit_s`` and ``workers``). Each
    record: model, gpus, batch, layer, moe_layer and ``policies``: policy -> that layer's metrics
    (makespan_ns, objective_ns, bound_ns, status, decision_ns, solve_wall_s, check_ok)."""
    from sieveopt.sweep.runner import resolve_all, run_points
    from sieveopt.sweep.spec import parse_sweep

    if cache_dir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="sieveopt-gap-") as tmp:
            return run_gap_study(configs, batches, layers=layers, seed=seed, policies=policies, reference=reference,
                                 reference_params=reference_params, system=system, cost_model=cost_model,
                                 cache_dir=tmp, executor=executor, workers=workers, progress=progress)
    pols = list(dict.fromkeys([*policies, reference]))
    out: list[dict[str, Any]] = []
    for name, gpus in configs:
        spec = parse_sweep({"sweep": {"name": "gap-study", "layers": layers, "cost_model": cost_model},
                            "grid": {"model": name, "system": system, "gpus": gpus, "batch": list(batches),
                                     "policy": pols, "seed": seed},
                            "solver": {reference: dict(reference_params or {})} if reference_params else {}},
                           "<gap study>")
        cfgs = resolve_all(spec)
        report, store = run_points(cfgs, cache_dir, {"name": "gap-study", "spec": spec.raw}, executor=executor,
                                   workers=workers, progress=progress)
        if report.interrupted:
            raise KeyboardInterrupt
        if report.errors:
            from sieveopt.errors import SieveoptError

            h, msg = next(iter(report.errors.items()))
            raise SieveoptError(f"gap study: {msg} (point {h}; traceback in {store.point_dir(h) / 'error.json'})")
        for b in batches:
            per_policy = {c["point"]["policy"]: store.read_metrics(c["hash"])["layers"]
                          for c in cfgs if c["point"]["batch"] == b}
            for i in range(layers):
                first = per_policy[pols[0]][i]
                out.append({"model": name, "gpus": gpus, "batch": b, "layer": i, "moe_layer": first["moe_layer"],
                            "policies": {p: per_policy[p][i] for p in pols}})
    return out
