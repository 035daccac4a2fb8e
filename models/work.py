"""One layer-work model: what each piece of a decoder layer does, independent of where it runs.

Every function returns a :class:`Work` (FLOPs and bytes; the cost model and the execution
target turn it into time). The DAG builder (:mod:`sieveopt.dag`), the end-to-end step
(:mod:`sieveopt.e2e.extras`) and the planners (:mod:`sieveopt.solvers.plan_inputs`) all take
their work from here, so a layer is derived once. Conventions (DESIGN.md §5):

* 2 FLOPs per multiply-accumulate; weights are read once per kernel (``weight_bytes``), inputs
  and outputs of ``n`` tokens move as activations (``act_bytes``);
* attention projections: the output projection has ``q_heads * head_dim`` (full/sliding) or
  ``value_heads * value_head_dim`` (linear) inputs per output row; QKV is the rest of the
  layer's attention parameters (derived from the head geometry, also when the catalog gives
  the layer's parameter count directly, e.g. MLA);
* decode attention reads the KV cache (full: every context token; sliding: at most the window
  per request) or the recurrent state twice (linear: read and write back), 4 FLOPs per
  (query, key) pair and head dimension (QK^T and PV);
* routed expert: gate, up and down matrices (``3 d f`` parameters); the shared expert likewise
  with the dense weight precision; the weighted sum (``reduce``) reads ``top_k + 1`` vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sieveopt.models.specs import AttentionLayerKind, ModelSpec


class TaskKind(StrEnum):
    """Task kinds of the layer DAG (and of the work items outside it)."""

    QKV = "qkv"
    ATTN = "attn"
    PREFILL_ATTN = "prefill_attn"
    OPROJ = "oproj"
    ROUTER = "router"
    ALLGATHER = "allgather"
    SCHED = "sched"
    DISPATCH = "dispatch"
    LAUNCH = "launch"
    EXPERT = "expert"
    SHARED = "shared"
    COMBINE = "combine"
    REDUCE = "reduce"
    PREFETCH = "prefetch"          # a routed expert's weights copied ahead of use (next layer)
    # work outside the MoE layer DAG (end-to-end step)
    LM_HEAD = "lm_head"
    EMBED = "embed"
    DENSE_FFN = "dense_ffn"


#: Kinds that are messages between GPUs (timed on the interconnect).
MESSAGE_KINDS = (TaskKind.ALLGATHER, TaskKind.DISPATCH, TaskKind.COMBINE)


@dataclass(frozen=True, slots=True)
class Work:
    """What a task does, independent of where it runs (the cost model turns it into time).

    ``kind`` is the task kind (:class:`TaskKind`); bytes are per task.
    """

    kind: str
    tokens: int = 0
    flops: float = 0.0
    weight_bytes: float = 0.0     # parameters read once (GPU) or per token (PIM GEMV)
    act_bytes: float = 0.0        # activations moved between GPU and memory
    kv_bytes: float = 0.0         # KV cache / recurrent state read by attention
    msg_bytes: float = 0.0        # bytes on an interconnect port
    fixed_ns: float = 0.0         # a duration given directly (scheduler latency)
    launches: int = 1             # GPU kernel launches paid by this task (0 inside a grouped GEMM)


def _param_kind(kind: AttentionLayerKind) -> AttentionLayerKind:
    return "linear" if kind == "linear" else "full"


def attention_projection_params(model: ModelSpec, kind: AttentionLayerKind) -> tuple[int, int]:
    """(QKV, output-projection) parameters of one attention layer of ``kind``: the output
    projection maps the concatenated heads back to the hidden size (``q_heads * head_dim``
    inputs; linear attention: ``value_heads * value_head_dim``); QKV is the rest."""
    att, H = model.attention, model.hidden_size
    total = att.params_per_layer(H, _param_kind(kind))
    if kind == "linear":
        o = att.linear_num_value_heads * att.linear_value_head_dim * H
    else:
        o = att.num_q_heads * att.head_dim * H
    o = min(o, total)
    return total - o, o


def _dense_gemm(kind: str, model: ModelSpec, n: int, params: float, *, launches: int = 1) -> Work:
    """``n`` tokens through a dense ``params`` matrix (bf16 weights, H in and H out)."""
    act = model.activation_bytes
    return Work(kind, n, 2.0 * params * n, params * model.dense_weight_bytes_per_param,
                2 * n * model.hidden_size * act, launches=launches)


def qkv_work(model: ModelSpec, kind: AttentionLayerKind, n: int) -> Work:
    """The QKV projection of ``n`` tokens."""
    return _dense_gemm(TaskKind.QKV, model, n, attention_projection_params(model, kind)[0])


def oproj_work(model: ModelSpec, kind: AttentionLayerKind, n: int) -> Work:
    """The attention output projection of ``n`` tokens."""
    return _dense_gemm(TaskKind.OPROJ, model, n, attention_projection_params(model, kind)[1])


def decode_attention_work(model: ModelSpec, kind: AttentionLayerKind, requests: int, kv_tokens: float) -> Work:
    """Decode attention of ``requests`` requests holding ``kv_tokens`` context tokens in all."""
    att, act = model.attention, model.activation_bytes
    n = int(requests)
    if kind == "linear":
        state_bytes = att.linear_state_elems() * act
        return Work(TaskKind.ATTN, n, 4.0 * n * att.linear_state_elems(), kv_bytes=2.0 * n * state_bytes)
    ctx = float(kv_tokens)
    if kind == "sliding" and n:
        ctx = min(ctx, n * att.sliding_window_tokens)
    return Work(TaskKind.ATTN, n, 4.0 * ctx * att.num_q_heads * att.head_dim,
                kv_bytes=ctx * att.kv_elems_per_token() * act)


def prefill_attention_flops(model: ModelSpec, kind: AttentionLayerKind, length: int) -> float:
    """FLOPs of one prompt's attention in one layer: causal pairs L(L+1)/2 (full), pairs
    sum_i min(i+1, W) (sliding), 4 L state elements (linear, chunked delta rule)."""
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


def prefill_attention_work(model: ModelSpec, kind: AttentionLayerKind, length: int) -> Work:
    """One prompt's attention in one layer: FLOPs above; Q, K, V and output moved once."""
    if length <= 0:
        return Work(TaskKind.PREFILL_ATTN, 0)
    att, act = model.attention, model.activation_bytes
    io = length * (2 * att.num_q_heads * att.head_dim + att.kv_elems_per_token()) * act
    return Work(TaskKind.PREFILL_ATTN, int(length), prefill_attention_flops(model, kind, length), act_bytes=io)


def router_work(model: ModelSpec, n: int) -> Work:
    """The router (H x E gate) of ``n`` tokens; reads H per token, writes the logits."""
    rp = model.hidden_size * model.num_routed_experts
    return Work(TaskKind.ROUTER, n, 2.0 * rp * n, rp * model.dense_weight_bytes_per_param,
                n * model.hidden_size * model.activation_bytes)


def expert_work(model: ModelSpec, n: int, *, launches: int = 1) -> Work:
    """One routed expert on ``n`` tokens (``launches=0`` inside a grouped GEMM)."""
    return Work(TaskKind.EXPERT, n, model.expert_flops(n), model.expert_weight_bytes,
                2 * n * model.hidden_size * model.activation_bytes, launches=launches)


def prefetch_work(model: ModelSpec) -> Work:
    """One routed expert's weights copied into HBM ahead of use (no compute)."""
    return Work(TaskKind.PREFETCH, 0, 0.0, model.expert_weight_bytes)


def shared_expert_work(model: ModelSpec, n: int) -> Work:
    """Every shared expert of the layer on ``n`` tokens, as one kernel."""
    sp = 3 * model.hidden_size * model.shared_expert_intermediate_size * model.num_shared_experts
    return _dense_gemm(TaskKind.SHARED, model, n, sp)


def dense_ffn_work(model: ModelSpec, n: int) -> Work:
    """The FFN of a dense (non-MoE) layer on ``n`` tokens."""
    return _dense_gemm(TaskKind.DENSE_FFN, model, n, 3 * model.hidden_size * model.dense_ffn_intermediate_size)


def reduce_work(model: ModelSpec, n: int) -> Work:
    """Weighted sum of the top-k expert outputs (and the shared/residual one) of ``n`` tokens."""
    H, k = model.hidden_size, model.top_k
    return Work(TaskKind.REDUCE, n, 2.0 * n * H * k, act_bytes=(k + 1) * n * H * model.activation_bytes)


def lm_head_work(model: ModelSpec, n: int) -> Work:
    """LM head (vocab x hidden GEMM) of ``n`` tokens."""
    V, H = model.vocab_size, model.hidden_size
    return Work(TaskKind.LM_HEAD, int(n), 2.0 * V * H * n, V * H * model.dense_weight_bytes_per_param,
                n * (H + V) * model.activation_bytes)


def embed_work(model: ModelSpec, n: int) -> Work:
    """Embedding gather: one row read and written per token."""
    return Work(TaskKind.EMBED, int(n), act_bytes=2.0 * n * model.hidden_size * model.activation_bytes)


def allgather_work(model: ModelSpec, n: int, bytes_per_choice: int) -> Work:
    """Routing map of ``n`` tokens (top-k ids + weights) sent to one peer."""
    return Work(TaskKind.ALLGATHER, msg_bytes=int(n) * model.top_k * bytes_per_choice)


def token_message_work(kind: str, model: ModelSpec, n: int) -> Work:
    """``n`` hidden vectors on a link (dispatch or combine)."""
    return Work(kind, n, msg_bytes=n * model.hidden_size * model.activation_bytes)


def sched_work(latency_ns: float) -> Work:
    """The scheduler's decision: a given latency."""
    return Work(TaskKind.SCHED, fixed_ns=latency_ns)


def launch_work() -> Work:
    """The grouped-GEMM launch (one kernel overhead, no data)."""
    return Work(TaskKind.LAUNCH, launches=1)
