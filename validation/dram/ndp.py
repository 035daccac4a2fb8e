"""DIMM-NDP and host-memory reads on the cycle-level DRAM simulator (TriMoE's host tiers).

Which mechanism is modelled. TriMoE (arXiv 2603.01058) times an NDP expert as
``max(f_calc_ndp(L), T_Internal(W))``, "T_Internal(W): NDP's internal (rank-level) read
time", and its NDP timing comes from "a cycle-level simulator built on Ramulator 2.0"
(trimoe_gem.md §1.3, §1.6; [S]/[Q] third-party readings of the paper). We model **rank-level
DIMM-NDP**: the near-data unit in the DIMM's buffer issues ordinary ACT / RD / PRE commands to
every rank of both sub-channels at once, each rank returning data over its own path into the
buffer (the RecNMP / TensorDIMM family), and multiplies the streamed weight rows with the
expert's token vectors. So an NDP job is the DIMM's ranks streaming the expert's weight bytes
(the expert is *localized*: all of it in one DIMM, §1.3), with the compute overlapped (the
unit's double-buffered pipeline); the time is ``max(compute, simulated rank-parallel read)``.
Unlike HBM-PIM's all-bank MAC commands (:mod:`.pim`), no new DRAM command is needed: the data
leaves the banks through the normal column path, only not over the host channel.

Views of one DIMM preset (``ddr5_4800_rdimm``, whose pseudo-channel *is* a rank):

* **NDP view** (:func:`ndp_config`): every rank is a pseudo-channel with its own data bus; the
  ranks of a sub-channel share its CA bus (``command_bus = "per_channel"``). ``ranks`` overrides
  the preset's rank count (the system's ``internal_bw_multiplier``: internal / external peak =
  ranks per sub-channel).
* **Host view** (:func:`host_config`): the host memory controller sees one data bus per
  sub-channel (ranks folded into it; a sequential stream keeps one rank's bus full, so only
  rank-switch bubbles are lost, which the engine does not model anyway). A striped host read
  of ``W`` bytes over ``channels`` DIMM channels reads ``W / channels`` on each in parallel
  (TriMoE's T_DRAM(W, striped), §1.3).

Simulation length: a stream is simulated exactly up to :data:`EXACT_ACCESSES` column accesses
per pseudo-channel (4 MiB per rank: ~29 refresh intervals at DDR5-4800) and extrapolated
linearly beyond (the stream is periodic in the refresh interval; the test checks the error
against a direct simulation). Results are cached by the DRAM API per (config, length).
"""

from __future__ import annotations

import dataclasses
import math

from sieveopt.errors import SpecError
from sieveopt.validation.dram import api
from sieveopt.validation.dram.config import DramConfig

#: per-pseudo-channel accesses simulated exactly; longer streams scale linearly
EXACT_ACCESSES = 1 << 16


def ndp_config(cfg: DramConfig, ranks: int | None = None) -> DramConfig:
    """The NDP view of a DIMM preset: one pseudo-channel per rank (``ranks`` per sub-channel)."""
    if ranks is None or ranks == cfg.org.pseudo_channels_per_channel:
        return cfg
    if ranks < 1:
        raise SpecError(cfg.name, "ranks", f"{ranks} < 1", "use at least one rank per sub-channel")
    return dataclasses.replace(cfg, org=dataclasses.replace(cfg.org, pseudo_channels_per_channel=int(ranks)))


def host_config(cfg: DramConfig) -> DramConfig:
    """The host memory controller's view of a DIMM preset: one data bus per sub-channel."""
    if cfg.org.pseudo_channels_per_channel == 1:
        return cfg
    return dataclasses.replace(cfg, org=dataclasses.replace(cfg.org, pseudo_channels_per_channel=1))


def external_peak_GBps(cfg: DramConfig) -> float:
    """A DIMM's external (host channel) peak: sub-channels x one bus."""
    return cfg.org.channels * cfg.peak_bw_GBps_per_pch()


def internal_peak_GBps(cfg: DramConfig, ranks: int | None = None) -> float:
    """A DIMM's internal (rank-parallel) peak in the NDP view."""
    ndp = ndp_config(cfg, ranks)
    return ndp.org.pseudo_channels * ndp.peak_bw_GBps_per_pch()


def stream_ns(cfg: DramConfig, nbytes: float) -> float:
    """Sequential read of ``nbytes`` sharded evenly over every pseudo-channel of ``cfg`` (all
    in parallel): exact up to :data:`EXACT_ACCESSES` accesses per pCH, linear beyond."""
    if nbytes <= 0:
        return 0.0
    gran = cfg.org.pseudo_channels * cfg.org.access_bytes
    acc = math.ceil(nbytes / gran)
    if acc <= EXACT_ACCESSES:
        return float(api.weight_stream_ns(cfg, acc * gran))
    return float(api.weight_stream_ns(cfg, EXACT_ACCESSES * gran)) * acc / EXACT_ACCESSES


def ndp_read_ns(cfg: DramConfig, nbytes: float, ranks: int | None = None) -> float:
    """T_Internal: the DIMM's NDP unit reads ``nbytes`` localized in this DIMM, all ranks at once."""
    return stream_ns(ndp_config(cfg, ranks), nbytes)


def host_read_ns(cfg: DramConfig, nbytes: float, channels: int) -> float:
    """T_DRAM(striped): the host reads ``nbytes`` striped over ``channels`` DIMM channels."""
    if channels < 1:
        raise SpecError(cfg.name, "channels", f"{channels} < 1", "use at least one host channel")
    return stream_ns(host_config(cfg), nbytes / channels)
