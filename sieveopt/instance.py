"""One MoE decode layer as a frozen problem instance: model, system and the routing of its batch.

The routing is kept as the count matrix ``counts[src_gpu, expert]`` plus the deduplicated
dispatch token matrix ``dispatch_tokens[src_gpu, dst_gpu]`` (a token sent to several experts on
the same GPU travels once, DeepEP-style), which is all the DAG needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sieveopt.errors import SieveoptError
from sieveopt.models.specs import ModelSpec, SystemSpec

#: Default decode context length per request when the workload gives none (documented in README).
DEFAULT_CONTEXT_LEN_TOKENS = 2048


@dataclass(frozen=True, eq=False)
class LayerInstance:
    """Inputs of one layer's scheduling problem (arrays are read-only)."""

    model: ModelSpec
    system: SystemSpec
    counts: np.ndarray             # int32 [G, E]: tokens of GPU g routed to expert e
    dispatch_tokens: np.ndarray    # int32 [G, G]: distinct tokens GPU i sends to GPU j
    expert_gpu: np.ndarray         # int32 [E]: GPU holding expert e
    tokens_per_gpu: np.ndarray     # int32 [G]: decode requests (tokens) per GPU
    kv_tokens_per_gpu: np.ndarray  # int64 [G]: summed context length of each GPU's requests
    moe_layer: int = 0
    step: int = 0
    meta: dict = field(default_factory=dict)
    #: Decode requests per GPU (attention reads their KV cache); None = ``tokens_per_gpu``.
    #: Differs from ``tokens_per_gpu`` when prefill tokens share the batch.
    decode_requests_per_gpu: np.ndarray | None = None
    #: Prefill attention work per GPU (runs on the GPU beside decode attention); None = none.
    prefill_attn_flops_per_gpu: np.ndarray | None = None
    prefill_attn_bytes_per_gpu: np.ndarray | None = None

    def __post_init__(self) -> None:
        G, E = self.system.num_gpus, self.model.num_routed_experts
        if self.decode_requests_per_gpu is None:
            object.__setattr__(self, "decode_requests_per_gpu", self.tokens_per_gpu.copy())
        for name in ("prefill_attn_flops_per_gpu", "prefill_attn_bytes_per_gpu"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(G))
        _check_shape("decode_requests_per_gpu", self.decode_requests_per_gpu, (G,))
        _check_shape("prefill_attn_flops_per_gpu", self.prefill_attn_flops_per_gpu, (G,))
        _check_shape("prefill_attn_bytes_per_gpu", self.prefill_attn_bytes_per_gpu, (G,))
        if (self.decode_requests_per_gpu > self.tokens_per_gpu).any():
            raise SieveoptError("LayerInstance.decode_requests_per_gpu: more decode requests than tokens on a GPU")
        _check_shape("counts", self.counts, (G, E))
        _check_shape("dispatch_tokens", self.dispatch_tokens, (G, G))
        _check_shape("expert_gpu", self.expert_gpu, (E,))
        _check_shape("tokens_per_gpu", self.tokens_per_gpu, (G,))
        _check_shape("kv_tokens_per_gpu", self.kv_tokens_per_gpu, (G,))
        for name in ("counts", "dispatch_tokens", "tokens_per_gpu", "kv_tokens_per_gpu", "decode_requests_per_gpu",
                     "prefill_attn_flops_per_gpu", "prefill_attn_bytes_per_gpu"):
            if (getattr(self, name) < 0).any():
                raise SieveoptError(f"LayerInstance.{name}: negative entries (token counts must be >= 0)")
        if ((self.expert_gpu < 0) | (self.expert_gpu >= G)).any():
            raise SieveoptError(f"LayerInstance.expert_gpu: values must be GPU ids in [0, {G})")
        for arr in (self.counts, self.dispatch_tokens, self.expert_gpu, self.tokens_per_gpu,
                    self.kv_tokens_per_gpu, self.decode_requests_per_gpu, self.prefill_attn_flops_per_gpu,
                    self.prefill_attn_bytes_per_gpu):
            arr.setflags(write=False)

    @property
    def num_gpus(self) -> int:
        return self.system.num_gpus

    @property
    def batch(self) -> int:
        return int(self.tokens_per_gpu.sum())

    @property
    def expert_tokens(self) -> np.ndarray:
        """Tokens per expert over all source GPUs, [E]."""
        return self.counts.sum(axis=0)

    def experts_on(self, gpu: int) -> np.ndarray:
        """Activated experts placed on ``gpu``, in expert-id order."""
        return np.flatnonzero((self.expert_gpu == gpu) & (self.expert_tokens > 0))

    @classmethod
    def from_expert_ids(cls, model: ModelSpec, system: SystemSpec, expert_ids: np.ndarray, *,
                        moe_layer: int = 0, step: int = 0, context_lens: np.ndarray | None = None,
                        placement: np.ndarray | None = None, meta: dict | None = None,
                        token_gpu: np.ndarray | None = None, decode_rows: int | None = None,
                        prefill_attn_flops_per_gpu: np.ndarray | None = None,
                        prefill_attn_bytes_per_gpu: np.ndarray | None = None) -> LayerInstance:
        """Build from the routing of one step/layer: ``expert_ids[T, k]``, one row per token.

        By default every row is a decode request and DP attention places request b on GPU
        ``b * G // B``; ``token_gpu`` gives an explicit GPU per row. With ``decode_rows=D`` only
        the first D rows are decode requests (``context_lens`` has D entries) and the rest are
        prefill tokens (routed, projected, but attended by the prefill-attention work given).
        Expert e lives on GPU ``e % G`` unless ``placement`` says otherwise.
        """
        from sieveopt.workload.placement import count_matrix, dispatch_tokens, expert_gpu
        from sieveopt.workload.placement import token_gpu as dp_token_gpu

        expert_ids = np.asarray(expert_ids)
        if expert_ids.ndim != 2:
            raise SieveoptError(f"expert_ids: expected shape [tokens, top_k], got {expert_ids.shape}")
        T, G, E = expert_ids.shape[0], system.num_gpus, model.num_routed_experts
        D = T if decode_rows is None else decode_rows
        if not 0 <= D <= T:
            raise SieveoptError(f"decode_rows: must be in [0, {T}], got {D}")
        tg = dp_token_gpu(T, G) if token_gpu is None else np.asarray(token_gpu, dtype=np.int64)
        if tg.shape != (T,) or ((tg < 0) | (tg >= G)).any():
            raise SieveoptError(f"token_gpu: expected {T} GPU ids in [0, {G})")
        eg = expert_gpu(E, G, placement)
        ctx = np.full(D, DEFAULT_CONTEXT_LEN_TOKENS) if context_lens is None else np.asarray(context_lens)
        if ctx.shape != (D,):
            raise SieveoptError(f"context_lens: expected shape ({D},), got {ctx.shape}")
        return cls(model=model, system=system,
                   counts=count_matrix(expert_ids, tg, G, E).astype(np.int32),
                   dispatch_tokens=dispatch_tokens(expert_ids, tg, eg, G).astype(np.int32),
                   expert_gpu=eg.astype(np.int32),
                   tokens_per_gpu=np.bincount(tg, minlength=G).astype(np.int32),
                   kv_tokens_per_gpu=np.bincount(tg[:D], weights=ctx, minlength=G).astype(np.int64),
                   moe_layer=moe_layer, step=step, meta=dict(meta or {}),
                   decode_requests_per_gpu=np.bincount(tg[:D], minlength=G).astype(np.int32),
                   prefill_attn_flops_per_gpu=None if prefill_attn_flops_per_gpu is None
                   else np.asarray(prefill_attn_flops_per_gpu, dtype=float),
                   prefill_attn_bytes_per_gpu=None if prefill_attn_bytes_per_gpu is None
                   else np.asarray(prefill_attn_bytes_per_gpu, dtype=float))


def _check_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        got = getattr(arr, "shape", type(arr).__name__)
        raise SieveoptError(f"LayerInstance.{name}: expected shape {shape}, got {got}")


def sample_layers(model: ModelSpec, system: SystemSpec, batch: int, num_layers: int, seed: int, *,
                  steps: int = 4, context_len_tokens: int = DEFAULT_CONTEXT_LEN_TOKENS,
                  placement: np.ndarray | None = None) -> list[LayerInstance]:
    """``num_layers`` distinct (step, MoE layer) samples of the calibrated routing generator."""
    from sieveopt.workload import generate_for_model

    if batch < 1:
        raise SieveoptError(f"batch: must be >= 1, got {batch}")
    rng = np.random.default_rng(seed)
    n_moe = model.num_moe_layers
    layers = np.sort(rng.choice(n_moe, size=min(num_layers, n_moe), replace=False))
    steps = max(steps, -(-num_layers // len(layers)))
    trace = generate_for_model(model, batch, steps, seed, layers=[int(x) for x in layers])
    out: list[LayerInstance] = []
    pairs = [(s, i) for s in range(steps) for i in range(len(layers))]
    for s, i in pairs[:num_layers] if num_layers <= len(layers) else pairs[:num_layers]:
        out.append(LayerInstance.from_expert_ids(
            model, system, trace.expert_ids[s, i], moe_layer=int(layers[i]), step=s,
            context_lens=np.full(batch, context_len_tokens), placement=placement,
            meta={"seed": seed, "source": "generator"}))
    return out
