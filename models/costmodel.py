"""The :class:`CostModel` protocol: how long a task takes in a given mode.

Cost models are registered by name in :data:`COST_MODELS` (entry-point group
``sieveopt.cost_models``), so other packages can add theirs. A cost model is built from a
:class:`~sieveopt.models.specs.SystemSpec` and a :class:`~sieveopt.models.specs.ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.models.work import TaskKind, Work, expert_work
from sieveopt.registry import Registry, lazy
from sieveopt.targets import MODE_GPU, MODE_LINK, MODE_PIM, MODE_SCHED

if TYPE_CHECKING:
    import numpy as np

__all__ = ["COST_MODELS", "MODE_GPU", "MODE_LINK", "MODE_PIM", "MODE_SCHED", "CostModel", "GpuRates",
           "TaskKind", "Work", "gpu_rates", "make_cost_model", "pim_expert_ns_on", "pim_expert_table"]


@runtime_checkable
class CostModel(Protocol):
    """Duration of a task in a mode, in nanoseconds (float; the DAG rounds up to integers).

    Planners (Sieve's estimate, the baselines) also read two optional capabilities; a cost model
    that does not define them gets the documented defaults of :func:`gpu_rates` and
    :func:`pim_expert_table`:

    * ``gpu_rates() -> GpuRates``: the sustained GPU rates behind its GPU-mode durations;
    * ``export(max_tokens) -> array``: PIM ns of one routed expert by token count 0..max_tokens;
    * ``pim_gemv_ns(weight_bytes, tokens, channels=c) -> ns``: one expert's PIM time when it is
      bound to ``c`` pseudo-channels (expert-parallel PIM, :func:`pim_expert_ns_on`).
    """

    name: str

    def duration_ns(self, work: Work, mode: str) -> float: ...


@dataclass(frozen=True, slots=True)
class GpuRates:
    """Sustained GPU rates a planner's ``T_GPU`` estimate uses."""

    bytes_per_ns: float
    flops_per_ns: float
    kernel_overhead_ns: float


def gpu_rates(cost: CostModel, system: SystemSpec, model: ModelSpec) -> GpuRates:
    """The cost model's :class:`GpuRates` (its ``gpu_rates()``, or its ``roofline`` delegate's).

    Default, for a cost model that declares neither: the ``roofline`` rates of ``system`` (peak
    x efficiency, the GPU's kernel overhead), i.e. the planner estimates GPU time analytically."""
    for src in (cost, getattr(cost, "roofline", None)):
        fn = getattr(type(src), "gpu_rates", None) if src is not None else None
        if callable(fn):
            return src.gpu_rates()
    from sieveopt.models.roofline import RooflineCostModel

    return RooflineCostModel(system, model).gpu_rates()


def pim_expert_table(cost: CostModel, model: ModelSpec, max_tokens: int) -> np.ndarray:
    """PIM ns of one routed expert by token count ``0..max_tokens`` (float64): the cost model's
    own table (``export``) when it has one; default: its PIM duration of each expert work item."""
    import numpy as np

    export = getattr(cost, "export", None)
    if callable(export):
        return np.asarray(export(max_tokens), dtype=np.float64)
    out = np.zeros(max_tokens + 1)
    for n in range(1, max_tokens + 1):
        out[n] = cost.duration_ns(expert_work(model, n, launches=0), MODE_PIM)
    return out


def pim_expert_ns_on(cost: CostModel, system: SystemSpec, model: ModelSpec, weight_bytes: float, tokens: int,
                     channels: int) -> float:
    """PIM ns of one expert's ``tokens`` GEMVs over ``channels`` of a GPU's pseudo-channels
    (expert-parallel PIM channel groups, :mod:`sieveopt.pim_groups`): the cost model's
    ``pim_gemv_ns(..., channels=)`` (or its ``roofline`` delegate's). Default, as for
    :func:`gpu_rates`: the roofline of ``system`` (the write of the token's activations to its
    channels does not shrink with fewer channels, so the time is not the all-channel table
    scaled)."""
    for src in (cost, getattr(cost, "roofline", None)):
        fn = getattr(src, "pim_gemv_ns", None) if src is not None else None
        if callable(fn):
            return float(fn(weight_bytes, tokens, channels=channels))
    from sieveopt.models.roofline import RooflineCostModel

    return RooflineCostModel(system, model).pim_gemv_ns(weight_bytes, tokens, channels=channels)


COST_MODELS = Registry("sieveopt.cost_models", "cost model")


def make_cost_model(name: str, system: SystemSpec, model: ModelSpec, **params: object) -> CostModel:
    """Instantiate a registered cost model by name."""
    return COST_MODELS.get(name)(system, model, **params)


def _register_builtins() -> None:
    # Lazy factories: the implementations import this module, so importing them here would make
    # ``import sieveopt.models.roofline`` circular.
    COST_MODELS.register("roofline", lazy("sieveopt.models.roofline", "RooflineCostModel"),
                         doc="Analytic max(compute, memory) times from the system spec; no calibration")
    COST_MODELS.register("table", lazy("sieveopt.models.table", "TableCostModel"),
                         doc="Sieve's runtime PIM cost table (EMA per token count) over roofline")
    COST_MODELS.register("calibrated", lazy("sieveopt.validation.calibrated", "CalibratedCostModel"),
                         doc="Durations measured by the cycle-level simulators, cached per shape")


_register_builtins()
