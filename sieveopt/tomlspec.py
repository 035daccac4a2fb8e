"""Strict TOML -> frozen dataclass loading shared by every spec.

Unknown keys, missing keys and wrong types raise :class:`SpecError` naming the file and the
dotted field. Nested dataclasses are loaded from TOML tables. Units live in field names
(``hbm_bw_GBps``), so values are plain numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from sieveopt.errors import SpecError

T = TypeVar("T")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; syntax errors become a SpecError naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SpecError(str(path), "<file>", "file not found", "check the path") from None
    except IsADirectoryError:
        raise SpecError(str(path), "<file>", "is a directory, a .toml file is expected",
                        "name the .toml file inside it") from None
    except PermissionError:
        raise SpecError(str(path), "<file>", "not readable", "check the file's permissions") from None
    except OSError as exc:
        raise SpecError(str(path), "<file>", f"cannot be read ({exc.strerror or exc})",
                        "give a regular .toml file") from None
    except UnicodeDecodeError:
        raise SpecError(str(path), "<file>", "is not UTF-8 text", "give a TOML text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), "<file>", f"malformed TOML: {exc}", "fix the TOML syntax") from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, source: str, field: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SpecError(source, field, f"expected a table, got {type(value).__name__}",
                            f"write [{field}] as a TOML table")
        return from_dict(tp, value, source, prefix=field + ".")
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, source, field)
            except SpecError as exc:
                errors.append(exc.problem)
        raise SpecError(source, field, "; ".join(errors), "use one of the accepted types")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SpecError(source, field, f"expected a list, got {type(value).__name__}", "write a TOML array")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], source, f"{field}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(source, field, f"expected {len(args)} items, got {len(value)}", "fix the list length")
        return tuple(_coerce(v, a, source, f"{field}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(source, field, f"expected a table, got {type(value).__name__}", "write a TOML table")
        _, vt = typing.get_args(tp)
        return {k: _coerce(v, vt, source, f"{field}.{k}") for k, v in value.items()}
    if typing.get_origin(tp) is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise SpecError(source, field, f"value {value!r} is not allowed",
                            f"use one of {', '.join(map(repr, allowed))}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(source, field, f"expected a number, got {value!r}", "write a plain number (units are in the field name)")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(source, field, f"expected an integer, got {value!r}", "write a whole number")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(source, field, f"expected true/false, got {value!r}", "write true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(source, field, f"expected a string, got {value!r}", "quote the value")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], source: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``: every key must be a field and every field without
    a default must be present. Validation errors raised in ``__post_init__`` via :func:`require`
    are re-labelled with ``source`` and the dotted field path."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        close = ", ".join(sorted(fields))
        raise SpecError(source, prefix + unknown[0], "unknown key", f"remove it or use one of: {close}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], source, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(source, prefix + name, "missing key", f"add `{name} = ...` ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except SpecError as exc:
        if exc.source == "<spec>":
            raise SpecError(source, prefix + exc.field, exc.problem, exc.fix) from None
        raise


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain dict (for JSON output and config hashing)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


#: Field metadata that lets a float field be ``inf`` (an idealisation such as infinite
#: bandwidth); every other numeric field must be finite. NaN is never accepted.
INF_OK = {"inf_ok": True}


@functools.cache
def _numeric_fields(cls: type) -> tuple[tuple[str, bool], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, bool(f.metadata.get("inf_ok"))) for f in dataclasses.fields(cls)
                 if hints.get(f.name) in (int, float))


def require_finite(obj: Any) -> None:
    """Every ``int``/``float`` field of dataclass ``obj`` is a finite number (``inf`` only
    where the field's metadata is :data:`INF_OK`): NaN and overflowed values such as ``1e400``
    never reach a model, where they would become silent nonsense or a crash deep inside."""
    for name, inf_ok in _numeric_fields(type(obj)):
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError("<spec>", name, f"expected a number, got {v!r}", "write a plain number")
        if math.isnan(v):
            raise SpecError("<spec>", name, "is NaN", "write a finite number")
        if math.isinf(v) and not inf_ok:
            raise SpecError("<spec>", name, f"is {v} (infinite); this field must be finite",
                            "write a finite number")


def _range_text(gt: float | None, ge: float | None, lt: float | None, le: float | None) -> str:
    lo = f"> {gt:g}" if gt is not None else f">= {ge:g}" if ge is not None else ""
    hi = f"< {lt:g}" if lt is not None else f"<= {le:g}" if le is not None else ""
    return " and ".join(x for x in (lo, hi) if x) or "any number"


def require_range(value: float, field: str, *, gt: float | None = None, ge: float | None = None,
                  lt: float | None = None, le: float | None = None, fix: str = "") -> None:
    """``value`` lies in the given range; the message names the field, the value and the range."""
    ok = not (isinstance(value, float) and math.isnan(value))
    ok = ok and (gt is None or value > gt) and (ge is None or value >= ge)
    ok = ok and (lt is None or value < lt) and (le is None or value <= le)
    if not ok:
        rng = _range_text(gt, ge, lt, le)
        raise SpecError("<spec>", field, f"got {value!r}, allowed: {rng}", fix or f"use a value {rng}")


def require(cond: bool, field: str, problem: str, fix: str) -> None:
    """Validation helper for ``__post_init__``: raises a SpecError with source ``<spec>``,
    which :func:`from_dict` re-labels with the real file name."""
    if not cond:
        raise SpecError("<spec>", field, problem, fix)
