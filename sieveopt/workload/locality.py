"""Locality and long-window skew metrics of a routing trace (moe_models.md §5.3, §5.5 item 3).

Estimators (all deterministic; "top 20 %" = the ``ceil(0.2 * E)`` largest entries):

* **T20** (token-level, Orders-in-Chaos Ob2). For every layer, pool the transition counts
  ``M[i, j]`` = number of (request, step t) where expert i is among the request's experts at
  step t and j among its experts at step t+1 (all k x k pairs; the same request must occupy the
  slot at t and t+1, from ``request_ids``; without them the slot is assumed to keep its
  request). Row i is the empirical P(next expert | current expert i). T20 is the mass covered
  by the top 20 % of each row, averaged over conditioning experts weighted by their row total
  (i.e. ``sum_i top20(M[i]) / sum_i sum_j M[i, j]``), pooled over layers the same way.
* **L20** (cross-layer, Ob1): the same with ``M[i, j]`` = (token, step) where i is chosen at
  stored layer l and j at the next stored layer, for stored layers whose absolute ids are
  consecutive (``layer_ids[l+1] == layer_ids[l] + 1``); NaN when there is no such pair.
* **reuse**: ``|experts(r, t, l) & experts(r, t+1, l)| / k``, averaged over every
  (same-request step pair, slot, layer).
* **top20_share**: per layer, share of all tokens of the whole trace (the long window) that go
  to the ``ceil(0.2 * E)`` most popular experts; mean over layers.
* **hot-set Jaccard** at lag L: the hot set of (step, layer) is the ``ceil(0.1 * E)`` experts
  with most tokens (ties broken by lower expert id); Jaccard of the sets at t and t+L, mean over
  t and layers; NaN when ``steps <= L``.

The top-20 % row masses are biased upward on short traces: a row seen n times has at most
``n * k`` non-zero entries, so sparse rows are "covered" trivially. Uniform routing gives
T20 -> 0.2 only when each row holds many more than E pairs; compare metrics on traces of equal
length.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sieveopt.workload.trace import RoutingTrace

#: Pair budget per bincount call (bounds the temporary memory to a few tens of MB).
_PAIR_CHUNK = 4_000_000


def top_count(num_experts: int, share: float) -> int:
    """Number of experts in the top ``share`` of ``num_experts`` (at least 1)."""
    return max(1, math.ceil(share * num_experts - 1e-9))


def same_request(trace: RoutingTrace) -> np.ndarray:
    """Bool ``[steps-1, B]``: slot b holds the same request at steps t and t+1."""
    if trace.request_ids is None:
        return np.ones((max(trace.steps - 1, 0), trace.batch), dtype=bool)
    rid = trace.request_ids
    return rid[1:] == rid[:-1]


def _pair_counts(src: np.ndarray, dst: np.ndarray, num_experts: int) -> np.ndarray:
    """Transition counts ``[E, E]`` of all k x k pairs of matching rows ``src[n, k]``, ``dst[n, k]``."""
    e = num_experts
    out = np.zeros(e * e, dtype=np.int64)
    k = src.shape[1]
    rows_per_chunk = max(1, _PAIR_CHUNK // (k * dst.shape[1]))
    for lo in range(0, src.shape[0], rows_per_chunk):
        a = src[lo:lo + rows_per_chunk].astype(np.int64)
        b = dst[lo:lo + rows_per_chunk].astype(np.int64)
        flat = (a[:, :, None] * e + b[:, None, :]).ravel()
        out += np.bincount(flat, minlength=e * e)
    return out.reshape(e, e)


def top_mass(transitions: np.ndarray, share: float = 0.2) -> tuple[float, float]:
    """(sum over rows of the top-``share`` row mass, total mass) of a count matrix ``[E, E]``."""
    m = top_count(transitions.shape[1], share)
    top = -np.partition(-transitions, m - 1, axis=1)[:, :m] if m < transitions.shape[1] else transitions
    return float(top.sum()), float(transitions.sum())


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def token_locality(trace: RoutingTrace, share: float = 0.2) -> dict[str, Any]:
    """T20 and reuse, pooled and per stored layer (see the module docstring)."""
    e, k = trace.num_experts, trace.top_k
    same = same_request(trace)
    per_t20, per_reuse = [], []
    num = den = 0.0
    hits = pairs = 0
    for j in range(trace.num_layers):
        ids = trace.expert_ids[:, j]  # [steps, B, k]
        src, dst = ids[:-1][same], ids[1:][same]  # [n, k]
        t_num, t_den = top_mass(_pair_counts(src, dst, e), share)
        h = int((src[:, :, None] == dst[:, None, :]).sum()) if src.size else 0
        per_t20.append(_ratio(t_num, t_den))
        per_reuse.append(_ratio(h, src.shape[0] * k))
        num, den, hits, pairs = num + t_num, den + t_den, hits + h, pairs + src.shape[0]
    return {
        "t20": _ratio(num, den), "reuse": _ratio(hits, pairs * k),
        "t20_per_layer": per_t20, "reuse_per_layer": per_reuse, "pairs": pairs,
    }


def layer_locality(trace: RoutingTrace, share: float = 0.2) -> dict[str, Any]:
    """L20 over consecutive stored layers with consecutive absolute ids (NaN if none)."""
    e, k = trace.num_experts, trace.top_k
    num = den = 0.0
    per: list[float] = [float("nan")] * trace.num_layers
    for j in range(trace.num_layers - 1):
        if trace.layer_ids[j + 1] != trace.layer_ids[j] + 1:
            continue
        src = trace.expert_ids[:, j].reshape(-1, k)
        dst = trace.expert_ids[:, j + 1].reshape(-1, k)
        t_num, t_den = top_mass(_pair_counts(src, dst, e), share)
        per[j] = _ratio(t_num, t_den)
        num, den = num + t_num, den + t_den
    return {"l20": _ratio(num, den), "l20_per_layer": per}


def top_share(cnt: np.ndarray, share: float = 0.2) -> np.ndarray:
    """Long-window share of tokens on the top ``share`` experts, per layer: ``[layers]``.

    ``cnt`` is ``[steps, layers, E]``; tokens are summed over all steps first.
    """
    tot = cnt.sum(axis=0).astype(np.float64)  # [layers, E]
    m = top_count(tot.shape[-1], share)
    top = -np.sort(-tot, axis=-1)[:, :m]
    s = tot.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, top.sum(-1) / np.where(s > 0, s, 1), np.nan)


def hot_sets(cnt: np.ndarray, share: float = 0.1) -> np.ndarray:
    """Bool ``[steps, layers, E]``: the ``ceil(share * E)`` busiest experts (ties: lower id)."""
    e = cnt.shape[-1]
    m = top_count(e, share)
    order = np.argsort(-cnt.astype(np.int64), axis=-1, kind="stable")[..., :m]
    hot = np.zeros(cnt.shape, dtype=bool)
    np.put_along_axis(hot, order, True, axis=-1)
    return hot


def hot_jaccard(cnt: np.ndarray, lag: int, share: float = 0.1) -> np.ndarray:
    """Jaccard of the hot sets at steps t and t+lag: ``[steps-lag, layers]`` (empty if too short)."""
    if cnt.shape[0] <= lag:
        return np.zeros((0, cnt.shape[1]))
    hot = hot_sets(cnt, share)
    a, b = hot[:-lag], hot[lag:]
    inter = (a & b).sum(-1)
    union = (a | b).sum(-1)
    return inter / union


def locality_stats(
    trace: RoutingTrace, cnt: np.ndarray | None = None, lags: tuple[int, ...] = (1, 16)
) -> dict[str, Any]:
    """All locality / long-window metrics: summary floats plus per-layer lists."""
    cnt = trace.counts() if cnt is None else cnt
    tok = token_locality(trace)
    lay = layer_locality(trace)
    t20s = top_share(cnt)
    summary: dict[str, Any] = {
        "t20": tok["t20"], "l20": lay["l20"], "reuse": tok["reuse"],
        "top20_share": float(np.nanmean(t20s)) if t20s.size and not np.isnan(t20s).all() else float("nan"),
    }
    per_layer: dict[str, list[float]] = {
        "t20": tok["t20_per_layer"], "l20": lay["l20_per_layer"],
        "reuse": tok["reuse_per_layer"], "top20_share": [float(x) for x in t20s],
    }
    for lag in lags:
        jac = hot_jaccard(cnt, lag)
        summary[f"hot_jaccard_lag{lag}"] = float(jac.mean()) if jac.size else float("nan")
        per_layer[f"hot_jaccard_lag{lag}"] = (
            [float(x) for x in jac.mean(0)] if jac.size else [float("nan")] * trace.num_layers
        )
    return {"summary": summary, "per_layer": per_layer}
