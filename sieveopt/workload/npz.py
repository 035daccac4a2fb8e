"""Compact native trace format: one compressed ``.npz`` per trace.

Arrays: ``expert_ids`` int16 ``[steps, layers, B, k]``, ``layer_ids`` int32 ``[layers]``,
optional ``request_ids`` int32 ``[steps, B]``, and ``meta``: a JSON string with
``format`` ("sieveopt-routing"), ``version`` (1), ``model``, ``num_experts``, ``top_k``,
``num_shared_experts``, ``source``, ``seed`` and ``profile``. Loading validates shapes,
dtypes, id ranges and duplicate ids, and raises :class:`TraceError` naming the file.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from sieveopt.errors import TraceError
from sieveopt.fileio import atomic_write_bytes
from sieveopt.workload.trace import RoutingTrace, check_expert_ids

FORMAT, VERSION = "sieveopt-routing", 1


def save_npz(trace: RoutingTrace, path: str | Path) -> Path:
    """Write ``trace`` atomically (never a half-written file); returns the path."""
    meta = {
        "format": FORMAT, "version": VERSION, "model": trace.model,
        "num_experts": trace.num_experts, "top_k": trace.top_k,
        "num_shared_experts": trace.num_shared_experts, "source": trace.source,
        "seed": trace.seed, "profile": trace.profile,
    }
    arrays = {
        "expert_ids": trace.expert_ids.astype(np.int16, copy=False),
        "layer_ids": np.asarray(trace.layer_ids, dtype=np.int32),
        "meta": np.array(json.dumps(meta)),
    }
    if trace.request_ids is not None:
        arrays["request_ids"] = trace.request_ids.astype(np.int32, copy=False)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | Path) -> RoutingTrace:
    """Read and validate a trace written by :func:`save_npz`."""
    path = Path(path)
    if path.is_dir():
        raise TraceError(f"{path}: is a directory, a .npz file is expected")
    if path.exists() and not zipfile.is_zipfile(path):
        raise TraceError(f"{path}: not a .npz trace (not a zip archive) (fix: write one with "
                         "`sieveopt workload generate --out FILE.npz` or save_npz())")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise TraceError(f"{path}: not a readable .npz trace ({exc})") from None
    for key in ("expert_ids", "layer_ids", "meta"):
        if key not in data:
            raise TraceError(f"{path}: missing array '{key}' (not a sieveopt routing trace)")
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}: field 'meta' is not valid JSON ({exc})") from None
    if meta.get("format") != FORMAT:
        raise TraceError(f"{path}: meta.format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise TraceError(f"{path}: unsupported version {meta.get('version')!r} (reader: {VERSION})")
    for key in ("num_experts", "top_k", "num_shared_experts"):
        if not isinstance(meta.get(key), int):
            raise TraceError(f"{path}: meta.{key} missing or not an integer")
    ids = data["expert_ids"]
    if ids.dtype != np.int16 or ids.ndim != 4:
        raise TraceError(
            f"{path}: expert_ids must be int16 [steps, layers, B, k], got {ids.dtype} {ids.shape}"
        )
    if ids.shape[3] != meta["top_k"]:
        raise TraceError(f"{path}: rows have {ids.shape[3]} ids but meta.top_k={meta['top_k']}")
    check_expert_ids(ids, meta["num_experts"], str(path))
    try:
        return RoutingTrace(
            expert_ids=ids, num_experts=meta["num_experts"], top_k=meta["top_k"],
            num_shared_experts=meta["num_shared_experts"], model=str(meta.get("model", "")),
            source=str(meta.get("source", str(path))), seed=meta.get("seed"),
            profile=meta.get("profile"), layer_ids=tuple(int(x) for x in data["layer_ids"]),
            request_ids=data.get("request_ids"),
        )
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None
