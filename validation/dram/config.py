"""DRAM / HBM-PIM configuration: organisation, timing (cycles), controller and PIM knobs.

A config is a preset TOML (shipped in ``presets/``) plus overrides. A preset may name
``base = "<other preset>"`` and override any subset of its keys, so a standard is "a preset
plus overrides" all the way down. Every key is validated strictly (unknown keys, wrong types
and impossible values raise :class:`SpecError`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from sieveopt.errors import SpecError
from sieveopt.tomlspec import from_dict, read_toml, require, require_finite, to_dict

PRESET_DIR = Path(__file__).parent / "presets"
MAPPINGS_DOC = "RoBaRaCoCh, ChRaBaRoCo, RoCoBaBgCh, RoCoRaBaCh, ... (fields MSB -> LSB)"


@dataclass(frozen=True)
class OrgSpec:
    """Organisation of one GPU's HBM system. ``access_bytes`` is one column access of a pCH
    (pCH width x burst length / 8); rows and columns are per bank."""

    stacks: int
    channels_per_stack: int
    pseudo_channels_per_channel: int
    bank_groups: int
    banks_per_group: int
    rows: int
    page_bytes: int
    access_bytes: int

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        for name in ("stacks", "channels_per_stack", "pseudo_channels_per_channel", "bank_groups",
                     "banks_per_group", "rows", "page_bytes", "access_bytes"):
            require(getattr(self, name) > 0, name, "must be positive", "use a value >= 1")
        require(self.page_bytes % self.access_bytes == 0, "page_bytes",
                "must be a multiple of access_bytes", "fix page_bytes or access_bytes")

    @property
    def channels(self) -> int:
        return self.stacks * self.channels_per_stack

    @property
    def pseudo_channels(self) -> int:
        return self.channels * self.pseudo_channels_per_channel

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def columns(self) -> int:
        return self.page_bytes // self.access_bytes


@dataclass(frozen=True)
class TimingSpec:
    """Timing parameters in DRAM clock cycles (tCK_ps gives the clock). Names follow
    Ramulator 2.0 (nRCDRD = tRCD for reads ...). nRTW is the extra read-to-write bus
    turnaround (RD->WR = nCL + nBL + nRTW - nCWL). nBL is the burst length in cycles."""

    tCK_ps: int
    nCL: int
    nCWL: int
    nRCDRD: int
    nRCDWR: int
    nRP: int
    nRAS: int
    nRC: int
    nWR: int
    nRTP: int
    nCCDS: int
    nCCDL: int
    nRRDS: int
    nRRDL: int
    nFAW: int
    nWTRS: int
    nWTRL: int
    nRTW: int
    nBL: int
    nREFI: int
    nRFC: int

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        for f in dataclasses.fields(self):
            require(getattr(self, f.name) >= 0, f.name, "must be >= 0", "use a non-negative value")
        require(self.tCK_ps > 0, "tCK_ps", "must be positive", "give the clock period in ps")
        require(self.nCCDS >= self.nBL, "nCCDS", f"nCCDS={self.nCCDS} < nBL={self.nBL} would overlap "
                "data bursts", "raise nCCDS to at least nBL")
        require(self.nCCDL >= self.nCCDS, "nCCDL", "must be >= nCCDS", "fix nCCDL")
        require(self.nRC >= self.nRAS, "nRC", "must be >= nRAS", "fix nRC")
        require(self.nREFI > self.nRFC, "nREFI", "must exceed nRFC", "fix nREFI / nRFC")


@dataclass(frozen=True)
class ControllerSpec:
    """Memory controller knobs (one controller per pseudo-channel).

    ``command_bus``: one command bus per channel shared by its pseudo-channels, or one per
    pseudo-channel. ``row_column_buses``: HBM's separate row and column command buses (a row
    and a column command may issue in the same cycle). ``frontend_requests_per_cycle``: how
    many trace requests are injected per DRAM cycle (0 = as many as the queues accept).
    """

    scheduler: Literal["frfcfs", "fcfs"] = "frfcfs"
    row_policy: Literal["open", "closed"] = "open"
    read_queue: int = 32
    write_queue: int = 32
    write_high_watermark: int = 26
    write_low_watermark: int = 6
    refresh: bool = True
    command_bus: Literal["per_channel", "per_pseudo_channel"] = "per_pseudo_channel"
    row_column_buses: bool = True
    address_mapping: str = "RoBaRaCoCh"
    request_bytes: int = 32
    frontend_requests_per_cycle: int = 1

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        require(1 <= self.read_queue <= 4096, "read_queue", "must be in 1..4096", "fix the depth")
        require(1 <= self.write_queue <= 4096, "write_queue", "must be in 1..4096", "fix the depth")
        require(0 <= self.write_low_watermark < self.write_high_watermark <= self.write_queue,
                "write_high_watermark", "need 0 <= low < high <= write_queue",
                "fix the write-drain watermarks")
        require(self.request_bytes > 0, "request_bytes", "must be positive", "use e.g. 32 or 64")
        require(self.frontend_requests_per_cycle >= 0, "frontend_requests_per_cycle",
                "must be >= 0", "use 1 (Ramulator-like) or 0 (unlimited)")


@dataclass(frozen=True)
class PimSpec:
    """PIM unit model. Internal bandwidth per pCH = (banks / banks_per_pu) x
    pu_bytes_per_access bytes every nCCDMAC cycles. ``nABSTAG`` is the extra delay of an
    all-bank activation (banks are activated in staggered groups under the power budget),
    ``nMACLAT`` the PU pipeline latency before results can be read back. ``priority`` is the
    arbitration between PIM and normal commands in dual-row-buffer mode.

    ``ops_per_byte`` is the PUs' compute limit: a PU may do at most ``ops_per_byte x
    pu_bytes_per_access`` operations per MAC slot (``nCCDMAC`` cycles), i.e. compute throughput
    = ops_per_byte x internal bandwidth (the roofline's ``pim.ops_per_byte``; Sieve's system:
    1 op/B). A weight element costs 2 ops (multiply + add), so weights narrower than
    ``2 / ops_per_byte`` bytes are compute-bound: the kernel generator then feeds each MAC
    only ``pu_bytes_per_access x ops_per_byte x bytes_per_element / 2`` bytes (more MAC
    commands per row, same spacing). BF16 at 1 op/B is exactly balanced; MXFP4 (0.53125 B)
    runs 3.76x more MACs. ``0`` = no compute limit."""

    enabled: bool = False
    banks_per_pu: int = 1
    pu_bytes_per_access: int = 32
    nCCDMAC: int = 4
    nABSTAG: int = 0
    nMACLAT: int = 8
    sharing: Literal["exclusive", "dual_row_buffer"] = "dual_row_buffer"
    #: "strict": while the next PIM command waits, normal commands issue only if they do not
    #: delay it (no starvation behind a saturating GPU stream); "ready": PIM goes first only
    #: when its command is ready this cycle (normal traffic can keep delaying it).
    priority: Literal["strict", "ready"] = "strict"
    ops_per_byte: float = 1.0

    def mac_bytes(self, bytes_per_element: float) -> float:
        """Weight bytes one MAC command consumes per PU (compute limit applied)."""
        if self.ops_per_byte <= 0:
            return float(self.pu_bytes_per_access)
        return min(float(self.pu_bytes_per_access),
                   self.pu_bytes_per_access * self.ops_per_byte * bytes_per_element / 2.0)

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        require(self.banks_per_pu >= 1, "banks_per_pu", "must be >= 1", "use 1 (per bank) or 2")
        require(self.pu_bytes_per_access > 0, "pu_bytes_per_access", "must be positive", "e.g. 32")
        require(self.nCCDMAC >= 1, "nCCDMAC", "must be >= 1", "e.g. nCCDL")
        require(self.nABSTAG >= 0 and self.nMACLAT >= 0, "nMACLAT", "must be >= 0", "fix it")
        require(self.ops_per_byte >= 0, "ops_per_byte", "must be >= 0",
                "e.g. 1.0 (Sieve), 0 for no compute limit")


@dataclass(frozen=True)
class DramConfig:
    """A resolved DRAM/PIM system (one GPU's HBM stacks)."""

    name: str
    org: OrgSpec
    timing: TimingSpec
    controller: ControllerSpec = field(default_factory=ControllerSpec)
    pim: PimSpec = field(default_factory=PimSpec)
    description: str = ""

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        from sieveopt.validation.dram.mapping import AddressMapping

        try:
            AddressMapping.parse(self.controller.address_mapping, self.org)
        except SpecError as exc:
            raise SpecError("<spec>", "controller.address_mapping", exc.problem, exc.fix) from None
        require(self.controller.request_bytes % self.org.access_bytes == 0,
                "controller.request_bytes", "must be a multiple of org.access_bytes",
                f"use a multiple of {self.org.access_bytes}")
        require(self.pim.pu_bytes_per_access <= self.org.page_bytes, "pim.pu_bytes_per_access",
                "must fit in one page", "lower it")

    @cached_property
    def timing_params(self) -> dict[str, int]:
        """All named cycle values the timing table may reference."""
        params = {f.name: getattr(self.timing, f.name) for f in dataclasses.fields(self.timing)}
        params.update(nCCDMAC=self.pim.nCCDMAC, nABSTAG=self.pim.nABSTAG, nMACLAT=self.pim.nMACLAT)
        return params

    @property
    def tCK_ns(self) -> float:
        return self.timing.tCK_ps / 1000.0

    def peak_bw_GBps_per_pch(self) -> float:
        """External data-bus peak of one pseudo-channel."""
        return self.org.access_bytes / (self.timing.nBL * self.tCK_ns)

    def pim_bw_GBps_per_pch(self) -> float:
        """PIM internal bandwidth of one pseudo-channel (all PUs streaming)."""
        pus = self.org.banks / self.pim.banks_per_pu
        return pus * self.pim.pu_bytes_per_access / (self.pim.nCCDMAC * self.tCK_ns)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def list_dram_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _raw_preset(name_or_path: str | Path, depth: int = 0) -> tuple[dict[str, Any], str]:
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.exists()):
        path = PRESET_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise SpecError(str(name_or_path), "<preset>", "no such preset or file",
                            f"use one of {', '.join(list_dram_presets())} or a path to a .toml")
    data = read_toml(path)
    base = data.pop("base", None)
    if base is not None:
        if depth > 8:
            raise SpecError(str(path), "base", "base chain too deep (cycle?)", "fix base")
        if not isinstance(base, str):
            raise SpecError(str(path), "base", "expected a preset name", "quote it")
        base_data, _ = _raw_preset(base, depth + 1)
        base_data.pop("name", None)
        base_data.pop("description", None)
        data = _deep_merge(base_data, data)
    data.setdefault("name", path.stem)
    return data, str(path)


SECTIONS = {"org": OrgSpec, "timing": TimingSpec, "controller": ControllerSpec, "pim": PimSpec}


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    """Apply overrides: ``section={...}`` merges a table, ``"section.key"`` or a bare key that
    names exactly one field of one section sets that field."""
    data = copy.deepcopy(data)
    for key, value in overrides.items():
        if key in SECTIONS and isinstance(value, dict):
            data[key] = _deep_merge(data.get(key, {}), value)
            continue
        if key in ("name", "description"):
            data[key] = value
            continue
        if "." in key:
            sec, fld = key.split(".", 1)
        else:
            owners = [s for s, cls in SECTIONS.items()
                      if fld_in(cls, key)]
            if len(owners) != 1:
                raise SpecError(source, key, "unknown override key" if not owners else
                                f"ambiguous key (in {owners})", "use section.key, e.g. timing.nCL")
            sec, fld = owners[0], key
        if sec not in SECTIONS or not fld_in(SECTIONS[sec], fld):
            raise SpecError(source, key, "unknown override key", "use section.key, e.g. timing.nCL")
        data.setdefault(sec, {})[fld] = value
    return data


def fld_in(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))


def load_dram_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> DramConfig:
    """Load a preset name or TOML path, apply overrides, validate strictly."""
    data, source = _raw_preset(name_or_path)
    if overrides:
        data = apply_overrides(data, overrides, source)
    return from_dict(DramConfig, data, source)
