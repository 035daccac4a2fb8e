"""The ``calibrated`` cost model: durations measured by the cycle-level simulators, per shape.

* PIM: a routed expert on ``n`` tokens and PIM attention take the DRAM/PIM simulator's job
  time (cached per (shape, tokens) in :mod:`sieveopt.validation.replay_dram`);
* GPU: the replay's GPU model, ``launches * overhead + max(flops / sustained peak,
  simulated stream time of the task's bytes)`` (stream times cached per byte count);
* links and the scheduler: roofline (``bytes / bandwidth``; the fixed latency).

So a DAG built with ``calibrated`` predicts what an interference-free replay measures; what
is left between the two is contention (NVLink incast, GPU-stream/PIM interference).
It is registered (lazily) in :data:`sieveopt.models.costmodel.COST_MODELS` as "calibrated".
"""

from __future__ import annotations

from typing import Any

from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, TaskKind, Work
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.validation.gpu_model import GpuModel


class CalibratedCostModel:
    """Simulator-measured GPU-stream and PIM times per shape, roofline for the rest."""

    name = "calibrated"

    def __init__(self, system: SystemSpec, model: ModelSpec, *, dram_preset: str | None = None,
                 timer: Any = None, **dram_overrides: Any) -> None:
        if timer is None:
            from sieveopt.validation.replay_dram import DramTimer

            timer = DramTimer(system, model, preset=dram_preset, **dram_overrides)
        self.system, self.model, self.timer = system, model, timer
        self.roofline = RooflineCostModel(system, model)
        self.gpu = GpuModel(system, timer.stream_ns)

    def pim_gemv_ns(self, weight_bytes: float, tokens: int) -> float:
        """PIM time of one routed expert on ``tokens`` tokens (roofline signature, simulated value)."""
        if abs(weight_bytes - self.model.expert_weight_bytes) > 1e-6 * max(1.0, weight_bytes):
            return self.roofline.pim_gemv_ns(weight_bytes, tokens)
        return self.timer.pim_expert_ns(tokens)

    def duration_ns(self, work: Work, mode: str) -> float:
        if mode == MODE_GPU:
            return self.gpu.kernel(work).total_ns
        if mode == MODE_PIM:
            if work.kind == TaskKind.EXPERT:
                return self.pim_gemv_ns(work.weight_bytes, work.tokens)
            if work.kind == TaskKind.ATTN:
                return self.timer.pim_attention_ns(work)
        return self.roofline.duration_ns(work, mode)

    def __getattr__(self, item: str) -> Any:
        # estimates policies read off the roofline (gpu_bytes_per_ns, kernel_overhead_ns, ...)
        if item.startswith("__") or item in ("roofline", "timer", "gpu", "model", "system"):
            raise AttributeError(item)
        return getattr(self.roofline, item)

