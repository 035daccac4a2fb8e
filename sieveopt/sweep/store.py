"""The on-disk layout of a sweep; every file is written atomically (temp + rename).

    OUT/sweep.json                 the validated spec, point hashes, versions
    OUT/points/<hash>/config.json  the resolved configuration of one point
    OUT/points/<hash>/metrics.json per-layer metrics + summary: present <=> the point is finished
    OUT/points/<hash>/error.json   the last failure (type, message, traceback), until it succeeds
    OUT/points/<hash>/trace.json.gz, gantt.png   on request
    OUT/results.csv, OUT/results.parquet         one row per (point, layer); failed points too
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from sieveopt.fileio import atomic_write_bytes, atomic_write_text, dumps_json


class SweepStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.points = self.root / "points"

    def point_dir(self, h: str) -> Path:
        return self.points / h

    def is_finished(self, h: str) -> bool:
        return (self.point_dir(h) / "metrics.json").is_file()

    def write_config(self, config: dict[str, Any]) -> None:
        path = self.point_dir(config["hash"]) / "config.json"
        if not path.exists():
            atomic_write_text(path, dumps_json(config))

    def write_result(self, result: dict[str, Any]) -> None:
        """Files first, metrics last (the 'finished' marker); a success clears an old error."""
        d = self.point_dir(result["hash"])
        if result["ok"]:
            for name, payload in result.get("files", {}).items():
                atomic_write_bytes(d / name, payload)
            atomic_write_text(d / "metrics.json", dumps_json(result["metrics"]))
            (d / "error.json").unlink(missing_ok=True)
        else:
            atomic_write_text(d / "error.json", dumps_json({**result["error"], "wall_s": result.get("wall_s")}))

    def read_metrics(self, h: str) -> dict[str, Any] | None:
        path = self.point_dir(h) / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def read_error(self, h: str) -> dict[str, Any] | None:
        path = self.point_dir(h) / "error.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def write_manifest(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.root / "sweep.json", dumps_json(data))


def flat_point(point: dict[str, Any]) -> dict[str, Any]:
    """Grid values as flat columns (dag.*, set.*, solver.* prefixed)."""
    row = {k: v for k, v in point.items() if k not in ("dag", "set", "solver", "trace", "gantt")}
    for group in ("dag", "set", "solver"):
        for k, v in point.get(group, {}).items():
            row[f"{group}.{k}"] = v if not isinstance(v, list) else "+".join(map(str, v))
    return row


def result_rows(store: SweepStore, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cfg in configs:
        base = {"hash": cfg["hash"], **flat_point(cfg["point"])}
        metrics = store.read_metrics(cfg["hash"])
        if metrics is not None:
            for layer in metrics["layers"]:
                rows.append({**base, "point_status": "ok", "point_wall_s": metrics.get("wall_s"), **layer})
            continue
        err = store.read_error(cfg["hash"])
        rows.append({**base, "point_status": "error" if err else "missing",
                     "error": f"{err['type']}: {err['message']}" if err else None})
    return rows


def write_results(store: SweepStore, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """results.csv always; results.parquet when pyarrow is installed. Returns what was written."""
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    out: dict[str, Any] = {"csv": str(atomic_write_text(store.root / "results.csv", buf.getvalue()))}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        out["parquet"] = None
        out["note"] = "pyarrow not installed: results.parquet skipped (pip install 'sieveopt[parquet]')"
        return out
    cells = [{c: _cell(r.get(c)) for c in columns} for r in rows]
    for c in columns:  # one type per column: mixed columns become strings
        kinds = {type(r[c]) for r in cells if r[c] is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:
            for r in cells:
                r[c] = None if r[c] is None else str(r[c])
    table = pa.Table.from_pylist(cells)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    out["parquet"] = str(atomic_write_bytes(store.root / "results.parquet", sink.getvalue().to_pybytes()))
    return out


def _cell(v: Any) -> Any:
    """Parquet needs one type per column: lists become strings, mixed numbers stay numbers."""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v
