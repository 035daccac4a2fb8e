"""Per-GPU planner inputs of one layer, extracted from its DAG (the serving-path view).

The Sieve planner on GPU ``g`` sees only O(E_g) numbers: the token counts of its activated
experts, the PIM cost table (ns by token count), and a handful of scalars packed in one float64
array (``params``, indices ``P_*`` below) so the compiled entry point takes few arguments:

* ``T_comm`` = max(egress, ingress) of GPU g's dispatch + combine messages, each message
  ``bytes / link bandwidth`` (the DAG's link durations; NVLink ports are full duplex, the link
  latency and the AllGather are not counted). Independent of the split (papers.md §1.5).
* ``T_attn`` = the DAG's PIM duration of GPU g's decode attention (0 if it has no PIM mode).
* ``T_GPU(G) = fixed0 + [G non-empty] * launch + |G| * expert_fixed
  + max((bytes0 + |G| * W + a * N_G) / bw, (flops0 + f * N_G) / peak)``, where ``N_G`` is the
  number of tokens of the GPU-side experts, ``W`` the weight bytes per expert, ``a`` the
  activation bytes and ``f`` the FLOPs per expert token; ``bytes0/flops0/fixed0`` sum the
  other GPU work of this GPU in the layer (qkv, oproj, router, shared expert, reduce: the
  paper's T_comp counts "all GPU ops except decode attention and PIM experts"); ``launch`` is
  the grouped-GEMM launch task, ``expert_fixed`` the per-expert kernel overhead (per-expert
  kernels only). ``bw``/``peak`` are the cost model's sustained GPU rates.
* ``T_PIM(S) = T_attn + sum_{e in S} table[n_e]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sieveopt.dag import (
    ATTN,
    COMBINE,
    DISPATCH,
    EXPERT,
    LAUNCH,
    OPROJ,
    QKV,
    REDUCE,
    ROUTER,
    SHARED,
    TaskDAG,
)
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import MODE_GPU, MODE_LINK, MODE_PIM, CostModel, pim_expert_table
from sieveopt.models.costmodel import gpu_rates as _gpu_rates
from sieveopt.models.work import expert_work

# Indices into the packed scalar array.
P_T_COMM = 0          # ns
P_T_ATTN = 1          # ns, decode attention on PIM
P_BYTES0 = 2          # off-chip bytes of the other GPU work
P_FLOPS0 = 3          # FLOPs of the other GPU work
P_FIXED0 = 4          # kernel overheads of the other GPU work, ns
P_EXPERT_BYTES = 5    # weight bytes per GPU-side expert
P_TOKEN_BYTES = 6     # activation bytes per expert token
P_TOKEN_FLOPS = 7     # FLOPs per expert token
P_BYTES_PER_NS = 8    # sustained HBM bandwidth, bytes/ns
P_FLOPS_PER_NS = 9    # sustained GPU compute, FLOP/ns
P_LAUNCH_NS = 10      # grouped-GEMM launch, paid once when >= 1 expert runs on the GPU
P_EXPERT_FIXED = 11   # per-expert kernel overhead (per-expert kernels), ns
NUM_PARAMS = 12

#: GPU-only tasks that make up "the other GPU work" of a layer.
OTHER_GPU_KINDS = (QKV, OPROJ, ROUTER, SHARED, REDUCE)


@dataclass(frozen=True, eq=False)
class GpuPlanInputs:
    """What GPU ``gpu``'s planner gets; arrays are in the local expert order (expert-id order)."""

    gpu: int
    experts: np.ndarray       # int64 [E_g] routed expert ids (activated experts of this GPU)
    tids: np.ndarray          # int64 [E_g] their DAG task ids
    tokens: np.ndarray        # int32 [E_g] token counts
    params: np.ndarray        # float64 [NUM_PARAMS]
    gpu_ns: np.ndarray        # int64 [E_g] DAG duration of each expert in GPU mode
    pim_ns: np.ndarray        # int64 [E_g] DAG duration of each expert in PIM mode

    @property
    def num_experts(self) -> int:
        return len(self.experts)


def gpu_rates(cost: CostModel, instance: LayerInstance) -> tuple[float, float, float]:
    """(bytes/ns, FLOP/ns, kernel overhead ns) of the GPU (see :func:`costmodel.gpu_rates`
    for the declared capability and its default)."""
    r = _gpu_rates(cost, instance.system, instance.model)
    return r.bytes_per_ns, r.flops_per_ns, r.kernel_overhead_ns


def pim_table(cost: CostModel, instance: LayerInstance, max_tokens: int) -> np.ndarray:
    """PIM ns of one routed expert by token count ``0..max_tokens`` (float64; see
    :func:`costmodel.pim_expert_table` for the declared capability and its default)."""
    return pim_expert_table(cost, instance.model, max_tokens)


def _message_ns(dag: TaskDAG, gpu: int) -> float:
    egress = ingress = 0
    for t in dag.tasks:
        if t.kind in (DISPATCH, COMBINE):
            d = t.modes[MODE_LINK].duration_ns
            if t.gpu == gpu:
                egress += d
            if t.peer == gpu:
                ingress += d
    return float(max(egress, ingress))


def gpu_plan_inputs(dag: TaskDAG, instance: LayerInstance, cost: CostModel, gpu: int, *,
                    other_gpu_work: bool = True) -> GpuPlanInputs:
    """Planner inputs of one GPU (see the module docstring for every term)."""
    from sieveopt.variability import speed_factors

    bw, peak, overhead = gpu_rates(cost, instance)
    speed = speed_factors(instance.system)   # GEM variability: this GPU's own sustained rates
    bw, peak = bw * float(speed.memory[gpu]), peak * float(speed.compute[gpu])
    model = instance.model
    params = np.zeros(NUM_PARAMS)
    params[P_T_COMM] = _message_ns(dag, gpu)
    params[P_BYTES_PER_NS], params[P_FLOPS_PER_NS] = bw, peak
    one_token = expert_work(model, 1)    # the layer-work model's expert: W bytes, a and f per token
    params[P_EXPERT_BYTES] = one_token.weight_bytes
    params[P_TOKEN_BYTES] = one_token.act_bytes
    params[P_TOKEN_FLOPS] = one_token.flops
    experts, tids, tokens, gns, pns = [], [], [], [], []
    for t in dag.tasks:
        if t.gpu != gpu:
            continue
        if t.kind == ATTN and MODE_PIM in t.modes:
            params[P_T_ATTN] = t.modes[MODE_PIM].duration_ns
        elif t.kind == LAUNCH:
            params[P_LAUNCH_NS] = t.modes[MODE_GPU].duration_ns
        elif t.kind == EXPERT:
            experts.append(t.expert)
            tids.append(t.tid)
            tokens.append(t.tokens)
            gns.append(t.modes[MODE_GPU].duration_ns)
            pns.append(t.modes[MODE_PIM].duration_ns)
            if t.work is not None:
                params[P_EXPERT_FIXED] = t.work.launches * overhead
        elif other_gpu_work and t.kind in OTHER_GPU_KINDS and t.work is not None:
            w = t.work
            params[P_BYTES0] += w.weight_bytes + w.act_bytes + w.kv_bytes
            params[P_FLOPS0] += w.flops
            params[P_FIXED0] += w.launches * overhead
    order = np.argsort(np.asarray(experts, dtype=np.int64), kind="stable")
    return GpuPlanInputs(gpu, np.asarray(experts, dtype=np.int64)[order], np.asarray(tids, dtype=np.int64)[order],
                         np.asarray(tokens, dtype=np.int32)[order], params,
                         np.asarray(gns, dtype=np.int64)[order], np.asarray(pns, dtype=np.int64)[order])


def plan_inputs(dag: TaskDAG, instance: LayerInstance, cost: CostModel, *,
                other_gpu_work: bool = True) -> list[GpuPlanInputs]:
    """Planner inputs of every GPU."""
    return [gpu_plan_inputs(dag, instance, cost, g, other_gpu_work=other_gpu_work)
            for g in range(instance.num_gpus)]


def max_tokens(inputs: list[GpuPlanInputs]) -> int:
    """Largest expert token count over the GPUs (the PIM table must reach it)."""
    return max((int(x.tokens.max()) for x in inputs if x.num_experts), default=0)
