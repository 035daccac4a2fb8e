"""TriMoE's host-side execution targets (arXiv 2603.01058): GPU with PCIe fetch, AMX CPU, DIMM-NDP.

Three registry entries (:mod:`sieveopt.targets`), nothing else in the tree names them:

* ``gpu_fetch``: a routed expert on the GPU whose weights are *not* cached in HBM. TriMoE's GPU
  miss cost is ``max(f_calc_gpu(L), T_PCIe(W), T_DRAM(W))`` ("compute, PCIe and DRAM read are
  pipelined", trimoe_gem.md §1.3): the GPU roofline of the cost model, the PCIe transfer of the
  weights and their striped host-DRAM read, plus one PCIe latency. It holds the GPU stream, the
  HBM bus and the PCIe link (``pcie``, a per-GPU resource), so fetches serialise on the link.
* ``cpu``: an AMX host socket, ``max(f_calc_cpu(L), T_DRAM(W))`` (§1.3): AMX FLOP/s x efficiency
  against host memory bandwidth x efficiency, plus a job overhead and the activation round trip
  over PCIe (GPU -> host -> GPU). It holds ``cpu`` (the socket's cores, capacity 1: one expert
  job uses every core, as the paper's serial sum of CPU times assumes).
* ``ndp``: DIMM-NDP, ``max(f_calc_ndp(L), T_Internal(W))`` (§1.3) on *one* DIMM: NDP compute
  against the DIMM's internal (rank-parallel) bandwidth, plus the activation round trip. It holds
  ``ndp``, a resource of capacity ``num_dimms`` (D jobs run at once, one per DIMM).

Host memory bandwidth shared by CPU jobs and PCIe fetches: ``DagOptions.host_memory = "shared"``,
the two targets' layouts (:mod:`sieveopt.offload_host_memory`). Simplifications
(docs/design-notes/trimoe.md): activation transfers are charged inside the CPU and
NDP job durations (they do not hold the PCIe link); the per-DIMM contention of NDP with host reads
(T_contention^d) is not modelled; an NDP job runs on any free DIMM unless
``DagOptions.ndp_placement = "home"`` (:mod:`sieveopt.offload_dimms`). Replay timers (``sieveopt.validation.replay_offload``): the GPU
model on HBM + the interconnect simulator's PCIe link + the DDR5 simulator's host read for
``gpu_fetch``; the DDR5 host read (AMX compute closed-form) for ``cpu``; the DDR5 simulator's
rank-level NDP read for ``ndp`` (the system's ``offload.ndp.dram_preset``).
"""

from __future__ import annotations

import math
from typing import Any

from sieveopt.targets import MODE_GPU, Target, get_target, register_builtin_target

_REPLAY = "sieveopt.validation.replay_offload"
_HOSTMEM = "sieveopt.offload_host_memory:HostMemoryView"

MODE_GPU_FETCH = "gpu_fetch"
MODE_CPU = "cpu"
MODE_NDP = "ndp"
MODE_PREFETCH = "gpu_prefetch"
#: The three TriMoE tiers, in the paper's hot -> warm -> cold order.
TRIMOE_MODES = (MODE_GPU_FETCH, MODE_CPU, MODE_NDP)


def _system(cost_model: Any) -> Any:
    system = getattr(cost_model, "system", None)
    if system is None:
        from sieveopt.errors import SieveoptError

        raise SieveoptError(f"cost model {type(cost_model).__name__} has no .system; the offload tiers "
                            "(gpu_fetch, cpu, ndp) read the system's [offload] section from it")
    return system


def pcie_ns(system: Any, nbytes: float) -> float:
    """Transfer time of ``nbytes`` over the GPU's PCIe link (no latency)."""
    p = system.offload.pcie
    return nbytes / (p.bw_GBps * p.bandwidth_efficiency)


def activation_round_trip_ns(system: Any, work: Any) -> float:
    """Activations GPU -> host and results host -> GPU for a host-side expert job."""
    if work.tokens <= 0:
        return 0.0
    return 2.0 * system.offload.pcie.latency_ns + pcie_ns(system, work.act_bytes)


def host_dram_read_ns(system: Any, nbytes: float) -> float:
    """Striped read of ``nbytes`` from host memory (all DIMMs): TriMoE's T_DRAM(W, striped)."""
    c = system.offload.cpu
    return nbytes / (c.host_mem_bw_GBps * c.bandwidth_efficiency)


def gpu_fetch_cost_ns(cost_model: Any, work: Any) -> float:
    """GPU miss: max(GPU compute, PCIe transfer, host DRAM read) + the PCIe latency."""
    system = _system(cost_model)
    gpu = cost_model.duration_ns(work, MODE_GPU)
    if work.weight_bytes <= 0:
        return gpu
    return (system.offload.pcie.latency_ns
            + max(gpu, pcie_ns(system, work.weight_bytes), host_dram_read_ns(system, work.weight_bytes)))


def prefetch_cost_ns(cost_model: Any, work: Any) -> float:
    """Next-layer weight prefetch: the GPU miss's transfer without its kernel, PCIe latency +
    max(PCIe transfer, host DRAM read) of the expert's weights."""
    system = _system(cost_model)
    if work.weight_bytes <= 0:
        return 0.0
    return system.offload.pcie.latency_ns + max(pcie_ns(system, work.weight_bytes),
                                                 host_dram_read_ns(system, work.weight_bytes))


def cpu_cost_ns(cost_model: Any, work: Any) -> float:
    """AMX CPU: job overhead + max(AMX compute, host DRAM read) + activation round trip."""
    system = _system(cost_model)
    c = system.offload.cpu
    compute = work.flops / (c.amx_peak_TFLOPS * 1e3 * c.compute_efficiency)
    return (c.job_overhead_ns + max(compute, host_dram_read_ns(system, work.weight_bytes))
            + activation_round_trip_ns(system, work))


def ndp_internal_bytes_per_ns(system: Any) -> float:
    n = system.offload.ndp
    return n.dimm_bw_GBps * n.internal_bw_multiplier


def ndp_cost_ns(cost_model: Any, work: Any) -> float:
    """DIMM-NDP on one DIMM: job overhead + max(NDP compute, internal read) + activation round trip."""
    system = _system(cost_model)
    n = system.offload.ndp
    compute = work.flops / n.peak_GFLOPS
    return (n.job_overhead_ns + max(compute, work.weight_bytes / ndp_internal_bytes_per_ns(system))
            + activation_round_trip_ns(system, work))


def ndp_ridge_tokens(system: Any, model: Any) -> int:
    """Tokens at which an NDP expert job turns compute-bound (NDP compute = internal read):
    TriMoE's warm/cold boundary n_warm (trimoe_gem.md §1.2 item 5)."""
    n = system.offload.ndp
    per_token_ns = model.expert_flops(1) / n.peak_GFLOPS
    return max(1, math.ceil(model.expert_weight_bytes / ndp_internal_bytes_per_ns(system) / per_token_ns))


def _num_dimms(system: Any) -> int:
    return int(system.offload.ndp.num_dimms)


def register_offload_tiers() -> None:
    """Register the three TriMoE targets (idempotent)."""
    gpu = get_target(MODE_GPU)
    register_builtin_target(Target(
        MODE_GPU_FETCH, "GPU (PCIe fetch)", "#59a14f", owns={"pcie": "PCIe link"},
        holds=(*gpu.holds, "pcie"), cost=gpu_fetch_cost_ns, replay=f"{_REPLAY}:gpu_fetch_task_time",
        expert_category="experts_gpu_fetch",
        layout_option="host_memory", layouts={"independent": None, "shared": f"{_HOSTMEM}.for_fetch"},
        resident_mode=MODE_GPU, prefetch_mode=MODE_PREFETCH,
        doc="TriMoE hot tier: GPU expert whose weights come over PCIe (max of compute, PCIe, host DRAM)"))
    register_builtin_target(Target(
        MODE_PREFETCH, "PCIe prefetch", "#b07aa1", holds=("pcie",), cost=prefetch_cost_ns,
        replay=f"{_REPLAY}:prefetch_task_time",
        layout_option="host_memory", layouts={"independent": None, "shared": f"{_HOSTMEM}.for_fetch"},
        doc="Next-layer expert weights host -> HBM over PCIe (DagOptions.prefetch_experts): holds the link only"))
    register_builtin_target(Target(
        MODE_CPU, "AMX CPU", "#17becf", owns={"cpu": "CPU cores"}, holds=("cpu",), cost=cpu_cost_ns,
        replay=f"{_REPLAY}:cpu_task_time", expert_category="experts_cpu",
        layout_option="host_memory", layouts={"independent": None, "shared": f"{_HOSTMEM}.for_cpu"},
        part_owns={"hostmem": "host memory (CPU vs PCIe fetch)"},
        doc="TriMoE warm tier: AMX host CPU (max of AMX compute, host DRAM read) + activation round trip"))
    register_builtin_target(Target(
        MODE_NDP, "DIMM-NDP", "#e15759", owns={"ndp": "DIMM-NDP units"}, holds=("ndp",), cost=ndp_cost_ns,
        replay=f"{_REPLAY}:ndp_task_time", capacity=_num_dimms, expert_category="experts_ndp",
        layout_option="ndp_placement", layouts={"any": None, "home": "sieveopt.offload_dimms:DimmHomes.for_builder"},
        part_owns={"ndp_dimm": "DIMM-NDP (one DIMM)"},
        doc="TriMoE cold tier: one DIMM's NDP engine (max of NDP compute, internal read); capacity = DIMMs"))


register_offload_tiers()
