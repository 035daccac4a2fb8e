"""Shared pieces of the single-layer solver tests: the random small layers their property tests
draw (hypothesis parameters and the builder) and the check that every static bound the exact
solver may use stays below a feasible makespan."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from sieveopt.dag import DagOptions, TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.models.catalog import load_system
from sieveopt.models.costmodel import CostModel
from sieveopt.pipeline import build_dag
from sieveopt.solvers.cpsat_bounds import (
    class_partition_bound,
    count_bound,
    heads_tails,
    load_cuts,
    partition_bound,
    static_lower_bound,
)
from sieveopt.testing import random_instance, tiny_model

SYSTEM = "sieve-b200-hbm3e-pim"


def layer_params(max_experts: int = 16, max_batch: int = 48) -> dict[str, st.SearchStrategy]:
    """``@given(**layer_params())``: the parameters of :func:`random_layer` (1, 2 or 4 GPUs, 2 to
    ``max_experts`` experts, 1 to ``max_batch`` tokens, both GPU kernels and every HBM sharing)."""
    return {"seed": st.integers(0, 10_000), "gpus": st.sampled_from([1, 2, 4]),
            "experts": st.integers(2, max_experts), "batch": st.integers(1, max_batch),
            "shared": st.integers(0, 1), "kernel": st.sampled_from(["grouped", "per_expert"]),
            "sharing": st.sampled_from(["exclusive", "dual_row_buffer", "partitioned"])}


def random_layer(seed: int, gpus: int, experts: int, batch: int, shared: int, kernel: str,
                 sharing: str) -> tuple[np.random.Generator, LayerInstance, TaskDAG, CostModel]:
    """A random layer of a tiny model (at least one expert per GPU, top-2 or fewer) on ``gpus``
    GPUs: the generator (for further draws), the instance, its DAG and its cost model."""
    rng = np.random.default_rng(seed)
    model = tiny_model(num_experts=max(experts, gpus), top_k=min(2, experts), shared=shared)
    inst = random_instance(rng, model, load_system(SYSTEM, num_gpus=gpus), batch)
    dag, cost = build_dag(inst, options=DagOptions(gpu_kernel=kernel, hbm_sharing=sharing))
    return rng, inst, dag, cost


def assert_bounds_below(dag: TaskDAG, ub: int) -> None:
    """Every static bound the exact solver may use (with and without resource-aware heads/tails)
    is <= ``ub`` (an optimum or any feasible makespan)."""
    d = dag.mode_durations_ns()
    for serial in (False, True):
        ht = heads_tails(dag, d, resource_aware=serial)
        assert ht.critical_path_ns <= ub
        assert static_lower_bound(dag, d, ht, load_cuts(dag, d, ht)) <= ub
        pb = partition_bound(dag, d, ht)
        assert pb is None or pb.bound_ns <= ub
        cb = count_bound(dag, d, ht)
        assert cb is None or cb.bound_ns <= ub
        assert all(v <= ub for v in class_partition_bound(dag, d, ht).values())
