"""``sieve-pipe``: Sieve's sweep with the objective of the execution model it runs under.

Sieve keeps the k hottest experts on the GPU and picks k minimising max(T_comm, T_GPU, T_PIM):
the time per layer when phases of different micro-batches overlap perfectly (papers.md §1.5).
With M micro-batches pipelined in steady state, each period holds M slots' work on every
resource *and* one micro-batch's chain through the layer must fit in it (each micro-batch
advances one layer per period, :mod:`sieveopt.periodic`). So each GPU, seeing only its own
slot's routing (the run-time information), picks the k of the same hottest-first sweep that
minimises

    max(M * T_GPU(k), M * T_HBM(k), M * T_PIM(k), chain(k)),
    chain(k) = qkv + attention + oproj + router + T_comm + max(GPU experts(k), PIM experts(k)) + reduce

with every duration taken from the layer DAG (the cost model the schedule is timed with);
``T_HBM`` adds PIM jobs to the GPU's HBM load when HBM sharing is ``exclusive``. Under the
serial model (M = 1) the chain term dominates and it behaves like a makespan estimate.
``decision_ns`` is the slowest GPU's sweep (every GPU plans in parallel), as for ``sieve``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sieveopt.dag import ATTN, LAUNCH, OPROJ, QKV, REDUCE, ROUTER, SHARED, TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, CostModel
from sieveopt.solvers.base import SolveResult
from sieveopt.solvers.plan_inputs import P_T_COMM, plan_inputs
from sieveopt.solvers.sieve import finish


def _gpu_terms(dag: TaskDAG, g: int) -> dict[str, int]:
    other = pre = launch = attn_pim = reduce_ = 0
    for t in dag.tasks:
        if t.gpu != g:
            continue
        if t.kind in (QKV, OPROJ, ROUTER, SHARED, REDUCE):
            d = t.modes[MODE_GPU].duration_ns
            other += d
            if t.kind in (QKV, OPROJ, ROUTER):
                pre += d
            if t.kind == REDUCE:
                reduce_ = d
        elif t.kind == LAUNCH:
            launch = t.modes[MODE_GPU].duration_ns
        elif t.kind == ATTN:
            if MODE_PIM in t.modes:
                attn_pim = t.modes[MODE_PIM].duration_ns
            else:
                other += t.modes[MODE_GPU].duration_ns
                pre += t.modes[MODE_GPU].duration_ns
    return {"other": other, "pre": pre + attn_pim, "launch": launch, "attn_pim": attn_pim, "reduce": reduce_}


def plan_split(tokens: np.ndarray, gpu_ns: np.ndarray, pim_ns: np.ndarray, terms: dict[str, int], t_comm: float,
               microbatches: int, exclusive: bool) -> np.ndarray:
    """Bool [E_g] "runs on the GPU" flags: the best k of the hottest-first sweep (see module doc)."""
    order = np.argsort(-tokens, kind="stable")
    gsum = np.concatenate(([0], np.cumsum(gpu_ns[order])))
    psum = int(pim_ns.sum()) - np.concatenate(([0], np.cumsum(pim_ns[order])))
    launch = np.where(np.arange(len(gsum)) > 0, terms["launch"], 0)
    t_gpu = terms["other"] + gsum + launch
    t_pim = terms["attn_pim"] + psum
    t_hbm = t_gpu + t_pim if exclusive else t_gpu
    chain = terms["pre"] + t_comm + np.maximum(gsum + launch, psum) + terms["reduce"]
    obj = np.maximum(microbatches * np.maximum(np.maximum(t_gpu, t_hbm), t_pim), chain)
    k = int(np.argmin(obj))
    on_gpu = np.zeros(len(tokens), dtype=bool)
    on_gpu[order[:k]] = True
    return on_gpu


def solve_sieve_pipe(dag: TaskDAG, instance: LayerInstance, cost: CostModel, *, microbatches: int = 1,
                     **_: Any) -> SolveResult:
    """Plan every GPU for an M-micro-batch pipeline (M = 1: the serial layer)."""
    t_wall = time.perf_counter()
    inputs = plan_inputs(dag, instance, cost)
    exclusive = dag.meta.get("hbm_sharing") == "exclusive"
    expert_modes: dict[int, str] = {}
    times = []
    for inp in inputs:
        terms = _gpu_terms(dag, inp.gpu)
        t0 = time.perf_counter_ns()
        on_gpu = plan_split(inp.tokens, inp.gpu_ns, inp.pim_ns, terms, float(inp.params[P_T_COMM]),
                            max(1, int(microbatches)), exclusive)
        times.append(time.perf_counter_ns() - t0)
        for e, f in zip(inp.experts.tolist(), on_gpu.tolist(), strict=True):
            expert_modes[e] = MODE_GPU if f else MODE_PIM
    meta = {"microbatches": microbatches, "decision_ns_per_gpu": times}
    return finish(dag, "sieve-pipe", expert_modes, wall_t0=t_wall, decision_ns=int(max(times, default=0)), meta=meta)
