"""Expert placement over time: which GPU holds which experts (and replicas) for a window of steps.

* :mod:`~sieveopt.placement.core`: :class:`Placement`, HBM capacity, weight movement;
* :mod:`~sieveopt.placement.surrogate`: the fast layer-time surrogate placements optimise;
* :mod:`~sieveopt.placement.policies`: round-robin, EPLB, GEM (:data:`PLACEMENT_POLICIES`);
* :mod:`~sieveopt.placement.exact`: CP-SAT optimum with certified bound and gap;
* :mod:`~sieveopt.placement.forecast`: per-expert load predictors and their errors;
* :mod:`~sieveopt.placement.evaluate`: multi-step decode runs under a placement policy.
"""

from sieveopt.placement import exact as _exact  # noqa: F401  (registers "exact")
from sieveopt.placement.core import Placement, check_capacity, movement, slots_per_gpu
from sieveopt.placement.evaluate import EvalConfig, compare_policies, drifting_trace, run_policy
from sieveopt.placement.forecast import PREDICTORS, forecast_error, predict
from sieveopt.placement.policies import PLACEMENT_POLICIES, PlacementProblem
from sieveopt.placement.surrogate import Surrogate

__all__ = [
    "PLACEMENT_POLICIES", "PREDICTORS", "EvalConfig", "Placement", "PlacementProblem", "Surrogate",
    "check_capacity", "compare_policies", "drifting_trace", "forecast_error", "movement", "predict",
    "run_policy", "slots_per_gpu",
]
