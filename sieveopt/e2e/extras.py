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
:func:`prefill_attention_work`), in parallel with decode attention on PIM; only the dense
(non-MoE) layers add :func:`prefill_attention_ns` to the step outside the DAG.
"""

from __future__ import annotations

import numpy as np

from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, CostModel, Work
from sieveopt.models.specs import ModelSpec


def lm_head_ns(model: ModelSpec, cost: CostModel, tokens_per_gpu: np.ndarray) -> float:
    """LM head (vocab x hidden GEMM, replicated weights) on the busiest GPU."""
    if not model.vocab_size:
        return 0.0
    V, H = model.vocab_size, model.hidden_size
    act, wb = model.activation_bytes, model.dense_weight_bytes_per_param
    times = [cost.duration_ns(Work("lm_head", int(n), 2.0 * V * H * n, V * H * wb, n * (H + V) * act), MODE_GPU)
             for n in tokens_per_gpu if n > 0]
    return max(times, default=0.0)


def embedding_ns(model: ModelSpec, cost: CostModel, tokens_per_gpu: np.ndarray) -> float:
    """Embedding gather (one row read and written per token) on the busiest GPU."""
    H, act = model.hidden_size, model.activation_bytes
    times = [cost.duration_ns(Work("embed", int(n), act_bytes=2.0 * n * H * act), MODE_GPU)
             for n in tokens_per_gpu if n > 0]
    return max(times, default=0.0)


def dense_layer_ns(model: ModelSpec, cost: CostModel, tokens_per_gpu: np.ndarray, kv_tokens_per_gpu: np.ndarray,
                   layer: int, attention_mode: str) -> float:
    """One dense (non-MoE) decoder layer: projections, attention and the dense FFN, serial, on
    the busiest GPU (attention on PIM or GPU as the policy placed it in the MoE layers)."""
    att, H = model.attention, model.hidden_size
    act, wb = model.activation_bytes, model.dense_weight_bytes_per_param
    kind = att.layer_kind(layer)
    p_attn = att.params_per_layer(H, "linear" if kind == "linear" else "full")
    p_ffn = 3 * H * model.dense_ffn_intermediate_size
    worst = 0.0
    for n, ctx in zip(tokens_per_gpu, kv_tokens_per_gpu, strict=True):
        n = int(n)
        if n == 0:
            continue
        if kind == "linear":
            kv, fl = 2.0 * n * att.linear_state_elems() * act, 4.0 * n * att.linear_state_elems()
        else:
            c = float(ctx) if kind == "full" else min(float(ctx), n * att.sliding_window_tokens)
            kv, fl = c * att.kv_elems_per_token() * act, 4.0 * c * att.num_q_heads * att.head_dim
        t = cost.duration_ns(Work("qkv", n, 2.0 * p_attn * n, p_attn * wb, 2 * n * H * act), MODE_GPU)
        t += cost.duration_ns(Work("attn", n, fl, kv_bytes=kv), attention_mode if attention_mode in (MODE_GPU, MODE_PIM) else MODE_GPU)
        if p_ffn:
            t += cost.duration_ns(Work("dense_ffn", n, 2.0 * p_ffn * n, p_ffn * wb, 2 * n * H * act), MODE_GPU)
        worst = max(worst, t)
    return worst


def prefill_attention_flops(model: ModelSpec, kind: str, length: int) -> float:
    """FLOPs of one prompt's attention in one layer of ``kind`` (see the module docstring)."""
    att = model.attention
    L = int(length)
    if kind == "linear":
        return 4.0 * L * att.linear_state_elems()
    if kind == "sliding":
        w = att.sliding_window_tokens
        pairs = L * (L + 1) / 2 if L <= w else w * (w + 1) / 2 + (L - w) * w
    else:
        pairs = L * (L + 1) / 2
    return 4.0 * pairs * att.num_q_heads * att.head_dim


def prefill_attention_work(model: ModelSpec, kind: str, length: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one prompt's attention in one layer of ``kind``."""
    if length <= 0:
        return 0.0, 0.0
    att, act = model.attention, model.activation_bytes
    io = length * (2 * att.num_q_heads * att.head_dim + att.kv_elems_per_token()) * act
    return prefill_attention_flops(model, kind, length), io


def prefill_attention_ns(model: ModelSpec, cost: CostModel, kind: str, length: int,
                         requests_per_gpu: list[int] | np.ndarray) -> float:
    """Prefill attention of one (dense, non-MoE) layer on the busiest GPU (prompts back to back).
    MoE layers carry theirs in the DAG (``prefill_attn[g]``)."""
    if length <= 0:
        return 0.0
    flops, io = prefill_attention_work(model, kind, length)
    one = cost.duration_ns(Work("prefill_attn", int(length), flops, act_bytes=io), MODE_GPU)
    return max((int(r) * one for r in requests_per_gpu), default=0.0)
