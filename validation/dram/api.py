"""Layer-level DRAM/PIM timing API for the replay engine (all times integer nanoseconds).

Symmetry assumption (stated once, used everywhere here): expert weights are sharded evenly
over every pseudo-channel of the GPU at identical bank/row indices (Sieve's tensor
parallelism), and every pseudo-channel sees the same request stream and the same PIM command
stream, with refresh phases aligned. Then every channel behaves identically and simulating one
representative channel (all its pseudo-channels, so a shared command bus is still modelled) gives
the GPU's time. ``tests/test_dram_api.py`` checks this against simulating every channel.

Results are cached per (config, shape), so replaying a 512-expert layer costs one simulation per
distinct shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.validation.dram.config import DramConfig, load_dram_config
from sieveopt.validation.dram.config import list_dram_presets as _list
from sieveopt.validation.dram.mapping import AddressMapping
from sieveopt.validation.dram.pim import concat_programs, expert_matrices, pim_program
from sieveopt.validation.dram.sim import DramSim, DramStats, PimProgram

__all__ = ["ConcurrentResult", "PimJob", "clear_caches", "concurrent_ns", "list_dram_presets",
           "load_dram_preset", "pim_expert_ns", "pim_gemv_ns", "stream_requests",
           "weight_stream_ns"]


def list_dram_presets() -> list[str]:
    """Names of the shipped presets (``sieve_b200_hbm3e_pim``, ``hbm3_5200`` ...)."""
    return _list()


def load_dram_preset(name_or_path: str | Path, **overrides: Any) -> DramConfig:
    """Preset name or TOML path plus overrides: ``nCL=30``, ``timing={"nCL": 30}`` or
    ``**{"pim.banks_per_pu": 2}``; unknown keys raise SpecError."""
    return load_dram_config(name_or_path, overrides)


def _ns(cfg: DramConfig, cycles: int) -> int:
    return -(-cycles * cfg.timing.tCK_ps // 1000)


def _n_pch(cfg: DramConfig, channels: int | None) -> int:
    ch = cfg.org.channels if channels is None else int(channels)
    if ch < 1:
        raise SpecError(cfg.name, "channels", f"{channels} < 1", "use at least one channel")
    return ch * cfg.org.pseudo_channels_per_channel


def stream_requests(cfg: DramConfig, accesses_per_pch: int, *, row_base: int = 0,
                    n_pch: int | None = None) -> dict[str, np.ndarray]:
    """Sequential reads of ``accesses_per_pch`` column accesses in each of the first ``n_pch``
    pseudo-channels (default: one channel's), interleaved round-robin over them. Inside a
    pseudo-channel the addresses follow the config's mapping with the channel fields removed."""
    n_pch = n_pch or cfg.org.pseudo_channels_per_channel
    mp = AddressMapping.parse(cfg.controller.address_mapping, cfg.org)
    j = np.arange(accesses_per_pch, dtype=np.int64)
    d = mp.decode(j * cfg.org.access_bytes, drop=("Ch", "Pc"))
    rep = {k: np.repeat(v, n_pch) for k, v in d.items() if k != "pch"}
    rep["row"] = (rep["row"] + row_base) % cfg.org.rows
    rep["pch"] = np.tile(np.arange(n_pch, dtype=np.int64), accesses_per_pch)
    rep["wr"] = np.zeros(accesses_per_pch * n_pch, dtype=np.int64)
    return rep


def _run_channel(cfg: DramConfig, accesses_per_pch: int, prog: PimProgram, sharing: str | None,
                 row_base: int) -> DramStats:
    sim = DramSim(cfg, channels=1, pim=prog, sharing=sharing, frontend_requests_per_cycle=0)
    if accesses_per_pch:
        r = stream_requests(cfg, accesses_per_pch, row_base=row_base)
        sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    return sim.finish()


@lru_cache(maxsize=4096)
def _stream_cycles(cfg: DramConfig, accesses_per_pch: int) -> int:
    return _run_channel(cfg, accesses_per_pch, PimProgram.empty(), None, 0).cycles


def weight_stream_ns(cfg: DramConfig, total_bytes: int, *, channels: int | None = None) -> int:
    """Time for the GPU to read ``total_bytes`` sharded evenly over every pseudo-channel of
    ``channels`` channels (default: all of the GPU), all channels in parallel, sequential
    reads with the GPU keeping every queue full."""
    if total_bytes < 0:
        raise SpecError(cfg.name, "total_bytes", f"{total_bytes} < 0", "use a byte count >= 0")
    if total_bytes == 0:
        return 0
    per_pch = math.ceil(total_bytes / _n_pch(cfg, channels))
    return _ns(cfg, _stream_cycles(cfg, math.ceil(per_pch / cfg.org.access_bytes)))


@lru_cache(maxsize=4096)
def _pim_cycles(cfg: DramConfig, matrices: tuple[tuple[int, int], ...], tokens: int,
                bpe: float, n_pch: int, act: float) -> int:
    prog = pim_program(cfg, list(matrices), tokens, bytes_per_element=bpe, pseudo_channels=n_pch,
                       act_bytes=act)
    return _run_channel(cfg, 0, prog, None, 0).cycles


def clear_caches() -> None:
    """Forget every cached simulation result (stream, PIM and concurrent runs), e.g. for
    cold-cache measurements."""
    for fn in (_stream_cycles, _pim_cycles, _concurrent):
        fn.cache_clear()


def pim_gemv_ns(cfg: DramConfig, rows: int, cols: int, tokens: int, *,
                bytes_per_element: float = 2.0, act_bytes: float = 2.0,
                channels: int | None = None) -> int:
    """Time of an all-bank PIM job: ``tokens`` sequential GEMVs of a ``rows x cols`` matrix
    (token write, all-bank GEMV over the weight rows, read-back), tensor-parallel over every
    pseudo-channel of the GPU (or of ``channels`` channels). Weights are stored at
    ``bytes_per_element``; the token vector and the results move at ``act_bytes`` (BF16)."""
    if tokens <= 0:
        return 0
    return _ns(cfg, _pim_cycles(cfg, ((int(rows), int(cols)),), int(tokens),
                                float(bytes_per_element), _n_pch(cfg, channels), float(act_bytes)))


def pim_expert_ns(cfg: DramConfig, d: int, f: int, tokens: int, *,
                  bytes_per_element: float = 2.0, act_bytes: float = 2.0,
                  channels: int | None = None) -> int:
    """Time of one MoE expert (3 d f weights: gate|up 2f x d, down d x f) for ``tokens``
    tokens on PIM, see :mod:`.pim` for the mapping (weights at ``bytes_per_element``,
    activations at ``act_bytes``)."""
    if tokens <= 0:
        return 0
    return _ns(cfg, _pim_cycles(cfg, tuple(expert_matrices(d, f)), int(tokens),
                                float(bytes_per_element), _n_pch(cfg, channels), float(act_bytes)))


@dataclass(frozen=True)
class PimJob:
    """One PIM job: ``tokens`` passes over ``matrices``; ``start_ns`` is its release time;
    weights at ``bytes_per_element``, token writes / read-backs at ``act_bytes``."""

    matrices: tuple[tuple[int, int], ...]
    tokens: int
    start_ns: int = 0
    bytes_per_element: float = 2.0
    act_bytes: float = 2.0

    @staticmethod
    def gemv(rows: int, cols: int, tokens: int, start_ns: int = 0, *,
             bytes_per_element: float = 2.0, act_bytes: float = 2.0) -> PimJob:
        return PimJob(((rows, cols),), tokens, start_ns, bytes_per_element, act_bytes)

    @staticmethod
    def expert(d: int, f: int, tokens: int, start_ns: int = 0, *,
               bytes_per_element: float = 2.0, act_bytes: float = 2.0) -> PimJob:
        return PimJob(tuple(expert_matrices(d, f)), tokens, start_ns, bytes_per_element,
                      act_bytes)


@dataclass(frozen=True)
class ConcurrentResult:
    """End times (ns from 0) of the GPU weight stream and of the last PIM job."""

    stream_end_ns: int
    pim_end_ns: int

    def __iter__(self):
        return iter((self.stream_end_ns, self.pim_end_ns))


@lru_cache(maxsize=1024)
def _concurrent(cfg: DramConfig, accesses: int, jobs: tuple[PimJob, ...], sharing: str,
                n_pch: int) -> tuple[int, int]:
    progs = []
    row = 0
    for job in jobs:
        rel = job.start_ns * 1000 // cfg.timing.tCK_ps
        prog = pim_program(cfg, list(job.matrices), job.tokens, row_base=row,
                           bytes_per_element=job.bytes_per_element, release_cycle=rel,
                           pseudo_channels=n_pch, act_bytes=job.act_bytes)
        progs.append(prog)
    st = _run_channel(cfg, accesses, concat_programs(progs), sharing, cfg.org.rows // 2)
    return st.data_end_cycle, st.pim_end_cycle


def concurrent_ns(cfg: DramConfig, stream_bytes: int, pim_jobs, *,
                  sharing: str = "dual_row_buffer", channels: int | None = None) -> ConcurrentResult:
    """GPU weight streaming (``stream_bytes`` over all pCHs, from t=0) and PIM jobs (run in
    list order, each not before its ``start_ns``) on the same stacks at the same time.

    ``sharing="dual_row_buffer"``: PIM uses its own row buffer; the two share the command and
    data buses and the activation power budget. ``"exclusive"``: a released PIM job takes the
    banks (normal rows are closed, normal traffic waits until the PIM program is done).
    ``pim_jobs`` items are :class:`PimJob` or ``(rows, cols, tokens)`` tuples.
    """
    if sharing not in ("dual_row_buffer", "exclusive"):
        raise SpecError(cfg.name, "sharing", f"unknown mode {sharing!r}",
                        "use dual_row_buffer or exclusive")
    jobs = tuple(j if isinstance(j, PimJob) else PimJob.gemv(*j) for j in pim_jobs)
    n_pch = _n_pch(cfg, channels)
    per_pch = math.ceil(max(0, stream_bytes) / n_pch)
    acc = math.ceil(per_pch / cfg.org.access_bytes)
    s_end, p_end = _concurrent(cfg, acc, jobs, sharing, n_pch)
    return ConcurrentResult(_ns(cfg, s_end) if acc else 0, _ns(cfg, p_end) if jobs else 0)
