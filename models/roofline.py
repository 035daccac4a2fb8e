"""The ``roofline`` cost model (DESIGN.md §5).

* GPU: ``kernel_overhead + max(flops / (peak * eff), bytes / (bw * eff))``.
* PIM: per expert job ``job_overhead + n * (GEMV + token write + read-back + per-token overhead)``
  (N tokens = N sequential GEMVs). The GEMV is bound by internal bandwidth or PIM compute
  (``ops_per_byte * internal bandwidth``). Tensor parallelism shards every matrix by output rows
  over the pseudo-channels, so each one needs the *whole* input vector in its global buffer:
  the token write costs ``(d + f) * act_bytes / pCH bandwidth`` (gate|up input d, down input f),
  in parallel on every pseudo-channel; the read-back moves the ``2f + d`` outputs over all of
  them. This mirrors the command stream of :mod:`sieveopt.validation.dram.pim`.
* Links: ``bytes / bandwidth`` on the port (the latency is a lag on the DAG edge).
"""

from __future__ import annotations

from sieveopt.models.costmodel import (
    MODE_GPU,
    MODE_LINK,
    MODE_PIM,
    MODE_SCHED,
    GpuRates,
    TaskKind,
    Work,
)
from sieveopt.models.specs import ModelSpec, SystemSpec


class RooflineCostModel:
    """Analytic max(compute, memory) times from the system spec; no calibration."""

    name = "roofline"

    def __init__(self, system: SystemSpec, model: ModelSpec, *, include_kernel_overhead: bool = True) -> None:
        self.system, self.model = system, model
        gpu = system.gpu
        self.gpu_flops_per_ns = gpu.peak_TFLOPS * 1e3 * gpu.compute_efficiency
        self.gpu_bytes_per_ns = system.gpu_hbm_bw_GBps * gpu.bandwidth_efficiency
        self.kernel_overhead_ns = gpu.kernel_overhead_ns if include_kernel_overhead else 0.0
        pim = system.hbm_pim.pim
        self.pim_bytes_per_ns = system.pim_bw_GBps
        self.pim_flops_per_ns = system.pim_bw_GBps * pim.ops_per_byte
        self.pim_job_overhead_ns = pim.job_overhead_ns
        self.pim_token_overhead_ns = pim.per_token_overhead_ns
        self.ext_bytes_per_ns = system.gpu_hbm_bw_GBps
        self.num_pch = system.hbm_pim.pseudo_channels_per_gpu
        self.pch_bytes_per_ns = system.hbm_pim.peak_bw_GBps / self.num_pch
        self.link_bytes_per_ns = system.interconnect.bw_per_direction_GBps

    # -- pieces other policies reuse (T_GPU / T_PIM estimates) ----------------------------
    def gpu_rates(self) -> GpuRates:
        """The sustained GPU rates behind this model's GPU-mode durations (planners read them)."""
        return GpuRates(float(self.gpu_bytes_per_ns), float(self.gpu_flops_per_ns), float(self.kernel_overhead_ns))

    def pim_gemv_ns(self, weight_bytes: float, tokens: int, *, channels: float | None = None,
                    bytes_per_param: float | None = None) -> float:
        """``tokens`` sequential GEMVs of one expert holding ``weight_bytes`` of 3 d f weights,
        sharded over ``channels`` pseudo-channels (default: all of the GPU's)."""
        if tokens <= 0:
            return 0.0
        m = self.model
        bpp = m.expert_weight_bytes_per_param if bytes_per_param is None else bytes_per_param
        d = m.hidden_size
        f = weight_bytes / (3.0 * d * bpp)
        share = (channels or self.num_pch) / self.num_pch
        gemv = max(weight_bytes / (self.pim_bytes_per_ns * share),
                   2.0 * weight_bytes / bpp / (self.pim_flops_per_ns * share))
        write = (d + f) * m.activation_bytes / self.pch_bytes_per_ns
        read = (2.0 * f + d) * m.activation_bytes / (self.pch_bytes_per_ns * self.num_pch * share)
        return self.pim_job_overhead_ns + tokens * (gemv + write + read + self.pim_token_overhead_ns)

    def duration_ns(self, work: Work, mode: str) -> float:
        if mode == MODE_SCHED:
            return work.fixed_ns
        if mode == MODE_LINK:
            return work.msg_bytes / self.link_bytes_per_ns
        if mode == MODE_GPU:
            bytes_ = work.weight_bytes + work.act_bytes + work.kv_bytes
            body = max(work.flops / self.gpu_flops_per_ns, bytes_ / self.gpu_bytes_per_ns)
            return body + work.launches * self.kernel_overhead_ns
        if mode == MODE_PIM:
            if work.kind == TaskKind.EXPERT:
                return self.pim_gemv_ns(work.weight_bytes, work.tokens)
            if work.kind == TaskKind.SHARED:
                return self.pim_gemv_ns(work.weight_bytes, work.tokens,
                                        bytes_per_param=self.model.dense_weight_bytes_per_param)
            # attention (and anything else streaming memory once): bound by internal bw / compute
            body = max(work.kv_bytes / self.pim_bytes_per_ns, work.flops / self.pim_flops_per_ns)
            return self.pim_job_overhead_ns + body
        raise ValueError(f"roofline: unknown mode {mode!r}")
