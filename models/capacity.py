"""Parameter counts and per-GPU memory of a model on a system (the capacity check).

Placement follows the design (DESIGN.md §4): *data-parallel attention, expert parallelism
across GPUs*. So every GPU holds a full copy of everything that is not a routed expert
(attention projections, dense FFN layers, shared experts, routers, the embedding table and
the LM head) plus its ``ceil(E / GPUs)`` routed experts of every MoE layer, and the KV cache
of its ``ceil(batch / GPUs)`` requests at the requested context length.

Precisions: routed experts use ``expert_weight_bytes_per_param``; every other weight
(shared experts included) uses ``dense_weight_bytes_per_param``; the KV cache and the
linear-attention state use ``activation_bytes`` per element. The embedding table and the LM
head are counted separately (untied); norms and biases are ignored (< 0.01 %).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sieveopt.models.specs import MAX_GPUS, ModelSpec, SystemSpec

GIB = 2**30


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by part (whole model) and the per-token active count."""

    routed_experts: int
    shared_experts: int
    attention: int
    dense_ffn: int
    routers: int
    embeddings: int  # input embedding + LM head
    total: int
    active: int


def param_counts(model: ModelSpec) -> ParamCounts:
    """Total and active parameters, to compare with the model card (``sieveopt show model``)."""
    H, L, M = model.hidden_size, model.num_layers, model.num_moe_layers
    routed = M * model.num_routed_experts * model.expert_params
    shared = M * model.num_shared_experts * 3 * H * model.shared_expert_intermediate_size
    att = sum(model.attention.params_per_layer(H, "linear" if model.attention.layer_kind(i) == "linear"
                                               else "full") for i in range(L))
    dense = (L - M) * 3 * H * model.dense_ffn_intermediate_size
    routers = M * H * model.num_routed_experts
    emb = 2 * model.vocab_size * H
    rest = shared + att + dense + routers + emb
    return ParamCounts(routed, shared, att, dense, routers, emb, routed + rest,
                       M * model.top_k * model.expert_params + rest)


@dataclass(frozen=True)
class GpuMemory:
    """Bytes one GPU must hold, by part, against its ``hbm_capacity_GiB``."""

    num_gpus: int
    batch: int
    context_len_tokens: int
    routed_experts: float
    shared_experts: float
    attention: float
    dense_ffn: float
    routers: float
    embeddings: float
    kv_cache: float
    capacity: float

    @property
    def total(self) -> float:
        return (self.routed_experts + self.shared_experts + self.attention + self.dense_ffn
                + self.routers + self.embeddings + self.kv_cache)

    @property
    def fits(self) -> bool:
        return self.total <= self.capacity

    def to_dict(self) -> dict[str, float | int | bool]:
        d = {k: (round(v / GIB, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        d = {(k + "_GiB" if isinstance(v, float) else k): v for k, v in d.items()}
        d["total_GiB"] = round(self.total / GIB, 3)
        d["fits"] = self.fits
        return d

    def breakdown(self) -> str:
        parts = [("routed experts", self.routed_experts), ("shared experts", self.shared_experts),
                 ("attention", self.attention), ("dense FFN", self.dense_ffn), ("routers", self.routers),
                 ("embeddings + LM head", self.embeddings),
                 (f"KV cache ({-(-self.batch // self.num_gpus)} of {self.batch} requests x "
                  f"{self.context_len_tokens} tokens)", self.kv_cache)]
        return ", ".join(f"{n} {v / GIB:.2f}" for n, v in parts if v)


def kv_bytes_per_request(model: ModelSpec, context_len_tokens: int) -> float:
    """KV cache (full/sliding layers) plus recurrent state (linear layers) of one request."""
    att, act = model.attention, model.activation_bytes
    total = 0.0
    for i in range(model.num_layers):
        kind = att.layer_kind(i)
        if kind == "linear":
            total += att.linear_state_elems() * act
        else:
            tokens = min(context_len_tokens, att.sliding_window_tokens) if kind == "sliding" else context_len_tokens
            total += tokens * att.kv_elems_per_token() * act
    return total


def gpu_memory(model: ModelSpec, system: SystemSpec, *, num_gpus: int | None = None, batch: int = 0,
               context_len_tokens: int = 2048) -> GpuMemory:
    """Per-GPU bytes of ``model`` on ``num_gpus`` GPUs (default: the system's) serving
    ``batch`` requests of ``context_len_tokens`` each (module docstring: placement, precisions)."""
    G = system.num_gpus if num_gpus is None else int(num_gpus)
    pc = param_counts(model)
    wd = model.dense_weight_bytes_per_param
    # Offloading systems keep every routed expert in host memory (TriMoE: "all routed experts
    # are offloaded to host DIMMs"); the GPU holds only what is replicated and the KV cache.
    experts_here = 0 if system.offload.routed_experts_in_host else -(-model.num_routed_experts // G)
    return GpuMemory(
        num_gpus=G, batch=batch, context_len_tokens=context_len_tokens,
        routed_experts=float(experts_here * model.expert_weight_bytes * model.num_moe_layers),
        shared_experts=float(pc.shared_experts * wd), attention=float(pc.attention * wd),
        dense_ffn=float(pc.dense_ffn * wd), routers=float(pc.routers * wd), embeddings=float(pc.embeddings * wd),
        kv_cache=float(-(-batch // G) * kv_bytes_per_request(model, context_len_tokens)) if batch else 0.0,
        capacity=float(system.gpu.hbm_capacity_GiB * GIB))


def min_gpus_to_fit(model: ModelSpec, system: SystemSpec, *, batch: int = 0,
                    context_len_tokens: int = 2048) -> int | None:
    """Smallest GPU count >= 1 at which every part fits, or None if none up to MAX_GPUS does
    (the replicated part alone exceeds one GPU)."""
    for g in range(1, MAX_GPUS + 1):
        if gpu_memory(model, system, num_gpus=g, batch=batch, context_len_tokens=context_len_tokens).fits:
            return g
    return None
