"""One DRAM description per system: the system names a DRAM preset, and everything DRAM comes
from it.

A system's ``[hbm_pim]`` table names its preset (``dram_preset = "sieve_b200_hbm3e_pim"``; absent:
chosen by ``generation``, see :data:`GENERATION_PRESETS`). The presets in
``validation/dram/presets`` are the sourced truth for organisation and timing (every value marked
[paper] / [choice] with its reason), so:

* **load** (:func:`fill_from_preset`, called by ``load_system`` before ``--set`` overrides): every
  organisation / timing / PIM field the system TOML leaves out is read from the preset
  (``stacks_per_gpu``, ``pseudo_channels_per_stack``, bank grouping and count, page size, pin rate,
  every ``timing`` field, ``pim.internal_bw_multiplier`` and ``pim.ops_per_byte``). The catalog
  TOMLs carry none of them, so there is nothing to disagree with;
* **resolve** (:func:`resolve_dram`): the simulator's config is the preset plus the system fields
  that differ from what the preset implies (a user ``--set hbm_pim.timing.CL=21`` or a user TOML
  that writes a value) - never a comparison with a catalog entry of the same name, so the same
  hardware replays identically under any name. The PIM knobs (``pim.nCCDMAC``, and if needed
  ``pim.pu_bytes_per_access``) are fitted in whole cycles to ``internal_bw_multiplier`` x the pin
  peak;
* **cost models** read the resolved config's peaks: ``SystemSpec.pim_bw_GBps`` is the preset's PIM
  peak and ``HbmPimSpec.peak_bw_GBps`` its pin peak (tests check equality).

``internal_bw_multiplier`` is the ratio of a pseudo-channel's internal (all PUs) to its external
(pin) peak, as AttAcc defines its 16x ("32 PUs x 32 B per nCCDAB = 4 tCK" against "32 B per 2 tCK",
papers.md §4.3) and as papers.md §1.2 derives Sieve's 12x ("384 GB/s per pCH = 12x external,
~98 TB/s per GPU"). It is *not* relative to ``gpu.hbm_bw_GBps`` (Table 1's rounded 8.0 TB/s):
that reading made the Sieve system ask for 16 x 8.0 = 128 TB/s, which no whole-cycle PIM clock
gives (the simulator ran 16 x 8.19 = 131 TB/s, "16.4x"). ``gpu.hbm_bw_GBps`` stays the GPU's
sustained-stream basis (Table 1's 8.0 TB/s, <= the 8.19 TB/s of pins).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sieveopt.errors import SpecError

if TYPE_CHECKING:
    from sieveopt.models.specs import HbmPimSpec
    from sieveopt.validation.dram.config import DramConfig

#: hbm_pim.generation -> DRAM preset name (used when a system TOML names no ``dram_preset``).
GENERATION_PRESETS = {
    "HBM3E-PIM": "sieve_b200_hbm3e_pim",
    "HBM3-PIM": "attacc_hbm3_pim",
    "HBM3 Logic-PIM": "attacc_hbm3_pim",
    "HBM2-PIM": "samsung_hbm2_pim",
}
#: SystemSpec timing field -> DRAM preset timing fields (the first one is read back on load).
TIMING_FIELDS = {
    "CL": ("nCL",), "CWL": ("nCWL",), "tRCD": ("nRCDRD", "nRCDWR"), "tRP": ("nRP",), "tRAS": ("nRAS",),
    "tRC": ("nRC",), "tWR": ("nWR",), "tRTP": ("nRTP",), "tCCD_S": ("nCCDS",), "tCCD_L": ("nCCDL",),
    "tRRD_S": ("nRRDS",), "tRRD_L": ("nRRDL",), "tFAW": ("nFAW",), "tWTR_S": ("nWTRS",),
    "tWTR_L": ("nWTRL",), "tRTW": ("nRTW",),
}
#: Refresh fields given in ns by the system, in cycles by the preset.
REFRESH_FIELDS = {"tREFI_ns": "nREFI", "tRFC_ns": "nRFC"}
#: GPU-style address striping inside a pseudo-channel: bank groups rotate fastest, so a
#: sequential weight stream alternates bank groups at tCCD_S (Ramulator's default RoBaRaCoCh
#: streams one bank at tCCD_L: half the peak, 55 % on the HBM3 5.2 Gbps preset).
GPU_ADDRESS_MAPPING = "RoCoBaBgCh"


def _load(name: str, overrides: dict[str, Any] | None = None) -> DramConfig:
    from sieveopt.validation.dram.config import load_dram_config

    return load_dram_config(name, overrides)


def preset_name(source: str, generation: str, dram_preset: str = "") -> str:
    """The system's DRAM preset: ``dram_preset`` if named, else the generation's."""
    name = dram_preset or GENERATION_PRESETS.get(generation)
    if not name:
        raise SpecError(source, "hbm_pim.dram_preset", f"no DRAM preset named and none known for "
                        f"generation {generation!r}",
                        f"set hbm_pim.dram_preset (see `sieveopt dram presets`) or a generation of: "
                        f"{', '.join(GENERATION_PRESETS)}")
    return name


def implied_fields(cfg: DramConfig, width_bits: int) -> dict[str, Any]:
    """The ``[hbm_pim]`` fields a DRAM config implies (nested like the TOML), for a pCH of
    ``width_bits`` data pins (the one interface fact a preset does not state)."""
    o, t = cfg.org, cfg.timing
    beats = o.access_bytes * 8 // width_bits                 # burst length in beats (BL8 ...)
    tck_ns = t.tCK_ps / 1000.0
    timing: dict[str, Any] = {f: getattr(t, tg[0]) for f, tg in TIMING_FIELDS.items()}
    timing.update(tCK_ps=t.tCK_ps, BL=beats,
                  **{f: getattr(t, n) * tck_ns for f, n in REFRESH_FIELDS.items()})
    return {
        "stacks_per_gpu": o.stacks,
        "pseudo_channels_per_stack": o.channels_per_stack * o.pseudo_channels_per_channel,
        "bank_groups_per_pseudo_channel": o.bank_groups,
        "banks_per_pseudo_channel": o.banks,
        "page_size_bytes": o.page_bytes,
        "pin_rate_Gbps": beats / (t.nBL * tck_ns),
        "timing": timing,
        "pim": {"internal_bw_multiplier": round(cfg.pim_bw_GBps_per_pch() / cfg.peak_bw_GBps_per_pch(), 9),
                "ops_per_byte": cfg.pim.ops_per_byte},
    }


def fill_from_preset(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` (a system TOML as a dict) with the ``[hbm_pim]`` fields it leaves out read from
    its DRAM preset, and ``dram_preset`` set; unchanged if there is no ``[hbm_pim]`` table or no
    ``pseudo_channel_width_bits`` (validation then names the missing field)."""
    hp = data.get("hbm_pim")
    if not isinstance(hp, dict) or "pseudo_channel_width_bits" not in hp:
        return data
    name = preset_name(source, str(hp.get("generation", "")), str(hp.get("dram_preset", "")))
    try:
        cfg = _load(name)
    except SpecError as exc:
        raise SpecError(source, "hbm_pim.dram_preset", f"{name!r}: {exc.problem}", exc.fix) from None
    implied = implied_fields(cfg, int(hp["pseudo_channel_width_bits"]))
    out = dict(data)
    hp = out["hbm_pim"] = dict(hp, dram_preset=name)
    for key, value in implied.items():
        if isinstance(value, dict):
            hp[key] = {**value, **(hp.get(key) or {})}
        else:
            hp.setdefault(key, value)
    return out


def _overrides(hp: HbmPimSpec, base: DramConfig, source: str) -> dict[str, Any]:
    """Preset overrides for the fields of ``hp`` that differ from what ``base`` implies."""
    imp = implied_fields(base, hp.pseudo_channel_width_bits)
    ov: dict[str, Any] = {}
    if base.controller.address_mapping != GPU_ADDRESS_MAPPING:
        ov["controller.address_mapping"] = GPU_ADDRESS_MAPPING
    if hp.pim.ops_per_byte != imp["pim"]["ops_per_byte"]:
        ov["pim.ops_per_byte"] = float(hp.pim.ops_per_byte)
    o = base.org
    if hp.stacks_per_gpu != o.stacks:
        ov["org.stacks"] = int(hp.stacks_per_gpu)
    ppc = o.pseudo_channels_per_channel
    if hp.pseudo_channels_per_stack % ppc:
        raise SpecError(source, "hbm_pim.pseudo_channels_per_stack",
                        f"{hp.pseudo_channels_per_stack} is not a multiple of the preset's {ppc} pCH per channel",
                        f"use a multiple of {ppc} or another hbm_pim.dram_preset")
    if hp.pseudo_channels_per_stack != imp["pseudo_channels_per_stack"]:
        ov["org.channels_per_stack"] = hp.pseudo_channels_per_stack // ppc
    if (hp.bank_groups_per_pseudo_channel, hp.banks_per_pseudo_channel) != (o.bank_groups, o.banks):
        ov["org.bank_groups"] = int(hp.bank_groups_per_pseudo_channel)
        ov["org.banks_per_group"] = hp.banks_per_pseudo_channel // hp.bank_groups_per_pseudo_channel
    if hp.page_size_bytes != o.page_bytes:
        ov["org.page_bytes"] = int(hp.page_size_bytes)
    t, it = hp.timing, imp["timing"]
    for fld, targets in TIMING_FIELDS.items():
        if getattr(t, fld) != it[fld]:
            for tgt in targets:
                ov[f"timing.{tgt}"] = int(getattr(t, fld))
    clock = t.tCK_ps != it["tCK_ps"]
    if clock:
        ov["timing.tCK_ps"] = int(t.tCK_ps)
    for fld, tgt in REFRESH_FIELDS.items():       # ns -> cycles at the system's clock
        if clock or getattr(t, fld) != it[fld]:
            ov[f"timing.{tgt}"] = int(round(getattr(t, fld) * 1000.0 / t.tCK_ps))
    return ov


def pim_knobs_for(cfg: DramConfig, target_GBps: float, tolerance: float = 0.05) -> tuple[int, int]:
    """(nCCDMAC, pu_bytes_per_access) giving a peak PIM bandwidth on ``cfg`` close to
    ``target_GBps`` (per GPU): the nearest whole nCCDMAC at the preset's PU width; another PU
    width only if that misses by more than ``tolerance`` (e.g. > 24x on Sieve's preset)."""
    pus = cfg.org.pseudo_channels * cfg.org.banks / cfg.pim.banks_per_pu

    def fit(w: int) -> tuple[float, int]:
        n = max(1, round(pus * w / (target_GBps * cfg.tCK_ns)))
        return abs(pus * w / (n * cfg.tCK_ns) / target_GBps - 1.0), n

    w0 = cfg.pim.pu_bytes_per_access
    err, n = fit(w0)
    if err <= tolerance:
        return n, w0
    cands = [(*fit(w), w) for w in (16, 32, 64, 128, 256, 512) if w <= cfg.org.page_bytes]
    err, n, w = min(cands)
    return n, w


@functools.lru_cache(maxsize=256)
def _resolve(hp: HbmPimSpec, source: str, preset: str | None,
             extra: tuple[tuple[str, Any], ...]) -> tuple[str, DramConfig, dict[str, Any]]:
    own = preset_name(source, hp.generation, hp.dram_preset)
    name = preset or own
    ov = _overrides(hp, _load(own), source)      # the system's deviations from its own preset
    if name != own:                              # another preset (an experiment): same deviations
        ov.pop("controller.address_mapping", None)
        if _load(name).controller.address_mapping != GPU_ADDRESS_MAPPING:
            ov["controller.address_mapping"] = GPU_ADDRESS_MAPPING
    ov.update(extra)
    cfg = _load(name, ov)
    if not cfg.pim.enabled:
        raise SpecError(name, "pim.enabled", "the DRAM preset has no PIM units",
                        "use a PIM preset (see `sieveopt dram presets`)")
    pins = cfg.peak_bw_GBps_per_pch() * cfg.org.pseudo_channels
    if name == own and abs(hp.peak_bw_GBps / pins - 1.0) > 1e-9:
        raise SpecError(source, "hbm_pim.pin_rate_Gbps",
                        f"pins give {hp.peak_bw_GBps:.1f} GB/s but the DRAM preset {name} "
                        f"({cfg.org.access_bytes} B per {cfg.timing.nBL} tCK of {cfg.timing.tCK_ps} ps) "
                        f"gives {pins:.1f} GB/s",
                        "set pin_rate_Gbps, pseudo_channel_width_bits and timing.tCK_ps consistently "
                        "(or leave them out: they come from the preset)")
    if not any(k in dict(extra) for k in ("pim.nCCDMAC", "pim.pu_bytes_per_access")):
        n, w = pim_knobs_for(cfg, pins * hp.pim.internal_bw_multiplier)
        knobs = {k: v for k, v in (("pim.nCCDMAC", n), ("pim.pu_bytes_per_access", w))
                 if v != getattr(cfg.pim, k.split(".")[1])}
        if knobs:
            ov.update(knobs)
            cfg = _load(name, ov)
    return name, cfg, ov


def resolve_dram(hp: HbmPimSpec, *, source: str = "<system>", preset: str | None = None,
                 overrides: dict[str, Any] | None = None) -> tuple[str, DramConfig, dict[str, Any]]:
    """(preset name, resolved config, overrides applied) of a system's HBM-PIM (cached): the
    preset plus the system's deviations, the GPU address mapping and the fitted PIM knobs;
    ``preset`` / ``overrides`` are for experiments on top: another preset takes the system's
    deviations from its own preset (and the multiplier), ``overrides`` e.g. ``pim.nCCDMAC``."""
    extra = tuple(sorted((overrides or {}).items(), key=lambda kv: kv[0]))
    try:
        hash(extra)
    except TypeError:                      # a table-valued override: not cacheable
        name, cfg, ov = _resolve.__wrapped__(hp, source, preset, extra)
    else:
        name, cfg, ov = _resolve(hp, source, preset, extra)
    return name, cfg, dict(ov)
