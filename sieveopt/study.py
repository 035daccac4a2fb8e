"""The study layer: schedule sampled layers with every policy, replay them, compare; and the
one gap study every caller shares.

* ``run_study`` is what ``sieveopt run`` calls; it returns plain rows so the CLI, notebooks and
  tests share it. Replay uses :mod:`sieveopt.validation.replay` (the cycle-level simulators).
* The gap of a policy against a reference (the registry's reference policy), docs/metrics.md:
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
    #: cost-model / replayed energy of the layer (J; None: the system has no energy data)
    energy_J: float | None = None
    replay_energy_J: float | None = None
    #: the whole decode step with every MoE layer like this one (validation/energy/step.py):
    #: predicted / replayed J, total error (%) and whether every component is within tolerance
    step_energy: dict[str, Any] | None = None


def _solver_params(policy: str, time_limit_s: float, seed: int) -> dict[str, Any]:
    return common_params(policy, time_limit_s=time_limit_s, seed=seed)


def run_study(layers: list[LayerInstance], policies: tuple[str, ...], *, time_limit_s: float = 5.0,
              seed: int = 0, replay: bool = True, keep_runs: bool = False,
              on_step: Callable[[str], None] | None = None,
              scheduler_latency: str | int = "default",
              solver_params: dict[str, dict[str, Any]] | None = None,
              replay_kwargs: dict[str, Any] | None = None) -> tuple[list[StudyRow], list[dict[str, LayerRun]]]:
    """Solve every layer with every policy (same DAG, same cost model) and replay the schedules.
    ``on_step(description)`` is called after each (layer, policy) (progress reporting);
    ``solver_params[policy]`` overrides that policy's parameters (``--solver-param``);
    ``replay_kwargs`` go to the replay (e.g. a shared ``timer``).

    Each policy's ``sched`` tasks last the charge of ``scheduler_latency`` (see
    :func:`sieveopt.solvers.sched_latency.resolve`), in the schedule and in its replay alike."""
    from sieveopt.solvers.sched_latency import resolve, with_scheduler_latency

    replay_fn = None
    if replay:
        from sieveopt.validation.replay import replay as replay_fn  # noqa: PLC0415
    rows: list[StudyRow] = []
    runs: list[dict[str, LayerRun]] = []
    energy = _energy_fns(layers[0]) if layers else None
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
                rep = replay_fn(res.schedule, run.dag, inst.system, instance=inst, **(replay_kwargs or {}))
                row.replay_makespan_ns = int(rep.makespan_ns)
                if energy is not None:   # on the DAG the policy executed (PIMoE: its channel groups)
                    blk = energy[1](rep, run.dag, inst.system, inst)
                    row.replay_energy_J = blk["replayed_total_J"]
                    row.step_energy = _step_energy(blk, rep, run, inst)
            if energy is not None and res.schedule is not None:
                row.energy_J = energy[0](run.dag, res.schedule)
            rows.append(row)
            if keep_runs:
                per_layer[policy] = run
            if on_step is not None:
                on_step(f"layer {li + 1}/{len(layers)} {policy}")
        runs.append(per_layer)
    return rows, runs


def _energy_fns(inst: LayerInstance):
    """(cost-model energy of a schedule, replay energy block) for the layers' system, or None
    when it has no energy data (validation/energy)."""
    from sieveopt.solvers.cpsat_energy import schedule_energy_J
    from sieveopt.validation.energy.layer import energy_model_for, replay_energy_block

    em = energy_model_for(inst.system, inst.model)
    if em.unavailable:
        return None
    return (lambda dag, sched: schedule_energy_J(dag, sched, em)), replay_energy_block


def _step_energy(layer_block: dict[str, Any], rep: Any, run: LayerRun, inst: LayerInstance) -> dict[str, Any]:
    """Digest of :func:`sieveopt.validation.energy.step.replay_step_block` for a study row."""
    from sieveopt.validation.energy.step import replay_step_block

    st = replay_step_block(layer_block, rep, run.dag, inst.system, inst, run.cost)
    return {"predicted_J": st["predicted_total_J"], "replayed_J": st["replayed_total_J"],
            "error_pct": st["error_pct"]["total"],
            "outside_moe_error_pct": st["outside_moe"]["error_pct"]["total"],
            "not_within": sorted(k for k, v in st["within_tolerance"].items() if not v)}


def energy_summary(rows: list[StudyRow], policies: tuple[str, ...], batch: int) -> list[dict[str, Any]]:
    """Per policy: median cost-model and replayed energy per MoE layer (mJ) and of the whole
    decode step per generated token (J; every MoE layer like the sampled one + the replayed
    rest of the step), the step's median error and the components out of tolerance."""
    out = []
    for p in policies:
        mine = [r for r in rows if r.policy == p]
        if not mine:
            continue

        def med(xs: list[float | None]) -> float | None:
            xs = [x for x in xs if x is not None]
            return statistics.median(xs) if xs else None

        st = [r.step_energy for r in mine if r.step_energy]
        out.append({"policy": p, "energy_mJ": med([r.energy_J and r.energy_J * 1e3 for r in mine]),
                    "replay_energy_mJ": med([r.replay_energy_J and r.replay_energy_J * 1e3 for r in mine]),
                    "step_J_per_token": med([s["predicted_J"] / batch for s in st]),
                    "replay_step_J_per_token": med([s["replayed_J"] / batch for s in st]),
                    "step_error_pct": med([s["error_pct"] for s in st]),
                    "not_within": sorted({k for s in st for k in s["not_within"]})})
    return out


def summarize(rows: list[StudyRow], policies: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per policy: median makespans, gaps to CP-SAT (best and bound), decision latency."""
    reference = policy_with_role("reference")
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
        gaps_best, gaps_bound = layer_gaps(layers, p, reference) if reference else ([], [])
        gaps_replay, _ = layer_gaps(replayed, p, reference) if reference else ([], [])
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


def percentile_or_none(values: list[float], q: float) -> float | None:
    """The q-th percentile, or None for no values (a JSON ``null``, where :func:`percentile` gives NaN)."""
    return float(np.percentile(values, q)) if values else None


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
                  policies: list[str] | tuple[str, ...], reference: str | None = None,
                  reference_params: dict[str, Any] | None = None, system: str = "sieve-b200-hbm3e-pim",
                  cost_model: str = "roofline", cache_dir: str | Path | None = None, executor: str = "local",
                  workers: int = 1, progress: bool = False, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The gap study's per-layer records on the sweep engine: for every (model, GPUs) of
    ``configs`` and batch, ``layers`` sampled layers (seed ``seed``) solved by every policy and
    the reference (default: the registry's ``reference`` policy; ``reference_params``, e.g.
    CP-SAT's ``time_limit_s`` and ``workers``). Each
    record: model, gpus, batch, layer, moe_layer and ``policies``: policy -> that layer's metrics
    (makespan_ns, objective_ns, bound_ns, status, decision_ns, solve_wall_s, check_ok). Points
    are kept as :func:`sieveopt.sweep.runner.point_store_dir` says (``cache_dir``, else until
    complete in ``out_dir``, else a temporary store)."""
    from sieveopt.sweep.runner import point_store_dir, resolve_all, run_points
    from sieveopt.sweep.spec import parse_sweep

    reference = reference or policy_with_role("reference")
    pols = list(dict.fromkeys([*policies, reference]))
    out: list[dict[str, Any]] = []
    with point_store_dir(cache_dir, out_dir) as root:
        for name, gpus in configs:
            spec = parse_sweep({"sweep": {"name": "gap-study", "layers": layers, "cost_model": cost_model},
                                "grid": {"model": name, "system": system, "gpus": gpus, "batch": list(batches),
                                         "policy": pols, "seed": seed},
                                "solver": {reference: dict(reference_params or {})} if reference_params else {}},
                               "<gap study>")
            cfgs = resolve_all(spec)
            report, store = run_points(cfgs, root, {"name": "gap-study", "spec": spec.raw}, executor=executor,
                                       workers=workers, progress=progress)
            report.require_complete(store, "gap study")
            for b in batches:
                per_policy = {c["point"]["policy"]: store.read_metrics(c["hash"])["layers"]
                              for c in cfgs if c["point"]["batch"] == b}
                for i in range(layers):
                    first = per_policy[pols[0]][i]
                    out.append({"model": name, "gpus": gpus, "batch": b, "layer": i, "moe_layer": first["moe_layer"],
                                "policies": {p: per_policy[p][i] for p in pols}})
    return out


# ------------------------------------------------------------------- replay-based studies
def fidelity_study(model: Any, system: Any, layers: list[LayerInstance], *, warmup: int, timer: Any,
                   cost_models: tuple[str, ...] = ("roofline", "table", "calibrated"),
                   policy: str = "sieve") -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]:
    """Cost-model fidelity against the replay: the first ``warmup`` layers feed the ``table`` cost
    model from replayed PIM times (Sieve's runtime behaviour); on the others, per cost model, the
    median |error| per task kind and the |makespan error| of each layer (docs/metrics.md).
    Returns (kind -> cost model -> errors %, cost model -> makespan errors %)."""
    import sieveopt.models.table  # noqa: F401  (registers "table")
    import sieveopt.validation.calibrated  # noqa: F401  (registers "calibrated")
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.validation.replay import feed_table_from_replay, replay

    table = make_cost_model("table", system, model)
    warm, test = layers[:warmup], layers[warmup:]
    for inst in warm:
        dag, cost = build_dag(inst, table)
        r = run_layer(inst, policy, dag=dag, cost=cost)
        feed_table_from_replay(table, replay(r.result.schedule, dag, system, instance=inst, timer=timer), dag)
    errs: dict[str, dict[str, list[float]]] = {}
    mk: dict[str, list[float]] = {}
    for name in cost_models:
        cm = table if name == "table" else (make_cost_model(name, system, model, timer=timer) if name == "calibrated"
                                           else make_cost_model(name, system, model))
        for inst in test:
            dag, cost = build_dag(inst, cm)
            r = run_layer(inst, policy, dag=dag, cost=cost)
            rep = replay(r.result.schedule, dag, system, instance=inst, timer=timer, scheduler_latency_ns=0)
            for k, e in rep.kind_error.items():
                errs.setdefault(k, {}).setdefault(name, []).append(e.median_abs_pct)
            mk.setdefault(name, []).append(abs(rep.makespan_error_pct))
            if name == "table":
                feed_table_from_replay(table, rep, dag)
    return errs, mk


def replayed_latency_budget(layers: list[LayerInstance], latencies_us: list[int], *, timer: Any,
                            policy: str = "sieve") -> dict[str, Any]:
    """Latency budget on replay: each layer planned once by ``policy``, replayed with the
    scheduler task lasting each of ``latencies_us``. Returns per latency the replayed layer
    times (us), the measured decision latencies (us) and the dispatch window after the
    AllGather (us, from the latency-0 replay)."""
    from sieveopt.validation.replay import replay

    per_lat: dict[int, list[float]] = {x: [] for x in latencies_us}
    decision, dispatch_end = [], []
    for inst in layers:
        dag, cost = build_dag(inst)
        r = run_layer(inst, policy, dag=dag, cost=cost)
        decision.append((r.result.decision_ns or 0) / 1e3)
        for x in latencies_us:
            rep = replay(r.result.schedule, dag, inst.system, instance=inst, timer=timer, scheduler_latency_ns=x * 1000)
            per_lat[x].append(rep.makespan_ns / 1e3)
            if x == 0:
                arr = [int(rep.message_arrival_ns[t.tid]) for t in dag.tasks if t.kind == "dispatch"]
                ag = [int(rep.message_arrival_ns[t.tid]) for t in dag.tasks if t.kind == "allgather"]
                dispatch_end.append((max(arr, default=0) - max(ag, default=0)) / 1e3)
    return {"layer_us": per_lat, "decision_us": decision, "dispatch_window_us": dispatch_end}


def modelled_latency_budget(model: Any, system: Any, batch: int, latencies_us: list[int], policies: tuple[str, ...],
                            *, layers: int, seed: int) -> tuple[list[dict[str, Any]], float]:
    """Latency budget on the cost model: the decode step re-planned with the scheduler task
    lasting each of ``latencies_us`` (``StepSettings(scheduler_latency=N)``); per (policy,
    latency) the mean MoE-layer time (weighted over the sampled layers) and the step time. Also
    returns the measured Sieve decision latency (us, median of 5 steps after a warm-up)."""
    from sieveopt.e2e import StepSettings, prepare_step, run_step

    base = prepare_step(model, system, batch, StepSettings(num_layers=layers, seed=seed))
    run_step(base, "sieve")   # warm-up (compiled planner)
    dec = [run_step(base, "sieve").decision_ns_median for _ in range(5)]
    measured = statistics.median(x for x in dec if x is not None) / 1e3
    rows = []
    for lat in latencies_us:
        prob = prepare_step(model, system, batch, StepSettings(
            num_layers=layers, seed=seed, scheduler_latency=int(lat * 1000)))
        for pol in policies:
            res = run_step(prob, pol)
            rows.append({"policy": pol, "scheduler_latency_us": lat,
                         "layer_us": res.moe_layers_ns / prob.model.num_moe_layers / 1e3, "step_us": res.step_ns / 1e3})
    return rows, measured


def bandwidth_study(model_name: str, gpus: int, batch: int, multipliers: tuple[float, ...], *, layers: int,
                    seed: int, memory: str = "dram", system: str = "sieve-b200-hbm3e-pim",
                    policies: tuple[str, str] = ("sieve", "gpu_only")) -> list[dict[str, Any]]:
    """PIM internal-bandwidth sensitivity on replay: per ``internal_bw_multiplier`` (x the pin
    peak, mapped to the preset's PIM clock), the replayed median layer time of each of
    ``policies`` (scheduler latency 0), the share of experts ``policies[0]`` puts on PIM and the
    simulated multiplier / PIM clock."""
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.validation import replay_dram
    from sieveopt.validation.replay import make_timer, replay

    out = []
    for mult in multipliers:
        replay_dram.clear_cache()
        model = load_model(model_name)
        sysm = load_system(system, gpus, {"hbm_pim.pim.internal_bw_multiplier": float(mult)})
        insts = sample_layers(model, sysm, batch, layers, seed)
        timer = make_timer(sysm, model, memory)
        us: dict[str, list[float]] = {p: [] for p in policies}
        pim_frac = []
        for inst in insts:
            dag, cost = build_dag(inst)
            for i, p in enumerate(policies):
                r = run_layer(inst, p, dag=dag, cost=cost)
                us[p].append(replay(r.result.schedule, dag, sysm, instance=inst, timer=timer,
                                    scheduler_latency_ns=0).makespan_ns / 1e3)
                if i == 0:
                    em = r.result.schedule.expert_modes(dag)
                    pim_frac.append(sum(m == "pim" for m in em.values()) / max(1, len(em)))
        out.append({"multiplier": mult, "simulated_multiplier": getattr(timer, "pim_multiplier", float(mult)),
                    "nCCDMAC": getattr(timer, "overrides", {}).get("pim.nCCDMAC", "preset"),
                    "pim_fraction": statistics.median(pim_frac),
                    **{f"{p}_us": statistics.median(v) for p, v in us.items()}})
    return out


# ------------------------------------------------------------ the main job on the engine
def study_configs(model: Any, system: Any, *, batch: int, layers: int, seed: int, policies: tuple[str, ...],
                  time_limit_s: float, replay: bool,
                  solver_params: dict[str, dict[str, Any]] | None = None,
                  scheduler_latency: str | int = "default") -> list[dict[str, Any]]:
    """One ``study_layer`` engine point per sampled layer (all policies on that layer)."""
    from sieveopt.sweep.point import make_config
    from sieveopt.tomlspec import to_dict

    base = {"model_spec": to_dict(model), "system_spec": to_dict(system), "batch": int(batch),
            "layers": int(layers), "seed": int(seed), "policies": list(policies),
            "time_limit_s": float(time_limit_s), "replay": bool(replay),
            "solver_params": {p: dict(v) for p, v in (solver_params or {}).items()},
            "scheduler_latency": scheduler_latency}
    return [make_config("study_layer", {**base, "layer": i}) for i in range(layers)]


def compute_study_point(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Every policy on one sampled layer (runs in an engine worker): the :class:`StudyRow`
    fields, and for layer 0 the Sieve-vs-CP-SAT Gantt picture."""
    from sieveopt.instance import sample_layers
    from sieveopt.models.specs import ModelSpec, SystemSpec
    from sieveopt.tomlspec import from_dict

    src = f"point {config['hash']}"
    model = from_dict(ModelSpec, config["model_spec"], f"{src}: model")
    system = from_dict(SystemSpec, config["system_spec"], f"{src}: system")
    i = config["layer"]
    inst = sample_layers(model, system, config["batch"], config["layers"], config["seed"])[i]
    rows, runs = run_study([inst], tuple(config["policies"]), time_limit_s=config["time_limit_s"],
                           seed=config["seed"], replay=config["replay"], keep_runs=i == 0,
                           solver_params=config.get("solver_params") or None,
                           scheduler_latency=config.get("scheduler_latency", "default"))
    for r in rows:
        r.layer_index = i
    files = {}
    if i == 0:
        png = gantt_png(runs[0])
        if png is not None:
            files["gantt.png"] = png
    return {"hash": config["hash"], "rows": [vars(r) for r in rows]}, files


def gantt_png(per_policy: dict[str, LayerRun]) -> bytes | None:
    """Sieve vs CP-SAT (or the first two policies) side by side on one layer, as PNG bytes."""
    import tempfile

    from sieveopt.viz.gantt import gantt_compare

    picks = [p for p in (policy_with_role("paper"), policy_with_role("reference")) if p in per_policy] \
        or list(per_policy)[:2]
    items = [(p, per_policy[p].result.schedule, per_policy[p].dag) for p in picks
             if per_policy[p].result.schedule is not None]
    if not items:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gantt.png"
        gantt_compare(items, path)
        return path.read_bytes()


def run_study_points(model: Any, system: Any, *, batch: int, layers: int, seed: int, policies: tuple[str, ...],
                     time_limit_s: float, replay: bool, solver_params: dict[str, dict[str, Any]] | None = None,
                     scheduler_latency: str | int = "default", cache_dir: str | Path | None = None,
                     executor: str = "local", workers: int = 1, address: str | None = None,
                     progress: bool = False, out_dir: str | Path | None = None) -> tuple[list[StudyRow], bytes | None]:
    """:func:`run_study` over ``layers`` sampled layers, one engine point per layer (kept as
    :func:`sieveopt.sweep.runner.point_store_dir` says: in ``cache_dir``, else until every layer is
    finished in the output folder ``out_dir`` so a re-run after Ctrl-C resumes, else a temporary
    store): the rows in layer order and the layer-0 Gantt PNG."""
    from sieveopt.sweep.runner import point_store_dir, run_points

    cfgs = study_configs(model, system, batch=batch, layers=layers, seed=seed, policies=policies,
                         time_limit_s=time_limit_s, replay=replay, solver_params=solver_params,
                         scheduler_latency=scheduler_latency)
    with point_store_dir(cache_dir, out_dir) as root:
        report, store = run_points(cfgs, root, {"name": "run", "model": model.name, "system": system.name},
                                   executor=executor, workers=workers, address=address, progress=progress)
        report.require_complete(store)
        rows = [StudyRow(**d) for c in cfgs for d in store.read_metrics(c["hash"])["rows"]]
        gantt = store.point_dir(cfgs[0]["hash"]) / "gantt.png"
        return rows, (gantt.read_bytes() if gantt.is_file() else None)
