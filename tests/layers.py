"""Shared pieces of the single-layer solver tests: the check that every static bound the exact
solver may use stays below a feasible makespan."""

from __future__ import annotations

from sieveopt.dag import TaskDAG
from sieveopt.solvers.cpsat_bounds import (
    class_partition_bound,
    count_bound,
    heads_tails,
    load_cuts,
    partition_bound,
    static_lower_bound,
)


def assert_bounds_below(dag: TaskDAG, ub: int) -> None:
    """Every static bound the exact solver may use (with and without resource-aware heads/tails)
    is <= ``ub`` (an optimum or any feasible makespan)."""
    d = [{m: c.duration_ns for m, c in t.modes.items()} for t in dag.tasks]
    for serial in (False, True):
        ht = heads_tails(dag, d, resource_aware=serial)
        assert ht.critical_path_ns <= ub
        assert static_lower_bound(dag, d, ht, load_cuts(dag, d, ht)) <= ub
        pb = partition_bound(dag, d, ht)
        assert pb is None or pb.bound_ns <= ub
        cb = count_bound(dag, d, ht)
        assert cb is None or cb.bound_ns <= ub
        assert all(v <= ub for v in class_partition_bound(dag, d, ht).values())
