"""GPU kernel timing for replay: compute from FLOPs, memory from the DRAM streaming simulation.

A GPU-mode task of the layer DAG (GEMM, grouped-GEMM member, attention on the GPU, reduce) is

    duration = launches * kernel_overhead_ns + max(compute_ns, memory_ns)

with ``compute_ns = flops / (peak_TFLOPS * compute_efficiency)`` (the GPU's sustained tensor
throughput; the cycle-level model stops at the memory) and ``memory_ns`` the *simulated* time
to stream the task's bytes (weights + activations + KV) from the HBM stacks, sharded over all
pseudo-channels of the GPU. The memory time comes from a ``stream_ns(bytes)`` callable (the
DRAM simulator via :mod:`sieveopt.validation.replay_memory`), so the DRAM's real efficiency
(refresh, row switches, bank-group timing) replaces the roofline's ``bandwidth_efficiency``.

Assumptions: compute and memory overlap perfectly inside a kernel (the roofline ``max``);
the launch overhead is serial before the body; the compute side does not interfere with PIM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sieveopt.models.costmodel import Work
from sieveopt.models.specs import SystemSpec


@dataclass(frozen=True, slots=True)
class KernelTime:
    """One GPU kernel's time split (ns): the body is ``max(compute, memory)``."""

    compute_ns: float
    memory_ns: float
    overhead_ns: float

    @property
    def body_ns(self) -> float:
        return max(self.compute_ns, self.memory_ns)

    @property
    def total_ns(self) -> float:
        return self.overhead_ns + self.body_ns

    @property
    def memory_bound(self) -> bool:
        return self.memory_ns >= self.compute_ns


class GpuModel:
    """Kernel times of one GPU of ``system``; ``stream_ns(bytes)`` gives simulated memory time."""

    def __init__(self, system: SystemSpec, stream_ns: Callable[[float], float]) -> None:
        gpu = system.gpu
        self.flops_per_ns = gpu.peak_TFLOPS * 1e3 * gpu.compute_efficiency
        self.kernel_overhead_ns = float(gpu.kernel_overhead_ns)
        self.stream_ns = stream_ns

    def kernel(self, work: Work) -> KernelTime:
        """Time of ``work`` as a GPU kernel."""
        nbytes = work.weight_bytes + work.act_bytes + work.kv_bytes
        mem = self.stream_ns(nbytes) if nbytes > 0 else 0.0
        return KernelTime(work.flops / self.flops_per_ns, float(mem), work.launches * self.kernel_overhead_ns)
