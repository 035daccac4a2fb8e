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
MAPPINGS_DOC = "RoBaRaCoCh, ChRaBaRoCo (as Ramulator 2.0), RoCoBaBgCh, RoBgBaCoChPc, ... (fields MSB -> LSB)"


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
    #: read-to-precharge split as in Ramulator 2.0's HBM3: nRTPS for RD -> PREA / all-bank REF,
    #: nRTPL for RD -> PRE and RDA -> ACT of the same bank; -1 = use nRTP
    nRTPS: int = -1
    nRTPL: int = -1
    #: cycles an ACT holds the row command path (Ramulator's HBM "2-cycle ACT" = 2); see
    #: ``timing.BUS_OCCUPANCY``
    nACTBUS: int = 1

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        for f in dataclasses.fields(self):
            if f.name in ("nRTPS", "nRTPL"):
                require(getattr(self, f.name) >= -1, f.name, "must be >= 0 (or -1 = nRTP)",
                        "use a non-negative value or -1")
                continue
            require(getattr(self, f.name) >= 0, f.name, "must be >= 0", "use a non-negative value")
        require(self.tCK_ps > 0, "tCK_ps", "must be positive", "give the clock period in ps")
        require(self.nBL >= 1, "nBL", "must be >= 1", "give the burst length in cycles")
        require(self.nCCDS >= 1, "nCCDS", "must be >= 1 (bursts are spaced max(nCCDS, nBL))",
                "use the column-to-column delay in cycles")
        require(self.nACTBUS >= 1, "nACTBUS", "must be >= 1", "use 1, or 2 for a 2-cycle ACT")
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
    #: MSB -> LSB field string (see mapping.py); RoBaRaCoCh / ChRaBaRoCo decode as Ramulator 2.0
    address_mapping: str = "RoBgBaCoChPc"
    request_bytes: int = 32
    frontend_requests_per_cycle: int = 1
    #: where read/write buffers, write-drain watermarks and the read/write mode live:
    #: "pseudo_channel" (per pCH) or "channel" (one read and one write buffer per channel,
    #: shared by its pCHs, one read/write mode -- Ramulator 2.0's GenericDRAMController with an
    #: HBM device). Independent of ``arbitration``; every pair but pseudo_channel + rotate
    #: makes one decision per channel (one command per cycle on a per-channel bus).
    queue_scope: Literal["pseudo_channel", "channel"] = "pseudo_channel"
    #: how the next command is chosen: "rotate" (sieveopt's FR-FCFS: the oldest ready row
    #: hit, else the oldest ready ACT/PRE, no PRE while the bank has queued hits; with
    #: pseudo_channel scope the pCH controllers sharing a command bus take turns) or
    #: "oldest_ready" (Ramulator 2.0's controller: read forwarding from the write buffer,
    #: requests whose ACT issued move to an active buffer served first, then the oldest
    #: request whose next command is ready, across the channel's buffers; a PRE that would
    #: close an activated request's row is held back). Every pair with queue_scope is valid;
    #: all but pseudo_channel + rotate need row_policy = "open" and no PIM program.
    arbitration: Literal["rotate", "oldest_ready"] = "rotate"
    #: what ``cycles`` reports: "last_data" (end of the last data burst / PIM result; every
    #: request complete) or "last_accepted" (the cycle the last request entered a queue,
    #: which is what Ramulator 2.0 prints as memory_system_cycles: its main loop stops when
    #: the frontend has sent the whole trace)
    completion: Literal["last_data", "last_accepted"] = "last_data"

    def __post_init__(self) -> None:
        require_finite(self)  # NaN/inf never reach the simulator
        if (self.queue_scope, self.arbitration) != ("pseudo_channel", "rotate"):
            require(self.row_policy == "open", "row_policy", f"queue_scope={self.queue_scope!r} "
                    f"with arbitration={self.arbitration!r} models the open-row policy only",
                    "use row_policy='open' (or queue_scope='pseudo_channel' with "
                    "arbitration='rotate')")
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
    #: input-vector tile (elements) uploaded through the PU input register file before the
    #: MACs that consume it (Samsung PIMSimulator: GRF_A = 8 x 16 FP16 = 128); 0 = the whole
    #: vector is written once before the GEMV (NeuPIMs-style global buffer)
    input_tile_elements: int = 0
    #: extra data-bus writes per GEMV for PIM mode switches / register write-back, before the
    #: first and after the last MAC (Samsung: SB->HAB 4 + HAB->HAB_PIM 1 = 5 before;
    #: GRF_B->bank 8 + HAB_PIM->HAB 1 + HAB->SB 2 = 11 after)
    kernel_prologue_writes: int = 0
    kernel_epilogue_writes: int = 0
    #: the input registers are written through a reserved DRAM row (Samsung: row 0x3fff in
    #: all-bank mode, so every tile upload closes the weight row, opens the register row,
    #: writes, and reopens the weight row); False = a separate global buffer (NeuPIMs)
    upload_via_row: bool = False
    #: Samsung's GEMV layout (PIMSimulator preloadGemv / executeGemv): input tile k's weights sit
    #: in the even (k even) or odd (k odd) bank of each PU's pair, in consecutive columns, and
    #: the kernel runs every even tile, then every odd one. An all-bank activation then opens
    #: one bank of each pair, so it serves a row of one bank (``page_bytes / mac_bytes`` MACs),
    #: not of both; and the register row (upload_via_row) sits in the odd banks, so only an
    #: upload that follows an odd tile has to close its weight row first. Needs banks_per_pu
    #: = 2 and input_tile_elements > 0.
    tile_bank_parity: bool = False

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
        require(self.input_tile_elements >= 0, "input_tile_elements", "must be >= 0",
                "e.g. 128 (Samsung GRF_A) or 0 (whole vector)")
        require(self.kernel_prologue_writes >= 0 and self.kernel_epilogue_writes >= 0,
                "kernel_prologue_writes", "must be >= 0", "count the writes per GEMV")
        if self.tile_bank_parity:
            require(self.banks_per_pu == 2 and self.input_tile_elements > 0, "tile_bank_parity",
                    "needs banks_per_pu = 2 and input_tile_elements > 0",
                    "set both (Samsung: 2 and 128) or tile_bank_parity = false")


@dataclass(frozen=True)
class DramConfig:
    """A resolved DRAM/PIM system (one GPU's HBM stacks)."""

    name: str
    org: OrgSpec
    timing: TimingSpec
    controller: ControllerSpec = field(default_factory=ControllerSpec)
    pim: PimSpec = field(default_factory=PimSpec)
    description: str = ""
    #: extra timing-table rows as data (see ``timing.parse_row``), appended to the built-in
    #: table, e.g. ``["channel: ACT -> ACT PRE PREA REF = 2"]``
    timing_rows: tuple[str, ...] = ()

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
        from sieveopt.validation.dram.timing import eval_latency

        for con in self.table:  # every latency must evaluate (names, syntax)
            try:
                eval_latency(con.latency, self.timing_params)
            except SpecError as exc:
                raise SpecError("<spec>", "timing_rows", exc.problem, exc.fix) from None
            except SyntaxError:
                raise SpecError("<spec>", "timing_rows", f"bad latency {con.latency!r}",
                                "use names, integers, + - * // max() min()") from None

    @cached_property
    def table(self):
        """The timing table of this config: the built-in rows plus ``timing_rows``."""
        from sieveopt.validation.dram.timing import TIMING_TABLE, parse_row

        return TIMING_TABLE + tuple(parse_row(r) for r in self.timing_rows)

    @cached_property
    def timing_params(self) -> dict[str, int]:
        """All named cycle values the timing table may reference."""
        params = {f.name: getattr(self.timing, f.name) for f in dataclasses.fields(self.timing)}
        params.update(nCCDMAC=self.pim.nCCDMAC, nABSTAG=self.pim.nABSTAG, nMACLAT=self.pim.nMACLAT)
        for name in ("nRTPS", "nRTPL"):
            if params[name] < 0:
                params[name] = self.timing.nRTP
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
        if key in ("name", "description", "timing_rows"):
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
