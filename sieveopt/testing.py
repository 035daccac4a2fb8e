"""Small random instances for tests and examples (property tests of every solver use these)."""

from __future__ import annotations

import numpy as np

from sieveopt.instance import LayerInstance
from sieveopt.models.specs import AttentionSpec, ModelSpec, SystemSpec


def tiny_model(num_experts: int = 8, top_k: int = 2, hidden: int = 1024, inter: int = 512,
               shared: int = 0, name: str = "tiny") -> ModelSpec:
    """A small synthetic MoE model (BF16) for fast tests."""
    return ModelSpec(name=name, num_layers=4, num_moe_layers=4, hidden_size=hidden,
                     num_routed_experts=num_experts, top_k=top_k, expert_intermediate_size=inter,
                     expert_weight_bytes_per_param=2.0, routing_profile="qwen128",
                     num_shared_experts=shared, shared_expert_intermediate_size=inter if shared else 0,
                     attention=AttentionSpec(num_q_heads=8, num_kv_heads=2, head_dim=64))


def random_expert_ids(rng: np.random.Generator, batch: int, num_experts: int, top_k: int,
                      skew: float = 1.0) -> np.ndarray:
    """``[B, k]`` distinct expert ids per token, drawn from a Zipf-like popularity (``skew``)."""
    pop = 1.0 / np.arange(1, num_experts + 1) ** skew
    pop = pop[rng.permutation(num_experts)]
    gumbel = np.log(pop)[None, :] + rng.gumbel(size=(batch, num_experts))
    return np.argsort(-gumbel, axis=1)[:, :top_k]


def random_instance(rng: np.random.Generator, model: ModelSpec, system: SystemSpec, batch: int,
                    skew: float = 1.0, context_len_tokens: int = 1024) -> LayerInstance:
    ids = random_expert_ids(rng, batch, model.num_routed_experts, model.top_k, skew)
    ctx = rng.integers(1, 2 * context_len_tokens, size=batch)
    return LayerInstance.from_expert_ids(model, system, ids, context_lens=ctx)


def random_periodic_problem(seed: int, gpus: int, microbatches: int, window_layers: int = 2,
                            requests_per_microbatch_per_gpu: int = 2, system: str = "sieve-b200-hbm3e-pim"):
    """A random ``microbatch`` periodic problem (tiny model, roofline costs): ``window_layers``
    layers x ``microbatches`` random micro-batches of ``requests_per_microbatch_per_gpu x gpus``
    requests, seeded. Shared by the pipeline-runtime and sieve-pipe property tests."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.models.catalog import load_system
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.periodic import build_periodic_problem

    rng = np.random.default_rng(seed)
    model = tiny_model(num_experts=8, top_k=2, shared=seed % 2)
    spec = load_system(system, gpus)
    cost = make_cost_model("roofline", spec, model)
    window = [[random_instance(rng, model, spec, requests_per_microbatch_per_gpu * gpus)
               for _ in range(microbatches)] for _ in range(window_layers)]
    return build_periodic_problem(window, cost, make_execution_model("microbatch", microbatches,
                                                                     window_layers=window_layers))


def catalog_window(model: str, gpus: int, batch: int, microbatches: int = 2, window_layers: int = 2, *,
                   seed: int = 0, runtime_order_evaluations: int | None = None,
                   system: str = "sieve-b200-hbm3e-pim"):
    """The sampled ``microbatch`` window of a catalog model on ``gpus`` GPUs (roofline costs, the
    seed-``seed`` layers) as a periodic problem: the study windows the pipeline-runtime,
    periodic-bound and sieve-pipe tests run on."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.overlap import sample_problem

    spec, sys_spec = load_model(model), load_system(system, gpus)
    cost = make_cost_model("roofline", sys_spec, spec)
    ex = make_execution_model("microbatch", microbatches, window_layers=window_layers, batch=batch, num_gpus=gpus,
                              runtime_order_evaluations=runtime_order_evaluations)
    return sample_problem(spec, sys_spec, batch, ex, seed, cost)


def schedule_digest(ps) -> str:
    """sha256 (16 hex digits) of a periodic schedule's modes, starts, ends and superperiod: the
    bit-for-bit identity the pipeline runtime's golden test and speed benchmark compare."""
    import hashlib

    h = hashlib.sha256()
    h.update(repr(tuple(ps.modes)).encode())
    h.update(np.asarray(ps.start_ns, dtype=np.int64).tobytes())
    h.update(np.asarray(ps.end_ns, dtype=np.int64).tobytes())
    h.update(str(int(ps.superperiod_ns)).encode())
    return h.hexdigest()[:16]
