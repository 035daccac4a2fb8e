"""Run a sweep: resolve points, skip finished ones, run the rest, collect results.

Resumable by construction: a point is finished iff its ``metrics.json`` exists (written last,
atomically), so after Ctrl-C or a killed driver a re-run recomputes only unfinished points.
Failed points keep an ``error.json`` and are retried on the next run. Commands whose user gave
no cache folder keep their points in the output folder until the run completes
(:func:`point_store_dir`), so they resume too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sieveopt.errors import SieveoptError
from sieveopt.sweep.spec import SweepSpec, expand
from sieveopt.sweep.store import SweepStore, result_rows, write_results


@dataclass
class SweepReport:
    out_dir: Path
    total: int
    cached: int = 0
    done: int = 0
    failed: int = 0
    interrupted: bool = False
    wall_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)  # hash -> "Type: message"
    outputs: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)  # per-point summary rows

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "total": self.total, "cached": self.cached, "done": self.done,
                "failed": self.failed, "interrupted": self.interrupted, "wall_s": self.wall_s,
                "errors": self.errors, "outputs": self.outputs, "points": self.points}

    def require_complete(self, store: SweepStore, what: str = "") -> None:
        """For callers that need every point: re-raise Ctrl-C, and turn the first failed point
        into a :class:`SieveoptError` naming it and its traceback file (``what``: a prefix)."""
        if self.interrupted:
            raise KeyboardInterrupt
        if self.errors:
            h, msg = next(iter(self.errors.items()))
            raise SieveoptError(f"{what + ': ' if what else ''}{msg} (point {h}; traceback in "
                                f"{store.point_dir(h) / 'error.json'})")


#: The folder inside a command's output folder where its points wait when no cache folder is given.
RESUME_DIR = ".sieveopt-resume"


@contextmanager
def point_store_dir(cache_dir: str | Path | None, out_dir: str | Path | None = None) -> Iterator[Path]:
    """The folder a multi-point run keeps its points in (for :func:`run_points`), one rule for
    every command ("long runs never lose finished work", DESIGN.md):

    * ``cache_dir`` given: that folder, kept (a later run reuses its finished points);
    * else ``out_dir`` given (the command's output folder): ``out_dir/.sieveopt-resume``, removed
      when the block ends normally (every point finished and read: the output folder then holds
      only the command's outputs, and a re-run computes afresh), kept when it raises with finished
      points or a failed point's traceback in it (Ctrl-C, a failed point), so re-running the same
      command recomputes only the unfinished points; with neither (Ctrl-C before the first point
      finished) it is removed, and ``out_dir`` too if this run created it and it is empty;
    * else (a library call that asked for neither) a temporary folder.

    A Ctrl-C (``KeyboardInterrupt``) leaving finished points behind is re-raised with a message
    naming the folder, which the CLI prints."""
    import shutil

    if cache_dir is None and out_dir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="sieveopt-points-") as tmp:
            yield Path(tmp)
        return
    root = Path(cache_dir) if cache_dir is not None else Path(out_dir) / RESUME_DIR
    made_out = cache_dir is None and not Path(out_dir).exists()
    try:
        yield root
    except BaseException as exc:
        kept = len(list((root / "points").glob("*/metrics.json")))
        if cache_dir is None and not kept and not any((root / "points").glob("*/error.json")):
            shutil.rmtree(root, ignore_errors=True)    # nothing to resume from: leave nothing
            if made_out and not any(Path(out_dir).iterdir()):
                Path(out_dir).rmdir()
        if isinstance(exc, KeyboardInterrupt) and kept:
            raise KeyboardInterrupt(f"{kept} finished point(s) kept in {root}: re-run the same command to "
                                    "resume") from exc
        raise
    if cache_dir is None:
        shutil.rmtree(root, ignore_errors=True)


def resolve_all(spec: SweepSpec) -> list[dict[str, Any]]:
    """Resolved configurations of every point (unknown model/system names fail here, up front)."""
    from sieveopt.sweep.point import resolve

    cache: dict[tuple, Any] = {}
    configs, seen = [], set()
    for p in expand(spec):
        cfg = resolve(p, cache)
        if cfg["hash"] not in seen:  # identical points (e.g. repeated grid values) run once
            seen.add(cfg["hash"])
            configs.append(cfg)
    return configs


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, executor: str = "local", workers: int = 1,
              address: str | None = None, progress: bool = True) -> SweepReport:
    """Run every unfinished point of ``spec`` into ``out_dir``; returns the report."""
    t0 = time.perf_counter()
    configs = resolve_all(spec)
    manifest = {"name": spec.name, "source": spec.source, "description": spec.description, "spec": spec.raw}
    report, store = run_points(configs, out_dir, manifest, executor=executor, workers=workers,
                               address=address, progress=progress)
    rows = result_rows(store, configs)
    report.outputs = write_results(store, rows)
    report.points = point_summaries(store, configs)
    report.wall_s = time.perf_counter() - t0
    return report


def run_points(configs: list[dict[str, Any]], out_dir: str | Path, manifest: dict[str, Any], *,
               executor: str = "local", workers: int = 1, address: str | None = None,
               progress: bool = True) -> tuple[SweepReport, SweepStore]:
    """The engine under every multi-point command: cache each resolved point (any kind, see
    :data:`sieveopt.sweep.point.POINT_KINDS`) in ``out_dir/points/<hash>``, skip finished ones,
    run the rest on a local process pool or Ray, write each result as it arrives. Resumable:
    a re-run after Ctrl-C recomputes only unfinished points."""
    from sieveopt import __version__
    from sieveopt.sweep.executors import EXECUTORS, run_local, run_ray

    if executor not in EXECUTORS:
        raise SieveoptError(f"--executor {executor}: use one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise SieveoptError(f"--workers must be >= 1, got {workers}")
    t0 = time.perf_counter()
    store = SweepStore(out_dir)
    store.write_manifest({**manifest, "sieveopt_version": __version__, "points": [c["hash"] for c in configs]})
    pending = []
    report = SweepReport(Path(out_dir), len(configs))
    for cfg in configs:
        store.write_config(cfg)
        if store.is_finished(cfg["hash"]):
            report.cached += 1
        else:
            pending.append(cfg)
    results = run_ray(pending, workers, address) if executor == "ray" else run_local(pending, workers)
    bar = _Progress(report, len(pending), enabled=progress)
    try:
        with bar:
            for res in results:
                store.write_result(res)
                if res["ok"]:
                    report.done += 1
                else:
                    report.failed += 1
                    report.errors[res["hash"]] = f"{res['error']['type']}: {res['error']['message']}"
                bar.advance()
    except KeyboardInterrupt:
        report.interrupted = True
        # Ctrl-C may land between a result's write and its count: report what is on disk.
        report.done = sum(1 for c in pending if store.is_finished(c["hash"]))
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
        report.wall_s = time.perf_counter() - t0
    return report, store


def point_summaries(store: SweepStore, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for cfg in configs:
        p = cfg["point"]
        m = store.read_metrics(cfg["hash"])
        e = None if m else store.read_error(cfg["hash"])
        s = (m or {}).get("summary", {})
        out.append({"hash": cfg["hash"], "model": p["model"], "system": p["system"], "gpus": p["gpus"],
                    "batch": p["batch"], "policy": p["policy"], "seed": p["seed"],
                    "execution_model": _execution_label(p),
                    "status": "ok" if m else ("error" if e else "pending"),
                    "mean_makespan_ns": s.get("mean_makespan_ns"), "all_checks_ok": s.get("all_checks_ok"),
                    "mean_time_per_layer_ns": s.get("mean_time_per_layer_ns", s.get("mean_makespan_ns")),
                    "mean_decision_ns": s.get("mean_decision_ns"), "wall_s": (m or {}).get("wall_s"),
                    "error": f"{e['type']}: {e['message']}" if e else None})
    return out


def _execution_label(point: dict[str, Any]) -> str:
    """The point's execution model as the tables print it (serial points carry no overlap keys)."""
    if point.get("overlap", "serial") == "serial":
        return "serial"
    from sieveopt.execution_model import make_execution_model

    return make_execution_model(point["overlap"], point.get("microbatches"),
                                window_layers=point.get("window_layers"),
                                runtime_order_evaluations=point.get("runtime_order_evaluations")).label


class _Progress:
    """A rich progress bar (done / failed / cached, ETA) on stderr; a no-op when disabled."""

    def __init__(self, report: SweepReport, todo: int, enabled: bool) -> None:
        self.report, self.todo, self.enabled = report, todo, enabled and todo > 0
        self._p: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                               TimeRemainingColumn(), console=Console(stderr=True))
            self._p.__enter__()
            self._task = self._p.add_task("sweep", total=self.todo, stats=self._stats())
        return self

    def _stats(self) -> str:
        r = self.report
        return f"done {r.done}  failed {r.failed}  cached {r.cached}"

    def advance(self) -> None:
        if self._p is not None:
            self._p.update(self._task, advance=1, stats=self._stats())

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)
