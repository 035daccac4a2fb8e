"""Routing workloads: calibrated synthetic generator, trace loaders, placement, statistics.

* :func:`generate_routing` / :func:`generate_for_model`: latent-factor router logits +
  exact top-k (moe_models.md §5), per-model :data:`PROFILES`, continuous batching, seeded.
* :func:`load_chaos_trace`: "Patterns behind Chaos" per-request JSON traces, interleaved
  into decode batches; :func:`save_npz` / :func:`load_npz`: our compact format.
* :func:`token_gpu`, :func:`expert_gpu`, :func:`count_matrix`, :func:`dispatch_tokens`:
  placement over GPUs and the per-step ``cnt[G, E]`` / ``tok[G, G]`` matrices.
* :func:`workload_stats`, :func:`activated_fractions`: batch-histogram statistics;
  :func:`locality_stats`: T20 / L20 / reuse / top-20 % share / hot-set Jaccard.
"""

from sieveopt.workload.calibration import TARGETS, calibration_table
from sieveopt.workload.chaos import RequestTrace, load_chaos_trace, parse_request
from sieveopt.workload.generator import generate_for_model, generate_routing, topk_ids
from sieveopt.workload.locality import locality_stats
from sieveopt.workload.npz import load_npz, save_npz
from sieveopt.workload.placement import count_matrix, dispatch_tokens, expert_gpu, token_gpu
from sieveopt.workload.profiles import PROFILES, RoutingProfile, get_profile
from sieveopt.workload.stats import activated_fractions, workload_stats
from sieveopt.workload.trace import RoutingTrace, expert_counts

__all__ = [
    "PROFILES", "TARGETS", "RequestTrace", "RoutingProfile", "RoutingTrace",
    "activated_fractions", "calibration_table", "count_matrix", "dispatch_tokens",
    "expert_counts", "expert_gpu", "generate_for_model", "generate_routing", "get_profile",
    "load_chaos_trace", "load_npz", "locality_stats", "parse_request", "save_npz", "token_gpu", "topk_ids",
    "workload_stats",
]
