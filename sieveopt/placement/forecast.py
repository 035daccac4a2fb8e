"""Per-expert load forecasts for the next window, from one layer's routing history.

A predictor maps the history ``H[t, E]`` (tokens per expert per step, oldest first) to a
scenario matrix ``[S, E]`` that a placement policy optimises over. Mean predictors give one
row (the expected load); the ``window`` predictor gives the last W steps *as joint samples*,
so experts that are hot together stay together in a scenario (the spatial co-activation that
Patterns behind Chaos reports: "a small fraction of expert pairs carries most
co-activations", trimoe_gem.md §3 item 5) and the temporal locality of consecutive steps
(item 2, "adjacent tokens in the same layer re-use a small set of experts").

* ``last``: the last step (persistence);
* ``mean``: the mean of the last W steps (EPLB's README suggests "a moving average of
  historical statistics", moe_models.md §4);
* ``ema``: exponential moving average with alpha = 0.3, TriMoE's predictor ("EMA_e <- alpha
  F_e + (1 - alpha) EMA_e with alpha = 0.3", trimoe_gem.md §1.5);
* ``window``: the last W steps as scenarios (co-activation preserving);
* ``oracle``: the true next window (a reference only; it reads the future).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EMA_ALPHA = 0.3
PREDICTORS = ("last", "mean", "ema", "window", "oracle")


def predict(name: str, history: np.ndarray, *, window: int = 32, future: np.ndarray | None = None,
            alpha: float = EMA_ALPHA) -> np.ndarray:
    """Scenario matrix ``[S, E]`` (float) for the next window (see module docstring)."""
    H = np.atleast_2d(np.asarray(history, dtype=float))
    if H.shape[0] == 0:
        raise ValueError("predict: empty history")
    fns: dict[str, Callable[[], np.ndarray]] = {
        "last": lambda: H[-1:],
        "mean": lambda: H[-window:].mean(axis=0, keepdims=True),
        "ema": lambda: _ema(H, alpha)[None, :],
        "window": lambda: H[-window:],
        "oracle": lambda: _oracle(future),
    }
    if name not in fns:
        raise ValueError(f"unknown predictor {name!r}; use one of {', '.join(PREDICTORS)}")
    return fns[name]()


def _ema(H: np.ndarray, alpha: float) -> np.ndarray:
    ema = H[0].copy()
    for row in H[1:]:
        ema = alpha * row + (1.0 - alpha) * ema
    return ema


def _oracle(future: np.ndarray | None) -> np.ndarray:
    if future is None:
        raise ValueError("the oracle predictor needs the future window")
    return np.atleast_2d(np.asarray(future, dtype=float))


def scenario_steps(name: str, window: int, future_steps: int) -> int:
    """Rows of the scenario :func:`predict` returns for ``name``: ``window`` for ``window``, the
    future window's ``future_steps`` for ``oracle``, one for the mean predictors."""
    return {"window": window, "oracle": future_steps}.get(name, 1)


def forecast_error(pred: np.ndarray, actual: np.ndarray, *, hot_share: float = 0.1) -> dict[str, float]:
    """Error of a forecast's mean load against the actual next window ``[K, E]``.

    * ``wape``: sum |pred - actual| / sum actual of the per-expert mean loads;
    * ``hot_recall``: share of the actual top ``hot_share`` experts (by mean load) that the
      forecast also ranks in its top ``hot_share`` (ties by lower id).
    """
    p = np.atleast_2d(pred).mean(axis=0)
    a = np.atleast_2d(actual).mean(axis=0)
    k = max(1, int(np.ceil(hot_share * a.size - 1e-9)))
    top_a = set(np.lexsort((np.arange(a.size), -a))[:k].tolist())
    top_p = set(np.lexsort((np.arange(p.size), -p))[:k].tolist())
    return {"wape": float(np.abs(p - a).sum() / max(a.sum(), 1e-12)),
            "hot_recall": len(top_a & top_p) / k}
