"""Energy data of the execution targets, loaded from TOML (``data/dram/<preset>.toml`` and
``data/systems/<system>.toml``).

Every value is a ``{value, unit, source, open}`` record: the unit is checked against the one
the model expects, ``source`` names the datasheet / paper / simulator it comes from, and
``open = true`` marks values that are not a published figure for that device (derived,
borrowed from an older generation, or our choice). A DRAM preset or system without a file has
no energy model: :func:`dram_energy_spec` / :func:`system_energy_spec` return ``None`` and
reports say "energy unavailable" rather than printing zeros.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sieveopt.errors import SpecError

DATA_DIR = Path(__file__).parent / "data"

#: section -> field -> unit the model expects
DRAM_FIELDS: dict[str, dict[str, str]] = {
    "rails": {"vdd": "V"},
    "currents": {"idd0": "mA", "idd2n": "mA", "idd3n": "mA", "idd4r": "mA", "idd4w": "mA",
                 "idd5b": "mA"},
    "io": {"pJ_per_bit": "pJ/bit"},
    "pim": {"mac_read_pJ_per_bit": "pJ/bit", "alu_pJ_per_op": "pJ/op"},
}
SYSTEM_FIELDS: dict[str, dict[str, str]] = {
    "gpu": {"flop_pJ": "pJ/FLOP", "onchip_pJ_per_bit": "pJ/bit", "static_W": "W"},
    "link": {"pJ_per_bit": "pJ/bit"},
}


@dataclass(frozen=True)
class Sourced:
    """One energy parameter with its unit and provenance."""

    value: float
    unit: str
    source: str
    open: bool


def _parse(where: str, raw: dict[str, Any], fields: dict[str, dict[str, str]]) -> dict[str, Sourced]:
    out: dict[str, Sourced] = {}
    extra = set(raw) - set(fields) - {"name", "description"}
    if extra:
        raise SpecError(where, sorted(extra)[0], "unknown section", f"use {', '.join(fields)}")
    for sec, names in fields.items():
        table = raw.get(sec)
        if not isinstance(table, dict):
            raise SpecError(where, sec, "missing section", f"add [{sec}] with {', '.join(names)}")
        unknown = set(table) - set(names)
        if unknown:
            raise SpecError(where, f"{sec}.{sorted(unknown)[0]}", "unknown field", f"use {', '.join(names)}")
        for name, unit in names.items():
            key = f"{sec}.{name}"
            rec = table.get(name)
            if not isinstance(rec, dict):
                raise SpecError(where, key, "missing", "give {value, unit, source, open}")
            if set(rec) != {"value", "unit", "source", "open"}:
                raise SpecError(where, key, f"has keys {sorted(rec)}", "give exactly value, unit, source, open")
            v = rec["value"]
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise SpecError(where, key, f"value {v!r} is not a number >= 0", "fix the value")
            if rec["unit"] != unit:
                raise SpecError(where, key, f"unit {rec['unit']!r}", f"give it in {unit}")
            if not isinstance(rec["source"], str) or not rec["source"].strip():
                raise SpecError(where, key, "no source", "name the datasheet, paper or simulator")
            if not isinstance(rec["open"], bool):
                raise SpecError(where, key, "open must be true or false", "mark derived/guessed values open")
            out[key] = Sourced(float(v), unit, rec["source"], rec["open"])
    return out


@dataclass(frozen=True)
class EnergySpec:
    """Parsed energy file: ``values["currents.idd0"]`` etc."""

    name: str
    path: str
    values: dict[str, Sourced]

    def __getitem__(self, key: str) -> float:
        return self.values[key].value

    def table(self) -> list[dict[str, Any]]:
        """Every field with unit, source and open flag (for docs and ``--json``)."""
        return [{"field": k, "value": v.value, "unit": v.unit, "source": v.source, "open": v.open}
                for k, v in self.values.items()]


def _load(path: Path, fields: dict[str, dict[str, str]]) -> EnergySpec:
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), "<toml>", f"malformed TOML: {exc}", "fix the syntax") from None
    return EnergySpec(str(raw.get("name", path.stem)), str(path), _parse(str(path), raw, fields))


def _resolve(kind: str, name_or_path: str | Path) -> Path | None:
    p = Path(name_or_path)
    if p.suffix == ".toml":
        if not p.exists():
            raise SpecError(str(p), "<file>", "not found", "give an existing energy .toml")
        return p
    q = DATA_DIR / kind / f"{name_or_path}.toml"
    return q if q.exists() else None


def dram_energy_spec(preset: str | Path) -> EnergySpec | None:
    """Energy data of a DRAM preset (name or .toml), None when the preset has none."""
    p = _resolve("dram", preset)
    return None if p is None else _load(p, DRAM_FIELDS)


def system_energy_spec(system: str | Path) -> EnergySpec | None:
    """GPU / link energy data of a catalog system (name or .toml), None when it has none."""
    p = _resolve("systems", system)
    return None if p is None else _load(p, SYSTEM_FIELDS)


def list_energy_specs() -> dict[str, list[str]]:
    return {k: sorted(p.stem for p in (DATA_DIR / k).glob("*.toml")) for k in ("dram", "systems")}
