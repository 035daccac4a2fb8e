"""Decode-step work outside the MoE layer DAG: LM head, embeddings, dense (non-MoE) layers and
the prefill attention of mixed batches. All timed with the same cost model, GPU mode (roofline
``max(flops, bytes) + kernel overhead`` for ``roofline``), max over GPUs (data-parallel: every
GPU runs its own requests; the step waits for the slowest).

Prefill attention FLOPs (per layer, per prompt of L tokens; 4 FLOPs per (query, key) pair and
head dimension: QK^T and PV):

* full:    causal pairs L(L+1)/2;  sliding: pairs sum_i min(i+1, W);
* linear (Gated-DeltaNet-style): 4 * L * state elements (chunked delta rule, one state update
  and read-out per token);
* bytes: Q, K, V and output activations once (compute-bound for long prompts).

In MoE layers the prefill attention is the DAG's ``prefill_attn[g]`` GPU task (work from
:func:`sieveopt.models.work.prefill_attention_work`), in parallel with decode attention on PIM; only the dense
(non-MoE) layers add :func:`prefill_attention_ns` to the step outside the DAG.
"""

from __future__ import annotations

import numpy as np

from sieveopt.models import work as W
from sieveopt.models.costmodel import CostModel
from sieveopt.models.specs import ModelSpec
from sieveopt.targets import MODE_GPU, TARGETS, get_target

#: Re-exported: prompt attention FLOPs live in the layer-work model.
prefill_attention_flops = W.prefill_attention_flops


def lm_head_ns(model: ModelSpec, cost: CostModel, tokens_per_gpu: np.ndarray) -> float:
    """LM head (vocab x hidden GEMM, replicated weights) on the busiest GPU."""
    if not model.vocab_size:
        return 0.0
    times = [cost.duration_ns(W.lm_head_work(model, int(n)), MODE_GPU) for n in tokens_per_gpu if n > 0]
    return max(times, default=0.0)


def embedding_ns(model: ModelSpec, cost: CostModel, tokens_per_gpu: np.ndarray) -> float:
    """Embedding gather (one row read and written per token) on the busiest GPU."""
    times = [cost.duration_ns(W.embed_work(model, int(n)), MODE_GPU) for n in tokens_per_gpu if n > 0]
    return max(times, default=0.0)


def dense_layer_works(model: ModelSpec, layer: int, n: int, kv_tokens: float,
                      attention_mode: str) -> list[tuple[W.Work, str]]:
    """(work, mode) of one dense (non-MoE) decoder layer on ``n`` tokens, in order: QKV,
    attention (in ``attention_mode`` when that is a registered target, else on the GPU), output
    projection, the dense FFN. The one list behind the layer's time and its energy."""
    kind = model.attention.layer_kind(layer)
    attn_mode = attention_mode if attention_mode in TARGETS else MODE_GPU
    out = [(W.qkv_work(model, kind, n), MODE_GPU), (W.decode_attention_work(model, kind, n, float(kv_tokens)), attn_mode),
           (W.oproj_work(model, kind, n), MODE_GPU)]
    if model.dense_ffn_intermediate_size:
        out.append((W.dense_ffn_work(model, n), MODE_GPU))
    return out


def dense_layer_ns(model: ModelSpec, cost: CostModel, tokens_per_gpu: np.ndarray, kv_tokens_per_gpu: np.ndarray,
                   layer: int, attention_mode: str) -> float:
    """One dense (non-MoE) decoder layer (:func:`dense_layer_works`), serial, on the busiest GPU."""
    worst = 0.0
    for n, ctx in zip(tokens_per_gpu, kv_tokens_per_gpu, strict=True):
        n = int(n)
        if n == 0:
            continue
        t = 0.0
        for w, mode in dense_layer_works(model, layer, n, ctx, attention_mode):
            t += (cost.duration_ns(w, MODE_GPU) if w.kind != W.TaskKind.ATTN
                  else get_target(mode).duration_ns(cost, w))
        worst = max(worst, t)
    return worst


def prefill_attention_ns(model: ModelSpec, cost: CostModel, kind: str, length: int,
                         requests_per_gpu: list[int] | np.ndarray) -> float:
    """Prefill attention of one (dense, non-MoE) layer on the busiest GPU (prompts back to back).
    MoE layers carry theirs in the DAG (``prefill_attn[g]``)."""
    if length <= 0:
        return 0.0
    one = cost.duration_ns(W.prefill_attention_work(model, kind, length), MODE_GPU)
    return max((int(r) * one for r in requests_per_gpu), default=0.0)
