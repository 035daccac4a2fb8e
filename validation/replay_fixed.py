"""Replay of the decode step's work outside the MoE layer DAG (dense layers, LM head, embedding,
dense-layer prefill attention), the way a MoE layer's tasks are replayed.

Each kernel of :func:`sieveopt.e2e.extras.fixed_items` is timed like a GPU-mode DAG task
(:func:`sieveopt.validation.replay.gpu_task_time`): launch overhead + max(compute from FLOPs,
*simulated* time to stream its weights, activations and KV from the HBM stacks); a dense
layer's decode attention on PIM is the DRAM/PIM simulator's all-bank GEMV
(``timer.pim_attention_ns``, as a PIM attention task of the DAG). Kernels run back to back on
each GPU and every part (embedding, LM head, each dense layer, each dense layer's prefill
attention) waits for the slowest GPU (:func:`sieveopt.e2e.extras.items_ns`), as the predicted
times do. Nothing overlaps: execution model serial, no GPU-stream/PIM interference (one kernel at
a time). A dense-layer attention on a target with no simulator (e.g. a CPU tier) keeps its
cost-model time and is counted in ``not_simulated``. GPU speed variability is not applied here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sieveopt.dag import ATTN
from sieveopt.e2e.extras import FixedItem, items_ns, predicted_item_ns
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.validation.gpu_model import GpuModel


@dataclass(frozen=True)
class FixedReplay:
    """Replayed and predicted times (ns) of the step's work outside the MoE layers, by part
    group (``embed``, ``lm_head``, ``dense``, ``prefill``)."""

    replayed_ns: dict[str, float]
    predicted_ns: dict[str, float]
    not_simulated: int     # items timed by the cost model (no simulator for their target)

    @property
    def replayed_total_ns(self) -> float:
        return sum(self.replayed_ns.values())

    @property
    def predicted_total_ns(self) -> float:
        return sum(self.predicted_ns.values())


def replayed_item_ns(item: FixedItem, gpu: GpuModel, timer: Any, cost: Any) -> tuple[float, bool]:
    """(replayed time of one item, all repetitions; whether a simulator timed it)."""
    if item.mode == MODE_GPU or item.work.kind != ATTN:
        return item.count * gpu.kernel(item.work).total_ns, True
    if item.mode == MODE_PIM:
        return item.count * float(timer.pim_attention_ns(item.work)), True
    return predicted_item_ns(cost, item), False


def replay_fixed(items: list[FixedItem], system: Any, timer: Any, cost: Any) -> FixedReplay:
    """Replay ``items`` on ``timer`` (a :class:`~sieveopt.validation.replay_dram.DramTimer` or the
    analytic ablation) and ``system``'s GPU kernel model; ``cost`` gives the predicted times."""
    gpu = GpuModel(system, timer.stream_ns)
    sims = [replayed_item_ns(it, gpu, timer, cost) for it in items]
    rep = {id(it): ns for it, (ns, _) in zip(items, sims, strict=True)}
    return FixedReplay(items_ns(items, lambda it: rep[id(it)]), items_ns(items, lambda it: predicted_item_ns(cost, it)),
                       sum(1 for _, ok in sims if not ok))


def timer_like(rep: Any, system: Any, model: Any) -> Any:
    """The memory timer a MoE layer's replay ``rep`` ran on (its DRAM preset and overrides, or the
    analytic ablation), for the rest of the step."""
    from sieveopt.validation.replay import make_timer

    d = rep.meta.get("dram") if hasattr(rep, "meta") else None
    if d is None:
        return make_timer(system, model, "analytic")
    return make_timer(system, model, "dram", d["preset"], **dict(d["overrides"]))
