"""Workload side of the end-to-end model: context lengths, sampled layers, mixed prefill.

* Context lengths: one per decode request, drawn once per (batch, seed) and shared by every
  layer of the step. Default ``lognormal`` with median 2048 tokens and sigma 0.5, clipped to
  [16, 32768] (decode requests of a chat/maths workload mid-generation); ``uniform`` draws from
  [mean/2, 3*mean/2]; ``fixed`` gives every request ``mean`` tokens.
* Layer sampling: the MoE layers are grouped by attention kind (full / sliding / linear, from
  the model's ``AttentionSpec.layer_pattern``); ``num_layers`` samples are split over the kinds
  proportionally to their layer counts (at least one per kind present), so every kind's
  attention cost is represented and weighted by how many layers it has.
* Mixed prefill: ``prefill_requests`` prompts of ``prefill_len_tokens`` tokens ride along in
  the decode batch. Their tokens are routed by the same calibrated generator (own seeded
  stream), add to the expert token counts and the dispatch, and go through the dense
  projections. Prefill request p lives on GPU ``p % G`` (all its tokens). Their attention is
  the DAG's ``prefill_attn[g]`` GPU task (beside decode attention on PIM); dense non-MoE
  layers add it to the step outside the DAG.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from sieveopt.errors import SieveoptError
from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.workload import (
    generate_for_model,
    token_gpu,
)

CONTEXT_DISTS = ("lognormal", "uniform", "fixed")
#: Seed offset of the prefill routing stream (independent of the decode routing).
PREFILL_SEED_OFFSET = 7919
#: Seed offset of the context-length stream.
CONTEXT_SEED_OFFSET = 104729


@dataclass(frozen=True)
class ContextDist:
    """Distribution of decode context lengths (tokens already in each request's KV cache)."""

    kind: str = "lognormal"
    mean_tokens: int = DEFAULT_CONTEXT_LEN_TOKENS
    sigma: float = 0.5
    min_tokens: int = 16
    max_tokens: int = 32768

    def __post_init__(self) -> None:
        if self.kind not in CONTEXT_DISTS:
            raise SieveoptError(f"context distribution '{self.kind}': use one of {', '.join(CONTEXT_DISTS)}")
        if self.mean_tokens < 1:
            raise SieveoptError(f"context length: must be >= 1 token, got {self.mean_tokens}")

    def draw(self, batch: int, seed: int) -> np.ndarray:
        """int64 ``[batch]`` context lengths (seeded)."""
        rng = np.random.default_rng([seed, CONTEXT_SEED_OFFSET])
        if self.kind == "fixed":
            ctx = np.full(batch, float(self.mean_tokens))
        elif self.kind == "uniform":
            ctx = rng.uniform(0.5 * self.mean_tokens, 1.5 * self.mean_tokens, batch)
        else:  # lognormal with median mean_tokens
            ctx = self.mean_tokens * np.exp(rng.normal(0.0, self.sigma, batch))
        lo = min(self.min_tokens, self.mean_tokens)
        return np.clip(np.rint(ctx), lo, max(self.max_tokens, self.mean_tokens)).astype(np.int64)


@dataclass(frozen=True)
class PrefillSpec:
    """Prefill requests inside a decode batch (0 = decode-only, the paper's main setting)."""

    requests: int = 0
    len_tokens: int = 0

    def __post_init__(self) -> None:
        if self.requests < 0 or self.len_tokens < 0:
            raise SieveoptError("--prefill/--prefill-len: must be >= 0 (fix: e.g. --prefill 2 --prefill-len 1024)")
        if self.requests > 0 and self.len_tokens < 1:
            raise SieveoptError("--prefill-len: prefill requests need a length >= 1 token "
                                "(fix: e.g. --prefill-len 1024)")
        if self.requests == 0 and self.len_tokens > 0:
            raise SieveoptError(f"--prefill-len {self.len_tokens}: no prefill requests to give it to "
                                "(fix: add --prefill N, or drop --prefill-len)")

    @property
    def tokens(self) -> int:
        return self.requests * self.len_tokens if self.requests else 0


def layers_by_kind(model: ModelSpec) -> dict[str, list[int]]:
    """MoE-layer indices grouped by their attention kind (insertion order: first seen)."""
    out: dict[str, list[int]] = {}
    for layer in range(model.num_moe_layers):
        out.setdefault(model.moe_layer_attention_kind(layer), []).append(layer)
    return out


def allocate_samples(counts: dict[str, int], num_samples: int) -> dict[str, int]:
    """Split ``num_samples`` over kinds proportionally to ``counts`` (largest remainder), at
    least one per kind and never more than a kind has layers."""
    kinds = list(counts)
    n = max(num_samples, len(kinds))
    total = sum(counts.values())
    quota = {k: n * counts[k] / total for k in kinds}
    alloc = {k: max(1, int(quota[k])) for k in kinds}
    rest = sorted(kinds, key=lambda k: quota[k] - int(quota[k]), reverse=True)
    i = 0
    while sum(alloc.values()) < n and i < 4 * len(kinds):
        k = rest[i % len(kinds)]
        if alloc[k] < counts[k]:
            alloc[k] += 1
        i += 1
    return {k: min(alloc[k], counts[k]) for k in kinds}


def sample_layer_ids(model: ModelSpec, num_samples: int, seed: int) -> dict[str, list[int]]:
    """Seeded choice of MoE layers per attention kind (see the module docstring)."""
    if num_samples < 1:
        raise SieveoptError(f"--layers: must be >= 1, got {num_samples}")
    groups = layers_by_kind(model)
    alloc = allocate_samples({k: len(v) for k, v in groups.items()}, num_samples)
    rng = np.random.default_rng([seed, 31337])
    return {k: sorted(int(x) for x in rng.choice(groups[k], size=alloc[k], replace=False)) for k in groups}


def step_instances(model: ModelSpec, system: SystemSpec, batch: int, layer_ids: list[int], seed: int,
                   context_lens: np.ndarray, prefill: PrefillSpec | None = None) -> list[LayerInstance]:
    """One :class:`LayerInstance` per MoE layer of a decode step (same requests in every layer)."""
    if batch < 1:
        raise SieveoptError(f"batch: must be >= 1, got {batch}")
    prefill = prefill or PrefillSpec()
    trace = generate_for_model(model, batch, 1, seed, layers=layer_ids)
    ptrace = None
    if prefill.tokens:
        ptrace = generate_for_model(model, prefill.tokens, 1, seed + PREFILL_SEED_OFFSET, layers=layer_ids)
    out = []
    for i, layer in enumerate(layer_ids):
        ids = trace.expert_ids[0, i]
        if ptrace is None:
            inst = LayerInstance.from_expert_ids(model, system, ids, moe_layer=layer, context_lens=context_lens,
                                                 meta={"seed": seed, "source": "generator"})
        else:
            inst = mixed_instance(model, system, ids, ptrace.expert_ids[0, i], prefill, context_lens,
                                  moe_layer=layer, meta={"seed": seed, "source": "generator"})
        out.append(inst)
    return out


def mixed_instance(model: ModelSpec, system: SystemSpec, decode_ids: np.ndarray, prefill_ids: np.ndarray,
                   prefill: PrefillSpec, context_lens: np.ndarray, *, moe_layer: int = 0,
                   meta: dict | None = None) -> LayerInstance:
    """A layer whose batch holds decode rows ``decode_ids[B, k]`` and prefill token rows
    ``prefill_ids[P*L, k]`` (request p's L tokens on GPU ``p % G``).

    Prefill rows count in the expert token counts, the dispatch and ``tokens_per_gpu`` (they go
    through the projections) but not in the decode attention: their attention is the DAG's
    ``prefill_attn[g]`` GPU task, beside decode attention on PIM.
    """
    from sieveopt.models.work import prefill_attention_work

    G = system.num_gpus
    B = decode_ids.shape[0]
    if prefill_ids.shape[0] != prefill.tokens:
        raise SieveoptError(f"prefill routing: expected {prefill.tokens} token rows, got {prefill_ids.shape[0]}")
    tg = np.concatenate([token_gpu(B, G),
                         np.repeat(np.arange(prefill.requests, dtype=np.int64) % G, prefill.len_tokens)])
    ids = np.concatenate([np.asarray(decode_ids, dtype=np.int64), np.asarray(prefill_ids, dtype=np.int64)])
    requests_per_gpu = np.bincount(np.arange(prefill.requests) % G, minlength=G)
    pw = prefill_attention_work(model, model.moe_layer_attention_kind(moe_layer), prefill.len_tokens)
    flops, io_bytes = pw.flops, pw.act_bytes
    m = dict(meta or {})
    m.update(prefill_requests=prefill.requests, prefill_len_tokens=prefill.len_tokens,
             decode_tokens_per_gpu=np.bincount(tg[:B], minlength=G).tolist(),
             prefill_requests_per_gpu=requests_per_gpu.tolist())
    return LayerInstance.from_expert_ids(model, system, ids, moe_layer=moe_layer, context_lens=context_lens,
                                         meta=m, token_gpu=tg, decode_rows=B,
                                         prefill_attn_flops_per_gpu=requests_per_gpu * flops,
                                         prefill_attn_bytes_per_gpu=requests_per_gpu * io_bytes)


def kind_counts(model: ModelSpec) -> Counter:
    """Number of MoE layers of each attention kind."""
    return Counter({k: len(v) for k, v in layers_by_kind(model).items()})
