"""The :class:`CostModel` protocol: how long a task takes in a given mode.

Cost models are registered by name in :data:`COST_MODELS` (entry-point group
``sieveopt.cost_models``), so other packages can add theirs. A cost model is built from a
:class:`~sieveopt.models.specs.SystemSpec` and a :class:`~sieveopt.models.specs.ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.registry import Registry, lazy

#: Execution modes a task can run in.
MODE_GPU = "gpu"
MODE_PIM = "pim"
MODE_LINK = "link"
MODE_SCHED = "sched"


@dataclass(frozen=True, slots=True)
class Work:
    """What a task does, independent of where it runs (the cost model turns it into time).

    ``kind`` is the task kind (see :mod:`sieveopt.dag`); bytes are per task.
    """

    kind: str
    tokens: int = 0
    flops: float = 0.0
    weight_bytes: float = 0.0     # parameters read once (GPU) or per token (PIM GEMV)
    act_bytes: float = 0.0        # activations moved between GPU and memory
    kv_bytes: float = 0.0         # KV cache / recurrent state read by attention
    msg_bytes: float = 0.0        # bytes on an interconnect port
    fixed_ns: float = 0.0         # a duration given directly (scheduler latency)
    launches: int = 1             # GPU kernel launches paid by this task (0 inside a grouped GEMM)


@runtime_checkable
class CostModel(Protocol):
    """Duration of a task in a mode, in nanoseconds (float; the DAG rounds up to integers)."""

    name: str

    def duration_ns(self, work: Work, mode: str) -> float: ...


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
