"""Next-layer expert prefetch on TriMoE's offloading tier (``DagOptions.prefetch_experts``).

TriMoE's predictor drives a background action that "prefetch[es] predicted-hot experts into GPU
HBM" (trimoe_gem.md §1.5 item 2, [S]), from "an exponential moving average of each expert's load
... with alpha = 0.3" (§1.5 item 1, [S]). In the layer DAG (:mod:`sieveopt.dag`) that is, per GPU
and layer, in steady state:

* this layer's ``P`` predicted-hot experts were fetched during the previous layer: those that are
  activated may run on the GPU from HBM (mode ``gpu``, "GPU hit: f_calc_gpu(L)", §1.3 item 3)
  besides the three tiers (``DagOptions.resident_experts``); a predicted expert that is not
  activated is a wasted fetch (still charged, below);
* this layer fetches the next layer's ``P`` predicted-hot experts: ``P`` copy tasks
  (``gpu_prefetch``, :mod:`sieveopt.offload_tiers`) that hold the PCIe link -- and with
  ``host_memory = "shared"`` a host-memory lane, like any fetch -- from the layer's start, and
  must end before its ``reduce`` (the next layer needs them). They compete with this layer's own
  fetches for the link: the schedule decides the order.

**HBM capacity.** ``2 P`` expert buffers are live (this layer's resident experts and the next
layer's incoming ones); they must fit in the HBM left after dense weights, shared experts, the
KV cache and activations (``models.capacity.gpu_memory``; the §1.9 default's capacity rule). A
larger ``P`` fails naming the field and the limit.

**Prediction.** The EMA (alpha = 0.3) of the same layer's per-expert token counts over the
``history`` previous decode steps; the ``P`` experts with the highest EMA (ties: lower id). Which
experts the next layer prefetches does not change this layer's DAG (every copy costs one expert's
bytes), so a single-layer DAG needs only ``P``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sieveopt.errors import SpecError

#: Decode steps of routing history behind each prediction (two relayout periods of §1.9's w = 4).
PREFETCH_HISTORY_STEPS = 8


def prefetch_buffers(model: Any, system: Any, batch: int, context_len_tokens: int = 2048) -> int:
    """Whole routed experts that fit in the HBM left after everything else on one GPU."""
    from sieveopt.models.capacity import gpu_memory

    mem = gpu_memory(model, system, batch=batch, context_len_tokens=context_len_tokens)
    return int(max(0.0, mem.capacity - mem.total) // model.expert_weight_bytes)


def predicted_hot(history: np.ndarray, count: int, predictor: str = "ema") -> tuple[int, ...]:
    """The ``count`` experts with the highest forecast load (ties: lower id; only experts with
    a positive forecast)."""
    from sieveopt.placement.forecast import predict

    pred = predict(predictor, np.asarray(history, dtype=float)).mean(axis=0)
    order = sorted(range(pred.size), key=lambda e: (-pred[e], e))
    return tuple(int(e) for e in order[:count] if pred[e] > 0)


def check_prefetch_system(system: Any, count: int) -> None:
    """``--prefetch N`` (N > 0) needs an expert tier that caches weights in HBM (a target with a
    ``prefetch_mode``, e.g. TriMoE's ``gpu_fetch``); on any other system it would change nothing."""
    from sieveopt.dag import DagOptions
    from sieveopt.targets import get_target

    if count and not any(get_target(m).prefetch_mode for m in DagOptions.for_system(system).expert_modes):
        raise SpecError("--prefetch", "prefetch_experts",
                        f"system {system.name} has no expert tier that fetches weights into HBM",
                        "drop --prefetch, or use a system with a GPU fetch tier (e.g. trimoe-h100-xeon-ndp)")


def prefetch_options(system: Any, model: Any, batch: int, history: np.ndarray, count: int,
                     **overrides: Any) -> Any:
    """The DAG options of one layer with ``count`` prefetched experts (resident from the
    prediction, ``count`` copies for the next layer); checks the HBM buffers."""
    from sieveopt.dag import DagOptions

    if count < 0:
        raise SpecError("prefetch", "prefetch_experts", f"must be >= 0, got {count}", "use --prefetch 2")
    if count:
        have = prefetch_buffers(model, system, batch)
        if 2 * count > have:
            raise SpecError("prefetch", "prefetch_experts",
                            f"{count} prefetched experts need {2 * count} expert buffers in HBM "
                            f"(this layer's and the next one's); {have} fit beside the rest at batch {batch}",
                            f"use --prefetch {have // 2} or less, or a smaller batch")
    resident = predicted_hot(history, count) if count else ()
    return DagOptions.for_system(system, resident_experts=resident, prefetch_experts=count, **overrides)


def sample_with_history(model: Any, system: Any, batch: int, num_layers: int, seed: int,
                        history: int = PREFETCH_HISTORY_STEPS,
                        context_len_tokens: int | None = None) -> list[tuple[Any, np.ndarray]]:
    """``num_layers`` sampled MoE layers, each at decode step ``history`` of the calibrated
    generator, with its ``[history, E]`` token counts of the steps before (the predictor's input)."""
    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
    from sieveopt.workload import generate_for_model

    if history < 1:
        raise SpecError("prefetch", "history", f"must be >= 1, got {history}", f"use {PREFETCH_HISTORY_STEPS}")
    rng = np.random.default_rng(seed)
    n_moe = model.num_moe_layers
    layers = np.sort(rng.choice(n_moe, size=min(num_layers, n_moe), replace=False))
    trace = generate_for_model(model, batch, history + 1, seed, layers=[int(x) for x in layers])
    counts = trace.counts()
    out = []
    for i, layer in enumerate(layers):
        inst = LayerInstance.from_expert_ids(
            model, system, trace.expert_ids[history, i], moe_layer=int(layer), step=history,
            context_lens=np.full(batch, context_len_tokens or DEFAULT_CONTEXT_LEN_TOKENS),
            meta={"seed": seed, "source": "generator", "history_steps": history})
        out.append((inst, counts[:history, i, :]))
    return out
