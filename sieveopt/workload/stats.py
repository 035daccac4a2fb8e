"""Per-step batch-histogram statistics of a routing trace (moe_models.md §5.5 item 3).

All statistics are computed from per-expert token counts ``cnt[step, layer, E]``:
token-count bins (idle / 1 / 2 / 3-4 / 5-8 / >8) as shares of all experts and of activated
experts, coefficient of variation, Gini, max/mean, and the Pearson correlation of the
per-expert load between consecutive steps of the same layer. The locality and long-window
metrics (T20, L20, reuse, top-20 % share, hot-set Jaccard at lag 1 and 16) come from
:mod:`sieveopt.workload.locality` and are merged into the same summary / per-layer rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sieveopt.workload.locality import locality_stats
from sieveopt.workload.trace import RoutingTrace

#: (label, lowest count, highest count) of each token-count bin.
BINS: tuple[tuple[str, int, float], ...] = (
    ("idle", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-8", 5, 8), (">8", 9, np.inf),
)


def _with_shared(cnt: np.ndarray, trace: RoutingTrace, include_shared: bool) -> np.ndarray:
    if not include_shared or trace.num_shared_experts == 0:
        return cnt
    shared = np.full(cnt.shape[:-1] + (trace.num_shared_experts,), trace.batch, dtype=cnt.dtype)
    return np.concatenate([cnt, shared], axis=-1)


def activated_fractions(
    trace: RoutingTrace, include_shared: bool = True, thresholds: tuple[int, ...] = (1, 4)
) -> dict[str, float]:
    """Pooled shares of *activated* expert computations with N == 1 and N <= t (Sieve §3.3).

    Pooled over all steps and layers (total qualifying experts / total activated experts).
    Shared experts count as activated with N = B when ``include_shared`` (Sieve Fig. 5).
    """
    cnt = _with_shared(trace.counts(), trace, include_shared)
    active = int((cnt > 0).sum())
    out = {"N=1": float((cnt == 1).sum() / active)}
    for t in thresholds:
        if t > 1:
            out[f"N<={t}"] = float(((cnt > 0) & (cnt <= t)).sum() / active)
    out["active_share"] = float(active / cnt.size)
    return out


def gini(x: np.ndarray) -> np.ndarray:
    """Gini coefficient along the last axis (0 = equal load, -> 1 = one expert has all)."""
    s = np.sort(x, axis=-1).astype(np.float64)
    n = s.shape[-1]
    tot = s.sum(axis=-1)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    num = ((2 * ranks - n - 1) * s).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, num / (n * tot), 0.0)


def step_correlation(cnt: np.ndarray) -> np.ndarray:
    """Pearson corr. of per-expert load between steps t and t+1: ``[steps-1, layers]``."""
    a = cnt[:-1].astype(np.float64)
    b = cnt[1:].astype(np.float64)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / den, np.nan)


def workload_stats(
    trace: RoutingTrace, include_shared: bool = False, locality: bool = True
) -> dict[str, Any]:
    """Statistics of a trace.

    Returns a dict with ``meta`` (shape and provenance), ``summary`` (means over steps and
    layers, JSON-ready floats), ``per_layer`` (list of per-layer means) and ``per_step_layer``
    (numpy arrays ``[steps, layers]`` per statistic and ``bins_*`` arrays
    ``[steps, layers, n_bins]``). Routed experts only unless ``include_shared``. With
    ``locality`` the summary and per-layer rows also hold ``t20``, ``l20``, ``reuse``,
    ``top20_share``, ``hot_jaccard_lag1`` and ``hot_jaccard_lag16`` (routed experts only,
    always; estimators in :mod:`sieveopt.workload.locality`).
    """
    routed = trace.counts()
    cnt = _with_shared(routed, trace, include_shared)
    e = cnt.shape[-1]
    active = (cnt > 0).sum(-1)
    share_all = np.stack(
        [((cnt >= lo) & (cnt <= hi)).sum(-1) / e for _, lo, hi in BINS], axis=-1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        share_act = np.stack(
            [
                ((cnt >= max(lo, 1)) & (cnt <= hi)).sum(-1) / active if lo > 0 else 0 * active
                for _, lo, hi in BINS
            ],
            axis=-1,
        ).astype(np.float64)
    mean = cnt.mean(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(mean > 0, cnt.std(-1) / mean, 0.0)
        max_mean = np.where(mean > 0, cnt.max(-1) / mean, 0.0)
    g = gini(cnt)
    corr = step_correlation(cnt) if trace.steps > 1 else np.full((0, trace.num_layers), np.nan)
    labels = [b[0] for b in BINS]

    def _nanmean(x: np.ndarray) -> float:
        return float(np.nanmean(x)) if x.size and not np.isnan(x).all() else float("nan")

    summary: dict[str, Any] = {
        "experts_share": dict(zip(labels, map(float, share_all.mean((0, 1))), strict=True)),
        "activated_share": dict(
            zip(labels, map(float, share_act.mean((0, 1))), strict=True)
        ),
        "activated_experts_mean": float(active.mean()),
        "cv": float(cv.mean()),
        "gini": float(g.mean()),
        "max_over_mean": float(max_mean.mean()),
        "step_corr": _nanmean(corr),
    }
    per_layer = [
        {
            "layer": lid,
            "idle_share": float(share_all[:, j, 0].mean()),
            "n1_share_of_active": float(share_act[:, j, 1].mean()),
            "cv": float(cv[:, j].mean()),
            "gini": float(g[:, j].mean()),
            "max_over_mean": float(max_mean[:, j].mean()),
            "step_corr": _nanmean(corr[:, j]),
        }
        for j, lid in enumerate(trace.layer_ids)
    ]
    if locality:
        loc = locality_stats(trace, routed)
        summary.update(loc["summary"])
        for j, row in enumerate(per_layer):
            row.update({key: vals[j] for key, vals in loc["per_layer"].items()})
    return {
        "meta": {
            "model": trace.model, "source": trace.source, "seed": trace.seed,
            "profile": trace.profile, "steps": trace.steps, "layers": trace.num_layers,
            "batch": trace.batch, "num_experts": trace.num_experts, "top_k": trace.top_k,
            "num_shared_experts": trace.num_shared_experts, "include_shared": include_shared,
            "bins": labels, "locality": locality,
        },
        "summary": summary,
        "per_layer": per_layer,
        "per_step_layer": {
            "bins_experts_share": share_all, "bins_activated_share": share_act,
            "activated": active, "cv": cv, "gini": g, "max_over_mean": max_mean,
            "step_corr": corr,
        },
    }
