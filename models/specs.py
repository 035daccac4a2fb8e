"""Frozen specs for models and systems. Units live in field names; values come from TOML.

Every ``__post_init__`` rejects impossible values with a :class:`SpecError` naming the field
and the fix (``require``), so a spec that exists is a spec that makes sense.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from sieveopt.tomlspec import require

AttentionLayerKind = Literal["full", "linear", "sliding"]
HbmSharing = Literal["exclusive", "dual_row_buffer", "partitioned"]


@dataclass(frozen=True)
class AttentionSpec:
    """Decode attention geometry. ``layer_pattern`` repeats over the layers (hybrid models)."""

    kind: Literal["gqa", "mla"] = "gqa"
    num_q_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    layer_pattern: tuple[AttentionLayerKind, ...] = ("full",)
    sliding_window_tokens: int = 0
    #: MLA: cached elements per token per layer (DeepSeek-V3: 512 latent + 64 rope = 576).
    mla_cache_elems_per_token: int = 0
    #: Gated-DeltaNet style linear attention: recurrent state = v_heads * key_dim * value_dim.
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    #: Projection parameters per layer (QKV + output, gates); 0 = derive from the GQA geometry.
    full_params_per_layer: int = 0
    linear_params_per_layer: int = 0

    def __post_init__(self) -> None:
        for name in ("num_q_heads", "num_kv_heads", "head_dim"):
            require(getattr(self, name) > 0, name, "must be positive", "set a positive head count/size")
        require(len(self.layer_pattern) > 0, "layer_pattern", "is empty", 'use e.g. ["full"]')
        if "linear" in self.layer_pattern:
            require(self.linear_num_value_heads > 0 and self.linear_key_head_dim > 0
                    and self.linear_value_head_dim > 0, "linear_num_value_heads",
                    "linear attention layers need linear_* dimensions", "set linear_num_key_heads, "
                    "linear_num_value_heads, linear_key_head_dim, linear_value_head_dim")
        if "sliding" in self.layer_pattern:
            require(self.sliding_window_tokens > 0, "sliding_window_tokens",
                    "sliding layers need a window", "set sliding_window_tokens > 0")
        if self.kind == "mla":
            require(self.mla_cache_elems_per_token > 0, "mla_cache_elems_per_token",
                    "MLA needs the cached elements per token", "set e.g. 576 for DeepSeek-V3")

    def layer_kind(self, layer: int) -> AttentionLayerKind:
        return self.layer_pattern[layer % len(self.layer_pattern)]

    def kv_elems_per_token(self) -> int:
        """Cached K+V elements per token per full/sliding layer."""
        if self.kind == "mla":
            return self.mla_cache_elems_per_token
        return 2 * self.num_kv_heads * self.head_dim

    def linear_state_elems(self) -> int:
        """Recurrent-state elements per request per linear-attention layer."""
        return self.linear_num_value_heads * self.linear_key_head_dim * self.linear_value_head_dim

    def params_per_layer(self, hidden_size: int, kind: AttentionLayerKind) -> int:
        if kind == "linear":
            if self.linear_params_per_layer:
                return self.linear_params_per_layer
            qk = 2 * self.linear_num_key_heads * self.linear_key_head_dim
            v = self.linear_num_value_heads * self.linear_value_head_dim
            return hidden_size * (qk + 2 * v) + v * hidden_size
        if self.full_params_per_layer:
            return self.full_params_per_layer
        q = self.num_q_heads * self.head_dim
        kv = 2 * self.num_kv_heads * self.head_dim
        return hidden_size * (q + kv) + q * hidden_size


@dataclass(frozen=True)
class ModelSpec:
    """An MoE LLM as the scheduler sees it (decode, one MoE layer at a time)."""

    name: str
    num_layers: int
    num_moe_layers: int
    hidden_size: int
    num_routed_experts: int
    top_k: int
    expert_intermediate_size: int
    expert_weight_bytes_per_param: float
    routing_profile: str
    attention: AttentionSpec = field(default_factory=AttentionSpec)
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0
    dense_ffn_intermediate_size: int = 0
    dense_weight_bytes_per_param: float = 2.0
    activation_bytes: float = 2.0
    vocab_size: int = 0
    n_group: int = 1
    topk_group: int = 1
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("num_layers", "num_moe_layers", "hidden_size", "num_routed_experts", "top_k",
                     "expert_intermediate_size"):
            require(getattr(self, name) > 0, name, f"must be positive, got {getattr(self, name)}",
                    "set a positive integer")
        require(self.num_moe_layers <= self.num_layers, "num_moe_layers",
                f"{self.num_moe_layers} MoE layers > {self.num_layers} layers", "lower num_moe_layers")
        require(self.top_k <= self.num_routed_experts, "top_k",
                f"top_k={self.top_k} exceeds num_routed_experts={self.num_routed_experts}",
                "use top_k <= num_routed_experts")
        require(self.expert_weight_bytes_per_param > 0, "expert_weight_bytes_per_param",
                "must be positive", "e.g. 2.0 for BF16, 1.0 for FP8, 0.53125 for MXFP4")
        require(self.activation_bytes > 0, "activation_bytes", "must be positive", "e.g. 2.0 for BF16")
        require(self.num_shared_experts >= 0, "num_shared_experts", "must be >= 0", "use 0 for none")
        require(self.num_shared_experts == 0 or self.shared_expert_intermediate_size > 0,
                "shared_expert_intermediate_size", "shared experts need a size",
                "set shared_expert_intermediate_size")
        require(self.n_group >= 1 and self.num_routed_experts % self.n_group == 0, "n_group",
                f"{self.num_routed_experts} experts do not split into {self.n_group} groups",
                "use a divisor of num_routed_experts (1 = no group limit)")
        require(1 <= self.topk_group <= self.n_group, "topk_group", "must be in [1, n_group]",
                "set topk_group <= n_group")

    # --- derived sizes -------------------------------------------------------------------
    @property
    def expert_params(self) -> int:
        """Parameters of one routed expert: gate, up and down matrices."""
        return 3 * self.hidden_size * self.expert_intermediate_size

    @property
    def expert_weight_bytes(self) -> float:
        return self.expert_params * self.expert_weight_bytes_per_param

    @property
    def expert_precision(self) -> str:
        """Name of the routed experts' weight format, for figure and table labels."""
        return precision_label(self.expert_weight_bytes_per_param)

    @property
    def shared_expert_weight_bytes(self) -> float:
        return 3 * self.hidden_size * self.shared_expert_intermediate_size * self.dense_weight_bytes_per_param

    def expert_flops(self, tokens: int) -> float:
        """FLOPs of one routed expert on ``tokens`` tokens (2 per MAC)."""
        return 2.0 * self.expert_params * tokens

    @property
    def routed_expert_bytes_per_layer(self) -> float:
        return self.num_routed_experts * self.expert_weight_bytes

    def moe_layer_attention_kind(self, moe_layer: int) -> AttentionLayerKind:
        """Attention kind of the layer holding MoE layer ``moe_layer`` (dense layers come first)."""
        return self.attention.layer_kind(moe_layer + self.num_layers - self.num_moe_layers)


@dataclass(frozen=True)
class GpuSpec:
    """One GPU's compute and external memory path."""

    name: str
    peak_TFLOPS: float
    hbm_bw_GBps: float
    hbm_capacity_GiB: float
    kernel_overhead_ns: float
    compute_efficiency: float = 0.7
    bandwidth_efficiency: float = 0.9

    def __post_init__(self) -> None:
        require(self.peak_TFLOPS > 0, "peak_TFLOPS", "must be positive", "set the dense BF16 peak")
        require(self.hbm_bw_GBps > 0, "hbm_bw_GBps", f"must be positive, got {self.hbm_bw_GBps}",
                "set the external HBM bandwidth per GPU in GB/s")
        require(self.hbm_capacity_GiB > 0, "hbm_capacity_GiB", "must be positive", "set GiB per GPU")
        require(self.kernel_overhead_ns >= 0, "kernel_overhead_ns", "must be >= 0", "use 0 to ignore")
        for name in ("compute_efficiency", "bandwidth_efficiency"):
            v = getattr(self, name)
            require(0 < v <= 1, name, f"must be in (0, 1], got {v}", "use a fraction such as 0.8")


@dataclass(frozen=True)
class DramTimingSpec:
    """DRAM timing in cycles of ``tCK_ps`` (except the refresh pair, given in ns)."""

    tCK_ps: int
    CL: int
    CWL: int
    tRCD: int
    tRP: int
    tRAS: int
    tRC: int
    tWR: int
    tRTP: int
    tCCD_S: int
    tCCD_L: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tWTR_S: int
    tWTR_L: int
    tRTW: int
    BL: int
    tREFI_ns: float
    tRFC_ns: float

    def __post_init__(self) -> None:
        for name, v in self.__dict__.items():
            require(v > 0, name, f"must be positive, got {v}", "use the datasheet value")
        require(self.tRC >= self.tRAS, "tRC", "tRC < tRAS", "tRC is usually tRAS + tRP")


@dataclass(frozen=True)
class PimSpec:
    """PIM units of one GPU's HBM-PIM stacks, acting as one unit under tensor parallelism."""

    internal_bw_multiplier: float
    ops_per_byte: float
    job_overhead_ns: float
    per_token_overhead_ns: float

    def __post_init__(self) -> None:
        require(self.internal_bw_multiplier > 0, "internal_bw_multiplier", "must be positive",
                "internal PIM bandwidth / external bandwidth, e.g. 12")
        require(self.ops_per_byte > 0, "ops_per_byte", "must be positive", "e.g. 1.0")
        require(self.job_overhead_ns >= 0 and self.per_token_overhead_ns >= 0, "job_overhead_ns",
                "overheads must be >= 0", "use 0 to ignore")


@dataclass(frozen=True)
class HbmPimSpec:
    """HBM-PIM organisation per GPU, its DRAM timing, PIM units and how PIM shares the stacks."""

    generation: str
    stacks_per_gpu: int
    pseudo_channels_per_stack: int
    bank_groups_per_pseudo_channel: int
    banks_per_pseudo_channel: int
    page_size_bytes: int
    pin_rate_Gbps: float
    pseudo_channel_width_bits: int
    timing: DramTimingSpec
    pim: PimSpec
    sharing: HbmSharing = "dual_row_buffer"
    #: With ``sharing = "partitioned"``: fraction of banks (and so bandwidth) reserved for PIM.
    pim_bank_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("stacks_per_gpu", "pseudo_channels_per_stack", "bank_groups_per_pseudo_channel",
                     "banks_per_pseudo_channel", "page_size_bytes", "pseudo_channel_width_bits"):
            require(getattr(self, name) > 0, name, "must be positive", "use the organisation value")
        require(self.banks_per_pseudo_channel % self.bank_groups_per_pseudo_channel == 0,
                "banks_per_pseudo_channel", "not a multiple of bank_groups_per_pseudo_channel",
                "banks must split evenly into bank groups")
        require(self.pin_rate_Gbps > 0, "pin_rate_Gbps", "must be positive", "e.g. 8.0")
        require(0 < self.pim_bank_fraction < 1, "pim_bank_fraction", "must be in (0, 1)", "e.g. 0.5")

    @property
    def pseudo_channels_per_gpu(self) -> int:
        return self.stacks_per_gpu * self.pseudo_channels_per_stack

    @property
    def peak_bw_GBps(self) -> float:
        """Raw pin bandwidth of all stacks of one GPU."""
        return self.pseudo_channels_per_gpu * self.pseudo_channel_width_bits * self.pin_rate_Gbps / 8.0


@dataclass(frozen=True)
class InterconnectSpec:
    """GPU-to-GPU links through a non-blocking switch (NVLink + NVSwitch)."""

    name: str
    bw_per_direction_GBps: float
    latency_ns: float

    def __post_init__(self) -> None:
        require(self.bw_per_direction_GBps > 0, "bw_per_direction_GBps",
                f"must be positive, got {self.bw_per_direction_GBps}", "set GB/s per direction per GPU")
        require(self.latency_ns >= 0, "latency_ns", "must be >= 0", "set the one-way latency in ns")


@dataclass(frozen=True)
class SystemSpec:
    """A multi-GPU system whose HBM stacks are HBM-PIM."""

    name: str
    num_gpus: int
    gpu: GpuSpec
    hbm_pim: HbmPimSpec
    interconnect: InterconnectSpec
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        require(self.num_gpus >= 1, "num_gpus", f"must be >= 1, got {self.num_gpus}", "use 1 or more GPUs")

    def with_gpus(self, num_gpus: int) -> SystemSpec:
        return replace(self, num_gpus=num_gpus)

    # Bandwidths the cost model and the simulators agree on.
    @property
    def gpu_hbm_bw_GBps(self) -> float:
        """External HBM bandwidth seen by the GPU (less the PIM partition if partitioned)."""
        bw = self.gpu.hbm_bw_GBps
        if self.hbm_pim.sharing == "partitioned":
            bw *= 1.0 - self.hbm_pim.pim_bank_fraction
        return bw

    @property
    def pim_bw_GBps(self) -> float:
        """Internal PIM bandwidth of one GPU's stacks (all PIM units together)."""
        bw = self.gpu.hbm_bw_GBps * self.hbm_pim.pim.internal_bw_multiplier
        if self.hbm_pim.sharing == "partitioned":
            bw *= self.hbm_pim.pim_bank_fraction
        return bw


#: Bytes per parameter -> format name (moe_models.md §2: BF16 2 B; FP8 1 B; MXFP4 4.25 bit).
_PRECISIONS = {2.0: "bf16", 1.0: "fp8", 0.53125: "mxfp4", 0.5625: "int4-g32", 4.0: "fp32"}


def precision_label(bytes_per_param: float) -> str:
    """``2.0 -> "bf16"``, ``0.53125 -> "mxfp4"``; other widths as ``"<bits>-bit"``."""
    return _PRECISIONS.get(float(bytes_per_param), f"{8 * float(bytes_per_param):g}-bit")
