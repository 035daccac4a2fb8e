"""Replay a steady-state micro-batch pipeline on the DRAM/PIM and NVLink simulators.

The periodic schedule is unrolled into K iterations (:func:`sieveopt.periodic.unroll`); its
decisions (modes and each resource's task order across iterations) are replayed by
:func:`sieveopt.validation.replay.replay`, which throws the predicted times away. The
steady-state period is measured between iteration ends, dropping the first and last
``trim`` iterations (fill and drain): ``(end[K-1-trim] - end[trim]) / (K-1-2 trim) / L``.
The per-kind cost-model error report is the replay's, over every task of the K iterations.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the CLI reads the defaults below at start-up: keep this module's import light
    from sieveopt.periodic import PeriodicProblem, PeriodicSchedule

#: Iterations of the cyclic window replayed by default (``replay --overlap``, ``run --overlap``).
DEFAULT_REPLAY_ITERATIONS = 6
#: Iterations dropped at each end (fill and drain) by default.
DEFAULT_TRIM = 1


def _iteration_ends(end_ns: np.ndarray, n: int, k: int) -> list[int]:
    return [int(end_ns[i * n:(i + 1) * n].max()) for i in range(k)]


def replay_periodic(problem: PeriodicProblem, ps: PeriodicSchedule, *, iterations: int = DEFAULT_REPLAY_ITERATIONS,
                    trim: int = DEFAULT_TRIM,
                    memory: str = "dram", interference: bool = True, scheduler_latency_ns: int | None = None,
                    dram_preset: str | None = None) -> dict[str, Any]:
    """Predicted vs replayed steady-state period of ``ps`` (see the module docstring)."""
    from sieveopt.periodic import unroll
    from sieveopt.validation.replay import replay

    if iterations < 2 * trim + 2:
        raise ValueError(f"replay_periodic: iterations must be >= {2 * trim + 2} to measure a steady state")
    t0 = time.perf_counter()
    big, sched = unroll(problem, ps, iterations)
    system = problem.window[0][0].system
    rr = replay(sched, big, system, instance=problem.window[0][0], memory=memory, interference=interference,
                scheduler_latency_ns=scheduler_latency_ns, dram_preset=dram_preset)
    n = len(problem.dag.tasks)
    L = problem.window_layers
    pe = _iteration_ends(sched.end_ns, n, iterations)
    re = _iteration_ends(rr.schedule.end_ns, n, iterations)
    a, b = trim, iterations - 1 - trim
    pred = (pe[b] - pe[a]) / (b - a) / L
    rep = (re[b] - re[a]) / (b - a) / L
    return {"policy": ps.policy, "execution_model": problem.execution.label, "iterations": iterations,
            "trim": trim, "predicted_period_ns": pred, "replayed_period_ns": rep,
            "period_error_pct": 100.0 * (pred - rep) / max(1.0, rep),
            "replayed_iteration_ends_ns": re, "kind_error": {k: v.to_dict() for k, v in rr.kind_error.items()},
            "scheduler_latency_ns": rr.scheduler_latency_ns, "converged": rr.converged, "memory": rr.meta.get("memory"), "tasks": len(big.tasks),
            "wall_s": time.perf_counter() - t0}


__all__ = ["DEFAULT_REPLAY_ITERATIONS", "DEFAULT_TRIM", "replay_periodic"]
