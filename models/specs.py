"""Frozen specs for models and systems. Units live in field names; values come from TOML.

Every ``__post_init__`` rejects impossible values with a :class:`SpecError` naming the field
and the fix (``require``), so a spec that exists is a spec that makes sense.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from sieveopt.errors import SpecError
from sieveopt.tomlspec import INF_OK, require, require_finite, require_range

AttentionLayerKind = Literal["full", "linear", "sliding"]
HbmSharing = Literal["exclusive", "dual_row_buffer", "partitioned"]
VariabilityKind = Literal["none", "fixed", "uniform", "lognormal", "profile"]
#: Host memory of an offloading system: CPU reads and PCIe fetches each at full bandwidth
#: ("independent") or sharing the host's achievable bandwidth ("shared", sieveopt.offload_tiers).
HostMemory = Literal["independent", "shared"]
NdpPlacement = Literal["any", "home"]

#: Largest system the toolkit models (one NVSwitch domain is 72-576 GPUs; the DAG has
#: O(GPUs^2) all-to-all messages, so a larger count is a typo, not a system).
MAX_GPUS = 1024
#: Upper ends of the model dimensions: far above any published model, low enough that sizes,
#: byte counts and nanosecond durations stay exact in int64 and expert ids fit int16 traces.
MAX_DIM = 2**20          # hidden, intermediate sizes, heads, head dims, windows
MAX_LAYERS = 4096
MAX_EXPERTS = 32767      # expert ids are int16 in routing traces
MAX_VOCAB = 2**24
MAX_PARAMS = 2**40       # parameters per attention layer


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
        require_finite(self)
        for name in ("num_q_heads", "num_kv_heads", "head_dim"):
            require_range(getattr(self, name), name, ge=1, le=MAX_DIM, fix="set a positive head count/size")
        for name in ("sliding_window_tokens", "mla_cache_elems_per_token", "linear_num_key_heads",
                     "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
                     "full_params_per_layer", "linear_params_per_layer"):
            require_range(getattr(self, name), name, ge=0, le=MAX_PARAMS if "params" in name else MAX_DIM,
                          fix="use 0 for unused / derived")
        if self.kind == "gqa":
            require(self.num_kv_heads <= self.num_q_heads, "num_kv_heads",
                    f"{self.num_kv_heads} KV heads > {self.num_q_heads} query heads (GQA shares a KV "
                    "head among query heads, never the reverse)", "use num_kv_heads <= num_q_heads")
            require(self.num_q_heads % self.num_kv_heads == 0, "num_kv_heads",
                    f"num_q_heads={self.num_q_heads} is not a multiple of num_kv_heads={self.num_kv_heads} "
                    "(GQA groups must be equal)", "use a divisor of num_q_heads (e.g. 8 of 64)")
        require(len(self.layer_pattern) > 0, "layer_pattern", "is empty", 'use e.g. ["full"]')
        if "linear" in self.layer_pattern:
            require(self.linear_num_value_heads > 0 and self.linear_key_head_dim > 0
                    and self.linear_value_head_dim > 0, "linear_num_value_heads",
                    "layer_pattern has linear-attention layers but no linear_* dimensions",
                    "set linear_num_key_heads, "
                    "linear_num_value_heads, linear_key_head_dim, linear_value_head_dim")
        if "sliding" in self.layer_pattern:
            require(self.sliding_window_tokens > 0, "sliding_window_tokens",
                    "layer_pattern has sliding layers but no window", "set sliding_window_tokens > 0")
        if self.kind == "mla":
            require(self.mla_cache_elems_per_token > 0, "mla_cache_elems_per_token",
                    "MLA needs the cached elements per token", "set e.g. 576 for DeepSeek-V3")
            # The GQA formula counts ~2.3x too many projection parameters for MLA (low-rank q/kv),
            # so an MLA model must state its own count (docs/models.md shows how to compute it).
            require(self.full_params_per_layer > 0, "full_params_per_layer",
                    "MLA needs its attention parameters per layer (the GQA formula does not apply)",
                    "set it, e.g. 187203584 for DeepSeek-V3 / Kimi K2 (docs/models.md)")

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
        require_finite(self)
        for name, hi in (("num_layers", MAX_LAYERS), ("num_moe_layers", MAX_LAYERS), ("hidden_size", MAX_DIM),
                         ("num_routed_experts", MAX_EXPERTS), ("top_k", MAX_EXPERTS),
                         ("expert_intermediate_size", MAX_DIM)):
            require_range(getattr(self, name), name, ge=1, le=hi, fix="set a positive integer")
        for name in ("expert_weight_bytes_per_param", "dense_weight_bytes_per_param", "activation_bytes"):
            require_range(getattr(self, name), name, gt=0, le=8,
                          fix="bytes per element: 2.0 for BF16, 1.0 for FP8, 0.53125 for MXFP4")
        for name in ("shared_expert_intermediate_size", "dense_ffn_intermediate_size", "vocab_size"):
            require_range(getattr(self, name), name, ge=0, le=MAX_VOCAB if name == "vocab_size" else MAX_DIM,
                          fix="use 0 for none")
        require(self.num_moe_layers <= self.num_layers, "num_moe_layers",
                f"{self.num_moe_layers} MoE layers > {self.num_layers} layers", "lower num_moe_layers")
        require(self.num_moe_layers == self.num_layers or self.dense_ffn_intermediate_size > 0,
                "dense_ffn_intermediate_size",
                f"{self.num_layers - self.num_moe_layers} dense layer(s) need an FFN size",
                "set dense_ffn_intermediate_size (the config's intermediate_size)")
        require(self.top_k <= self.num_routed_experts, "top_k",
                f"top_k={self.top_k} exceeds num_routed_experts={self.num_routed_experts}",
                "use top_k <= num_routed_experts")
        require_range(self.num_shared_experts, "num_shared_experts", ge=0, le=MAX_EXPERTS, fix="use 0 for none")
        require(self.num_shared_experts == 0 or self.shared_expert_intermediate_size > 0,
                "shared_expert_intermediate_size", "shared experts need a size",
                "set shared_expert_intermediate_size")
        require(self.n_group >= 1 and self.num_routed_experts % self.n_group == 0, "n_group",
                f"{self.num_routed_experts} experts do not split into {self.n_group} groups",
                "use a divisor of num_routed_experts (1 = no group limit)")
        require(1 <= self.topk_group <= self.n_group, "topk_group",
                f"got {self.topk_group}, allowed: [1, n_group={self.n_group}]", "set topk_group <= n_group")
        per_group = self.num_routed_experts // max(1, self.n_group)
        require(self.top_k <= self.topk_group * per_group, "top_k",
                f"top_k={self.top_k} > topk_group x experts per group = {self.topk_group * per_group}",
                "raise topk_group or lower top_k")
        from sieveopt.errors import SpecError
        from sieveopt.workload.profiles import get_profile

        try:
            get_profile(self.routing_profile)  # unknown names fail here, naming the known ones
        except SpecError as exc:
            where = "" if exc.source == "routing profile" else f" ({exc.source}: {exc.field})"
            raise SpecError("<spec>", "routing_profile", exc.problem + where, exc.fix) from None

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
        require_finite(self)
        require_range(self.peak_TFLOPS, "peak_TFLOPS", gt=0, le=1e6, fix="set the dense BF16 peak in TFLOPS")
        require_range(self.hbm_bw_GBps, "hbm_bw_GBps", gt=0, le=1e9,
                      fix="set the external HBM bandwidth per GPU in GB/s")
        require_range(self.hbm_capacity_GiB, "hbm_capacity_GiB", gt=0, le=2**20, fix="set GiB per GPU")
        require_range(self.kernel_overhead_ns, "kernel_overhead_ns", ge=0, le=1e9,
                      fix="use 0 to ignore, or a launch overhead in ns (a few thousand)")
        for name in ("compute_efficiency", "bandwidth_efficiency"):
            require_range(getattr(self, name), name, gt=0, le=1, fix="use a fraction such as 0.8")


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
        require_finite(self)
        for name, v in self.__dict__.items():
            require_range(v, name, gt=0, le=1e7, fix="use the datasheet value")
        require(self.tRC >= self.tRAS, "tRC", "tRC < tRAS", "tRC is usually tRAS + tRP")
        require(self.tRFC_ns < self.tREFI_ns, "tRFC_ns",
                f"refresh takes {self.tRFC_ns:g} ns but comes every tREFI_ns={self.tREFI_ns:g} ns "
                "(the bank would refresh forever)", "use tRFC_ns < tREFI_ns (HBM3E: 350-410 vs 3900)")


@dataclass(frozen=True)
class PimSpec:
    """PIM units of one GPU's HBM-PIM stacks, acting as one unit under tensor parallelism."""

    internal_bw_multiplier: float
    ops_per_byte: float
    job_overhead_ns: float
    per_token_overhead_ns: float

    def __post_init__(self) -> None:
        require_finite(self)
        require_range(self.internal_bw_multiplier, "internal_bw_multiplier", ge=1e-3, le=1e4,
                      fix="internal PIM bandwidth / external bandwidth, e.g. 12 (below 0.001 the "
                          "PIM units would be slower than any DRAM command stream)")
        require_range(self.ops_per_byte, "ops_per_byte", gt=0, le=1e6, fix="e.g. 1.0")
        for name in ("job_overhead_ns", "per_token_overhead_ns"):
            require_range(getattr(self, name), name, ge=0, le=1e9, fix="use 0 to ignore, or an overhead in ns")


@dataclass(frozen=True)
class HbmPimSpec:
    """HBM-PIM organisation per GPU, its DRAM timing, PIM units and how PIM shares the stacks.

    ``dram_preset`` names the DRAM preset that describes the organisation and timing; the system
    loader fills every field a TOML leaves out from it (:mod:`sieveopt.models.dram`)."""

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
    #: DRAM preset (``validation/dram/presets``); "" = the generation's (models/dram.py).
    dram_preset: str = ""

    def __post_init__(self) -> None:
        require_finite(self)
        for name in ("stacks_per_gpu", "pseudo_channels_per_stack", "bank_groups_per_pseudo_channel",
                     "banks_per_pseudo_channel", "page_size_bytes", "pseudo_channel_width_bits"):
            require_range(getattr(self, name), name, ge=1, le=2**20, fix="use the organisation value")
        require(self.banks_per_pseudo_channel % self.bank_groups_per_pseudo_channel == 0,
                "banks_per_pseudo_channel", "not a multiple of bank_groups_per_pseudo_channel",
                "banks must split evenly into bank groups")
        require_range(self.pin_rate_Gbps, "pin_rate_Gbps", gt=0, le=1e4, fix="e.g. 8.0")
        require_range(self.pim_bank_fraction, "pim_bank_fraction", gt=0, lt=1, fix="e.g. 0.5")

    @property
    def pseudo_channels_per_gpu(self) -> int:
        return self.stacks_per_gpu * self.pseudo_channels_per_stack

    @property
    def peak_bw_GBps(self) -> float:
        """Raw pin bandwidth of all stacks of one GPU (= the DRAM preset's external peak; a
        system whose pins disagree with its preset is rejected when the preset is resolved)."""
        return self.pseudo_channels_per_gpu * self.pseudo_channel_width_bits * self.pin_rate_Gbps / 8.0


@dataclass(frozen=True)
class InterconnectSpec:
    """GPU-to-GPU links through a non-blocking switch (NVLink + NVSwitch)."""

    name: str
    #: ``inf`` is allowed: an ideal interconnect (transfers cost only ``latency_ns``).
    bw_per_direction_GBps: float = field(metadata=INF_OK)
    latency_ns: float

    def __post_init__(self) -> None:
        require_finite(self)
        require_range(self.bw_per_direction_GBps, "bw_per_direction_GBps", gt=0,
                      fix="set GB/s per direction per GPU (inf = ideal)")
        require_range(self.latency_ns, "latency_ns", ge=0, le=1e9, fix="set the one-way latency in ns")


@dataclass(frozen=True)
class GpuVariabilitySpec:
    """Per-GPU speed factors of nominally identical GPUs (GEM, arXiv 2605.19945).

    GEM: "identical GPUs" differ by 7.7-27.7 % in MoE-layer speed (trimoe_gem.md §2.2). A
    factor s scales one GPU's sustained rate (``compute_speed`` multiplies peak FLOP/s,
    ``memory_speed`` the GPU's HBM streaming bandwidth; 1.0 = the spec's GPU). ``kind``:

    * ``none``: every GPU at 1.0 (the default);
    * ``fixed``: the listed factors, one per GPU;
    * ``uniform``: i.i.d. draws in [1 - spread, 1] with ``seed``;
    * ``lognormal``: exp(N(0, spread)), capped at 1 (the spec's GPU is the fastest);
    * ``profile``: a measured profile file (see :mod:`sieveopt.variability`).

    ``memory_spread < 0`` means "same draw as compute" (one scalar speed per GPU, GEM's
    simpler option t_g = t_ref / s_g); 0 keeps memory nominal.
    """

    kind: VariabilityKind = "none"
    compute_speed: tuple[float, ...] = ()
    memory_speed: tuple[float, ...] = ()
    spread: float = 0.0
    memory_spread: float = -1.0
    seed: int = 0
    profile: str = ""

    def __post_init__(self) -> None:
        for name in ("compute_speed", "memory_speed"):
            for i, v in enumerate(getattr(self, name)):
                require(v > 0, f"{name}[{i}]", f"speed factor must be > 0, got {v}",
                        "use a positive factor, 1.0 = the spec's GPU (e.g. 0.9 = 10 % slower)")
        if self.kind == "fixed":
            require(len(self.compute_speed) > 0, "compute_speed", "kind = 'fixed' needs factors",
                    "list one compute speed factor per GPU, e.g. [1.0, 0.9]")
            require(not self.memory_speed or len(self.memory_speed) == len(self.compute_speed),
                    "memory_speed", "length differs from compute_speed",
                    "give one memory factor per GPU or leave it empty (= nominal memory)")
        if self.kind in ("uniform", "lognormal"):
            require(0 <= self.spread < 1, "spread", f"must be in [0, 1), got {self.spread}",
                    "use e.g. 0.1 for GPUs up to 10 % slower than the fastest")
            require(self.memory_spread < 1, "memory_spread", f"must be < 1, got {self.memory_spread}",
                    "use -1 (same draw as compute), 0 (nominal memory) or a spread in (0, 1)")
        if self.kind == "profile":
            require(bool(self.profile), "profile", "kind = 'profile' needs a file",
                    "set profile = 'path/to/profile.json' (see sieveopt.variability)")


@dataclass(frozen=True)
class PcieSpec:
    """The GPU's host link (TriMoE's PCIe weight fetch and activation transfers)."""

    bw_GBps: float = 64.0
    latency_ns: float = 2000.0
    bandwidth_efficiency: float = 0.85

    def __post_init__(self) -> None:
        require_finite(self)
        require_range(self.bw_GBps, "offload.pcie.bw_GBps", gt=0, le=1e6, fix="set GB/s per direction")
        require_range(self.latency_ns, "offload.pcie.latency_ns", ge=0, le=1e9, fix="set the one-way latency in ns")
        require_range(self.bandwidth_efficiency, "offload.pcie.bandwidth_efficiency", gt=0, le=1,
                      fix="sustained / peak, in (0, 1]")


@dataclass(frozen=True)
class HostCpuSpec:
    """An AMX host CPU socket (TriMoE's warm-expert tier): a roofline of AMX throughput and
    host memory bandwidth; ``cores`` is the resource one expert job occupies (all of them)."""

    name: str = ""
    cores: int = 1
    amx_peak_TFLOPS: float = 1.0
    compute_efficiency: float = 0.5
    host_mem_bw_GBps: float = 100.0
    bandwidth_efficiency: float = 0.8
    job_overhead_ns: float = 5000.0

    def __post_init__(self) -> None:
        require_finite(self)
        require_range(self.cores, "offload.cpu.cores", ge=1, le=MAX_DIM, fix="set the socket's core count")
        require_range(self.amx_peak_TFLOPS, "offload.cpu.amx_peak_TFLOPS", gt=0, le=1e6, fix="set TFLOP/s")
        require_range(self.host_mem_bw_GBps, "offload.cpu.host_mem_bw_GBps", gt=0, le=1e6, fix="set GB/s")
        for n in ("compute_efficiency", "bandwidth_efficiency"):
            require_range(getattr(self, n), f"offload.cpu.{n}", gt=0, le=1, fix="sustained / peak, in (0, 1]")
        require_range(self.job_overhead_ns, "offload.cpu.job_overhead_ns", ge=0, le=1e9, fix="set ns per job")


@dataclass(frozen=True)
class DimmNdpSpec:
    """DIMM-NDP units (TriMoE's cold-expert tier): one NDP engine per DIMM, reading its own
    ranks at ``dimm_bw_GBps x internal_bw_multiplier`` with ``peak_GFLOPS`` of compute."""

    num_dimms: int = 1
    dimm_bw_GBps: float = 38.4
    internal_bw_multiplier: float = 4.0
    peak_GFLOPS: float = 100.0
    job_overhead_ns: float = 1000.0
    #: DIMM preset replay simulates NDP jobs and host reads on ("" = none: no cycle-level
    #: replay of the host tiers); checked against the numbers above on load (models/host_dram.py)
    dram_preset: str = ""

    def __post_init__(self) -> None:
        require_finite(self)
        require_range(self.num_dimms, "offload.ndp.num_dimms", ge=1, le=MAX_DIM, fix="set the DIMM-NDP count")
        require_range(self.dimm_bw_GBps, "offload.ndp.dimm_bw_GBps", gt=0, le=1e6, fix="set GB/s per DIMM")
        require_range(self.internal_bw_multiplier, "offload.ndp.internal_bw_multiplier", gt=0, le=1e4,
                      fix="internal (rank-parallel) / external DIMM bandwidth, e.g. 4")
        require_range(self.peak_GFLOPS, "offload.ndp.peak_GFLOPS", gt=0, le=1e9, fix="set GFLOP/s per DIMM")
        require_range(self.job_overhead_ns, "offload.ndp.job_overhead_ns", ge=0, le=1e9, fix="set ns per job")


@dataclass(frozen=True)
class OffloadSpec:
    """Host-side tiers of an offloading system (TriMoE, arXiv 2603.01058); absent = none.

    ``expert_modes`` / ``attention_modes`` are the DAG's default modes on this system (empty =
    the DagOptions defaults); ``routed_experts_in_host`` moves routed-expert weights out of the
    GPU capacity check ("all routed experts are offloaded to host DIMMs")."""

    expert_modes: tuple[str, ...] = ()
    attention_modes: tuple[str, ...] = ()
    routed_experts_in_host: bool = False
    #: The DAG's default ``DagOptions.host_memory`` on this system ("shared": CPU expert jobs and
    #: PCIe weight fetches draw on one host memory bandwidth, :mod:`sieveopt.offload_tiers`).
    host_memory: HostMemory = "independent"
    #: The DAG's default ``DagOptions.ndp_placement``: NDP jobs on "any" free DIMM, or each on its
    #: expert's "home" DIMM (expert e on DIMM e mod D; :mod:`sieveopt.offload_dimms`).
    ndp_placement: NdpPlacement = "any"
    pcie: PcieSpec = field(default_factory=PcieSpec)
    cpu: HostCpuSpec = field(default_factory=HostCpuSpec)
    ndp: DimmNdpSpec = field(default_factory=DimmNdpSpec)

    def __post_init__(self) -> None:
        if self.ndp.dram_preset:      # the DIMM preset and the spec's bandwidths must agree (fail on load)
            from sieveopt.models.host_dram import resolve_host_dram

            resolve_host_dram(self)


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
    #: Per-GPU speed factors (GEM variability); the default is identical GPUs.
    variability: GpuVariabilitySpec = field(default_factory=GpuVariabilitySpec)
    #: Host tiers of an offloading system (TriMoE); the default is none.
    offload: OffloadSpec = field(default_factory=OffloadSpec)

    def __post_init__(self) -> None:
        require_finite(self)
        require_range(self.num_gpus, "num_gpus", ge=1, le=MAX_GPUS,
                      fix=f"use 1 to {MAX_GPUS} GPUs (--gpus)")
        self._check_dram()

    def _check_dram(self) -> None:
        """Resolve the DRAM description now (cached), so a deviation the preset cannot take
        (e.g. a page smaller than one access) fails at the boundary, blamed on the system."""
        from sieveopt.models.dram import resolve_dram

        try:
            resolve_dram(self.hbm_pim, source=self.name)
        except SpecError as exc:  # source "<spec>": from_dict re-labels it with the system's file
            if exc.field.startswith("hbm_pim"):
                raise SpecError("<spec>", exc.field, exc.problem, exc.fix) from None
            raise SpecError("<spec>", "hbm_pim",
                            f"with this system's [hbm_pim] values its DRAM preset is invalid: "
                            f"{exc.field}: {exc.problem}",
                            f"{exc.fix}; change the [hbm_pim] field that sets {exc.field} "
                            "(docs/models.md) or choose another hbm_pim.dram_preset") from None

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
        """Internal PIM bandwidth of one GPU's stacks (all PIM units together): the peak of the
        resolved DRAM preset, ``internal_bw_multiplier`` x the pin peak in whole PIM cycles."""
        from sieveopt.models.dram import resolve_dram

        _, cfg, _ = resolve_dram(self.hbm_pim, source=self.name)
        bw = cfg.pim_bw_GBps_per_pch() * cfg.org.pseudo_channels
        if self.hbm_pim.sharing == "partitioned":
            bw *= self.hbm_pim.pim_bank_fraction
        return bw


#: Bytes per parameter -> format name (moe_models.md §2: BF16 2 B; FP8 1 B; MXFP4 4.25 bit).
_PRECISIONS = {2.0: "bf16", 1.0: "fp8", 0.53125: "mxfp4", 0.5625: "int4-g32", 4.0: "fp32"}


def precision_label(bytes_per_param: float) -> str:
    """``2.0 -> "bf16"``, ``0.53125 -> "mxfp4"``; other widths as ``"<bits>-bit"``."""
    return _PRECISIONS.get(float(bytes_per_param), f"{8 * float(bytes_per_param):g}-bit")
