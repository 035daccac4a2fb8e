"""Replay timers of TriMoE's host tiers: ``gpu_fetch``, ``cpu`` and ``ndp`` (arXiv 2603.01058).

Registered as the targets' ``replay`` hooks in :mod:`sieveopt.offload_tiers`; nothing else names
them. Each timer gives a task's *alone* time; the replay event loop then plays the schedule's
per-resource order (the PCIe link, the CPU socket and the NDP units, capacity = DIMMs). Same
structure as the cost hooks (TriMoE's §1.3 maxima, trimoe_gem.md), every term from a simulator
where the project has one:

* ``gpu_fetch`` (GPU miss, "compute, PCIe and DRAM read are pipelined"):
  ``max(latency + GPU kernel, PCIe transfer of W, latency + host read of W)``. The GPU kernel is
  the replay's GPU model on the system's HBM (cycle-level stream); the PCIe transfer is the
  packet-level interconnect simulator on a two-port link (host -> GPU: 256 B TLP payloads,
  26 B per-TLP overhead, 128b/130b encoding, the system's one-way latency); the host read is the
  DDR5 simulator's striped read over the host's DIMM channels (:mod:`.dram.ndp`).
* ``cpu`` (AMX): ``overhead + max(AMX compute, host read of W) + activation round trip``. AMX
  compute stays the closed form ``flops / (peak x efficiency)``: the project has no CPU
  simulator, and the paper itself *profiles* f_calc_cpu offline ([Q]) - there is nothing
  cycle-level to replay it on. The host read is simulated (DDR5, striped); the activation round
  trip is two PCIe messages (GPU -> host, host -> GPU) on the interconnect simulator.
* ``ndp``: ``overhead + max(NDP compute, rank-level read of W in one DIMM) + activation round
  trip``: the DDR5 simulator's NDP view (every rank streaming into the DIMM's NDP unit,
  :mod:`.dram.ndp`); compute is ``flops / peak_GFLOPS`` (a throughput unit overlapped with the
  stream). Writing the token vectors into the NDP buffer over the host channel is not timed
  (a few KB against tens of MB of weights).

Not modelled (as in the cost model): host-memory contention between CPU reads, PCIe fetches and
NDP jobs on the same DIMMs (TriMoE's T_contention), and PCIe held by activation transfers.

``memory="analytic"`` replays the host tiers with their cost hooks (an explicit ablation).
The system must name a DIMM preset (``offload.ndp.dram_preset``); otherwise replay fails and
says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sieveopt.errors import SieveoptError
from sieveopt.validation.replay_engine import TaskTime

#: PCIe transaction-layer packets ([I], PCIe 5.0 base spec terms): 256 B max payload (what GPUs
#: negotiate in practice), 26 B per TLP (16 B 4DW header, 2 B sequence number, 4 B LCRC, 4 B
#: framing token), 128b/130b line encoding; DLLP (ACK / flow-control) traffic is not modelled.
PCIE_PAYLOAD_BYTES = 256
PCIE_TLP_OVERHEAD_BYTES = 26
PCIE_ENCODING = 128.0 / 130.0

#: Stated agreement of one replayed NDP job with the NDP cost hook (|predicted - replayed| /
#: replayed), tested in tests/test_ndp_replay.py. Compute-bound jobs (tokens >= the NDP ridge)
#: agree to < 0.5 % (the same closed-form compute on both sides). Read-bound jobs replay slower
#: than the hook's ``W / (dimm_bw x internal_bw_multiplier)``: all-bank refresh (tRFC1 / tREFI =
#: 295 / 3900 ns = 7.6 % of every rank's time) and, with 4 ranks per sub-channel, the shared CA
#: bus (two-cycle RD and ACT: 4 ranks x 2 of every 8 cycles) - about -10.6 % on DDR5-4800.
NDP_COST_TOLERANCE = 0.12


@dataclass(frozen=True, eq=False)
class HostTimes:
    """Simulated host-side times of one system (cached per byte count)."""

    system: Any
    host: Any            # models.host_dram.HostDram

    @functools.cache  # noqa: B019 - one instance per system, kept for the process (few)
    def pcie_ns(self, nbytes: int) -> float:
        """One message of ``nbytes`` over the GPU's PCIe link: release to arrival (incl. latency)."""
        from sieveopt.validation.interconnect import LinkParams, Message, simulate

        p = self.system.offload.pcie
        params = LinkParams(num_gpus=2, bw_per_direction_GBps=p.bw_GBps * PCIE_ENCODING, latency_ns=p.latency_ns,
                            packet_bytes=PCIE_PAYLOAD_BYTES, header_bytes=PCIE_TLP_OVERHEAD_BYTES)
        res = simulate([Message(0, 0, 1, int(nbytes), 0)], params)
        return float(res.arrival_ps[0]) / 1000.0

    @functools.cache  # noqa: B019
    def host_read_ns(self, nbytes: int) -> float:
        from sieveopt.validation.dram import ndp

        return ndp.host_read_ns(self.host.ndp_cfg, nbytes, self.host.host_channels)

    @functools.cache  # noqa: B019
    def ndp_read_ns(self, nbytes: int) -> float:
        from sieveopt.validation.dram import ndp

        return ndp.ndp_read_ns(self.host.ndp_cfg, nbytes)

    def round_trip_ns(self, act_bytes: float) -> float:
        """Activations GPU -> host and results back: two messages of half the bytes each."""
        if act_bytes <= 0:
            return 0.0
        half = int(round(act_bytes / 2))
        return 2.0 * self.pcie_ns(half)


_HOSTS: dict[int, tuple[Any, HostTimes]] = {}


def clear_cache() -> None:
    """Forget every simulated host time (for cold measurements; the DRAM API's own caches are
    cleared by :func:`sieveopt.validation.replay_dram.clear_cache`)."""
    _HOSTS.clear()


def host_times(system: Any) -> HostTimes:
    """The simulated host of ``system`` (one per system object)."""
    hit = _HOSTS.get(id(system))
    if hit is not None and hit[0] is system:
        return hit[1]
    from sieveopt.models.host_dram import resolve_host_dram

    host = resolve_host_dram(system.offload, system.name)
    if host is None:
        raise SieveoptError(f"replay: system {system.name!r} names no DIMM preset for its host tiers "
                            "(gpu_fetch, cpu, ndp); set offload.ndp.dram_preset (e.g. 'ddr5_4800_rdimm') "
                            "or replay with --memory analytic")
    ht = HostTimes(system, host)
    _HOSTS[id(system)] = (system, ht)
    return ht


def _system(ctx: Any) -> Any:
    system = getattr(ctx.memory, "system", None) or getattr(getattr(ctx.memory, "roof", None), "system", None)
    if system is None:
        raise SieveoptError(f"replay: memory timer {ctx.memory.name!r} exposes no .system; the host tiers need it")
    return system


def _analytic(ctx: Any, task: Any, mode: str) -> TaskTime | None:
    """The cost hook's time when replaying with the analytic memory timer (else None)."""
    if ctx.memory.name != "analytic":
        return None
    from sieveopt.targets import get_target

    return TaskTime(0.0, get_target(mode).duration_ns(ctx.memory.roof, task.work), kind=task.kind, tokens=task.tokens)


def _replay_hook(simulated: Callable[[Any, Any, Any], TaskTime]) -> Callable[[Any, Any, str], TaskTime]:
    """The ``(ctx, task, mode)`` replay hook of a host tier: the cost hook's time when replaying
    with the analytic memory timer (:func:`_analytic`), else ``simulated(ctx, task, system)`` on
    the replay context's system."""

    @functools.wraps(simulated)
    def hook(ctx: Any, task: Any, mode: str) -> TaskTime:
        a = _analytic(ctx, task, mode)
        if a is not None:
            return a
        return simulated(ctx, task, _system(ctx))

    return hook


@_replay_hook
def gpu_fetch_task_time(ctx: Any, task: Any, system: Any) -> TaskTime:
    """GPU miss: max(latency + GPU kernel on HBM, PCIe transfer, latency + striped host read)."""
    k = ctx.gpu.kernel(task.work)
    gpu = k.overhead_ns + k.body_ns
    w = task.work.weight_bytes
    if w <= 0:
        return TaskTime(k.overhead_ns, k.body_ns, k.compute_ns, k.memory_ns)
    ht = host_times(system)
    lat = float(system.offload.pcie.latency_ns)
    body = max(lat + gpu, ht.pcie_ns(int(w)), lat + ht.host_read_ns(int(w)))
    return TaskTime(0.0, body, kind=task.kind, tokens=task.tokens)


@_replay_hook
def prefetch_task_time(ctx: Any, task: Any, system: Any) -> TaskTime:
    """Next-layer weight prefetch: max(PCIe transfer, latency + striped host read) of W."""
    w = task.work.weight_bytes
    if w <= 0:
        return TaskTime(0.0, 0.0, kind=task.kind)
    ht = host_times(system)
    body = max(ht.pcie_ns(int(w)), float(system.offload.pcie.latency_ns) + ht.host_read_ns(int(w)))
    return TaskTime(0.0, body, kind=task.kind, tokens=task.tokens)


def _host_job(task: Any, overhead_ns: float, compute_ns: float, read_ns: float, ht: Any) -> TaskTime:
    """A host-side expert job (CPU or NDP): overhead + max(compute, weight read) + the
    activations' PCIe round trip."""
    body = max(compute_ns, read_ns) + ht.round_trip_ns(task.work.act_bytes)
    return TaskTime(float(overhead_ns), body, kind=task.kind, tokens=task.tokens)


@_replay_hook
def cpu_task_time(ctx: Any, task: Any, system: Any) -> TaskTime:
    """AMX CPU: overhead + max(AMX compute (closed form), striped host read) + activation round trip."""
    c = system.offload.cpu
    ht = host_times(system)
    return _host_job(task, c.job_overhead_ns, task.work.flops / (c.amx_peak_TFLOPS * 1e3 * c.compute_efficiency),
                     ht.host_read_ns(int(task.work.weight_bytes)), ht)


@_replay_hook
def ndp_task_time(ctx: Any, task: Any, system: Any) -> TaskTime:
    """DIMM-NDP: overhead + max(NDP compute, rank-level read of the expert in its DIMM) + round trip."""
    n = system.offload.ndp
    ht = host_times(system)
    return _host_job(task, n.job_overhead_ns, task.work.flops / n.peak_GFLOPS,
                     ht.ndp_read_ns(int(task.work.weight_bytes)), ht)
