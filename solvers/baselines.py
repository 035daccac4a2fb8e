"""Baseline expert-placement policies (papers.md §1.7, §2.2, §3), each a few lines over the
shared machinery: per-GPU inputs (:mod:`~sieveopt.solvers.plan_inputs`), the sort-and-walk
helpers (:mod:`~sieveopt.solvers.sieve_ref`) and the shared list scheduler
(:func:`~sieveopt.solvers.sieve.finish`).

* ``gpu_only``: no PIM; attention and every expert on the GPU.
* ``noexp`` (NeuPIMs / PAISE): attention on PIM, every expert on the GPU.
* ``allexp`` (PAPI / Stratum): attention and every expert on PIM.
* ``pimoe`` (PIMoE as Sieve describes it, papers.md §1.7): executes expert-parallel over PIM
  channel groups (:mod:`sieveopt.pim_groups`; its registry entry declares
  ``dag_options={"pim_parallelism": "ep"}``, so ``run_layer`` builds that DAG for it), and decides
  on the same DAG's durations: a static token threshold (default: the smallest count at which an
  isolated expert is estimated faster on the GPU than on its group), then the busiest-group,
  hottest-first loop while ``T_GPU <= T_PIM`` (expert-only PIM time of the busiest group;
  attention and communication ignored). See :func:`pimoe_plan`.
* ``duplex`` (Duplex+PE): per-expert time look-up (the DAG's GPU and PIM durations of each
  expert); start all on the GPU and move the fewest-token experts to PIM while
  ``max(sum GPU times (+ launch if any), sum PIM times)`` strictly decreases. Attention on PIM
  (Duplex runs decode attention on Logic-PIM) but not in the estimate.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

from sieveopt.dag import TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, CostModel
from sieveopt.solvers.base import SolveResult
from sieveopt.solvers.plan_inputs import (
    P_LAUNCH_NS,
    GpuPlanInputs,
    max_tokens,
    pim_table,
    plan_inputs,
)
from sieveopt.solvers.sieve import finish
from sieveopt.solvers.sieve_ref import gpu_time_ns, order_by_tokens, prefix_walk


def _all(dag: TaskDAG, policy: str, expert_mode: str, attention: str) -> SolveResult:
    t0 = time.perf_counter()
    modes = {t.expert: expert_mode for t in dag.tasks if t.expert >= 0}
    return finish(dag, policy, modes, attention=attention, wall_t0=t0, decision_ns=0)


def solve_gpu_only(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    return _all(dag, "gpu_only", MODE_GPU, MODE_GPU)


def solve_noexp(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    return _all(dag, "noexp", MODE_GPU, MODE_PIM)


def solve_allexp(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    return _all(dag, "allexp", MODE_PIM, MODE_PIM)


def _per_gpu(dag: TaskDAG, instance: LayerInstance, cost: CostModel, policy: str, plan: Any) -> SolveResult:
    """Run ``plan(inputs, table) -> set of local indices on the GPU`` for each GPU and schedule."""
    t_wall = time.perf_counter()
    inputs = plan_inputs(dag, instance, cost, other_gpu_work=False)
    table = pim_table(cost, instance, max(1, max_tokens(inputs))).tolist()
    modes: dict[int, str] = {}
    times, per_gpu = [], []
    for inp in inputs:
        t0 = time.perf_counter_ns()
        on_gpu = plan(inp, table)
        times.append(time.perf_counter_ns() - t0)
        for i, e in enumerate(inp.experts.tolist()):
            modes[e] = MODE_GPU if i in on_gpu else MODE_PIM
        per_gpu.append({"gpu": inp.gpu, "experts": inp.num_experts, "gpu_experts": len(on_gpu),
                        "pim_experts": inp.num_experts - len(on_gpu)})
    return finish(dag, policy, modes, wall_t0=t_wall, decision_ns=int(max(times, default=0)),
                  meta={"per_gpu": per_gpu, "decision_ns_per_gpu": times, "impl": "python"})


# -- Duplex ---------------------------------------------------------------------------------
def duplex_plan(inp: GpuPlanInputs) -> set[int]:
    """Local indices Duplex keeps on the GPU."""
    order = order_by_tokens(inp.tokens.tolist(), descending=False)   # fewest tokens first
    gpu_ns = [int(inp.gpu_ns[i]) for i in order]
    pim_ns = [int(inp.pim_ns[i]) for i in order]
    launch = float(inp.params[P_LAUNCH_NS])
    gpu_left = [float(sum(gpu_ns))]
    pim_moved = [0.0]
    for g, p in zip(gpu_ns, pim_ns, strict=True):
        gpu_left.append(gpu_left[-1] - g)
        pim_moved.append(pim_moved[-1] + p)
    n = len(order)

    def t_max(k: int) -> float:   # k fewest-token experts moved to PIM
        return max(gpu_left[k] + (launch if k < n else 0.0), pim_moved[k])

    k = prefix_walk(t_max, n)
    return set(order[k:])


def solve_duplex(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    return _per_gpu(dag, instance, cost, "duplex", lambda inp, table: duplex_plan(inp))


# -- PIMoE ----------------------------------------------------------------------------------
def pimoe_threshold(inp: GpuPlanInputs, pim_ns_of: Any, max_tokens: int) -> int:
    """PIMoE's static token threshold: the smallest count at which an *isolated* expert is
    estimated faster on the GPU (its own grouped GEMM: launch + roofline) than on PIM at the
    parallelism it executes with (``pim_ns_of(n)``); ``max_tokens + 1`` when none is.

    Sieve on PIMoE: it "uses a static threshold to assign popular experts with N >= threshold
    to the NPU when the estimated NPU execution time is lower than the estimated PIM execution
    time" (papers.md §1.7). The paper gives no value (papers.md §7 q. 7), hence this default."""
    params = inp.params.tolist()
    for n in range(1, max_tokens + 1):
        if gpu_time_ns(params, 1, n) < pim_ns_of(n):
            return n
    return max_tokens + 1


def _groups_of(dag: TaskDAG, inp: GpuPlanInputs) -> list[int]:
    """Channel group of each activated expert (EP DAG), or a single group 0 (TP DAG)."""
    from sieveopt.pim_groups import task_group

    out = []
    for tid in inp.tids.tolist():
        tg = task_group(dag, int(tid))
        out.append(0 if tg is None else tg[0])
    return out


def solve_pimoe(dag: TaskDAG, instance: LayerInstance, cost: CostModel, threshold: int | None = None,
                **_: Any) -> SolveResult:
    """PIMoE on the DAG it is given: on an expert-parallel DAG (``pim_parallelism="ep"``, what
    ``run_layer`` builds for it) each channel group is a PIM unit; on a TP DAG all channels form
    one group. ``threshold`` overrides the static token threshold (:func:`pimoe_threshold`)."""
    from sieveopt.pim_groups import ep_pim_expert_ns, is_ep

    t_wall = time.perf_counter()
    inputs = plan_inputs(dag, instance, cost, other_gpu_work=False)
    w = instance.model.expert_weight_bytes
    if is_ep(dag):
        ch = dag.meta["pim_group_channels"]
        nominal = min(ch)   # "fixed per model and system": the smallest group's parallelism

        def pim_ns_of(n: int) -> float:
            return ep_pim_expert_ns(cost, instance.system, instance.model, w, n, nominal)
    else:
        table = pim_table(cost, instance, max(1, instance.batch))

        def pim_ns_of(n: int) -> float:
            return float(table[n])
    modes: dict[int, str] = {}
    times, per_gpu = [], []
    tau = threshold
    for inp in inputs:
        if tau is None:
            tau = pimoe_threshold(inp, pim_ns_of, max(1, instance.batch))
        groups = _groups_of(dag, inp)
        t0 = time.perf_counter_ns()
        on_gpu, loads = pimoe_plan(inp, groups, tau)
        times.append(time.perf_counter_ns() - t0)
        for i, e in enumerate(inp.experts.tolist()):
            modes[e] = MODE_GPU if i in on_gpu else MODE_PIM
        per_gpu.append({"gpu": inp.gpu, "experts": inp.num_experts, "gpu_experts": len(on_gpu),
                        "pim_experts": inp.num_experts - len(on_gpu), "group_load_ns": loads})
    return finish(dag, "pimoe", modes, wall_t0=t_wall, decision_ns=int(max(times, default=0)),
                  meta={"per_gpu": per_gpu, "decision_ns_per_gpu": times, "impl": "python",
                        "threshold_tokens": tau, "pim_parallelism": "ep" if is_ep(dag) else "tp"})


def pimoe_plan(inp: GpuPlanInputs, groups: list[int], threshold: int) -> tuple[set[int], dict[int, int]]:
    """PIMoE for one GPU. ``groups[i]`` is the channel group of activated expert ``i``; its PIM
    time is the DAG's (``inp.pim_ns``, at its group's parallelism). Returns the local indices
    moved to the GPU and each group's final PIM load (ns).

    Start with every expert on PIM; while ``T_GPU <= T_PIM`` move the most popular remaining
    expert of the busiest group to the GPU, if it has ``>= threshold`` tokens (else stop: the
    busiest group's load can no longer drop). ``T_PIM`` = the busiest group's expert time,
    ``T_GPU`` = the grouped GEMM of the GPU-side experts alone: PIMoE "balances expert placement
    by evaluating isolated expert execution times but ignores attention computation on the PIM"
    and "repeatedly moves the most popular expert from the busiest PIM channel to the GPU until
    GPU time > PIM time" (papers.md §1.7); communication is not in it either (it "assumes a
    global interconnect"). The move that makes ``T_GPU`` exceed ``T_PIM`` is kept."""
    params = inp.params.tolist()
    tokens = inp.tokens.tolist()
    pim = inp.pim_ns.tolist()
    load: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for i in order_by_tokens(tokens):             # hottest first inside each group
        load[groups[i]] = load.get(groups[i], 0) + int(pim[i])
        members.setdefault(groups[i], []).append(i)
    busy = [(-load[c], c) for c in members]
    heapq.heapify(busy)
    head = dict.fromkeys(members, 0)
    on_gpu: set[int] = set()
    gpu_tokens = 0
    while busy and gpu_time_ns(params, len(on_gpu), gpu_tokens) <= -busy[0][0]:
        c = busy[0][1]
        i = members[c][head[c]]
        if tokens[i] < threshold:
            break
        heapq.heappop(busy)
        head[c] += 1
        on_gpu.add(i)
        gpu_tokens += tokens[i]
        load[c] -= int(pim[i])
        if head[c] < len(members[c]):
            heapq.heappush(busy, (-load[c], c))
    return on_gpu, load
