"""Shared output helpers: a rich table by default, strict JSON with ``--json``.

File writing lives in :mod:`sieveopt.fileio` (re-exported here for old imports)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

# Re-exported for callers of the previous location; library code imports sieveopt.fileio.
from sieveopt.fileio import (  # noqa: F401
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    dumps_json,
)


def print_json(data: Any) -> None:
    print(dumps_json(data))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a readable table with rich (falls back to plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    cells = [[_fmt(v) for v in row] for row in rows]
    table = Table(title=title)
    widths = []
    for i, col in enumerate(columns):
        # never split a word (a name, a number): the column is at least its longest word wide
        words = [w for c in [str(col)] + [r[i] for r in cells if i < len(r)] for w in c.split()]
        widths.append(min(40, max((len(w) for w in words), default=1)))
        table.add_column(str(col), overflow="fold", min_width=widths[-1])
    for row in cells:
        table.add_row(*row)
    Console(width=max(100, len(columns) * 14, sum(widths) + 3 * len(columns) + 1)).print(table, crop=False)


def _fmt(v: Any) -> str:
    """Plain numbers: 4 significant digits, no scientific notation between 1e-3 and 1e15; an
    undefined value (``None``, JSON ``null``) as ``-``, as NaN."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return "-" if v != v else str(v)
        a = abs(v)
        if a == 0 or 1e-3 <= a < 1e4:
            return f"{v:.4g}" if a < 1e4 and "e" not in f"{v:.4g}" else f"{v:.0f}"
        if 1e4 <= a < 1e15:
            return f"{v:.0f}"
        return f"{v:.3g}"
    return str(v)


def emit(args: Any, data: Any, render: Callable[[Any], None]) -> int:
    """JSON when ``args.json`` is set, otherwise the human rendering."""
    if getattr(args, "json", False):
        print_json(data)
    else:
        render(data)
    return 0


class Steps:
    """A progress bar on stderr for commands that can run longer than a few seconds (CP-SAT,
    many layers). Silent with ``--json`` or when stderr is not a terminal. Call
    :meth:`advance` before each step and :meth:`close` at the end (also safe when never shown)."""

    def __init__(self, args: Any, total: int, label: str) -> None:
        self._bar = self._task = None
        self.label = label
        if getattr(args, "json", False) or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description:<36}"), BarColumn(),
                             TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)
        self._started = False

    def advance(self, description: str = "") -> None:
        """Mark the previous step done and show ``description`` for the next one."""
        if self._bar is None:
            return
        self._bar.update(self._task, advance=1 if self._started else 0, description=description or self.label)
        self._started = True

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
