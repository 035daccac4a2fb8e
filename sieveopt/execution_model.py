"""Execution models: how the phases of one decode layer may overlap (DESIGN.md §4).

* ``serial``: one batch, one layer, every phase in sequence (the layer DAG of
  :func:`sieveopt.dag.build_layer_dag`); the time per layer is the schedule's makespan.
* ``microbatch``: the batch is cut into M >= 2 micro-batches (request subsets that keep the
  data-parallel placement, :func:`sieveopt.window.microbatch_slices`), in flight through
  consecutive layers on shared resources. Decode repeats layer after layer, so what matters is
  the *steady state*: a periodic (modulo) schedule in which, each period, every micro-batch
  advances one layer (:mod:`sieveopt.periodic`). The time per layer is the period. A
  heuristic's modes are executed by the pipeline runtime (:func:`sieveopt.overlap.pipeline_schedule`),
  whose offline order-only descent is capped by ``runtime_order_evaluations`` (0: off), part of
  the model and of its label.
* ``ideal``: every phase of different micro-batches overlaps perfectly, so the time per layer is
  the busiest resource's load (Sieve's ``max(T_comm, T_GPU, T_PIM)``). A *bound*, not a schedule.

Costs stay honest in every model: each micro-batch's GPU expert and dense GEMMs are separate
kernels that stream their weights again (``fusion="none"``, recorded in the DAG's meta); PIM
jobs pay their per-job overhead per micro-batch; attention is per request (its KV reads scale
with the micro-batch's requests). Fusing the same expert of several micro-batches into one
kernel would couple the micro-batches into lock-step and is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sieveopt.errors import SieveoptError

OVERLAPS = ("serial", "microbatch", "ideal")
#: Consecutive sampled layers forming the cyclic window of a periodic schedule (default).
DEFAULT_WINDOW_LAYERS = 2
#: Most evaluations of the pipeline runtime's order-only descent under ``microbatch`` (default;
#: 0: the constructive runtime only). An offline search over the window's resource orders that
#: never changes a mode, identical and uncharged for every policy; its budget is fixed by this cap
#: and the window's size, never by a clock (:func:`sieveopt.overlap.runtime_order_evaluations`).
DEFAULT_RUNTIME_ORDER_EVALUATIONS = 1000


@dataclass(frozen=True)
class ExecutionModel:
    """Which overlap the time per layer assumes (see the module docstring)."""

    overlap: Literal["serial", "microbatch", "ideal"] = "serial"
    microbatches: int = 1
    #: Layers of the cyclic window a periodic schedule repeats (microbatch / ideal only).
    window_layers: int = 1
    #: GEMMs of different micro-batches fused into one kernel: only "none" is modelled.
    fusion: Literal["none"] = "none"
    #: Cap on the pipeline runtime's order-only descent (``microbatch`` only; 0: off, the
    #: constructive runtime only). Part of the label, so every result says whether it ran.
    runtime_order_evaluations: int = DEFAULT_RUNTIME_ORDER_EVALUATIONS

    @property
    def gives_schedule(self) -> bool:
        return self.overlap != "ideal"

    @property
    def label(self) -> str:
        if self.overlap == "serial":
            return "serial"
        head = f"{self.overlap}(M={self.microbatches},L={self.window_layers},fusion={self.fusion}"
        if self.overlap == "ideal":  # a bound: no runtime executes it
            return head + ")"
        return head + f",runtime_descent={self.runtime_order_evaluations or 'off'})"

    def to_dict(self) -> dict:
        return {"overlap": self.overlap, "microbatches": self.microbatches,
                "window_layers": self.window_layers, "fusion": self.fusion,
                "runtime_order_evaluations": self.runtime_order_evaluations if self.overlap == "microbatch" else None,
                "label": self.label}


def make_execution_model(overlap: str = "serial", microbatches: int | None = None, *,
                         window_layers: int | None = None, batch: int | None = None,
                         num_gpus: int | None = None, num_moe_layers: int | None = None,
                         runtime_order_evaluations: int | None = None) -> ExecutionModel:
    """Validated :class:`ExecutionModel`; errors name the CLI option and the fix.

    ``runtime_order_evaluations`` caps the pipeline runtime's order-only descent under
    ``microbatch`` (None: :data:`DEFAULT_RUNTIME_ORDER_EVALUATIONS`; 0: constructive runtime only);
    ``serial`` and ``ideal`` run no pipeline runtime, so giving it there is an error."""
    if overlap not in OVERLAPS:
        raise SieveoptError(f"--overlap {overlap!r}: expected one of {', '.join(OVERLAPS)}")
    if runtime_order_evaluations is not None and (isinstance(runtime_order_evaluations, bool) or not isinstance(
            runtime_order_evaluations, int) or runtime_order_evaluations < 0):
        raise SieveoptError(f"--runtime-order-evaluations must be an integer >= 0 (0: constructive pipeline runtime "
                            f"only, no order descent; default {DEFAULT_RUNTIME_ORDER_EVALUATIONS}), "
                            f"got {runtime_order_evaluations!r}")
    if microbatches is not None and microbatches < 1:
        raise SieveoptError(f"--microbatches must be >= 1, got {microbatches} (fix: 2 or more with --overlap "
                            "microbatch, or drop it)")
    if overlap == "serial":
        if runtime_order_evaluations is not None:
            raise SieveoptError("--runtime-order-evaluations sets the pipeline runtime of --overlap microbatch "
                                "(serial runs the layer DAG) (fix: add --overlap microbatch or drop the option)")
        if microbatches not in (None, 1):
            raise SieveoptError(f"--microbatches {microbatches} needs --overlap microbatch "
                                "(serial runs the whole batch as one) (fix: add --overlap microbatch)")
        return ExecutionModel("serial", 1, 1)
    m = 2 if microbatches is None and overlap == "microbatch" else (microbatches or 1)
    if overlap == "microbatch" and m < 2:
        raise SieveoptError("--overlap microbatch needs --microbatches >= 2 (fix: --microbatches 2 or more; one "
                            "micro-batch is --overlap serial)")
    L = DEFAULT_WINDOW_LAYERS if window_layers is None else window_layers
    if L < 1:
        raise SieveoptError(f"--window-layers must be >= 1, got {L} (fix: 1 or more consecutive layers; default "
                            f"{DEFAULT_WINDOW_LAYERS})")
    if num_moe_layers is not None and L > num_moe_layers:
        raise SieveoptError(f"--window-layers {L}: the model has only {num_moe_layers} MoE layers (fix: "
                            f"--window-layers {num_moe_layers} or fewer)")
    if batch is not None and num_gpus is not None:
        if batch % num_gpus or (batch // num_gpus) % m:
            raise SieveoptError(
                f"--microbatches {m} does not divide the {batch / num_gpus:g} requests per GPU "
                f"(--batch {batch} on {num_gpus} GPU(s)) (fix: use a --batch that is a multiple of "
                f"{num_gpus * m}, or a --microbatches that divides {batch // num_gpus or 1})")
    if overlap == "ideal" and runtime_order_evaluations is not None:
        raise SieveoptError("--runtime-order-evaluations sets the pipeline runtime of --overlap microbatch; "
                            "--overlap ideal is a bound that no runtime executes (fix: drop the option)")
    evals = DEFAULT_RUNTIME_ORDER_EVALUATIONS if runtime_order_evaluations is None else runtime_order_evaluations
    return ExecutionModel(overlap, m, L, runtime_order_evaluations=evals)  # type: ignore[arg-type]


__all__ = ["DEFAULT_RUNTIME_ORDER_EVALUATIONS", "DEFAULT_WINDOW_LAYERS", "OVERLAPS", "ExecutionModel", "make_execution_model"]
