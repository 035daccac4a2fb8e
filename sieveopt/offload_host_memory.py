"""Host memory bandwidth shared by the AMX CPU's expert jobs and the GPU's PCIe weight fetches.

``DagOptions.host_memory = "shared"`` (the ``cpu`` and ``gpu_fetch`` targets' layouts,
:mod:`sieveopt.offload_tiers`; on by default where the system says ``offload.host_memory``).

**What is shared.** Both tiers read routed-expert weights from the host DIMMs: a CPU job streams
W bytes at up to the socket's achievable bandwidth ``C = host_mem_bw_GBps x bandwidth_efficiency``
(TriMoE's ``T_DRAM(W, M)`` inside ``max(f_calc_cpu(L), T_DRAM(W, M))``), and a GPU miss pulls W
bytes from the same DIMMs through PCIe (``max(f_calc_gpu(L), T_PCIe(W), T_DRAM(W, M))``,
trimoe_gem.md §1.3 items 2-3). The issue asks for "host memory bandwidth shared between the CPU
and PCIe fetches". With the preset's numbers (8 channels x DDR5-4800 = 307.2 GB/s x 0.8 = 245.8
GB/s achievable; PCIe Gen5 x16 = 64 x 0.85 = 54.4 GB/s) a memory-bound CPU job alone uses all of
C, so a fetch beside it cannot get its 54.4 GB/s without slowing the CPU: they contend.

**Model: a cumulative resource of capacity C with per-task demand, encoded exactly.** Each task's
demand is its mean host read rate, ``W / duration`` (the job's bytes over its whole length,
overhead and activation transfers included), in whole percent of C rounded up (conservative):
``a`` for a CPU job, ``b`` for a fetch. At most one CPU job (the ``cpu`` resource has capacity 1:
"Σ CPU times", §1.3 item 5) and one fetch (the ``pcie`` link) run at a time, so the cumulative
constraint ``Σ demand <= 100`` reduces to: *a CPU job and a fetch may overlap iff a + b <= 100*.
That is encoded with ordinary capacity-1 resources, one *lane* per fetch demand value b (kind
``hostmem``): a fetch of demand b holds lane b; a CPU job of demand a holds every lane b with
a + b > 100. A CPU job and a fetch then share a lane exactly when their demands do not fit
together. So ``check()``, the list scheduler, CP-SAT (NoOverlap per lane, its energy cuts and
assignment relaxation) and replay (resources served in the schedule's order) all honour it with
no engine change. The lanes are made for every demand a fetch of 1 .. ``max tokens of the first
layer`` tokens can have (usually one value: fetches are PCIe-bound); a later fetch with a smaller
demand holds the smallest lane (over-counting its demand: still a valid, conservative schedule).

**What it is not.** Bandwidth is not *fluid*: a pair that does not fit is serialised, whereas
hardware would slow both (the CPU at 191.4 of 245.8 GB/s during a fetch). The model is therefore
conservative: per serialised pair it loses at most the fetch's length x the share ``(C - b) / C``
the CPU could have used beside it (docs/design-notes/trimoe.md measures what binds). NDP jobs read their own DIMM's ranks internally
(rank-level NDP) and do not draw on the host channels here; TriMoE's per-DIMM term
``T_contention^d`` (NDP vs external reads of the same DIMM, §1.3 item 4) is not modelled in the
DAG. TriMoE's planner sums GPU and CPU times separately (``max(Σ GPU, Σ CPU, max_d ...)``, §1.3
item 5): the paper's greedy does not see this contention, and ours is kept as published.
"""

from __future__ import annotations

import math
from typing import Any

#: Demands are whole percent of the host's achievable bandwidth.
HOST_MEMORY_UNITS = 100
#: Resource kind of one host-memory lane (declared by the ``cpu`` target's ``part_owns``).
RES_HOSTMEM = "hostmem"
SHARED = "shared"


def host_bytes_per_ns(system: Any) -> float:
    """Achievable host memory bandwidth C (bytes/ns = GB/s): the CPU's ``T_DRAM`` rate."""
    c = system.offload.cpu
    return c.host_mem_bw_GBps * c.bandwidth_efficiency


def demand_units(system: Any, host_bytes: float, duration_ns: int) -> int:
    """Mean host read rate of a task, in whole percent of C (rounded up, at most 100)."""
    if host_bytes <= 0 or duration_ns <= 0:
        return 0
    rate = host_bytes / duration_ns / host_bytes_per_ns(system)
    return min(HOST_MEMORY_UNITS, math.ceil(HOST_MEMORY_UNITS * rate - 1e-9))


class HostMemory:
    """The lanes of every GPU's host memory in one DAG (built on the first layer)."""

    def __init__(self, builder: Any, inst: Any) -> None:
        from sieveopt.dag import Resource
        from sieveopt.models.work import expert_work
        from sieveopt.offload_tiers import MODE_GPU_FETCH

        self.system = builder.system
        fetch = builder.target(MODE_GPU_FETCH)
        wb = float(inst.model.expert_weight_bytes)
        n_max = max(1, int(inst.expert_tokens.max(initial=1)))
        demands = [demand_units(self.system, wb, math.ceil(fetch.duration_ns(builder.cost, expert_work(inst.model, n, launches=0))))
                   for n in (1, n_max)]
        self.b_lo, self.b_hi = min(demands), max(demands)
        self.lanes: dict[tuple[int, int], int] = {}
        for g in range(builder.system.num_gpus):
            for b in range(self.b_lo, self.b_hi + 1):
                if b <= 0:
                    continue
                rid = len(builder.resources)
                builder.resources.append(Resource(rid, f"{RES_HOSTMEM}[{g}.{b}]", RES_HOSTMEM, g))
                self.lanes[(g, b)] = rid

    def fetch_lanes(self, gpu: int, host_bytes: float, duration_ns: int) -> tuple[int, ...]:
        """The lane a fetch of this demand holds (a demand below the lanes' range: the smallest)."""
        b = demand_units(self.system, host_bytes, duration_ns)
        if b <= 0:
            return ()
        return (self.lanes[(gpu, min(max(b, self.b_lo), self.b_hi))],)

    def cpu_lanes(self, gpu: int, host_bytes: float, duration_ns: int) -> tuple[int, ...]:
        """Every lane whose fetches do not fit beside a CPU job of this demand."""
        a = demand_units(self.system, host_bytes, duration_ns)
        if a <= 0:
            return ()
        return tuple(rid for (g, b), rid in self.lanes.items() if g == gpu and a + b > HOST_MEMORY_UNITS)

    def meta(self) -> dict[str, Any]:
        return {"host_memory": SHARED, "host_memory_fetch_demand_pct": [self.b_lo, self.b_hi],
                "host_memory_GBps": host_bytes_per_ns(self.system)}


class HostMemoryView:
    """One target's side of the shared host memory (a ``Target.layouts`` entry: ``bind``,
    ``mode_cost``, ``meta``)."""

    def __init__(self, shared: HostMemory, side: str) -> None:
        self.shared, self.side = shared, side

    @classmethod
    def _shared(cls, builder: Any, inst: Any) -> HostMemory:
        for lay in builder.layouts.values():
            if isinstance(lay, cls):
                return lay.shared
        return HostMemory(builder, inst)

    @classmethod
    def for_cpu(cls, builder: Any, inst: Any) -> HostMemoryView:
        """The ``cpu`` target's ``"shared"`` layout hook."""
        return cls(cls._shared(builder, inst), "cpu")

    @classmethod
    def for_fetch(cls, builder: Any, inst: Any) -> HostMemoryView:
        """The ``gpu_fetch`` target's ``"shared"`` layout hook (also used by weight prefetches)."""
        return cls(cls._shared(builder, inst), "fetch")

    def bind(self, inst: Any) -> None:
        """Nothing per layer: the lanes depend on the demands only."""

    def lanes(self, gpu: int, work: Any, duration_ns: int) -> tuple[int, ...]:
        f = self.shared.cpu_lanes if self.side == "cpu" else self.shared.fetch_lanes
        return f(gpu, float(work.weight_bytes), duration_ns)

    def mode_cost(self, builder: Any, kind: str, gpu: int, expert: int, work: Any, base: Any) -> Any:
        """``base`` plus the lanes this task's host-memory demand holds."""
        from sieveopt.dag import ModeCost

        extra = self.lanes(gpu, work, base.duration_ns)
        return ModeCost(base.duration_ns, (*base.resources, *extra)) if extra else base

    def meta(self) -> dict[str, Any]:
        return self.shared.meta()
