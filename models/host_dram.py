"""One DRAM description of an offloading system's host memory (TriMoE's DIMMs).

A system's ``[offload.ndp]`` names a DIMM preset (``dram_preset = "ddr5_4800_rdimm"``; see
``validation/dram/presets``); replay simulates the NDP jobs and the host reads on it
(:mod:`sieveopt.validation.dram.ndp`). The cost models keep reading the spec's numbers
(``dimm_bw_GBps``, ``internal_bw_multiplier``, ``cpu.host_mem_bw_GBps``), so the two must
describe the same hardware; :func:`resolve_host_dram` (run when the spec is built, so a bad
combination fails on load) checks that and derives the simulator's view:

* ``dimm_bw_GBps`` must equal the preset's external peak (sub-channels x one bus) within
  :data:`TOLERANCE` (a different DIMM speed is a different preset);
* ``internal_bw_multiplier`` is rank-level NDP's internal / external peak = ranks per
  sub-channel: a whole number, which overrides the preset's rank count (a sweep knob, like
  ``hbm_pim.pim.internal_bw_multiplier`` fits the PIM clock);
* ``cpu.host_mem_bw_GBps`` / ``dimm_bw_GBps`` = the host's DIMM channels a striped read
  spreads over (whole, within :data:`TOLERANCE`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sieveopt.errors import SpecError

if TYPE_CHECKING:
    from sieveopt.validation.dram.config import DramConfig

#: relative mismatch allowed between a spec bandwidth and the preset's (tCK rounding: DDR5-4800's
#: 0.416 ns clock gives 38.46 GB/s per DIMM for the nominal 38.4)
TOLERANCE = 0.01


@dataclass(frozen=True)
class HostDram:
    """The resolved host memory: DIMM preset in the NDP view (``ranks`` per sub-channel) and the
    number of host DIMM channels a striped read uses."""

    preset: str
    ndp_cfg: DramConfig
    ranks: int
    host_channels: int

    def describe(self) -> dict[str, Any]:
        from sieveopt.validation.dram import ndp

        return {"preset": self.preset, "ranks_per_subchannel": self.ranks, "host_channels": self.host_channels,
                "dimm_external_peak_GBps": ndp.external_peak_GBps(self.ndp_cfg),
                "dimm_internal_peak_GBps": ndp.internal_peak_GBps(self.ndp_cfg)}


def _whole(value: float, field: str, source: str, what: str) -> int:
    n = round(value)
    if n < 1 or abs(value - n) > TOLERANCE * max(1.0, n):
        raise SpecError(source, field, f"{what} = {value:.4g} is not a whole number",
                        "choose values whose ratio is whole (or leave offload.ndp.dram_preset empty)")
    return int(n)


@functools.lru_cache(maxsize=64)
def _resolve(preset: str, dimm_bw_GBps: float, multiplier: float, host_bw_GBps: float,
             source: str) -> HostDram:
    from sieveopt.validation.dram import ndp
    from sieveopt.validation.dram.config import load_dram_config

    try:
        cfg = load_dram_config(preset)
    except SpecError as exc:
        raise SpecError(source, "ndp.dram_preset", f"{preset!r}: {exc.problem}", exc.fix) from None
    if cfg.pim.enabled:
        raise SpecError(source, "ndp.dram_preset", f"{preset!r} is an HBM-PIM preset",
                        "name a DIMM preset, e.g. ddr5_4800_rdimm")
    ext = ndp.external_peak_GBps(cfg)
    if abs(dimm_bw_GBps / ext - 1.0) > TOLERANCE:
        raise SpecError(source, "ndp.dimm_bw_GBps",
                        f"{dimm_bw_GBps} GB/s but the DIMM preset {preset} gives {ext:.2f} GB/s",
                        f"set it to {ext:.1f} or name the preset of that DIMM speed")
    ranks = _whole(multiplier, "ndp.internal_bw_multiplier", source,
                   "internal / external DIMM bandwidth (ranks per sub-channel, rank-level NDP)")
    channels = _whole(host_bw_GBps / ext, "cpu.host_mem_bw_GBps", source,
                      f"host bandwidth / DIMM peak {ext:.2f} GB/s (host DIMM channels)")
    return HostDram(preset, ndp.ndp_config(cfg, ranks), ranks, channels)


def resolve_host_dram(offload: Any, source: str = "<spec>") -> HostDram | None:
    """The host memory of ``offload`` (an ``OffloadSpec``), or None when it names no DIMM preset."""
    n = offload.ndp
    if not n.dram_preset:
        return None
    return _resolve(n.dram_preset, float(n.dimm_bw_GBps), float(n.internal_bw_multiplier),
                    float(offload.cpu.host_mem_bw_GBps), source)
