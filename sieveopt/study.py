"""The main job: schedule sampled layers with every policy, replay them, compare.

``run_study`` is what ``sieveopt run`` calls; it returns plain rows so the CLI, notebooks and
tests share it. Replay uses :mod:`sieveopt.validation.replay` (the cycle-level simulators).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt.instance import LayerInstance
from sieveopt.pipeline import LayerRun, build_dag, run_layer
from sieveopt.solvers import common_params, default_policies, policy_with_role

#: GPU counts the Sieve paper uses per model (papers.md §1.2).
PAPER_GPUS = {"qwen3-30b-a3b": 1, "gpt-oss-120b": 4, "gpt-oss-120b-bf16": 4, "qwen3.5-397b-a17b": 8}
DEFAULT_POLICIES = default_policies()
#: The scheduler task's charge comes from :mod:`sieveopt.solvers.sched_latency` (a latency model,
#: never one call's wall clock): policies declaring a ``static`` decision decide nothing and an
#: ``offline`` one (CP-SAT) runs ahead of time; both are charged 0.


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
    return common_params(policy, time_limit_s=time_limit_s, seed=seed)


def run_study(layers: list[LayerInstance], policies: tuple[str, ...], *, time_limit_s: float = 5.0,
              seed: int = 0, replay: bool = True, keep_runs: bool = False,
              on_step: Callable[[str], None] | None = None,
              scheduler_latency: str | int = "default",
              solver_params: dict[str, dict[str, Any]] | None = None) -> tuple[list[StudyRow], list[dict[str, LayerRun]]]:
    """Solve every layer with every policy (same DAG, same cost model) and replay the schedules.
    ``on_step(description)`` is called after each (layer, policy) (progress reporting);
    ``solver_params[policy]`` overrides that policy's parameters (``--solver-param``).

    Each policy's ``sched`` tasks last the charge of ``scheduler_latency`` (see
    :func:`sieveopt.solvers.sched_latency.resolve`), in the schedule and in its replay alike."""
    from sieveopt.solvers.sched_latency import resolve, with_scheduler_latency

    replay_fn = None
    if replay:
        from sieveopt.validation.replay import replay as replay_fn  # noqa: PLC0415
    rows: list[StudyRow] = []
    runs: list[dict[str, LayerRun]] = []
    for li, inst in enumerate(layers):
        dag, cost = build_dag(inst)
        per_layer: dict[str, LayerRun] = {}
        for policy in policies:
            lat = resolve(policy, scheduler_latency,
                          calibration={"model": inst.model, "system": inst.system, "batch": inst.batch})
            pdag = with_scheduler_latency(dag, lat.ns)
            params = {**_solver_params(policy, time_limit_s, seed), **(solver_params or {}).get(policy, {})}
            run = run_layer(inst, policy, dag=pdag, cost=cost, **params)
            res = run.result
            row = StudyRow(li, inst.moe_layer, policy, int(res.makespan_ns or 0), run.check.ok, res.status,
                           res.decision_ns, run.wall_s, res.objective_ns, res.bound_ns,
                           extra={"scheduler_latency_ns": lat.ns, "scheduler_latency_source": lat.source})
            if replay_fn is not None and res.schedule is not None:
                # The scheduler runs on the serving path (in parallel with the dispatch); its
                # modelled charge is already the DAG's sched duration, so the replay keeps it.
                rep = replay_fn(res.schedule, run.dag, inst.system, instance=inst)
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
    reference = policy_with_role("reference")
    by_layer: dict[int, dict[str, StudyRow]] = {}
    for r in rows:
        by_layer.setdefault(r.layer_index, {})[r.policy] = r
    out = []
    for p in policies:
        mine = [r for r in rows if r.policy == p]
        if not mine:
            continue
        gaps_best, gaps_bound, gaps_replay = [], [], []
        for layer in by_layer.values():
            ref = layer.get(reference) if reference else None
            r = layer[p]
            if ref is not None and ref.makespan_ns:
                gaps_best.append(r.makespan_ns / ref.makespan_ns - 1.0)
                if ref.bound_ns:
                    gaps_bound.append(r.makespan_ns / ref.bound_ns - 1.0)
                if ref.replay_makespan_ns and r.replay_makespan_ns:
                    gaps_replay.append(r.replay_makespan_ns / ref.replay_makespan_ns - 1.0)
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
            "charged_sched_us": statistics.median(r.extra.get("scheduler_latency_ns", 0) for r in mine) / 1e3,
            "charged_sched_source": ",".join(sorted({str(r.extra.get("scheduler_latency_source", "-")) for r in mine})),
            "all_checked": all(r.check_ok for r in mine),
            "status": ",".join(sorted({r.status for r in mine})),
        })
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")
