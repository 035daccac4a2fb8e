"""The layer task DAG (DESIGN.md §4): the one source of truth every policy, CP-SAT and replay use.

Per GPU g (data-parallel attention, expert parallelism, experts sharded over all PIM channels):

    qkv[g] -> attn[g] (pim|gpu) -> oproj[g] -> router[g] -> allgather[g->h] (NVLink)
    qkv[g] -> prefill_attn[g] (gpu, only when prefill tokens share the batch) -> oproj[g]
    allgather[*->g] -> sched[g] (scheduler latency, in parallel with the dispatch)
    allgather[*->g] -> dispatch[g->h] (NVLink)
    sched[h], dispatch[*->h] -> expert[e on h] (gpu | pim) -> combine[h->g] -> reduce[g]
    shared[g] (prefetched after oproj, or after sched) -> reduce[g]
    grouped GEMM: launch[h] (after every dispatch into h) -> expert[e] only if e runs on the GPU
    prefetch[g.j] (next layer's expert weights, DagOptions.prefetch_experts) -> reduce[g]

Resources per GPU: ``gpu`` stream, ``hbm`` external bus, ``pim`` units, NVLink ``egress`` and
``ingress`` ports, ``sched`` (the scheduler's own processor). GPU kernels hold gpu+hbm; PIM jobs
hold pim (+hbm when HBM sharing is ``exclusive``); messages hold egress[src]+ingress[dst] and
reach their consumers after the link latency (an edge lag). All durations are integer ns.
Which resources a mode creates and holds, and how a task is timed in it, is declared by its
execution target (:mod:`sieveopt.targets`); ``DagOptions.attention_modes`` and ``expert_modes``
choose the targets of attention and routed experts. Work items come from
:mod:`sieveopt.models.work`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from sieveopt.instance import LayerInstance
from sieveopt.models import work as W
from sieveopt.models.costmodel import CostModel
from sieveopt.models.specs import SystemSpec
from sieveopt.models.work import TaskKind, Work
from sieveopt.targets import (
    MODE_GPU,
    MODE_LINK,
    MODE_PIM,
    MODE_SCHED,
    Target,
    get_target,
    resource_capacity,
    resource_kinds_for,
    targets_for,
)
from sieveopt.variability import gpu_kernel_ns, speed_factors

# Task kinds (see :class:`~sieveopt.models.work.TaskKind`).
QKV, ATTN, PREFILL_ATTN, OPROJ, ROUTER = TaskKind.QKV, TaskKind.ATTN, TaskKind.PREFILL_ATTN, TaskKind.OPROJ, TaskKind.ROUTER
ALLGATHER, SCHED, DISPATCH, LAUNCH = TaskKind.ALLGATHER, TaskKind.SCHED, TaskKind.DISPATCH, TaskKind.LAUNCH
EXPERT, SHARED, COMBINE, REDUCE = TaskKind.EXPERT, TaskKind.SHARED, TaskKind.COMBINE, TaskKind.REDUCE
PREFETCH = TaskKind.PREFETCH
MESSAGE_KINDS = W.MESSAGE_KINDS

# Resource kinds of the built-in targets (a registered target may add its own: see
# :mod:`sieveopt.targets`; a DAG's own kinds are ``TaskDAG.resource_kinds``).
RES_GPU, RES_HBM, RES_PIM, RES_EGRESS, RES_INGRESS, RES_SCHED = "gpu", "hbm", "pim", "egress", "ingress", "sched"
RESOURCE_KINDS = (RES_GPU, RES_HBM, RES_PIM, RES_EGRESS, RES_INGRESS, RES_SCHED)


@dataclass(frozen=True)
class DagOptions:
    """Structural options of the layer DAG."""

    gpu_kernel: Literal["grouped", "per_expert"] = "grouped"
    shared_expert_prefetch: bool = True
    scheduler_latency_ns: int = 0
    #: Override the system's HBM sharing mode (None = ``system.hbm_pim.sharing``).
    hbm_sharing: Literal["exclusive", "dual_row_buffer", "partitioned"] | None = None
    #: Modes attention may take (a policy picks one); ("gpu",) forbids PIM attention.
    attention_modes: tuple[str, ...] = (MODE_PIM, MODE_GPU)
    #: Modes a routed expert may take (registered execution targets, see :mod:`sieveopt.targets`).
    expert_modes: tuple[str, ...] = (MODE_GPU, MODE_PIM)
    #: Routing-map bytes per token in the AllGather (top-k ids + weights, 4 B each).
    allgather_bytes_per_choice: int = 4
    #: Layer index and micro-batch id stamped into task names (room for multi-layer windows).
    layer: int = 0
    microbatch: int = 0
    #: PIM execution of routed experts: "tp" (each expert sharded over all pseudo-channels, Sieve)
    #: or "ep" (each expert bound to one channel group, PIMoE); the PIM target's layouts
    #: (:mod:`sieveopt.targets`, :mod:`sieveopt.pim_groups`).
    pim_parallelism: Literal["tp", "ep"] = "tp"
    #: Channel groups per GPU under "ep" (0: one per expert the GPU holds, at most one per pCH).
    pim_channel_groups: int = 0
    #: Host memory of the offload tiers (the ``cpu`` and ``gpu_fetch`` targets' layouts,
    #: :mod:`sieveopt.offload_tiers`): "independent" (each reads at its own full rate) or
    #: "shared" (a CPU job and a PCIe fetch overlap only if their bandwidths fit together).
    host_memory: Literal["independent", "shared"] = "independent"
    #: Expert weight caching of targets that fetch weights per use (``Target.resident_mode`` /
    #: ``prefetch_mode``, e.g. TriMoE's ``gpu_fetch``): routed experts of this layer whose weights
    #: are already in HBM (prefetched during the previous layer; they may also run in the resident
    #: mode), and how many of the next layer's experts this layer prefetches (copy tasks
    #: ``prefetch[g.j]`` on each GPU, from the layer's start until before its ``reduce``).
    resident_experts: tuple[int, ...] = ()
    prefetch_experts: int = 0
    #: NDP placement of the ``ndp`` target (:mod:`sieveopt.offload_dimms`): "any" free DIMM, or
    #: each expert on its "home" DIMM (``dimm_homes[e]``; empty = ``e mod DIMMs``).
    ndp_placement: Literal["any", "home"] = "any"
    dimm_homes: tuple[int, ...] = ()

    @classmethod
    def for_system(cls, system: SystemSpec, **overrides: Any) -> DagOptions:
        """The defaults, with the modes an offloading system declares (``[offload]``) if any,
        then ``overrides`` (what a command sets, e.g. ``scheduler_latency_ns``)."""
        off = system.offload
        kw: dict[str, Any] = {k: tuple(v) for k, v in (("expert_modes", off.expert_modes),
                                                        ("attention_modes", off.attention_modes)) if v}
        if off.host_memory != "independent":
            kw["host_memory"] = off.host_memory
        if off.ndp_placement != "any":
            kw["ndp_placement"] = off.ndp_placement
        return cls(**{**kw, **overrides})


@dataclass(frozen=True, slots=True)
class ModeCost:
    """Duration and resources of a task in one mode (each resource held for the whole task)."""

    duration_ns: int
    resources: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Task:
    tid: int
    name: str
    kind: str
    gpu: int                      # owning GPU (messages: the source GPU)
    modes: Mapping[str, ModeCost]
    expert: int = -1              # routed expert id for EXPERT tasks
    peer: int = -1                # destination GPU of a message
    tokens: int = 0
    work: Work | None = None
    layer: int = 0                # layer index within a window (0 for a single-layer DAG)
    microbatch: int = 0           # micro-batch index within a window

    @property
    def mode_names(self) -> tuple[str, ...]:
        return tuple(self.modes)

    @property
    def has_choice(self) -> bool:
        return len(self.modes) > 1


@dataclass(frozen=True, slots=True)
class Edge:
    """``start[dst] >= end[src] + lag_ns``; if ``if_mode`` is (task, mode) the edge applies only
    when that task runs in that mode."""

    src: int
    dst: int
    lag_ns: int = 0
    if_mode: tuple[int, str] | None = None


@dataclass(frozen=True)
class Resource:
    rid: int
    name: str
    kind: str
    gpu: int
    capacity: int = 1


@dataclass(frozen=True, eq=False)
class TaskDAG:
    """Tasks, precedence edges and resources of one layer (or a window of layers)."""

    tasks: tuple[Task, ...]
    edges: tuple[Edge, ...]
    resources: tuple[Resource, ...]
    num_gpus: int
    options: DagOptions
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tasks)

    @cached_property
    def preds(self) -> tuple[tuple[Edge, ...], ...]:
        out: list[list[Edge]] = [[] for _ in self.tasks]
        for e in self.edges:
            out[e.dst].append(e)
        return tuple(tuple(x) for x in out)

    @cached_property
    def succs(self) -> tuple[tuple[Edge, ...], ...]:
        out: list[list[Edge]] = [[] for _ in self.tasks]
        for e in self.edges:
            out[e.src].append(e)
        return tuple(tuple(x) for x in out)

    @cached_property
    def topo_order(self) -> tuple[int, ...]:
        indeg = [len(p) for p in self.preds]
        stack = [t for t, d in enumerate(indeg) if d == 0]
        order = []
        while stack:
            t = stack.pop()
            order.append(t)
            for e in self.succs[t]:
                indeg[e.dst] -= 1
                if indeg[e.dst] == 0:
                    stack.append(e.dst)
        if len(order) != len(self.tasks):
            raise ValueError("task graph has a cycle")
        return tuple(order)

    @cached_property
    def by_name(self) -> dict[str, int]:
        return {t.name: t.tid for t in self.tasks}

    @cached_property
    def expert_tasks_by_slot(self) -> dict[tuple[int, int], dict[int, int]]:
        """(layer, micro-batch) -> {routed expert id -> task id} (activated experts only)."""
        out: dict[tuple[int, int], dict[int, int]] = {}
        for t in self.tasks:
            if t.kind == EXPERT:
                out.setdefault((t.layer, t.microbatch), {})[t.expert] = t.tid
        return out

    @property
    def is_window(self) -> bool:
        """True when the DAG holds several layers or micro-batches (see :func:`build_window_dag`)."""
        return len({(t.layer, t.microbatch) for t in self.tasks}) > 1

    @cached_property
    def expert_task(self) -> dict[int, int]:
        """Routed expert id -> task id (activated experts only) of a single-layer DAG."""
        if self.is_window:
            raise ValueError("expert_task is ambiguous in a window DAG: use expert_tasks_by_slot")
        return {t.expert: t.tid for t in self.tasks if t.kind == EXPERT}

    def mode_durations_ns(self) -> list[dict[str, int]]:
        """Per task (indexed by tid), each candidate mode's duration in ns: the ``durations``
        the interval model, the static bounds and Sieve+ take. A fresh list on every call, so a
        caller may change it (e.g. quantise it) without touching the DAG."""
        return [{m: c.duration_ns for m, c in t.modes.items()} for t in self.tasks]

    def tasks_of(self, kind: str, gpu: int | None = None) -> list[Task]:
        return [t for t in self.tasks if t.kind == kind and (gpu is None or t.gpu == gpu)]

    def resource(self, kind: str, gpu: int) -> Resource:
        return self.resources[self.resource_id[(kind, gpu)]]

    @cached_property
    def resource_kinds(self) -> tuple[str, ...]:
        """Resource kinds of this DAG, in display order."""
        return tuple(dict.fromkeys(r.kind for r in self.resources))

    @cached_property
    def resource_id(self) -> dict[tuple[str, int], int]:
        return {(r.kind, r.gpu): r.rid for r in self.resources}

    def edge_active(self, edge: Edge, modes: list[str] | tuple[str, ...]) -> bool:
        return edge.if_mode is None or modes[edge.if_mode[0]] == edge.if_mode[1]

    def active_edges(self, modes: list[str] | tuple[str, ...]) -> Iterator[Edge]:
        return (e for e in self.edges if self.edge_active(e, modes))

    @cached_property
    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every edge as arrays in edge order: (src, dst, lag ns, condition task (-1: none),
        condition mode (object array, "" when none)); the vectorised checks read these."""
        n = len(self.edges)
        src = np.fromiter((e.src for e in self.edges), dtype=np.int64, count=n)
        dst = np.fromiter((e.dst for e in self.edges), dtype=np.int64, count=n)
        lag = np.fromiter((e.lag_ns for e in self.edges), dtype=np.int64, count=n)
        ct = np.fromiter((-1 if e.if_mode is None else e.if_mode[0] for e in self.edges), dtype=np.int64, count=n)
        cm = np.array(["" if e.if_mode is None else e.if_mode[1] for e in self.edges], dtype=object)
        return src, dst, lag, ct, cm

    @cached_property
    def slot_index(self) -> tuple[list[tuple[int, int]], np.ndarray]:
        """((layer, micro-batch) slots in order of first appearance, every task's slot index)."""
        pos: dict[tuple[int, int], int] = {}
        idx = np.array([pos.setdefault((t.layer, t.microbatch), len(pos)) for t in self.tasks], dtype=np.int64)
        return list(pos), idx

    @cached_property
    def mode_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (task, mode) as arrays, in task and mode order: (task, mode name (object array),
        duration ns, whether the mode holds a resource)."""
        rows = [(t.tid, m, c.duration_ns, bool(c.resources)) for t in self.tasks for m, c in t.modes.items()]
        return (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=object),
                np.array([r[2] for r in rows], dtype=np.int64), np.array([r[3] for r in rows], dtype=bool))

    @cached_property
    def mode_resource_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (task, mode, resource) as arrays, in task, mode and resource order: (task, mode
        name (object array), resource id, the mode's duration ns)."""
        rows = [(t.tid, m, rid, c.duration_ns) for t in self.tasks for m, c in t.modes.items() for rid in c.resources]
        return (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=object),
                np.array([r[2] for r in rows], dtype=np.int64), np.array([r[3] for r in rows], dtype=np.int64))

    def chosen_resources(self, modes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(task, resource id, duration ns) of every resource a task holds in its mode of ``modes``,
        in task order, then the mode's resource order (modes must be valid)."""
        tid, name, rid, dur = self.mode_resource_pairs
        keep = np.array(modes, dtype=object)[tid] == name
        return tid[keep], rid[keep], dur[keep]

    def active_edge_mask(self, modes: Sequence[str]) -> np.ndarray:
        """:meth:`edge_active` of every edge under ``modes`` (bool array in edge order)."""
        _, _, _, ct, cm = self.edge_arrays
        mask = ct < 0
        cond = np.flatnonzero(~mask)
        if len(cond):
            chosen = np.array(modes, dtype=object)
            mask[cond] = chosen[ct[cond]] == cm[cond]
        return mask

    def to_networkx(self):
        """A ``networkx.DiGraph`` view (node attributes: name, kind, gpu, modes, durations)."""
        import networkx as nx

        g = nx.DiGraph()
        durations = self.mode_durations_ns()
        for t in self.tasks:
            g.add_node(t.tid, name=t.name, kind=t.kind, gpu=t.gpu, expert=t.expert, tokens=t.tokens,
                       modes=list(t.modes), durations=durations[t.tid])
        for e in self.edges:
            g.add_edge(e.src, e.dst, lag_ns=e.lag_ns,
                       if_mode=None if e.if_mode is None else f"{self.tasks[e.if_mode[0]].name}={e.if_mode[1]}")
        return g


def _ns(x: float) -> int:
    """Round a duration up to integer ns (a non-empty task lasts at least 1 ns)."""
    return 0 if x <= 0 else max(1, math.ceil(x - 1e-9))


class _Builder:
    """Adds layers (or micro-batches of layers) onto one shared set of per-GPU resources."""

    def __init__(self, system: SystemSpec, cost: CostModel, opts: DagOptions) -> None:
        self.system, self.cost, self.opts = system, cost, opts
        self.tasks: list[Task] = []
        self.edges: list[Edge] = []
        self.resources: list[Resource] = []
        self.res: dict[tuple[str, int], int] = {}
        for mode in (*opts.attention_modes, *opts.expert_modes):
            get_target(mode)  # an unknown mode fails here, naming the registered targets
        if opts.prefetch_experts < 0:
            raise ValueError(f"DagOptions.prefetch_experts: must be >= 0, got {opts.prefetch_experts}")
        #: (expert mode, resident mode, prefetch mode) of every target that caches weights, when
        #: this DAG has resident experts or prefetches (DagOptions.resident_experts / prefetch_experts)
        self.caching = [(m, t.resident_mode, t.prefetch_mode) for m in opts.expert_modes
                        if (t := get_target(m)).resident_mode and (opts.resident_experts or opts.prefetch_experts)]
        extra = tuple(x for _m, r, p in self.caching for x in (r, p) if x)
        all_modes = (*opts.attention_modes, *opts.expert_modes, *extra)
        for g in range(system.num_gpus):
            for kind in resource_kinds_for(all_modes):
                rid = len(self.resources)
                self.resources.append(Resource(rid, f"{kind}[{g}]", kind, g, resource_capacity(kind, system)))
                self.res[(kind, g)] = rid
        self.sharing = opts.hbm_sharing or system.hbm_pim.sharing
        self.layer, self.microbatch, self.tag = 0, 0, ""
        #: Per-GPU speed factors (GEM variability); None when every GPU is nominal.
        speed = speed_factors(system)
        self.speed = None if speed.uniform else speed
        # Target layouts other than the plain per-GPU one (e.g. PIM channel groups under
        # pim_parallelism="ep"): mode -> hook, instantiated on the first layer (mode -> layout).
        self._layout_hooks: dict[str, Any] = {}
        self.layouts: dict[str, Any] = {}
        for t in targets_for(all_modes):
            if t.layout_option:
                hook = t.layout_hook(getattr(opts, t.layout_option))
                if hook is not None:
                    self._layout_hooks[t.mode] = hook
        self._targets: dict[str, Target] = {}
        self._holds: dict[str, tuple[tuple[str, bool], ...]] = {}

    def target(self, mode: str) -> Target:
        t = self._targets.get(mode)
        if t is None:
            t = self._targets[mode] = get_target(mode)
            self._holds[mode] = t.resource_kinds(self.sharing)
        return t

    def mode_resources(self, mode: str, gpu: int, peer: int = -1) -> tuple[int, ...]:
        """Resources a task of ``gpu`` (and ``peer``, for messages) holds in ``mode``."""
        self.target(mode)
        return tuple(self.res[(kind, peer if on_peer else gpu)] for kind, on_peer in self._holds[mode])

    def add(self, name: str, kind: str, gpu: int, work: Work, modes: tuple[str, ...], *,
            expert: int = -1, peer: int = -1, gpu_only_resources: tuple[int, ...] | None = None) -> int:
        tid = len(self.tasks)
        mc = {}
        for m in modes:
            res = self.mode_resources(m, gpu, peer)
            if m == MODE_GPU and gpu_only_resources is not None:
                res = gpu_only_resources
            target = self.target(m)
            if m == MODE_GPU and self.speed is not None:   # GEM variability: this GPU's speed
                dur = gpu_kernel_ns(lambda w, t=target: t.duration_ns(self.cost, w), work,
                                    self.speed.compute[gpu], self.speed.memory[gpu])
            else:
                dur = target.duration_ns(self.cost, work)
            mc[m] = ModeCost(_ns(dur), res)
            if m in self.layouts:
                mc[m] = self.layouts[m].mode_cost(self, kind, gpu, expert, work, mc[m])
        self.tasks.append(Task(tid, f"{name}{self.tag}", kind, gpu, mc, expert=expert, peer=peer,
                               tokens=work.tokens, work=work, layer=self.layer, microbatch=self.microbatch))
        return tid

    def edge(self, src: int, dst: int, lag: int = 0, if_mode: tuple[int, str] | None = None) -> None:
        self.edges.append(Edge(src, dst, lag, if_mode))

    def add_layer(self, inst: LayerInstance, layer: int, microbatch: int) -> tuple[dict[int, int], dict[int, int]]:
        """Add one layer's tasks; returns its (first task, last task) per GPU: qkv[g], reduce[g]."""
        if inst.system.num_gpus != self.system.num_gpus:
            raise ValueError("every layer of a window must use the same system")
        self.inst, self.layer, self.microbatch = inst, layer, microbatch
        self.prefetch_of: dict[int, list[int]] = {}
        for mode, hook in self._layout_hooks.items():
            if mode not in self.layouts:
                self.layouts[mode] = hook(self, inst)
            self.layouts[mode].bind(inst)
        self.tag = f"@L{layer}" + (f"m{microbatch}" if microbatch else "")
        opts, model = self.opts, inst.model
        G = inst.num_gpus
        lat = _ns(inst.system.interconnect.latency_ns)
        attn_kind = model.moe_layer_attention_kind(inst.moe_layer)

        qkv, attn, oproj, router, sched, shared, reduce_, launch = ({} for _ in range(8))
        for g in range(G):
            n = int(inst.tokens_per_gpu[g])
            n_decode = int(inst.decode_requests_per_gpu[g])
            qkv[g] = self.add(f"qkv[{g}]", QKV, g, W.qkv_work(model, attn_kind, n), (MODE_GPU,))
            attn[g] = self.add(f"attn[{g}]", ATTN, g,
                               W.decode_attention_work(model, attn_kind, n_decode, float(inst.kv_tokens_per_gpu[g])),
                               opts.attention_modes)
            oproj[g] = self.add(f"oproj[{g}]", OPROJ, g, W.oproj_work(model, attn_kind, n), (MODE_GPU,))
            router[g] = self.add(f"router[{g}]", ROUTER, g, W.router_work(model, n), (MODE_GPU,))
            self.edge(qkv[g], attn[g])
            self.edge(attn[g], oproj[g])
            if inst.prefill_attn_flops_per_gpu[g] > 0:
                pf = self.add(f"prefill_attn[{g}]", PREFILL_ATTN, g,
                              Work(PREFILL_ATTN, n - n_decode, float(inst.prefill_attn_flops_per_gpu[g]),
                                   kv_bytes=float(inst.prefill_attn_bytes_per_gpu[g])), (MODE_GPU,))
                self.edge(qkv[g], pf)
                self.edge(pf, oproj[g])
            self.edge(oproj[g], router[g])
            sched[g] = self.add(f"sched[{g}]", SCHED, g, W.sched_work(opts.scheduler_latency_ns), (MODE_SCHED,))
            self.edge(router[g], sched[g])

        # AllGather of the routing maps: one message per ordered GPU pair.
        ag_into: dict[int, list[int]] = {g: [] for g in range(G)}
        for i in range(G):
            ag = W.allgather_work(model, int(inst.tokens_per_gpu[i]), opts.allgather_bytes_per_choice)
            for j in range(G):
                if i == j:
                    continue
                m = self.add(f"allgather[{i}->{j}]", ALLGATHER, i, ag, (MODE_LINK,), peer=j)
                self.edge(router[i], m)
                self.edge(m, sched[j], lat)
                ag_into[j].append(m)

        # Dispatch: distinct tokens of GPU i with >= 1 expert on GPU j.
        dispatch: dict[tuple[int, int], int] = {}
        for i in range(G):
            for j in range(G):
                ntok = int(inst.dispatch_tokens[i, j])
                if i == j or ntok == 0:
                    continue
                m = self.add(f"dispatch[{i}->{j}]", DISPATCH, i, W.token_message_work(DISPATCH, model, ntok),
                             (MODE_LINK,), peer=j)
                self.edge(router[i], m)
                for a in ag_into[i]:
                    self.edge(a, m, lat)
                dispatch[(i, j)] = m

        grouped = opts.gpu_kernel == "grouped"
        expert_tokens = inst.expert_tokens
        resident = set(opts.resident_experts)
        resident_modes = tuple(dict.fromkeys(r for _m, r, _p in self.caching if r))
        experts_of: dict[int, list[int]] = {g: [] for g in range(G)}
        for g in range(G):
            if grouped:
                launch[g] = self.add(f"launch[{g}]", LAUNCH, g, W.launch_work(),
                                     (MODE_GPU,), gpu_only_resources=(self.res[(RES_GPU, g)],))
                self.edge(sched[g], launch[g])
                for i in range(G):
                    if (i, g) in dispatch:
                        self.edge(dispatch[(i, g)], launch[g], lat)
            for e in inst.experts_on(g):
                e = int(e)
                w = W.expert_work(model, int(expert_tokens[e]), launches=0 if grouped else 1)
                modes = opts.expert_modes
                if e in resident:
                    modes = (*modes, *(r for r in resident_modes if r not in modes))
                t = self.add(f"expert[{e}]", EXPERT, g, w, modes, expert=e)
                experts_of[g].append(t)
                self.edge(sched[g], t)
                for i in np.flatnonzero(inst.counts[:, e]):
                    if int(i) != g:
                        self.edge(dispatch[(int(i), g)], t, lat)
                if grouped and MODE_GPU in modes:
                    self.edge(launch[g], t, 0, (t, MODE_GPU))

        for g in range(G):
            n = int(inst.tokens_per_gpu[g])
            if model.num_shared_experts and n:
                shared[g] = self.add(f"shared[{g}]", SHARED, g, W.shared_expert_work(model, n), (MODE_GPU,))
                self.edge(oproj[g] if opts.shared_expert_prefetch else sched[g], shared[g])
            reduce_[g] = self.add(f"reduce[{g}]", REDUCE, g, W.reduce_work(model, n), (MODE_GPU,))
            self.edge(router[g], reduce_[g])
            # The next layer's weights, overlapping this whole layer (from its start: in a window,
            # after the previous layer's reduce, so at most 2 x prefetch_experts buffers are live).
            self.prefetch_of[g] = []
            for _m, _r, pmode in self.caching:
                for j in range(opts.prefetch_experts if pmode else 0):
                    p = self.add(f"prefetch[{g}.{j}]", PREFETCH, g, W.prefetch_work(model), (pmode,))
                    self.edge(p, reduce_[g])
                    self.prefetch_of[g].append(p)
            if g in shared:
                self.edge(shared[g], reduce_[g])

        # Combine: results go back to each token's origin GPU, then the weighted sum.
        expert_task = {self.tasks[t].expert: t for g in experts_of for t in experts_of[g]}
        for (i, j), _m in dispatch.items():
            ntok = int(inst.dispatch_tokens[i, j])
            c = self.add(f"combine[{j}->{i}]", COMBINE, j, W.token_message_work(COMBINE, model, ntok),
                         (MODE_LINK,), peer=i)
            for e in np.flatnonzero((inst.expert_gpu == j) & (inst.counts[i] > 0)):
                self.edge(expert_task[int(e)], c)
            self.edge(c, reduce_[i], lat)
        for g in range(G):
            for e in np.flatnonzero((inst.expert_gpu == g) & (inst.counts[g] > 0)):
                self.edge(expert_task[int(e)], reduce_[g])

        self.last_meta = {"model": model.name, "system": inst.system.name, "num_gpus": G,
                          "batch": inst.batch, "moe_layer": inst.moe_layer, "step": inst.step,
                          "hbm_sharing": self.sharing, "cost_model": getattr(self.cost, "name", "?"),
                          "attention_kind": attn_kind}
        for lay in self.layouts.values():
            self.last_meta.update(lay.meta())
        return qkv, reduce_

    def finish(self, meta: dict) -> TaskDAG:
        return TaskDAG(tuple(self.tasks), tuple(self.edges), tuple(self.resources), self.system.num_gpus,
                       self.opts, meta=meta)


def build_layer_dag(inst: LayerInstance, cost: CostModel, options: DagOptions | None = None) -> TaskDAG:
    """Build the task DAG of one MoE layer with durations from ``cost``."""
    opts = options or DagOptions.for_system(inst.system)
    b = _Builder(inst.system, cost, opts)
    b.add_layer(inst, opts.layer, opts.microbatch)
    return b.finish(b.last_meta)


def build_window_dag(layers: Sequence[Sequence[LayerInstance]], cost: CostModel,
                     options: DagOptions | None = None) -> TaskDAG:
    """Several micro-batches interleaved across consecutive layers, on shared resources.

    ``layers[l][m]`` is micro-batch ``m`` of layer ``l`` (all on the same system). Micro-batch m
    of layer l+1 starts on GPU g after its own layer-l ``reduce[g]``; different micro-batches
    are independent, so one's attention can overlap another's experts (where the overlap the
    Sieve estimate assumes becomes real). Task names carry ``@L{l}m{m}``.
    """
    if not layers or not layers[0]:
        raise ValueError("build_window_dag needs at least one layer with one micro-batch")
    nmb = len(layers[0])
    if any(len(row) != nmb for row in layers):
        raise ValueError("every layer of a window needs the same number of micro-batches")
    opts = options or DagOptions.for_system(layers[0][0].system)
    b = _Builder(layers[0][0].system, cost, opts)
    prev_last: list[dict[int, int]] = [{} for _ in range(nmb)]
    for li, row in enumerate(layers):
        for m, inst in enumerate(row):
            first, last = b.add_layer(inst, li, m)
            for g, t in prev_last[m].items():
                b.edge(t, first[g])
                for p in b.prefetch_of.get(g, ()):
                    b.edge(t, p)
            prev_last[m] = last
    meta = dict(b.last_meta)
    meta.update({"window_layers": len(layers), "microbatches": nmb,
                 "batch": sum(inst.batch for inst in layers[0]),
                 "moe_layers": [row[0].moe_layer for row in layers]})
    return b.finish(meta)
