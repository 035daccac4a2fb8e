"""Colours shared by the Gantt charts and DAG drawings (colour-blind-friendly Tableau palette)."""

from __future__ import annotations

KIND_COLOR = {
    "qkv": "#4e79a7", "attn": "#76b7b2", "oproj": "#a0cbe8", "router": "#9c755f",
    "allgather": "#f28e2b", "sched": "#bab0ac", "dispatch": "#ffbe7d", "launch": "#d4a6c8",
    "expert": "#59a14f", "shared": "#8cd17d", "combine": "#e15759", "reduce": "#b07aa1",
}
CRITICAL_COLOR = "#111111"
FALLBACK_COLOR = "#cccccc"


def kind_color(kind: str) -> str:
    return KIND_COLOR.get(kind, FALLBACK_COLOR)


def mode_color(mode: str) -> str:
    """Colour of a mode: its execution target's (see :mod:`sieveopt.targets`)."""
    from sieveopt.targets import mode_color as _target_color

    return _target_color(mode, FALLBACK_COLOR)


def mode_colors() -> dict[str, str]:
    """Mode -> colour of every registered execution target (legend order)."""
    from sieveopt.targets import TARGETS

    return {m: TARGETS.get(m).color for m in TARGETS.ordered()}
