"""Baseline expert-placement policies (papers.md §1.7, §2.2, §3), each a few lines over the
shared machinery: per-GPU inputs (:mod:`~sieveopt.solvers.plan_inputs`), the sort-and-walk
helpers (:mod:`~sieveopt.solvers.sieve_ref`) and the shared list scheduler
(:func:`~sieveopt.solvers.sieve.finish`).

* ``gpu_only``: no PIM; attention and every expert on the GPU.
* ``noexp`` (NeuPIMs / PAISE): attention on PIM, every expert on the GPU.
* ``allexp`` (PAPI / Stratum): attention and every expert on PIM.
* ``pimoe`` (PIMoE as Sieve describes it): experts placed expert-parallel over the GPU's
  pseudo-channels, round-robin in expert-id order over *all* experts the GPU holds (a static
  placement); a channel's PIM time is the sum of its experts' roofline PIM times at
  single-channel bandwidth (job overhead + per token: GEMV over ``W`` at ``1/C`` of the PIM
  bandwidth and compute, + token overhead and I/O). Start all on PIM; while
  ``T_GPU <= T_PIM`` move the most popular remaining expert of the busiest channel to the GPU
  (the move that makes ``T_GPU`` exceed ``T_PIM`` is kept: "until GPU time exceeds PIM
  time"). ``T_GPU`` is the grouped GEMM of the GPU-side experts alone (launch + roofline);
  attention on PIM and communication are ignored, as in PIMoE. Its static token threshold is
  not modelled. The schedule then runs on the DAG's hardware (experts sharded over all
  channels), like every other policy.
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
def channel_table(instance: LayerInstance, cost: CostModel, channels: int, max_tokens: int) -> list[float]:
    """Roofline PIM ns of one expert on ONE of ``channels`` pseudo-channels, by token count."""
    from sieveopt.models.roofline import RooflineCostModel

    rf = getattr(cost, "roofline", cost)
    if not isinstance(rf, RooflineCostModel):
        rf = RooflineCostModel(instance.system, instance.model)
    w = instance.model.expert_weight_bytes
    share = rf.num_pch / channels  # the pseudo-channels one of ``channels`` equal PIM units spans
    return [0.0] + [rf.pim_gemv_ns(w, n, channels=share) for n in range(1, max_tokens + 1)]


def solve_pimoe(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    channels = instance.system.hbm_pim.pseudo_channels_per_gpu
    chan_table = channel_table(instance, cost, channels, max(1, instance.batch))
    # Local rank of expert e among the experts its GPU holds (any placement).
    rank: dict[int, int] = {}
    seen = [0] * instance.num_gpus
    for e, g in enumerate(instance.expert_gpu.tolist()):
        rank[e] = seen[g]
        seen[g] += 1

    def plan(inp: GpuPlanInputs, table: list[float]) -> set[int]:
        return pimoe_plan_ranked(inp, chan_table, channels, [rank[int(e)] for e in inp.experts.tolist()])

    return _per_gpu(dag, instance, cost, "pimoe", plan)


def pimoe_plan_ranked(inp: GpuPlanInputs, chan_table: list[float], channels: int,
                      local_rank: list[int]) -> set[int]:
    """PIMoE for one GPU: ``chan_table[n]`` = one expert's time on one channel with ``n`` tokens;
    ``local_rank`` = each activated expert's rank among the experts the GPU holds."""
    params = inp.params.tolist()
    tokens = inp.tokens.tolist()
    chan_of = [r % channels for r in local_rank]
    load = [0.0] * channels
    members: list[list[int]] = [[] for _ in range(channels)]
    for i in order_by_tokens(tokens):             # hottest first inside each channel
        load[chan_of[i]] += chan_table[tokens[i]]
        members[chan_of[i]].append(i)
    busy = [(-load[c], c) for c in range(channels) if members[c]]
    heapq.heapify(busy)
    head = [0] * channels
    on_gpu: set[int] = set()
    gpu_tokens = 0
    # T_PIM = busiest channel (channels whose experts all moved have load 0 and leave the heap).
    while busy and gpu_time_ns(params, len(on_gpu), gpu_tokens) <= -busy[0][0]:
        _, c = heapq.heappop(busy)
        i = members[c][head[c]]
        head[c] += 1
        on_gpu.add(i)
        gpu_tokens += tokens[i]
        load[c] -= chan_table[tokens[i]]
        if head[c] < len(members[c]):
            heapq.heappush(busy, (-load[c], c))
    return on_gpu
