"""End-to-end evaluation: decode-step model, throughput vs interactivity sweeps, Pareto plots.

* :mod:`~sieveopt.e2e.workload`: context lengths, per-attention-kind layer sampling, mixed prefill.
* :mod:`~sieveopt.e2e.extras`: LM head, embeddings, dense layers, prefill attention work.
* :mod:`~sieveopt.e2e.breakdown`: critical-path time attribution and per-resource busy time.
* :mod:`~sieveopt.e2e.step`: ``prepare_step`` / ``run_step`` -> :class:`StepResult` (throughput,
  interactivity, breakdown) for one (model, system, batch, policy).
* :mod:`~sieveopt.e2e.sweep`: batches x policies sweeps, Pareto front, CSV/JSON/plot outputs.
"""

from sieveopt.e2e.policies import DEFAULT_POLICIES, check_policies, load_replay, policy_params
from sieveopt.e2e.step import (
    StepProblem,
    StepResult,
    StepSettings,
    interactivity_tok_s_per_user,
    prepare_step,
    run_step,
    throughput_tok_s_per_gpu,
)
from sieveopt.e2e.workload import ContextDist, PrefillSpec

__all__ = [
    "DEFAULT_POLICIES", "ContextDist", "PrefillSpec", "StepProblem", "StepResult", "StepSettings",
    "check_policies", "interactivity_tok_s_per_user", "load_replay", "policy_params", "prepare_step",
    "run_step", "throughput_tok_s_per_gpu",
]
