"""Replay a schedule's decisions on the simulators (DESIGN.md §7).

``replay(schedule, dag, system)`` keeps the schedule's *decisions*, each task's mode and each
resource's task order (``schedule.resource_order(dag)``), and throws its *times* away. Times
come from the simulators:

* GPU-mode tasks: :class:`~sieveopt.validation.gpu_model.GpuModel`, compute from FLOPs, memory
  from the cycle-level DRAM streaming simulation, launch overhead per kernel;
* PIM-mode tasks: the DRAM/PIM simulator's all-bank jobs (token writes, GEMVs, read-back; PIM
  attention as an all-bank stream over the KV bytes);
* messages (AllGather, dispatch, combine): the packet-level NVLink simulator, released when
  their producers finish in the replay, each egress port in the schedule's order;
* the scheduler task: the given latency (a policy's measured ``decision_ns`` or a budget).

Method (conservative co-simulation). The compute side is an event loop
(:mod:`sieveopt.validation.replay_engine`) in which tasks start when their active
predecessors are done and they are next on every resource they hold; GPU weight streaming and
PIM jobs that overlap on the same GPU's stacks slow each other down by the factors the DRAM
simulator measures for that pair run concurrently (a fluid model: rates change at every event).
Messages are timed by the interconnect simulator advanced together with the loop
(:class:`~sieveopt.validation.replay_net.NetworkCosim`): whenever the loop releases messages,
the simulator is re-run on the messages that can still be affected and their provisional
arrivals are rescheduled. The interconnect is causal (a message's timing depends only on
packets that became ready before its own, latency > 0), so every arrival the loop processes is
final, and one pass gives the fixed point "arrivals = simulator(releases of the loop)". A last
simulation of all messages at the replayed releases checks it (``converged``) and gives the
port statistics. (Until round 10 this was a Jacobi iteration, loop then simulator, of at most
12 rounds; it moves one communication phase per round, and a 6-iteration periodic replay of
Qwen3.5 x8 needed 20 rounds, 147 s on a shared machine: docs/design-notes/replay.md.)

Assumptions: all experts of a GPU are sharded over all its pseudo-channels (tensor
parallelism), so one GPU's stacks behave as one unit; interference is a rate effect between
one PIM job and one GPU kernel (at most one of each runs per GPU); GPU compute never
interferes with memory; ingress order is decided by the switch, not the schedule. Under
expert-parallel PIM (``pim_parallelism="ep"``, PIMoE) an expert runs on its channel group only
(``timer.pim_expert_ns_on``) and several group jobs of one GPU run at once; interference is then
applied to the most recently started one only (an approximation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt.critpath import critical_path
from sieveopt.dag import (
    ATTN,
    EXPERT,
    LAUNCH,
    MESSAGE_KINDS,
    RES_EGRESS,
    RES_INGRESS,
    SCHED,
    Task,
    TaskDAG,
)
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.pim_groups import task_group
from sieveopt.schedule import Schedule
from sieveopt.targets import get_target
from sieveopt.validation.gpu_model import GpuModel
from sieveopt.validation.replay_engine import TaskTime, run_loop
from sieveopt.validation.replay_memory import AnalyticTimer, MemoryTimer
from sieveopt.validation.replay_net import (
    NetworkCosim,
    egress_order,
    link_params,
    message_tids,
    simulate_messages,
)


@dataclass(frozen=True, slots=True)
class KindError:
    """Cost-model error of one task kind: predicted (DAG) vs replayed duration."""

    kind: str
    count: int
    median_abs_pct: float
    mean_abs_pct: float
    mean_signed_pct: float     # (predicted - replayed) / replayed, docs/metrics.md; < 0: optimistic
    predicted_ns: float        # sum over tasks
    replayed_ns: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """What a replay measured. ``schedule`` is the replayed timeline (same modes as the input).

    Message tasks in ``schedule`` span [first packet sent, arrival - wire latency], so that
    ``end + lag`` on their DAG edges is the simulated arrival."""

    schedule: Schedule
    predicted: Schedule
    makespan_ns: int
    predicted_makespan_ns: int
    replayed_duration_ns: np.ndarray       # per task: end - start in the replay
    predicted_duration_ns: np.ndarray      # per task: the DAG's duration in the chosen mode
    alone_ns: np.ndarray                   # compute tasks: simulated time without interference
    interfered_ns: np.ndarray              # compute tasks: ns spent slowed by interference
    message_release_ns: np.ndarray
    message_arrival_ns: np.ndarray
    utilisation: dict[str, float]
    critical_path: list[int]
    kind_error: dict[str, KindError]
    scheduler_latency_ns: int
    iterations: int          # interconnect simulations run (co-simulation updates + the final check)
    converged: bool          # the final simulation of all messages reproduced every arrival
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def makespan_error_pct(self) -> float:
        """(predicted - replayed) / replayed, in percent (negative: the prediction was short)."""
        return 100.0 * (self.predicted_makespan_ns - self.makespan_ns) / max(1, self.makespan_ns)

    def summary(self, dag: TaskDAG) -> dict[str, Any]:
        """A JSON-ready digest (what the CLI prints)."""
        cp = self.critical_path
        cp_kinds: dict[str, int] = {}
        for t in cp:
            k = dag.tasks[t].kind
            cp_kinds[k] = cp_kinds.get(k, 0) + int(self.replayed_duration_ns[t])
        return {
            "policy": self.predicted.policy,
            "predicted_makespan_ns": self.predicted_makespan_ns,
            "replayed_makespan_ns": self.makespan_ns,
            "makespan_error_pct": self.makespan_error_pct,
            "scheduler_latency_ns": self.scheduler_latency_ns,
            "iterations": self.iterations, "converged": self.converged,
            "kind_error": {k: v.to_dict() for k, v in self.kind_error.items()},
            "utilisation": self.utilisation,
            "critical_path": [dag.tasks[t].name for t in cp],
            "critical_path_ns_by_kind": cp_kinds,
            "interfered_tasks": int(np.count_nonzero(self.interfered_ns)),
            "meta": self.meta,
        }


def _model_of(dag: TaskDAG, instance: LayerInstance | None) -> ModelSpec:
    if instance is not None:
        return instance.model
    from sieveopt.models.catalog import load_model

    return load_model(dag.meta["model"])


def make_timer(system: SystemSpec, model: ModelSpec, memory: str | MemoryTimer = "dram",
               dram_preset: str | None = None, **dram_overrides: Any) -> MemoryTimer:
    """The memory timer for ``memory``: "dram" (default) is the cycle-level DRAM/PIM simulator,
    "analytic" the roofline formulas (an explicit ablation; never a silent fallback)."""
    from sieveopt.errors import SieveoptError

    if not isinstance(memory, str):
        return memory
    if memory == "analytic":
        return AnalyticTimer(system, model)
    if memory == "dram":
        from sieveopt.validation.replay_dram import DramTimer

        return DramTimer(system, model, preset=dram_preset, **dram_overrides)
    raise SieveoptError(f"replay: unknown memory timer {memory!r}; use 'dram' or 'analytic'")


@dataclass(frozen=True, eq=False)
class ReplayTimers:
    """What a target's replay timer hook gets: the GPU kernel model, the memory-side timer and
    the scheduler latency to charge (None: the DAG's)."""

    gpu: GpuModel
    memory: MemoryTimer
    scheduler_latency_ns: int | None
    #: The DAG being replayed (a timer may read its resources, e.g. a PIM channel group).
    dag: TaskDAG | None = None


def gpu_task_time(ctx: ReplayTimers, task: Task, mode: str) -> TaskTime:
    """GPU target: launch overhead, then max(compute, simulated stream time) (interferes with PIM)."""
    k = ctx.gpu.kernel(task.work)
    return TaskTime(k.overhead_ns, k.body_ns, k.compute_ns, k.memory_ns)


def pim_task_time(ctx: ReplayTimers, task: Task, mode: str) -> TaskTime:
    """PIM target: the DRAM/PIM simulator's all-bank job (routed experts and decode attention)."""
    if task.kind == EXPERT:
        grp = task_group(ctx.dag, task.tid) if ctx.dag is not None else None
        # expert-parallel PIM (sieveopt.pim_groups): the job runs on its channel group only
        ns = ctx.memory.pim_expert_ns(task.tokens) if grp is None else ctx.memory.pim_expert_ns_on(task.tokens, grp[1])
        return TaskTime(0.0, ns, kind=EXPERT, tokens=task.tokens)
    if task.kind == ATTN:
        return TaskTime(0.0, ctx.memory.pim_attention_ns(task.work), kind=ATTN, tokens=task.tokens)
    raise ValueError(f"replay: no PIM model for task kind {task.kind!r} ({task.name})")


def sched_task_time(ctx: ReplayTimers, task: Task, mode: str) -> TaskTime:
    """Scheduler target: the given latency (a policy's measured decision time or a budget)."""
    lat = task.modes[mode].duration_ns if ctx.scheduler_latency_ns is None else ctx.scheduler_latency_ns
    return TaskTime(0.0, float(lat))


def task_times(dag: TaskDAG, modes: tuple[str, ...] | list[str], system: SystemSpec, timer: MemoryTimer,
               scheduler_latency_ns: int | None) -> list[TaskTime | None]:
    """Alone timing of every compute task in its mode (None for messages), from each mode's
    registered replay timer hook (:mod:`sieveopt.targets`)."""
    from sieveopt.variability import scale_kernel_time, speed_factors

    ctx = ReplayTimers(GpuModel(system, timer.stream_ns), timer, scheduler_latency_ns, dag)
    speed = speed_factors(system)           # GEM variability: GPU kernels at each GPU's speed
    out: list[TaskTime | None] = []
    for t in dag.tasks:
        mode = modes[t.tid]
        if t.kind in MESSAGE_KINDS:
            out.append(None)
        elif t.kind == SCHED:
            out.append(sched_task_time(ctx, t, mode))
        else:
            tt = get_target(mode).replay_timer()(ctx, t, mode)
            if mode == MODE_GPU:
                tt = scale_kernel_time(tt, float(speed.compute[t.gpu]), float(speed.memory[t.gpu]))
            out.append(tt)
    return out


def _kind_key(dag: TaskDAG, tid: int, mode: str) -> str:
    t = dag.tasks[tid]
    return f"{t.kind}:{mode}" if t.has_choice else t.kind


def kind_errors(dag: TaskDAG, modes: tuple[str, ...], predicted: np.ndarray, replayed: np.ndarray) -> dict[str, KindError]:
    """Per task kind (and mode, for kinds with a choice): % error of predicted vs replayed,
    ``(predicted - replayed) / replayed`` like :attr:`ReplayResult.makespan_error_pct`."""
    groups: dict[str, list[int]] = {}
    for t in dag.tasks:
        if t.kind == LAUNCH and predicted[t.tid] == 0:
            continue
        groups.setdefault(_kind_key(dag, t.tid, modes[t.tid]), []).append(t.tid)
    out = {}
    for key, tids in sorted(groups.items()):
        p = predicted[tids].astype(float)
        r = replayed[tids].astype(float)
        ok = r > 0
        if not ok.any():
            continue
        signed = 100.0 * (p[ok] - r[ok]) / r[ok]     # docs/metrics.md: one sign for every error
        out[key] = KindError(key, int(ok.sum()), float(np.median(np.abs(signed))), float(np.mean(np.abs(signed))),
                             float(np.mean(signed)), float(p.sum()), float(r.sum()))
    return out


def replay(schedule: Schedule, dag: TaskDAG, system: SystemSpec, *, instance: LayerInstance | None = None,
           scheduler_latency_ns: int | None = None, dram_preset: str | None = None,
           memory: str | MemoryTimer = "dram", interference: bool = True,
           link_overrides: dict[str, Any] | None = None,
           timer: MemoryTimer | None = None) -> ReplayResult:
    """Replay ``schedule`` (modes + per-resource order) of ``dag`` on the simulators of ``system``.

    ``scheduler_latency_ns`` replaces the DAG's ``sched`` durations (None keeps them);
    ``memory``/``dram_preset`` pick the memory-side simulator (see :func:`make_timer`);
    ``interference=False`` turns off GPU-stream/PIM slow-downs (for ablations).
    """
    if len(schedule.modes) != len(dag.tasks):
        from sieveopt.errors import ScheduleError

        raise ScheduleError(f"replay: schedule has {len(schedule.modes)} tasks, the DAG {len(dag.tasks)}")
    modes = tuple(schedule.modes)
    model = _model_of(dag, instance)
    timer = timer or make_timer(system, model, memory, dram_preset)
    order = schedule.resource_order(dag)
    times = task_times(dag, modes, system, timer, scheduler_latency_ns)
    n = len(dag.tasks)
    msgs = message_tids(dag)
    lat_ns = int(round(system.interconnect.latency_ns))
    params = link_params(system, dag.num_gpus, **(link_overrides or {})) if msgs else None
    eg_order = egress_order(dag, order) if msgs else {}
    sharing = dag.meta.get("hbm_sharing") or system.hbm_pim.sharing
    interf = timer.interference if (interference and sharing != "exclusive") else None

    cosim = NetworkCosim(dag, msgs, eg_order, params) if msgs else None
    no_delays = np.zeros(n, dtype=np.int64)    # messages are timed by the co-simulation
    loop = run_loop(dag, modes, order, times, no_delays, interf, network=cosim)
    net, converged, runs = None, True, 0
    if cosim is not None:
        # one simulation of every message at the replayed releases: the port statistics, and
        # the proof that the co-simulated arrivals are its fixed point
        net = simulate_messages(dag, msgs, loop.release_ns, eg_order, params)
        converged = bool(np.array_equal(net.arrival_ns[msgs], loop.end_ns[msgs]))
        runs = cosim.runs + 1

    start = loop.start_ns.copy()
    end = loop.end_ns.copy()
    arrival = np.full(n, -1, dtype=np.int64)
    if net is not None:
        for t in msgs:
            arrival[t] = end[t]
            start[t] = max(int(loop.release_ns[t]), int(net.first_tx_start_ns[t]))
            end[t] = max(start[t], int(end[t]) - lat_ns)
    replayed = Schedule(modes, start, end, policy=schedule.policy,
                        meta={**schedule.meta, "replayed": True, "memory": timer.name})
    predicted_dur = np.array([t.modes[modes[t.tid]].duration_ns for t in dag.tasks], dtype=np.int64)
    if scheduler_latency_ns is not None:
        for t in dag.tasks:
            if t.kind == SCHED:
                predicted_dur[t.tid] = scheduler_latency_ns
    replayed_dur = end - start
    util = replayed.utilisation(dag)
    span = max(1, replayed.makespan_ns)
    if net is not None:   # ports: the simulator's busy time, not message spans (packets interleave)
        for g in range(dag.num_gpus):
            util[dag.resource(RES_EGRESS, g).name] = float(net.egress_busy_ns[g]) / span
            util[dag.resource(RES_INGRESS, g).name] = float(net.ingress_busy_ns[g]) / span
    sched_lat = max((int(replayed_dur[t.tid]) for t in dag.tasks if t.kind == SCHED), default=0)
    return ReplayResult(
        schedule=replayed, predicted=schedule, makespan_ns=replayed.makespan_ns,
        predicted_makespan_ns=schedule.makespan_ns, replayed_duration_ns=replayed_dur,
        predicted_duration_ns=predicted_dur, alone_ns=loop.alone_ns, interfered_ns=loop.interfered_ns,
        message_release_ns=loop.release_ns, message_arrival_ns=arrival, utilisation=util,
        critical_path=critical_path(replayed, dag), kind_error=kind_errors(dag, modes, predicted_dur, replayed_dur),
        scheduler_latency_ns=sched_lat, iterations=runs, converged=converged,
        meta={"memory": timer.name, "sharing": sharing, "interference": interf is not None,
              "system": system.name, "num_gpus": dag.num_gpus,
              **({"dram": timer.describe()} if hasattr(timer, "describe") else {})})


def feed_table_from_replay(table: Any, result: ReplayResult, dag: TaskDAG) -> int:
    """Sieve's runtime behaviour: ``observe()`` each PIM expert's replayed time by token count.

    Returns how many observations were made."""
    k = 0
    for t in dag.tasks:
        if t.kind == EXPERT and result.schedule.modes[t.tid] == MODE_PIM and t.tokens > 0:
            table.observe(t.tokens, float(result.replayed_duration_ns[t.tid]))
            k += 1
    return k
