"""Policies are registry names (``sieveopt.solvers.SOLVERS``); this module checks that they can
actually run here and gives each its parameters, and finds the optional replay engine."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from sieveopt.errors import SieveoptError
from sieveopt.solvers import common_params, default_policies

#: Policies of the paper's comparison plus our extensions, in plotting order.
DEFAULT_POLICIES = default_policies()
#: CP-SAT per-layer time limit used by the end-to-end sweeps unless told otherwise.
DEFAULT_CPSAT_TIME_LIMIT_S = 2.0


def _builtin_target(name: str) -> tuple[str, str] | None:
    from sieveopt import solvers

    entry = getattr(solvers, "_BUILTIN", {}).get(name)
    return (entry[0], entry[1]) if entry else None


def policy_available(name: str) -> bool:
    """True when ``name`` is registered and (for lazily-loaded built-ins) its module exists."""
    from sieveopt.solvers import SOLVERS

    if name not in SOLVERS.names():
        return False
    target = _builtin_target(name)
    if target is None:
        return True
    mod, attr = target
    try:
        if importlib.util.find_spec(mod) is None:
            return False
        return hasattr(importlib.import_module(mod), attr)
    except ImportError:
        return False


def check_policies(names: Sequence[str]) -> None:
    """Raise a :class:`SieveoptError` naming every unknown or not-yet-available policy."""
    from sieveopt.solvers import SOLVERS

    if not names:
        raise SieveoptError("--policies: give at least one policy name")
    known = SOLVERS.names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SieveoptError(f"--policies: unknown polic{'y' if len(unknown) == 1 else 'ies'} "
                            f"{', '.join(unknown)} (known: {', '.join(known)})")
    missing = [n for n in names if not policy_available(n)]
    if missing:
        raise SieveoptError(f"--policies: {', '.join(missing)} registered but not available in this "
                            f"installation yet (its solver module is missing); drop "
                            f"{'it' if len(missing) == 1 else 'them'} from --policies")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise SieveoptError(f"--policies: listed twice: {', '.join(dup)}")


def policy_params(name: str, *, time_limit_s: float = DEFAULT_CPSAT_TIME_LIMIT_S) -> dict[str, Any]:
    """Solver parameters used by the end-to-end sweeps: the time limit, for policies that
    declare one (``PolicyInfo.params``)."""
    return common_params(name, time_limit_s=float(time_limit_s))


ReplayFn = Callable[..., Any]


def load_replay() -> ReplayFn:
    """``sieveopt.validation.replay.replay`` or a clear error when the replay engine is missing."""
    try:
        mod = importlib.import_module("sieveopt.validation.replay")
    except ImportError as exc:
        raise SieveoptError("--replay: the replay engine (sieveopt.validation.replay) is not available in "
                            "this installation yet; run without --replay") from exc
    fn = getattr(mod, "replay", None)
    if fn is None:
        raise SieveoptError("--replay: sieveopt.validation.replay has no replay() function; run without --replay")
    return fn


def replayed_makespan_ns(result: Any) -> int:
    """Makespan from a replay result (attribute, mapping key or timed arrays)."""
    for key in ("makespan_ns", "replayed_makespan_ns"):
        v = getattr(result, key, None)
        if v is None and isinstance(result, dict):
            v = result.get(key)
        if v is not None:
            return int(v)
    end = getattr(result, "end_ns", None)
    if end is None and isinstance(result, dict):
        end = result.get("end_ns")
    if end is not None:
        return int(max(end))
    raise SieveoptError(f"--replay: cannot read a makespan from the replay result ({type(result).__name__})")
