"""Energy of a whole decode step, by component, predicted and replayed.

step energy = sum over the MoE layers of the layer energy (:mod:`.layer`: the replayed layer's
simulator counts and replayed times, or the cost model's) + the work outside the MoE layers
(:func:`sieveopt.e2e.extras.fixed_items`: embedding, LM head, every dense layer, dense-layer
prefill attention), priced like DAG tasks (:meth:`LayerEnergyModel.work_energy_pJ`: commands,
FLOPs, bits; replayed: a GPU stream's ACTs at the simulated rate) plus, over the time those
take (replayed: :mod:`sieveopt.validation.replay_fixed`; predicted: the cost model), every GPU's
static power, its stacks' open-row background and refresh (serial, memory-bound kernels:
:meth:`LayerEnergyModel.busy_components_pJ`). The error per component is reported like the
layer's, ``(predicted - replayed) / replayed`` against :data:`.layer.TOLERANCE_PCT`.
"""

from __future__ import annotations

from typing import Any

from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.validation.energy.layer import COMPONENTS, TOLERANCE_PCT


def fixed_energy_J(em: Any, items: list, fixed_ns: float, num_gpus: int, *, simulated: bool) -> dict[str, float]:
    """Energy (J by component) of the step's work outside the MoE layers: ``items`` priced
    (all repetitions; attention on a target other than PIM priced as GPU) plus the time-driven
    power of ``num_gpus`` busy GPUs over ``fixed_ns``."""
    pj = dict.fromkeys(COMPONENTS, 0.0)
    for it in items:
        mode = MODE_PIM if it.mode == MODE_PIM else MODE_GPU
        for k, v in em.work_energy_pJ(it.work, mode, it.gpu, simulated=simulated).items():
            pj[k] += it.count * v
    for k, v in em.busy_components_pJ(num_gpus, fixed_ns).items():
        pj[k] += v
    return {k: v * 1e-12 for k, v in pj.items()}


def _err(pred: float, rep: float) -> float | None:
    return None if rep == 0 else 100.0 * (pred - rep) / rep


def _add(*parts: dict[str, float]) -> dict[str, float]:
    return {k: sum(p[k] for p in parts) for k in COMPONENTS}


def compare_block(predicted: dict[str, float], replayed: dict[str, float]) -> dict[str, Any]:
    """Predicted and replayed J per component and total, error and whether within tolerance."""
    tp, tr = sum(predicted.values()), sum(replayed.values())
    err = {k: _err(predicted[k], replayed[k]) for k in COMPONENTS}
    err["total"] = _err(tp, tr)
    return {"predicted_J": dict(predicted), "replayed_J": dict(replayed),
            "predicted_total_J": tp, "replayed_total_J": tr, "error_pct": err,
            "tolerance_pct": dict(TOLERANCE_PCT),
            "within_tolerance": {k: (e is None or abs(e) <= TOLERANCE_PCT[k]) for k, e in err.items()}}


def step_energy_block(moe_predicted: dict[str, float], moe_replayed: dict[str, float],
                      fixed_predicted: dict[str, float], fixed_replayed: dict[str, float], *,
                      batch: int | None, fixed_ns: dict[str, Any]) -> dict[str, Any]:
    """The whole-step block: MoE layers, the rest, and their sum, each :func:`compare_block`;
    ``J_per_token`` (replayed and predicted) = step energy / batch (every decode request makes one
    token per step)."""
    step = compare_block(_add(moe_predicted, fixed_predicted), _add(moe_replayed, fixed_replayed))
    per_tok = (lambda j: j / batch) if batch else (lambda j: None)
    return {**step, "J_per_token": per_tok(step["replayed_total_J"]),
            "predicted_J_per_token": per_tok(step["predicted_total_J"]),
            "moe_layers": compare_block(moe_predicted, moe_replayed),
            "outside_moe": {**compare_block(fixed_predicted, fixed_replayed), "time_ns": fixed_ns}}


def replay_step_block(layer: dict[str, Any], rep: Any, dag: Any, system: Any, instance: Any,
                      cost: Any) -> dict[str, Any]:
    """The whole-step block of ``sieveopt replay --json`` (``energy.step``): every MoE layer like
    the replayed one (``layer``: its :func:`.layer.replay_energy_block`, scaled by the model's MoE
    layers), plus the work outside the MoE layers for this instance's batch (decode tokens and
    context of each GPU; no prefill), replayed on the simulators the layer ran on
    (:func:`sieveopt.validation.replay_fixed.replay_fixed`) and predicted by ``cost``; dense-layer
    attention in the mode the schedule gives the layer's attention."""
    import numpy as np

    from sieveopt.e2e.breakdown import attention_mode
    from sieveopt.e2e.extras import fixed_items
    from sieveopt.validation.energy.layer import energy_model_for
    from sieveopt.validation.replay_fixed import replay_fixed, timer_like

    model = instance.model
    n = model.num_moe_layers
    head = np.asarray(instance.meta.get("decode_tokens_per_gpu", instance.tokens_per_gpu))
    items = fixed_items(model, instance.tokens_per_gpu, instance.kv_tokens_per_gpu, head,
                        attention_mode(rep.predicted, dag))
    fr = replay_fixed(items, system, timer_like(rep, system, model), cost)
    d = rep.meta.get("dram")
    em = energy_model_for(system, model, None if d is None else d["preset"], **({} if d is None else dict(d["overrides"])))
    g = dag.num_gpus
    fixed_p = fixed_energy_J(em, items, fr.predicted_total_ns, g, simulated=False)
    fixed_r = fixed_energy_J(em, items, fr.replayed_total_ns, g, simulated=d is not None)
    moe_p = {k: v * n for k, v in layer["predicted_J"].items()}
    moe_r = {k: v * n for k, v in layer["replayed_J"].items()}
    out = step_energy_block(moe_p, moe_r, fixed_p, fixed_r, batch=instance.batch,
                            fixed_ns={"predicted": fr.predicted_total_ns, "replayed": fr.replayed_total_ns,
                                      "predicted_by_part": fr.predicted_ns, "replayed_by_part": fr.replayed_ns,
                                      "not_simulated_items": fr.not_simulated})
    out["note"] = (f"every one of the {n} MoE layers like the replayed one; outside the MoE layers: embedding, "
                   "LM head and every dense layer of this batch, replayed kernel by kernel (serial, no prefill)")
    out["step_ns"] = {"predicted": rep.predicted_makespan_ns * n + fr.predicted_total_ns,
                      "replayed": rep.makespan_ns * n + fr.replayed_total_ns}
    return out
