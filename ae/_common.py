"""Shared helpers of the artifact-evaluation scripts (ae/fig_*.py): configurations, arguments,
atomic CSV/figure output. Scripts import it from their own directory."""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sieveopt.e2e.sweep import rows_to_csv
from sieveopt.fileio import atomic_write_bytes, atomic_write_text

#: The paper's three evaluated configurations (model, GPUs) on its B200 HBM3E-PIM system.
SYSTEM = "sieve-b200-hbm3e-pim"
CONFIGS: tuple[tuple[str, int], ...] = (("qwen3-30b-a3b", 1), ("gpt-oss-120b", 4), ("qwen3.5-397b-a17b", 8))
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
AE_DIR = Path(__file__).resolve().parent


def parse_args(figure: str, doc: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--quick", action="store_true", help="fewer models/batches/layers: a fast smoke run")
    p.add_argument("--out", default=str(AE_DIR / "out" / figure), help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="sweep-engine cache: reuse finished points kept in DIR (default: they wait in "
                        ".sieveopt-resume inside --out until every point is finished; re-run to resume)")
    args = p.parse_args(argv)
    args.out = Path(args.out)
    args.t0 = time.perf_counter()
    return args


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    atomic_write_text(path, rows_to_csv(rows))


def save_figure(fig: Any, stem: Path, dpi: int = 100) -> None:
    """PNG (small, for docs) and PDF, atomically."""
    import matplotlib.pyplot as plt

    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi)
        atomic_write_bytes(stem.with_suffix(f".{fmt}"), buf.getvalue())
    plt.close(fig)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def group_bars(n: int, i: int, k: int) -> tuple[Any, float]:
    """x positions and width of series ``i`` of ``k`` side-by-side bar series over ``n`` groups
    (group j centred at x = j, the ``k`` bars filling 0.8 of the unit spacing)."""
    import numpy as np

    width = 0.8 / k
    return np.arange(n) + (i - (k - 1) / 2) * width, width


def done(args: argparse.Namespace, what: str) -> None:
    print(f"{what}: wrote {args.out} in {time.perf_counter() - args.t0:.1f} s", file=sys.stderr)
