"""A decode step under an overlapped execution model (``microbatch`` or ``ideal``).

Each sampled MoE layer of the step stands for the steady state of a cyclic window that starts
at it: ``window_layers`` consecutive MoE layers (clipped to the model's last layers) with the
step's own requests, routing seed and context lengths, cut into M micro-batches that keep the
data-parallel placement (:func:`sieveopt.window.microbatch_slices`). The policy's periodic
schedule of that window (:func:`sieveopt.overlap.solve_overlap`, its scheduler task charged the
policy's latency) gives the layer's time for the whole batch, its **period**; under ``ideal``
the busiest resource's load of the policy's modes (a bound, not a schedule). Then, as in the
serial step model,

    step_ns = sum_kind n_layers(kind) * mean period of its samples + dense layers + LM head + embedding

Each period every micro-batch advances one layer, so a token's step also takes ``step_ns``:
throughput ``B / step / G`` and interactivity ``1 / step`` keep their definitions. The dense
layers, LM head and embedding stay serialized (the whole batch, once per step), the same charge
as the serial model (their attention on PIM when the policy's layers put any there, as in the
serial step). Not modelled under overlap: mixed prefill (clear error) and the runtime
PIM cost table of replayed runs (planners keep the cost model's). Energy and the critical-path
breakdown are not reported under overlap (None / NaN); busy fractions are a period's loads, and
NaN under ``ideal`` (a bound has no schedule).
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from sieveopt.dag import ATTN
from sieveopt.e2e import extras
from sieveopt.e2e.breakdown import CATEGORIES, offload_mode
from sieveopt.errors import SieveoptError
from sieveopt.execution_model import ExecutionModel, make_execution_model
from sieveopt.instance import LayerInstance


def step_execution(settings: Any, batch: int, num_gpus: int, num_moe_layers: int) -> ExecutionModel:
    """The validated execution model of a step (errors name the option and the fix)."""
    return make_execution_model(settings.overlap, settings.microbatches or None,
                                window_layers=settings.window_layers or None, batch=batch, num_gpus=num_gpus,
                                num_moe_layers=num_moe_layers,
                                runtime_order_evaluations=getattr(settings, "runtime_order_evaluations", None))


def step_window(problem: Any, first_layer: int, ex: ExecutionModel) -> list[list[LayerInstance]]:
    """``window[l][m]``: micro-batch m of the l-th consecutive MoE layer from ``first_layer``,
    with the step's requests (routing seed and context lengths)."""
    from sieveopt.window import microbatch_slices
    from sieveopt.workload import generate_for_model

    model, system = problem.model, problem.system
    L = ex.window_layers
    first = min(int(first_layer), model.num_moe_layers - L)
    ids = list(range(first, first + L))
    trace = generate_for_model(model, problem.batch, 1, problem.settings.seed, layers=ids)
    slices = microbatch_slices(problem.batch, system.num_gpus, ex.microbatches)
    ctx = np.asarray(problem.context_lens)
    return [[LayerInstance.from_expert_ids(model, system, trace.expert_ids[0, li][sel], moe_layer=lid,
                                           context_lens=ctx[sel],
                                           meta={"seed": problem.settings.seed, "microbatch": m})
             for m, sel in enumerate(slices)] for li, lid in enumerate(ids)]


def run_overlap_step(problem: Any, policy: str, *, solver_params: dict[str, Any] | None = None,
                     replay: Any = None, tables: Any = None) -> Any:
    """:class:`~sieveopt.e2e.step.StepResult` of ``policy`` under the step's overlapped
    execution model (see the module docstring); ``replay``: replay each window's steady state
    on the simulators (:func:`sieveopt.validation.replay_periodic.replay_periodic`)."""
    from sieveopt.e2e.step import StepResult, scheduler_latency_of
    from sieveopt.overlap import (
        OVERLAP_SOLVER_PARAMS,
        charge_scheduler,
        policy_problem,
        solve_overlap,
    )
    from sieveopt.periodic import build_periodic_problem, resource_loads_ns

    p, G = problem, problem.system.num_gpus
    if p.settings.prefill.requests:
        raise SieveoptError(f"--prefill with --overlap {p.settings.overlap} is not modelled: drop --prefill "
                            "or use --overlap serial")
    ex = step_execution(p.settings, p.batch, G, p.model.num_moe_layers)
    lat = scheduler_latency_of(p, policy)
    params = {k: v for k, v in (solver_params or {}).items() if k in OVERLAP_SOLVER_PARAMS}
    moe = replay_moe = latency = 0.0
    pim_busy, gpu_busy = np.zeros(G), np.zeros(G)
    ok, nviol, statuses, wall, decisions = True, 0, [], 0.0, []
    replay_error: str | None = None
    attn_modes: set[str] = set()
    for s in p.samples:
        window = step_window(p, s.instance.moe_layer, ex)
        prob = charge_scheduler(policy_problem(build_periodic_problem(window, p.cost, ex, p.settings.dag_options),
                                               policy), lat.ns)
        r = solve_overlap(prob, policy, **params)
        statuses.append(r.status)
        wall += r.wall_s
        if r.decision_ns is not None:
            decisions.append(r.decision_ns)
        if r.check_ok is False:
            ok, nviol = False, nviol + 1
        moe += s.weight * r.period_ns
        latency += s.weight * (r.latency_ns if r.latency_ns is not None else r.period_ns)
        if r.schedule is None:  # ideal: a bound, no schedule, so no busy fractions
            pim_busy[:], gpu_busy[:] = np.nan, np.nan
        else:
            attn_modes |= {r.schedule.modes[t.tid] for t in prob.dag.tasks if t.kind == ATTN}
            loads = resource_loads_ns(prob.dag, r.schedule.modes)
            for res in prob.dag.resources:  # busy ns of one layer: the superperiod's load / L
                if res.kind in ("pim", "gpu"):
                    busy = pim_busy if res.kind == "pim" else gpu_busy
                    busy[res.gpu] += s.weight * loads[res.rid] / ex.window_layers
        if replay is not None and replay_error is None:
            if r.schedule is None:
                replay_error = f"replay: --overlap {ex.overlap} is a bound, not a schedule (nothing to replay)"
            else:
                try:
                    from sieveopt.validation.replay_periodic import replay_periodic

                    rep = replay_periodic(prob, r.schedule, iterations=4, scheduler_latency_ns=lat.ns)
                    replay_moe += s.weight * rep["replayed_period_ns"]
                except Exception as exc:  # the schedule's own numbers stay valid; record why replay failed
                    replay_error = f"replay: {type(exc).__name__}: {exc}"
    first = p.samples[0].instance
    n_dense = p.model.num_layers - p.model.num_moe_layers
    dense = sum(extras.dense_layer_ns(p.model, p.cost, first.tokens_per_gpu, first.kv_tokens_per_gpu, i,
                                      offload_mode(attn_modes or {"pim"}))
                for i in range(n_dense))
    fixed = dense + p.lm_head_ns + p.embed_ns + p.prefill_attn_ns
    total_w = sum(s.weight for s in p.samples)
    return StepResult(
        policy=policy, batch=p.batch, num_gpus=G, step_ns=moe + fixed, moe_layers_ns=moe, dense_layers_ns=dense,
        lm_head_ns=p.lm_head_ns, embed_ns=p.embed_ns, prefill_attn_ns=p.prefill_attn_ns,
        breakdown_ns=dict.fromkeys(CATEGORIES, float("nan")),
        pim_busy_frac=(pim_busy / max(moe, 1e-9)).tolist(), gpu_busy_frac=(gpu_busy / max(moe, 1e-9)).tolist(),
        check_ok=ok, violations=nviol, statuses=statuses, solver_wall_s=wall,
        decision_ns_median=float(statistics.median(decisions)) if decisions else None,
        replay_step_ns=None if replay is None or replay_error else replay_moe + fixed, error=replay_error,
        scheduler_latency_ns=lat.ns, scheduler_latency_source=lat.source,
        execution_model=ex.label, layer_latency_ns=latency / max(total_w, 1e-9))


__all__ = ["run_overlap_step", "step_execution", "step_window"]
