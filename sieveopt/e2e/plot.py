"""Pareto plot: interactivity (tokens/s/user, y) vs throughput (tokens/s/GPU, x), one curve per
policy, batch sizes written next to the points. matplotlib Agg; returns PNG and PDF bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from sieveopt.solvers import SOLVERS, policy_info, policy_with_role

#: Fixed style per registered policy (declared in the registry, ``PolicyInfo.color/marker``) so
#: every figure uses the same colours and markers.
STYLE = {n: (policy_info(n).color, policy_info(n).marker) for n in SOLVERS.ordered() if policy_info(n).color}


def _style(policy: str, i: int) -> tuple[str, str]:
    return STYLE.get(policy, (f"C{i % 10}", "o"))


def mark_comparison(ax: Any, marks: dict[str, Any]) -> None:
    """Draw a pair's comparison points (:func:`sieveopt.e2e.curves.marks_for`): dotted horizontal
    segments at matched interactivity (b's throughput -> a's), dashed vertical ones at matched
    throughput, hollow markers at the interpolated points."""
    color = STYLE.get(marks["a"], ("#444444", "o"))[0]
    first = True
    for xb, xa, y in marks["at_interactivity"]:
        ax.plot([xb, xa], [y, y], linestyle=":", color=color, linewidth=0.9, alpha=0.8,
                label=f"{marks['a']} vs {marks['b']}: matched interactivity" if first else None)
        ax.plot([xa], [y], marker="o", markerfacecolor="none", markeredgecolor=color, markersize=6, linestyle="")
        first = False
    first = True
    for yb, ya, x in marks["at_throughput"]:
        ax.plot([x, x], [yb, ya], linestyle="--", color=color, linewidth=0.7, alpha=0.6,
                label=f"{marks['a']} vs {marks['b']}: matched throughput" if first else None)
        ax.plot([x], [ya], marker="s", markerfacecolor="none", markeredgecolor=color, markersize=5, linestyle="")
        first = False


def pareto_axes(ax: Any, rows: Sequence[dict[str, Any]], title: str, *, label_batches: bool = True) -> None:
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    paper = policy_with_role("paper")
    labelled = paper if paper in policies else (policies[-1] if policies else "")
    for i, pol in enumerate(policies):
        pts = sorted(((r["throughput_tok_s_per_gpu"], r["interactivity_tok_s_per_user"], r["batch"])
                      for r in rows if r["policy"] == pol), key=lambda p: p[2])
        pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not pts:
            continue
        color, marker = _style(pol, i)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, label=pol,
                linewidth=1.4, markersize=5, alpha=0.9)
        if label_batches and pol == labelled:
            for x, y, b in pts:
                ax.annotate(str(b), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    readable_log_ticks(ax.xaxis, *ax.get_xlim())
    readable_log_ticks(ax.yaxis, *ax.get_ylim())
    ax.set_xlabel("throughput (generated tokens/s per GPU)")
    ax.set_ylabel("interactivity (generated tokens/s per user)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title="policy (numbers: batch size)", title_fontsize=7,
                  loc="lower left")


def readable_log_ticks(axis: Any, lo: float, hi: float) -> None:
    """Labelled ticks on a log axis at any range: decades when it spans several, 1-2-5 steps
    over about a decade, plain linear steps when it spans less (matplotlib's default log
    locator then labels no tick at all); numbers printed plainly (no 10^x)."""
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        LogLocator,
        MaxNLocator,
        NullFormatter,
    )

    if not (lo > 0 and hi > lo and math.isfinite(lo) and math.isfinite(hi)):
        return
    span = math.log10(hi / lo)
    if span >= 2.5:
        axis.set_major_locator(LogLocator(base=10.0, subs=(1.0,)))
    elif span >= 0.7:
        axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    else:
        ticks = [t for t in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi]
        axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 100 else f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def pareto_figure_bytes(rows: Sequence[dict[str, Any]], title: str,
                        marks: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    """The figure as PNG and PDF bytes; ``marks`` adds one pair's curve-comparison points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    if marks:
        mark_comparison(ax, marks)
    pareto_axes(ax, rows, title)
    fig.tight_layout()
    out = []
    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        out.append(buf.getvalue())
    plt.close(fig)
    return out[0], out[1]


def energy_axes(ax: Any, rows: Sequence[dict[str, Any]], title: str, key: str = "moe_tokens_per_J") -> bool:
    """Tokens per joule of the MoE layers (y) against throughput (x), one curve per policy;
    False when no row has energy (the system has no energy data)."""
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    drawn = False
    for i, pol in enumerate(policies):
        pts = sorted(((r["throughput_tok_s_per_gpu"], r.get(key), r["batch"]) for r in rows
                      if r["policy"] == pol and r.get(key)), key=lambda p: p[2])
        pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not pts:
            continue
        color, marker = _style(pol, i)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, label=pol,
                linewidth=1.4, markersize=5, alpha=0.9)
        drawn = True
    ax.set_xscale("log")
    ax.set_xlabel("throughput (generated tokens/s per GPU)")
    ax.set_ylabel("generated tokens per joule (MoE layers, cost model)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if drawn:
        ax.legend(fontsize=8, loc="best")
    return drawn


def energy_figure_bytes(rows: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """PNG of :func:`energy_axes`, or None when no row has energy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    drawn = energy_axes(ax, rows, title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue() if drawn else None
