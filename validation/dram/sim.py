"""Python driver around the compiled engine: state allocation, streaming, stats, command log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.validation.dram import layout as L
from sieveopt.validation.dram.config import DramConfig
from sieveopt.validation.dram.mapping import AddressMapping
from sieveopt.validation.dram.native import kernels
from sieveopt.validation.dram.timing import (
    CMD,
    COMMANDS,
    N_CMD,
    PIM_COMMANDS,
    bus_occupancy,
    compile_table,
)

LOG_DTYPE = np.dtype([("cycle", "i8"), ("cmd", "i8"), ("pch", "i8"), ("bg", "i8"),
                      ("bank", "i8"), ("row", "i8"), ("col", "i8")])


@dataclass
class DramStats:
    """Run statistics, Ramulator-style. Latency is per column access, arrival (queue entry)
    to the end of the data burst."""

    cycles: int
    tCK_ps: int
    pseudo_channels: int
    requests: int = 0
    reads: int = 0
    writes: int = 0
    row_hits: int = 0
    row_misses: int = 0
    row_conflicts: int = 0
    bytes: int = 0
    read_latency_sum_cycles: int = 0
    pim_end_cycle: int = 0
    data_end_cycle: int = 0
    commands: dict[str, int] = field(default_factory=dict)
    #: cycle at which the last request entered a queue (Ramulator 2.0's printed cycle count)
    accepted_end_cycle: int = 0
    #: which end ``cycles`` reports (controller.completion)
    completion: str = "last_data"

    @property
    def time_ns(self) -> float:
        return self.cycles * self.tCK_ps / 1000.0

    @property
    def bandwidth_GBps(self) -> float:
        return self.bytes / self.time_ns if self.cycles > 0 else 0.0

    @property
    def avg_read_latency_cycles(self) -> float:
        return self.read_latency_sum_cycles / self.reads if self.reads else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles, "time_ns": self.time_ns, "tCK_ps": self.tCK_ps,
            "pseudo_channels": self.pseudo_channels, "requests": self.requests,
            "reads": self.reads, "writes": self.writes, "bytes": self.bytes,
            "bandwidth_GBps": self.bandwidth_GBps,
            "row_hits": self.row_hits, "row_misses": self.row_misses,
            "row_conflicts": self.row_conflicts,
            "avg_read_latency_cycles": self.avg_read_latency_cycles,
            "avg_read_latency_ns": self.avg_read_latency_cycles * self.tCK_ps / 1000.0,
            "act": self.commands.get("ACT", 0) + self.commands.get("ACTAB", 0),
            "pre": sum(self.commands.get(c, 0) for c in ("PRE", "PREA", "PREAB")),
            "ref": self.commands.get("REF", 0),
            "pim_end_cycle": self.pim_end_cycle, "data_end_cycle": self.data_end_cycle,
            "accepted_end_cycle": self.accepted_end_cycle, "completion": self.completion,
            "commands": dict(self.commands),
        }


@dataclass(frozen=True)
class PimProgram:
    """An in-order PIM command stream run identically by every simulated pseudo-channel
    (tensor parallelism). ``release`` is the earliest cycle of each command (job start)."""

    cmd: np.ndarray
    row: np.ndarray
    col: np.ndarray
    release: np.ndarray

    @staticmethod
    def empty() -> PimProgram:
        z = np.zeros(0, dtype=np.int64)
        return PimProgram(z, z, z, z)

    def __len__(self) -> int:
        return int(self.cmd.shape[0])


class DramSim:
    """One simulation of ``channels`` channels (default: all channels of the config).

    ``observer`` receives the issued-command log in chunks (a structured array with fields
    cycle, cmd, pch, bg, bank, row, col); it is off by default. Requests are fed in order
    with :meth:`feed` (any number of chunks) and the run ends with :meth:`finish`.
    """

    def __init__(self, cfg: DramConfig, *, channels: int | None = None,
                 pim: PimProgram | None = None, sharing: str | None = None,
                 observer: Callable[[np.ndarray], None] | None = None,
                 log_capacity: int = 1 << 16, frontend_requests_per_cycle: int | None = None):
        self.cfg = cfg
        org, ctl = cfg.org, cfg.controller
        n_ch = org.channels if channels is None else int(channels)
        if not 1 <= n_ch <= org.channels:
            raise SpecError(cfg.name, "channels", f"{n_ch} not in 1..{org.channels}", "fix it")
        if org.banks > L.MAX_BANKS:
            raise SpecError(cfg.name, "org.banks", f"{org.banks} banks per pseudo-channel exceed "
                            f"the engine's {L.MAX_BANKS}", f"use at most {L.MAX_BANKS} banks")
        self.n_ch = n_ch
        self.n_pch = n_ch * org.pseudo_channels_per_channel
        pim = pim if pim is not None else PimProgram.empty()
        self.pim = pim
        sharing = sharing or cfg.pim.sharing
        if sharing not in ("exclusive", "dual_row_buffer"):
            raise SpecError(cfg.name, "sharing", f"unknown sharing mode {sharing!r}",
                            "use exclusive or dual_row_buffer")
        if len(pim) and not cfg.pim.enabled:
            raise SpecError(cfg.name, "pim.enabled", "this config has no PIM units",
                            "use a PIM preset or set pim.enabled = true")
        pim_mode = L.PIM_NONE if len(pim) == 0 else (
            L.PIM_EXCLUSIVE if sharing == "exclusive" else L.PIM_DUAL)
        bufctl = not (ctl.queue_scope == "pseudo_channel" and ctl.arbitration == "rotate")
        if bufctl and len(pim):
            field = "controller.queue_scope" if ctl.queue_scope == "channel" else \
                "controller.arbitration"
            raise SpecError(cfg.name, field, "PIM programs need the per pseudo-channel "
                            "FR-FCFS controllers", "use queue_scope='pseudo_channel' with "
                            "arbitration='rotate'")
        table = compile_table(cfg.timing_params, sharing, cfg.table)
        self.table = table
        # rows whose following command can never issue in this run cost time on every issue
        # of their preceding command: drop them (PIM commands without a PIM program,
        # auto-precharge commands under the open-row policy)
        never = set() if len(pim) else {CMD[c] for c in PIM_COMMANDS}
        if ctl.row_policy == "open":
            never |= {CMD["RDA"], CMD["WRA"]}
        keep = ~np.isin(table.next, sorted(never))
        table = dataclasses.replace(table, level=table.level[keep], prev=table.prev[keep],
                                    next=table.next[keep], latency=table.latency[keep],
                                    window=table.window[keep])
        # rows grouped by preceding command: issuing a command pushes forward the ready
        # times of the commands it constrains (equivalent to scanning the table per query)
        order = np.argsort(table.prev, kind="stable")
        self.pv_level = table.level[order].copy()
        self.pv_fol = table.next[order].copy()
        self.pv_lat = table.latency[order].copy()
        self.pv_win = table.window[order].copy()
        self.pv_start = np.searchsorted(table.prev[order], np.arange(N_CMD + 1)).astype(np.int64)
        wmax = int(max(1, table.window.max()))
        ipc = ctl.frontend_requests_per_cycle if frontend_requests_per_cycle is None \
            else frontend_requests_per_cycle
        self.observer = observer
        n_pch, banks = self.n_pch, org.banks
        n_inst = n_ch + n_pch + n_pch * org.bank_groups + n_pch * banks
        qmax = max(ctl.read_queue, ctl.write_queue)
        k_rows = len(self.pv_fol)
        sizes = [  # (offset slot, length) of each region of the flat state array
            (L.O_PVS, N_CMD + 1), (L.O_PVL, k_rows), (L.O_PVF, k_rows), (L.O_PVLAT, k_rows),
            (L.O_PVW, k_rows), (L.O_NXT, n_inst * N_CMD),
            (L.O_HIST, n_inst * N_CMD * wmax if wmax > 1 else 1), (L.O_HPOS, n_inst * N_CMD),
            (L.O_BUS, n_pch * 2), (L.O_OPEN, n_pch * banks), (L.O_PIMROW, n_pch),
            (L.O_QS, n_pch * 2 * qmax * L.N_FIELD), (L.O_QN, n_pch * 2), (L.O_DRAIN, n_pch),
            (L.O_REF, n_pch), (L.O_NEXT, n_pch), (L.O_PIMPOS, n_pch), (L.O_PIMLAST, n_pch),
            (L.O_STATS, n_pch * L.N_STAT), (L.O_S, L.N_SCALAR), (L.O_CNT, max(3 * banks, 4 * org.pseudo_channels_per_channel)),
            (L.O_BQ, n_pch * 2 * banks * 2), (L.O_CHOF, n_pch), (L.O_LAT, N_CMD * N_CMD),
            (L.O_QH, n_pch * 2), (L.O_WINC, N_CMD), (L.O_BMASK, n_pch * 2),
            (L.O_BOCC, N_CMD), (L.O_AQ, n_ch * qmax * L.N_FIELD), (L.O_AN, n_ch),
            (L.O_BL, n_pch * 2 * banks * 2), (L.O_FREE, n_pch * 2 * qmax), (L.O_NFREE, n_pch * 2),
            (L.O_BGOF, banks), (L.O_KMASK, n_pch * 2 * 3)]
        total = L.N_HEADER + sum(n for _, n in sizes)
        m = np.zeros(total, dtype=np.int64)
        views = {}
        off = L.N_HEADER
        for slot, n in sizes:
            m[slot] = off
            views[slot] = m[off:off + n]
            off += n
        m[L.O_END] = off
        m[L.P_NCH] = n_ch
        m[L.P_PPC] = org.pseudo_channels_per_channel
        m[L.P_BG] = org.bank_groups
        m[L.P_BPG] = org.banks_per_group
        m[L.P_QR] = ctl.read_queue
        m[L.P_QW] = ctl.write_queue
        m[L.P_QMAX] = qmax
        m[L.P_WHI] = ctl.write_high_watermark
        m[L.P_WLO] = ctl.write_low_watermark
        m[L.P_FCFS] = 1 if ctl.scheduler == "fcfs" else 0
        m[L.P_CLOSED] = 1 if ctl.row_policy == "closed" else 0
        m[L.P_REFRESH] = 1 if ctl.refresh else 0
        m[L.P_NREFI] = cfg.timing.nREFI
        m[L.P_BUS_PER_CH] = 1 if ctl.command_bus == "per_channel" else 0
        m[L.P_SPLIT] = 1 if ctl.row_column_buses else 0
        m[L.P_IPC] = ipc
        m[L.P_NCL] = cfg.timing.nCL
        m[L.P_NBL] = cfg.timing.nBL
        m[L.P_NCWL] = cfg.timing.nCWL
        m[L.P_PIM_MODE] = pim_mode
        m[L.P_PIM_STRICT] = 1 if cfg.pim.priority == "strict" else 0
        m[L.P_WMAX] = wmax
        m[L.P_CHSCOPE] = 1 if ctl.queue_scope == "channel" else 0
        m[L.P_ORDY] = 1 if ctl.arbitration == "oldest_ready" else 0
        m[L.P_BUFCTL] = 1 if bufctl else 0
        views[L.O_BL][:] = -1  # empty bank lists
        views[L.O_FREE].reshape(n_pch * 2, qmax)[:] = np.arange(qmax - 1, -1, -1)  # slot 0 first
        views[L.O_NFREE][:] = qmax
        views[L.O_BGOF][:] = np.arange(banks) // org.banks_per_group  # bank -> its bank group
        views[L.O_BOCC][:] = bus_occupancy(cfg.timing_params)
        m[L.P_LOG] = 1 if observer is not None else 0
        views[L.O_PVS][:] = self.pv_start
        views[L.O_PVL][:] = self.pv_level
        views[L.O_PVF][:] = self.pv_fol
        views[L.O_PVLAT][:] = self.pv_lat
        views[L.O_PVW][:] = self.pv_win
        views[L.O_HIST][:] = L.NEG
        views[L.O_WINC][np.unique(table.prev[table.window > 1])] = 1
        views[L.O_OPEN][:] = -1
        views[L.O_PIMROW][:] = -1
        views[L.O_REF][:] = cfg.timing.nREFI
        views[L.O_PIMLAST][:] = -1
        views[L.O_CHOF][:] = np.arange(n_pch) // org.pseudo_channels_per_channel
        # [prev, next] -> largest channel/pseudo-channel-level latency (PIM priority check)
        lat = np.full((N_CMD, N_CMD), -(1 << 40), dtype=np.int64)
        for lv, pv, nx, la in zip(table.level, table.prev, table.next, table.latency, strict=True):
            if lv <= 1:
                lat[pv, nx] = max(lat[pv, nx], la)
        views[L.O_LAT][:] = lat.ravel()
        self.m = m
        self.S = views[L.O_S]
        self.S[L.S_INJ_CYCLE] = -1
        self.S[L.S_PIM_LEFT] = len(pim) * n_pch
        self.stats = views[L.O_STATS].reshape(n_pch, L.N_STAT)
        self.pim_arr = np.ascontiguousarray(
            np.stack([pim.cmd, pim.row, pim.col, pim.release]).astype(np.int64)).reshape(4, -1)
        self.log = np.zeros((log_capacity if observer else 1, 7), dtype=np.int64)
        self.requests = 0
        self._done = False
        # simulating fewer channels than the config has: addresses interleave over those only
        map_org = org if n_ch == org.channels else dataclasses.replace(
            org, stacks=1, channels_per_stack=n_ch)
        self.mapping = AddressMapping.parse(ctl.address_mapping, map_org)
        self.accesses_per_request = ctl.request_bytes // org.access_bytes

    # ------------------------------------------------------------------ running
    def _drain_log(self) -> None:
        n = int(self.S[L.S_LOG_N])
        if n and self.observer is not None:
            out = np.empty(n, dtype=LOG_DTYPE)
            for i, name in enumerate(LOG_DTYPE.names):
                out[name] = self.log[:n, i]
            self.observer(out)
        self.S[L.S_LOG_N] = 0

    def _run(self, pch, bg, bank, row, col, wr, final: bool) -> None:
        if self._done:
            raise RuntimeError("simulation already finished")
        arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in (pch, bg, bank, row, col, wr)]
        if arrays[0].size and (arrays[0].min() < 0 or arrays[0].max() >= self.n_pch):
            raise SpecError(self.cfg.name, "pch", "request outside the simulated channels",
                            f"pseudo-channels must be < {self.n_pch}")
        run = kernels().run_engine
        while True:
            status, used = run(self.m, *arrays, final, self.pim_arr, self.log)
            arrays = [a[used:] for a in arrays]
            if status == L.LOG_FULL:
                self._drain_log()
                continue
            if status == L.NEED_MORE:
                return
            self._drain_log()
            if self.S[L.S_END] < 0:
                raise RuntimeError("DRAM engine stalled (no command can ever issue)")
            self._done = True
            return

    def feed(self, pch, bg, bank, row, col, is_write) -> None:
        """Inject one chunk of decoded accesses (int arrays of equal length), in order."""
        self.requests += len(pch)
        self._run(pch, bg, bank, row, col, is_write, final=False)

    def feed_addresses(self, addr: np.ndarray, is_write: np.ndarray) -> None:
        """Decode byte addresses with the config's mapping and inject them; a request of
        ``request_bytes`` becomes consecutive column accesses in the same row."""
        d = self.mapping.decode(addr)
        k = self.accesses_per_request
        wr = np.asarray(is_write, dtype=np.int64)
        self.requests += len(wr)
        if k > 1:
            cols = self.cfg.org.columns
            rep = {n: np.repeat(v, k) for n, v in d.items()}
            rep["col"] = (rep["col"] + np.tile(np.arange(k), len(wr))) % cols
            d, wr = rep, np.repeat(wr, k)
        self._run(d["pch"], d["bg"], d["bank"], d["row"], d["col"], wr, final=False)

    def finish(self) -> DramStats:
        """Drain every queue and the PIM program; return the statistics."""
        z = np.zeros(0, dtype=np.int64)
        self._run(z, z, z, z, z, z, final=True)
        st = self.stats.sum(axis=0)
        cmds = {name: int(st[L.ST_CMD0 + i]) for i, name in enumerate(COMMANDS)
                if st[L.ST_CMD0 + i]}
        acc = self.cfg.org.access_bytes
        completion = self.cfg.controller.completion
        end = int(self.S[L.S_END]) if completion == "last_data" else int(self.S[L.S_LAST_ACC])
        return DramStats(
            cycles=end, tCK_ps=self.cfg.timing.tCK_ps,
            pseudo_channels=self.n_pch, requests=self.requests,
            reads=int(st[L.ST_READS]), writes=int(st[L.ST_WRITES]),
            row_hits=int(st[L.ST_HITS]), row_misses=int(st[L.ST_MISSES]),
            row_conflicts=int(st[L.ST_CONFLICTS]),
            bytes=int(st[L.ST_READS] + st[L.ST_WRITES]) * acc,
            read_latency_sum_cycles=int(st[L.ST_RDLAT]),
            pim_end_cycle=int(self.stats[:, L.ST_PIM_END].max(initial=0)),
            data_end_cycle=int(self.stats[:, L.ST_LAST_DATA].max(initial=0)),
            commands=cmds, accepted_end_cycle=int(self.S[L.S_LAST_ACC]), completion=completion)


def simulate_accesses(cfg: DramConfig, pch, bg, bank, row, col, is_write, **kw) -> DramStats:
    """One-shot helper: simulate decoded accesses (all injected in order)."""
    sim = DramSim(cfg, **kw)
    sim.feed(pch, bg, bank, row, col, is_write)
    return sim.finish()


def simulate_addresses(cfg: DramConfig, addrs: Iterable[int], is_write=None, **kw) -> DramStats:
    """One-shot helper: simulate byte addresses decoded with the config's mapping."""
    a = np.asarray(list(addrs) if not isinstance(addrs, np.ndarray) else addrs, dtype=np.int64)
    w = np.zeros_like(a) if is_write is None else np.asarray(is_write, dtype=np.int64)
    sim = DramSim(cfg, **kw)
    sim.feed_addresses(a, w)
    return sim.finish()


class CommandLog:
    """Observer that keeps the whole issued-command log (for tests and small runs)."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def __call__(self, chunk: np.ndarray) -> None:
        self.chunks.append(chunk.copy())

    @property
    def records(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=LOG_DTYPE)
