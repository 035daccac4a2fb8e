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

from dataclasses import dataclass

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


# -- the step's work outside the MoE layers as one list (time, replay and energy share it) --------
@dataclass(frozen=True)
class FixedItem:
    """One kernel of the step outside the MoE layer DAG, on one GPU. ``part`` groups items that
    run back to back on every GPU and wait for the slowest one (``lm_head``, ``embed``,
    ``dense[i]``, ``prefill[i]``); ``count`` back-to-back repetitions (prompts of a GPU)."""

    part: str
    gpu: int
    work: W.Work
    mode: str
    count: int = 1


def fixed_items(model: ModelSpec, tokens_per_gpu, kv_tokens_per_gpu, head_tokens, attention_mode: str,
                prefill_len: int = 0, prefill_requests_per_gpu=None) -> list[FixedItem]:
    """Every kernel of the step outside the MoE layers, per GPU: embedding and LM head over
    ``head_tokens`` (decode tokens + prefill prompts' last tokens), each dense layer's
    :func:`dense_layer_works` over the GPU's decode tokens, each dense layer's prefill attention
    per prompt. The predicted times (:func:`lm_head_ns`, :func:`embedding_ns`,
    :func:`dense_layer_ns`, :func:`prefill_attention_ns`) are :func:`items_ns` of this list under
    the cost model (tested), and the replay times and energy of the step use it too."""
    out: list[FixedItem] = []
    for g, n in enumerate(head_tokens):
        if int(n) > 0:
            out.append(FixedItem("embed", g, W.embed_work(model, int(n)), MODE_GPU))
            if model.vocab_size:
                out.append(FixedItem("lm_head", g, W.lm_head_work(model, int(n)), MODE_GPU))
    n_dense = model.num_layers - model.num_moe_layers
    for i in range(n_dense):
        for g, (n, ctx) in enumerate(zip(tokens_per_gpu, kv_tokens_per_gpu, strict=True)):
            if int(n) > 0:
                out += [FixedItem(f"dense[{i}]", g, w, m) for w, m in dense_layer_works(model, i, int(n), ctx,
                                                                                         attention_mode)]
        if prefill_len > 0 and prefill_requests_per_gpu is not None:
            kind = model.attention.layer_kind(i)
            out += [FixedItem(f"prefill[{i}]", g, W.prefill_attention_work(model, kind, prefill_len), MODE_GPU, int(r))
                    for g, r in enumerate(prefill_requests_per_gpu) if int(r) > 0]
    return out


def predicted_item_ns(cost: CostModel, item: FixedItem) -> float:
    """Cost-model time of one item (all repetitions): attention in its mode's target, the rest on the GPU."""
    w = item.work
    one = get_target(item.mode).duration_ns(cost, w) if w.kind == W.TaskKind.ATTN else cost.duration_ns(w, MODE_GPU)
    return item.count * one


def items_ns(items: list[FixedItem], time_ns) -> dict[str, float]:
    """Per part group (``embed``, ``lm_head``, ``dense``, ``prefill``): the sum over its parts of the
    slowest GPU's serial time, each item timed by ``time_ns(item)``."""
    per: dict[str, dict[int, float]] = {}
    for it in items:
        g = per.setdefault(it.part, {})
        g[it.gpu] = g.get(it.gpu, 0.0) + time_ns(it)
    out = {"embed": 0.0, "lm_head": 0.0, "dense": 0.0, "prefill": 0.0}
    for part, by_gpu in per.items():
        out[part.split("[")[0]] += max(by_gpu.values())
    return out
