"""Curve-level comparison of Pareto fronts: throughput at matched interactivity and
interactivity at matched throughput (interpolated), beside the per-batch ratios.

At one batch size B, throughput = B / step / G and interactivity = 1 / step, so the two
per-batch ratios between policies are the same number (the step-time ratio) by construction.
The Sieve paper's metric is the Pareto curve of "interactivity = generated tokens/s per user vs
throughput = generated tokens/s per GPU" (papers.md §1.3): curves are compared at equal
interactivity (how much more throughput at the same per-user speed) and at equal throughput
(how much faster per user at the same per-GPU throughput).

Method: each policy's points (finite, positive) are reduced to their Pareto frontier (no point
beaten on both axes), sorted by throughput; along it interactivity falls strictly, so each axis
is a function of the other. Values between frontier points are interpolated linearly in
log-log space (the plot's axes). The comparison levels of a pair (A, B) are every frontier
point of either policy whose value lies inside both frontiers' range on that axis (no
extrapolation); the summary is the geometric mean, min and max of the ratios A / B.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

X = "throughput_tok_s_per_gpu"
Y = "interactivity_tok_s_per_user"


def frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Pareto frontier (higher is better on both) of ``(x, y)`` points, sorted by x ascending
    (so y strictly descending)."""
    pts = sorted(((x, y) for x, y in points if _ok(x) and _ok(y)), key=lambda p: (-p[0], -p[1]))
    out: list[tuple[float, float]] = []
    best_y = -math.inf
    for x, y in pts:            # x descending: keep a point only if it beats every faster one on y
        if y > best_y:
            out.append((x, y))
            best_y = y
    return out[::-1]


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def _interp(a: float, pts: Sequence[tuple[float, float]]) -> float | None:
    """Interpolate b(a) in log-log space on points sorted by a ascending; None outside."""
    if not pts or a < pts[0][0] * (1 - 1e-12) or a > pts[-1][0] * (1 + 1e-12):
        return None
    for (a0, b0), (a1, b1) in zip(pts, pts[1:], strict=False):
        if a0 <= a <= a1:
            if a1 == a0:
                return b0
            t = (math.log(a) - math.log(a0)) / (math.log(a1) - math.log(a0))
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return pts[0][1] if abs(a - pts[0][0]) <= 1e-12 * a else pts[-1][1]


def x_at_y(front: Sequence[tuple[float, float]], y: float) -> float | None:
    """Throughput a frontier reaches at interactivity ``y`` (None outside its range)."""
    return _interp(y, sorted((b, a) for a, b in front))


def y_at_x(front: Sequence[tuple[float, float]], x: float) -> float | None:
    """Interactivity a frontier reaches at throughput ``x`` (None outside its range)."""
    return _interp(x, sorted(front))


def _summary(ratios: list[float]) -> dict[str, float | int | None]:
    if not ratios:
        return {"n": 0, "geomean": None, "min": None, "max": None}
    return {"n": len(ratios), "geomean": math.exp(sum(math.log(r) for r in ratios) / len(ratios)),
            "min": min(ratios), "max": max(ratios)}


def compare_pair(rows: Sequence[dict[str, Any]], a: str, b: str) -> dict[str, Any]:
    """Policy ``a`` against ``b``: per-batch step ratios and the two matched-curve comparisons."""
    pa = {r["batch"]: r for r in rows if r["policy"] == a}
    pb = {r["batch"]: r for r in rows if r["policy"] == b}
    per_batch = []
    for bs in sorted(set(pa) & set(pb)):
        xa, xb = pa[bs][X], pb[bs][X]
        if _ok(xa) and _ok(xb):
            per_batch.append({"batch": bs, "ratio": xa / xb})   # = step_b / step_a = interactivity ratio
    fa = frontier([(r[X], r[Y]) for r in pa.values()])
    fb = frontier([(r[X], r[Y]) for r in pb.values()])
    at_y, at_x = [], []
    if fa and fb:
        for y in sorted({p[1] for p in fa + fb}):
            xa, xb = x_at_y(fa, y), x_at_y(fb, y)
            if xa is not None and xb is not None:
                at_y.append({"interactivity": y, "throughput_a": xa, "throughput_b": xb, "ratio": xa / xb})
        for x in sorted({p[0] for p in fa + fb}):
            ya, yb = y_at_x(fa, x), y_at_x(fb, x)
            if ya is not None and yb is not None:
                at_x.append({"throughput": x, "interactivity_a": ya, "interactivity_b": yb, "ratio": ya / yb})
    return {"a": a, "b": b,
            "per_batch": per_batch, "per_batch_summary": _summary([p["ratio"] for p in per_batch]),
            "throughput_at_matched_interactivity": at_y,
            "throughput_at_matched_interactivity_summary": _summary([p["ratio"] for p in at_y]),
            "interactivity_at_matched_throughput": at_x,
            "interactivity_at_matched_throughput_summary": _summary([p["ratio"] for p in at_x])}


def compare_curves(rows: Sequence[dict[str, Any]], policies: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every unordered policy pair (in the given order: ``a`` before ``b``)."""
    pols = list(policies) if policies is not None else list(dict.fromkeys(r["policy"] for r in rows))
    return [compare_pair(rows, a, b) for a, b in combinations(pols, 2)]


def summary_rows(comparisons: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per pair (CSV / table)."""
    out = []
    for c in comparisons:
        r: dict[str, Any] = {"a": c["a"], "b": c["b"]}
        for key, tag in (("per_batch_summary", "per_batch"),
                         ("throughput_at_matched_interactivity_summary", "thr_at_inter"),
                         ("interactivity_at_matched_throughput_summary", "inter_at_thr")):
            s = c[key]
            r.update({f"{tag}_geomean": s["geomean"], f"{tag}_min": s["min"], f"{tag}_max": s["max"],
                      f"{tag}_n": s["n"]})
        out.append(r)
    return out


def marks_for(comparison: dict[str, Any]) -> dict[str, Any]:
    """What the plot draws for one pair: segments joining the two curves at matched levels."""
    return {"a": comparison["a"], "b": comparison["b"],
            "at_interactivity": [(p["throughput_b"], p["throughput_a"], p["interactivity"])
                                 for p in comparison["throughput_at_matched_interactivity"]],
            "at_throughput": [(p["interactivity_b"], p["interactivity_a"], p["throughput"])
                              for p in comparison["interactivity_at_matched_throughput"]]}


def pick_pair(rows: Sequence[dict[str, Any]], comparisons: Sequence[dict[str, Any]],
              focus: str | None = None, exclude: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The pair the plot marks, as (``focus``, its strongest other policy: lowest geomean of
    ``focus``'s throughput ratio at matched interactivity), else the first pair with points.

    Defaults from the policy registry: ``focus`` is the policy declaring the ``paper`` role; the
    other policy is a baseline, so ``exclude`` is every other policy declaring a role (the exact
    reference) or a compiled serving-path planner (our own improvements)."""
    from sieveopt.solvers import SOLVERS, policy_info, policy_with_role

    focus = focus or policy_with_role("paper") or ""
    if exclude is None:
        exclude = [p for p in SOLVERS.ordered()
                   if p != focus and (policy_info(p).role or policy_info(p).serving)]
    mine = [c for c in comparisons if focus in (c["a"], c["b"]) and not ({c["a"], c["b"]} & set(exclude))
            and c["throughput_at_matched_interactivity_summary"]["n"]]
    if mine:
        def strength(c: dict[str, Any]) -> float:
            g = c["throughput_at_matched_interactivity_summary"]["geomean"]
            return g if c["a"] == focus else 1.0 / g
        best = min(mine, key=strength)
        return best if best["a"] == focus else compare_pair(rows, focus, best["a"])
    return next((c for c in comparisons if c["throughput_at_matched_interactivity_summary"]["n"]), None)
