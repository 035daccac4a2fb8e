"""File I/O shared by the library and the CLI: atomic writes, strict JSON, path checks.

Library modules (trace writers, sweep store, figures) import from here, not from the CLI
package. Writes are atomic (a temporary file beside the target, renamed on success), so a
reader never sees a half-written file. Output paths are checked *before* any work
(:func:`check_output_file`, :func:`check_output_dir`): a bad ``--out`` costs nothing.
JSON is strict (RFC 8259): NaN and infinities, which the standard has no spelling for, are
written as ``null`` ("undefined statistic"), never as bare ``NaN``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sieveopt.errors import SieveoptError


# --- strict JSON ----------------------------------------------------------------------------
def _default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return _finite_or_none(float(obj))
    if isinstance(obj, np.ndarray):
        return strict_json_value(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def strict_json_value(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, +-inf) replaced by ``None`` (JSON ``null``)."""
    if isinstance(data, float):
        return _finite_or_none(data)
    if isinstance(data, np.floating):
        return _finite_or_none(float(data))
    if isinstance(data, dict):
        return {k: strict_json_value(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json_value(v) for v in data]
    if isinstance(data, np.ndarray):
        return strict_json_value(data.tolist())
    return data


def dumps_json(data: Any) -> str:
    """Indented strict JSON: undefined statistics (NaN, inf) become ``null``."""
    return json.dumps(strict_json_value(data), indent=2, default=_default, allow_nan=False)


# --- atomic writes --------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (rename), on any
    error it is removed: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


# --- path checks (before any work) ----------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_creatable_dir(d: Path, option: str, shown: str) -> None:
    """``d`` is (or can be created as) a writable directory."""
    if d.exists():
        if not d.is_dir():
            raise SieveoptError(f"{option} {shown}: {d} exists and is not a directory "
                                f"(fix: choose a path whose parent folders are directories)")
        if not os.access(d, os.W_OK | os.X_OK):
            raise SieveoptError(f"{option} {shown}: directory {d} is not writable "
                                f"(fix: choose a writable location)")
        return
    base = _nearest_existing(d)
    if not base.is_dir():
        raise SieveoptError(f"{option} {shown}: {base} is a file, so {d} cannot be created "
                            f"(fix: choose a path whose parent folders are directories)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise SieveoptError(f"{option} {shown}: cannot create {d}: {base} is not writable "
                            f"(fix: choose a writable location)")


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Raise a :class:`SieveoptError` naming ``option`` unless ``path`` can be written as a
    regular file: not an existing directory or special file, parent a writable directory."""
    shown = str(path)
    if not shown.strip():
        raise SieveoptError(f"{option}: empty path (fix: give a file name)")
    p = Path(path)
    if p.exists() or p.is_symlink():
        mode = os.stat(p).st_mode if p.exists() else 0
        if stat.S_ISDIR(mode):
            raise SieveoptError(f"{option} {shown}: is a directory, a file name is expected "
                                f"(fix: e.g. {p / ('out' + (p.suffix or '.json'))})")
        if p.exists() and not stat.S_ISREG(mode):
            raise SieveoptError(f"{option} {shown}: is not a regular file (device, pipe or socket) "
                                f"(fix: give a regular file name)")
        if not os.access(p, os.W_OK) and not os.access(p.parent, os.W_OK):
            raise SieveoptError(f"{option} {shown}: not writable (fix: choose a writable location)")
    _check_creatable_dir(p.parent if str(p.parent) else Path("."), option, shown)
    return p


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Raise unless ``path`` is, or can be created as, a writable directory."""
    shown = str(path)
    if not shown.strip():
        raise SieveoptError(f"{option}: empty path (fix: give a directory name)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise SieveoptError(f"{option} {shown}: exists and is not a directory "
                            f"(fix: give a directory, or remove the file)")
    _check_creatable_dir(p, option, shown)
    return p


def check_input_file(path: str | Path, option: str) -> Path:
    """Raise unless ``path`` is an existing, readable regular file."""
    p = Path(path)
    if not p.exists():
        raise SieveoptError(f"{option} {path}: file not found (fix: check the path)")
    if p.is_dir():
        raise SieveoptError(f"{option} {path}: is a directory, a file is expected (fix: name a file in it)")
    if not p.is_file():
        raise SieveoptError(f"{option} {path}: not a regular file (fix: give a regular file)")
    if not os.access(p, os.R_OK):
        raise SieveoptError(f"{option} {path}: not readable (fix: check its permissions)")
    return p
