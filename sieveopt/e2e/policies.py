"""Policies are registry names (``sieveopt.solvers.SOLVERS``); this module checks the names, gives
each policy its parameters and loads the replay engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sieveopt.errors import SieveoptError
from sieveopt.solvers import common_params, default_policies

#: Policies of the paper's comparison plus our extensions, in plotting order.
DEFAULT_POLICIES = default_policies()
#: CP-SAT per-layer time limit used by the end-to-end sweeps unless told otherwise.
DEFAULT_CPSAT_TIME_LIMIT_S = 2.0


def check_policies(names: Sequence[str]) -> None:
    """Raise a :class:`SieveoptError` naming every unknown or repeated policy."""
    from sieveopt.solvers import SOLVERS

    if not names:
        raise SieveoptError("--policies: give at least one policy name")
    known = SOLVERS.names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SieveoptError(f"--policies: unknown polic{'y' if len(unknown) == 1 else 'ies'} "
                            f"{', '.join(unknown)} (known: {', '.join(known)})")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise SieveoptError(f"--policies: listed twice: {', '.join(dup)}")


def policy_params(name: str, *, time_limit_s: float = DEFAULT_CPSAT_TIME_LIMIT_S) -> dict[str, Any]:
    """Solver parameters used by the end-to-end sweeps: the time limit, for policies that
    declare one (``PolicyInfo.params``)."""
    return common_params(name, time_limit_s=float(time_limit_s))


ReplayFn = Callable[..., Any]


def load_replay() -> ReplayFn:
    """``sieveopt.validation.replay.replay`` (imported on first use: it loads the simulators)."""
    from sieveopt.validation.replay import replay

    return replay


def replayed_makespan_ns(result: Any) -> int:
    """Makespan of a :class:`sieveopt.validation.replay.ReplayResult`."""
    return int(result.makespan_ns)
