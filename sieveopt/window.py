"""Micro-batches interleaved across consecutive layers: sample, solve and schedule a window.

A decode batch of B requests is cut into M micro-batches (per GPU, the m-th of M equal slices
of its B/G requests, so data-parallel placement is kept); L consecutive MoE layers of one step
form the window. :func:`sieveopt.dag.build_window_dag` turns it into one DAG on shared
resources, so micro-batch 1's attention can run on PIM while micro-batch 0's experts do.

Per-layer policies plan each (layer, micro-batch) slot on its own layer DAG, exactly as they
would in serving; the chosen modes are mapped onto the window by task name and list-scheduled
together. CP-SAT solves the whole window (hinted with that schedule).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sieveopt.check import check
from sieveopt.dag import DagOptions, TaskDAG, build_layer_dag, build_window_dag
from sieveopt.errors import SieveoptError
from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
from sieveopt.listsched import list_schedule
from sieveopt.models.costmodel import CostModel
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.solvers import SolveResult, policy_info, solve, window_hint_policies
from sieveopt.solvers.base import HEURISTIC

#: Fast policies whose best window schedule hints CP-SAT (it is never worse than its hint).
#: Per-slot policies whose window schedules hint a joint window solver (declared in the registry).
HINT_POLICIES = window_hint_policies()


def microbatch_slices(batch: int, num_gpus: int, microbatches: int) -> list[np.ndarray]:
    """Request indices of each micro-batch (ordered by GPU, so placement is preserved)."""
    if microbatches < 1 or batch % (num_gpus * microbatches):
        raise SieveoptError(f"batch {batch} does not split into {microbatches} micro-batch(es) of equal "
                            f"size on {num_gpus} GPU(s): use a batch that is a multiple of {num_gpus * max(1, microbatches)}")
    per_gpu, per_mb = batch // num_gpus, batch // (num_gpus * microbatches)
    return [np.concatenate([np.arange(g * per_gpu + m * per_mb, g * per_gpu + (m + 1) * per_mb)
                            for g in range(num_gpus)]) for m in range(microbatches)]


def sample_window(model: ModelSpec, system: SystemSpec, batch: int, num_layers: int, microbatches: int,
                  seed: int, *, first_layer: int | None = None,
                  context_len_tokens: int = DEFAULT_CONTEXT_LEN_TOKENS) -> list[list[LayerInstance]]:
    """``window[l][m]``: micro-batch m of the l-th of ``num_layers`` consecutive MoE layers."""
    from sieveopt.workload import generate_for_model

    if not 1 <= num_layers <= model.num_moe_layers:
        raise SieveoptError(f"window layers must be in [1, {model.num_moe_layers}], got {num_layers}")
    rng = np.random.default_rng(seed)
    first = int(rng.integers(0, model.num_moe_layers - num_layers + 1)) if first_layer is None else first_layer
    layer_ids = list(range(first, first + num_layers))
    trace = generate_for_model(model, batch, 1, seed, layers=layer_ids)
    slices = microbatch_slices(batch, system.num_gpus, microbatches)
    return [[LayerInstance.from_expert_ids(model, system, trace.expert_ids[0, li][sel], moe_layer=lid,
                                           context_lens=np.full(len(sel), context_len_tokens),
                                           meta={"seed": seed, "microbatch": m})
             for m, sel in enumerate(slices)]
            for li, lid in enumerate(layer_ids)]


def solve_window(window: list[list[LayerInstance]], policy: str, cost: CostModel,
                 options: DagOptions | None = None, **solver_params: Any) -> tuple[TaskDAG, SolveResult]:
    """Schedule a window with ``policy`` (per-slot planning + joint list scheduling; CP-SAT joint)."""
    opts = options or DagOptions.for_system(window[0][0].system)
    wdag = build_window_dag(window, cost, opts)
    t0 = time.perf_counter()
    if policy_info(policy).joint_window:
        hints = [solve_window(window, p, cost, opts)[1] for p in HINT_POLICIES]
        hint = min(hints, key=lambda r: r.makespan_ns)
        params = {"hint": hint, **solver_params}
        res = solve(policy, wdag, window[0][0], cost, **params)
        return wdag, res
    modes = [""] * len(wdag.tasks)
    decision = 0
    for li, row in enumerate(window):
        for m, inst in enumerate(row):
            slot_opts = DagOptions(**{**opts.__dict__, "layer": li, "microbatch": m})
            ldag = build_layer_dag(inst, cost, slot_opts)
            res = solve(policy, ldag, inst, cost, **solver_params)
            if res.schedule is None:
                raise SieveoptError(f"{policy} found no schedule for layer {li} micro-batch {m}")
            decision = max(decision, res.decision_ns or 0)
            for t in ldag.tasks:
                modes[wdag.by_name[t.name]] = res.schedule.modes[t.tid]
    sched = list_schedule(wdag, modes, policy=policy, meta={"window": True})
    return wdag, SolveResult(policy, sched, HEURISTIC, sched.makespan_ns, None, time.perf_counter() - t0,
                             decision_ns=decision or None)


def check_window(wdag: TaskDAG, result: SolveResult) -> bool:
    return result.schedule is not None and check(result.schedule, wdag).ok
