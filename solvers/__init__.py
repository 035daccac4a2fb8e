"""Solvers and policies, registered by name in :data:`SOLVERS` (entry-point group
``sieveopt.solvers``). Built-ins load lazily so importing the package stays cheap.

Use :func:`solve` to run one: ``solve("sieve", dag, instance, cost)``.
"""

from __future__ import annotations

from typing import Any

from sieveopt.registry import Registry, lazy
from sieveopt.solvers.base import SolveResult

SOLVERS = Registry("sieveopt.solvers", "solver")

_BUILTIN = {
    "sieve": ("sieveopt.solvers.sieve", "solve_sieve", "Sieve greedy (paper §5): all on PIM, move hottest to GPU while max(T) drops"),
    "sieve-plus": ("sieveopt.solvers.sieve_plus", "solve_sieve_plus", "Improved fast heuristic closing the gap to CP-SAT"),
    "sieve-pipe": ("sieveopt.solvers.sieve_pipe", "solve_sieve_pipe", "Sieve's sweep, objective of an M-micro-batch pipeline (period: M x load vs one micro-batch's chain)"),
    "gpu_only": ("sieveopt.solvers.baselines", "solve_gpu_only", "No PIM at all (attention and experts on the GPU)"),
    "noexp": ("sieveopt.solvers.baselines", "solve_noexp", "Attention on PIM, every expert on the GPU (NeuPIMs/PAISE)"),
    "allexp": ("sieveopt.solvers.baselines", "solve_allexp", "Every expert on PIM (PAPI/Stratum)"),
    "pimoe": ("sieveopt.solvers.baselines", "solve_pimoe", "PIMoE: busiest-channel hottest expert to GPU until T_GPU > T_PIM"),
    "duplex": ("sieveopt.solvers.baselines", "solve_duplex", "Duplex: all on GPU, move fewest-token experts to PIM while max improves"),
    "cpsat": ("sieveopt.solvers.cpsat", "solve_cpsat", "Exact CP-SAT over the layer DAG (OR-Tools)"),
}
for _name, (_mod, _attr, _doc) in _BUILTIN.items():
    SOLVERS.register(_name, lazy(_mod, _attr), doc=_doc)


def solve(name: str, dag: Any, instance: Any, cost: Any, **params: Any) -> SolveResult:
    """Run the registered solver ``name`` on one layer."""
    return SOLVERS.get(name)(dag, instance, cost, **params)


__all__ = ["SOLVERS", "SolveResult", "solve"]
