"""Memory-side times for replay: GPU weight streaming, PIM expert jobs, PIM attention, interference.

A *memory timer* answers four questions for one GPU's HBM-PIM stacks:

* ``stream_ns(bytes)``: the GPU streams ``bytes`` sharded over all pseudo-channels;
* ``pim_expert_ns(tokens)``: one routed expert as an all-bank PIM job on ``tokens`` tokens
  (token writes, GEMVs, read-back);
* ``pim_attention_ns(work)``: decode attention (KV cache / recurrent state) on the PIM units;
* ``interference(kind, tokens) -> (k_stream, k_pim)``: slow-down factors (>= 1) of GPU
  streaming and of a PIM job while both run on the same stacks.

:class:`DramTimer` (in :mod:`sieveopt.validation.replay_dram`) takes them from the cycle-level
DRAM/PIM simulator (cached per shape) and is the default; :class:`AnalyticTimer` from the
roofline formulas (an explicitly named, non-simulated alternative for ablations: never a
fallback).
"""

from __future__ import annotations

from typing import Protocol

from sieveopt.models.costmodel import Work
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.specs import ModelSpec, SystemSpec


class MemoryTimer(Protocol):
    name: str
    sharing: str

    def stream_ns(self, nbytes: float) -> float: ...

    def pim_expert_ns(self, tokens: int) -> float: ...

    def pim_attention_ns(self, work: Work) -> float: ...

    def interference(self, kind: str, tokens: int) -> tuple[float, float]: ...


class AnalyticTimer:
    """Roofline memory times (no simulation; interference factors 1 unless given)."""

    name = "analytic"

    def __init__(self, system: SystemSpec, model: ModelSpec, *,
                 interference_factors: tuple[float, float] = (1.0, 1.0)) -> None:
        self.roof = RooflineCostModel(system, model)
        self.model = model
        self.sharing = system.hbm_pim.sharing
        self.factors = interference_factors

    def stream_ns(self, nbytes: float) -> float:
        return nbytes / self.roof.gpu_bytes_per_ns

    def pim_expert_ns(self, tokens: int) -> float:
        return self.roof.pim_gemv_ns(self.model.expert_weight_bytes, tokens)

    def pim_expert_ns_on(self, tokens: int, channels: int) -> float:
        """An expert bound to ``channels`` pseudo-channels (expert-parallel PIM)."""
        return self.roof.pim_gemv_ns(self.model.expert_weight_bytes, tokens, channels=channels)

    def pim_attention_ns(self, work: Work) -> float:
        return self.roof.duration_ns(work, "pim")

    def interference(self, kind: str, tokens: int) -> tuple[float, float]:
        return self.factors
