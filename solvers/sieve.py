"""The ``sieve`` policy: the paper's greedy per GPU, list-scheduled over the layer DAG.

Each GPU plans its own activated experts from the gathered counts (papers.md §1.5) with the
compiled planner (:mod:`sieveopt.solvers._sieve_numba`; ``impl="ref"`` runs the pure-Python
reference instead). Decode attention runs on PIM. The chosen modes go through the shared list
scheduler (earliest-ready first, ties: more tokens first), so makespans compare across policies.

``SolveResult.decision_ns`` is the *maximum* over GPUs of the measured planning time of one
GPU's planner call: in the paper's distributed runtime every GPU plans in parallel, so the
layer waits for the slowest plan. ``meta["decision_ns_sum"]`` holds the sum (one process
planning every GPU in turn).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sieveopt.dag import EXPERT, TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.listsched import list_schedule
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, CostModel
from sieveopt.schedule import modes_from_experts
from sieveopt.solvers.base import HEURISTIC, SolveResult
from sieveopt.solvers.plan_inputs import GpuPlanInputs, max_tokens, pim_table, plan_inputs
from sieveopt.solvers.sieve_ref import estimate_ns, sieve_plan_ref


def schedule_priority(dag: TaskDAG) -> np.ndarray:
    """List-scheduler priority: among equally ready tasks, experts with more tokens first."""
    return np.array([-float(t.tokens) if t.kind == EXPERT else 0.0 for t in dag.tasks])


def plan_gpu(inp: GpuPlanInputs, table: np.ndarray, *, impl: str = "numba",
             workspace: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """One GPU's plan: (bool [E_g] "runs on the GPU" flags, planning time in ns)."""
    on_gpu = np.zeros(inp.num_experts, dtype=bool)
    if impl in ("ref", "literal"):
        t0 = time.perf_counter_ns()
        k, order = sieve_plan_ref(inp.tokens.tolist(), table.tolist(), inp.params.tolist(),
                                  plateau="cross" if impl == "literal" else "stop")
        dt = time.perf_counter_ns() - t0
        on_gpu[order[:k]] = True
        return on_gpu, dt
    if impl != "numba":
        raise ValueError(f"sieve: impl must be 'numba' or 'ref', got {impl!r}")
    from sieveopt.solvers._sieve_numba import make_workspace, sieve_plan

    ws, order = workspace or make_workspace(inp.num_experts, len(table) - 1)
    t0 = time.perf_counter_ns()
    k = sieve_plan(inp.tokens, table, inp.params, ws, order)
    dt = time.perf_counter_ns() - t0
    if k < 0:
        raise ValueError("sieve: a token count is outside the PIM cost table")
    on_gpu[order[:k]] = True
    return on_gpu, dt


def finish(dag: TaskDAG, policy: str, expert_modes: dict[int, str], *, attention: str = MODE_PIM,
           wall_t0: float, decision_ns: int | None = None, meta: dict[str, Any] | None = None) -> SolveResult:
    """Modes -> list schedule -> SolveResult (shared by every greedy policy)."""
    modes = modes_from_experts(dag, expert_modes, default_expert=MODE_GPU, attention=attention)
    sched = list_schedule(dag, modes, schedule_priority(dag), policy=policy, meta=dict(meta or {}))
    return SolveResult(policy, sched, HEURISTIC, objective_ns=sched.makespan_ns,
                       wall_s=time.perf_counter() - wall_t0, decision_ns=decision_ns, meta=dict(meta or {}))


ESTIMATES = ("implemented", "literal")


def literal_inputs(inputs: list[GpuPlanInputs], cost: CostModel, instance: LayerInstance,
                   n_max: int) -> tuple[list[GpuPlanInputs], np.ndarray]:
    """The paper's estimate read literally (papers.md §1.5): ``T_GPU = max(T_offchip, T_comp)``
    at the GPU's *peak* HBM bandwidth and FLOPS with no kernel overheads (no launch, no
    per-kernel cost), and a PIM table that is "ops / PIM peak" for every count not observed
    (the roofline fallback, without job/token overheads); T_comm and attention as implemented.
    A cost model with its own table (``export``: observed entries) keeps its observed entries."""
    from dataclasses import replace

    from sieveopt.solvers.plan_inputs import (
        P_BYTES_PER_NS,
        P_EXPERT_FIXED,
        P_FIXED0,
        P_FLOPS_PER_NS,
        P_LAUNCH_NS,
    )

    sysm, model = instance.system, instance.model
    out = []
    for inp in inputs:
        p = inp.params.copy()
        p[P_FIXED0] = p[P_LAUNCH_NS] = p[P_EXPERT_FIXED] = 0.0
        p[P_BYTES_PER_NS] = sysm.gpu_hbm_bw_GBps
        p[P_FLOPS_PER_NS] = sysm.gpu.peak_TFLOPS * 1e3
        out.append(replace(inp, params=p))
    pim_peak = sysm.pim_bw_GBps * sysm.hbm_pim.pim.ops_per_byte         # FLOP/ns
    table = np.array([model.expert_flops(n) / pim_peak for n in range(n_max + 1)])
    observed = getattr(cost, "observations", None)
    if callable(observed):
        for n in range(1, n_max + 1):
            if observed(n):
                table[n] = cost.pim_expert_ns(n)
    return out, table


def solve_sieve(dag: TaskDAG, instance: LayerInstance, cost: CostModel, *, impl: str = "numba",
                other_gpu_work: bool = True, estimate: str = "implemented", **_: Any) -> SolveResult:
    """Sieve (paper §5) on every GPU; ``other_gpu_work=False`` drops the non-expert GPU ops from
    T_GPU (an ablation; the paper counts them). ``estimate="literal"`` plans on the paper's
    estimate read literally (:func:`literal_inputs`; the walk crosses plateaus, stopping only
    when the next move would increase T_total) with the Python reference planner."""
    if estimate not in ESTIMATES:
        raise ValueError(f"sieve: estimate must be one of {', '.join(ESTIMATES)}, got {estimate!r}")
    t_wall = time.perf_counter()
    inputs = plan_inputs(dag, instance, cost, other_gpu_work=other_gpu_work)
    table = pim_table(cost, instance, max(1, max_tokens(inputs)))
    if estimate == "literal":
        inputs, table = literal_inputs(inputs, cost, instance, len(table) - 1)
        impl = "literal"
    if impl == "numba":
        from sieveopt.solvers._sieve_numba import make_workspace, warm_up

        warm_up()
        workspace = make_workspace(max((x.num_experts for x in inputs), default=1), len(table) - 1)
    else:
        workspace = None
    expert_modes: dict[int, str] = {}
    per_gpu = []
    times = []
    for inp in inputs:
        on_gpu, dt = plan_gpu(inp, table, impl=impl, workspace=workspace)
        times.append(dt)
        for e, f in zip(inp.experts.tolist(), on_gpu.tolist(), strict=True):
            expert_modes[e] = MODE_GPU if f else MODE_PIM
        est = estimate_ns(inp.tokens.tolist(), table.tolist(), inp.params.tolist(), on_gpu.tolist())
        per_gpu.append({"gpu": inp.gpu, "experts": inp.num_experts, "gpu_experts": int(on_gpu.sum()),
                        "pim_experts": int(inp.num_experts - on_gpu.sum()), "decision_ns": dt, **est})
    meta = {"impl": impl, "estimate": estimate, "per_gpu": per_gpu, "decision_ns_sum": int(sum(times)),
            "decision_ns_per_gpu": times}
    return finish(dag, "sieve", expert_modes, wall_t0=t_wall, decision_ns=int(max(times, default=0)), meta=meta)
