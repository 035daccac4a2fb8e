"""``sieve-pipe``: Sieve's sweep with the objective of the execution model it runs under.

Sieve keeps the k hottest experts on the GPU and picks k minimising max(T_comm, T_GPU, T_PIM):
the time per layer when phases of different micro-batches overlap perfectly (papers.md §1.5).
With M micro-batches pipelined in steady state, each period holds M slots' work on every
resource *and* one micro-batch's chain through the layer must fit in it (each micro-batch
advances one layer per period, :mod:`sieveopt.periodic`). So each GPU, seeing only its own
slot's routing (the run-time information), picks the k of the same hottest-first sweep that
minimises

    max(M * T_GPU(k), M * T_HBM(k), M * T_PIM(k), chain(k)),
    chain(k) = qkv + attention + oproj + router + T_comm + max(GPU experts(k), PIM experts(k)) + reduce

with every duration taken from the layer DAG (the cost model the schedule is timed with);
``T_HBM`` adds PIM jobs to the GPU's HBM load when HBM sharing is ``exclusive``.
``decision_ns`` is the slowest GPU's compiled sweep (every GPU plans in parallel), timed like
``sieve``'s planner call (inputs extracted from the DAG beforehand, as for Sieve).

The planner is told the execution model it runs under (``overlap``, as a serving GPU knows
whether it pipelines micro-batches) and plans for that model's time per layer:

* ``serial``: the layer's makespan, which a load estimate does not capture (the serialized
  phases leave resources idle): sieve-plus's decision (:mod:`sieveopt.solvers.sieve_plus`, its
  finish estimate searched over every split), made by this policy's own kernel
  (:mod:`sieveopt.solvers.sieve_pipe_serial`: Sieve's shape, counting sort inside the call, an
  exact early stop; identical decisions, tested).
* ``microbatch``: the pipeline objective above.
* ``ideal``: the busiest resource's load, Sieve's own ``max(T_comm, T_GPU, T_PIM)`` (papers.md
  §1.5), which is that model's time per layer: the chain term is dropped.

Its declared scheduler charge is Sieve's figure, 1.0 us, under every execution model: both kernels
sort and allocate like Sieve's planner and measured 0.93-1.32x (serial kernel) and 1.01-1.25x
(sweep) Sieve's median side by side on one pinned core (``benchmarks/pipe_latency.py``,
BENCHMARKS.md §16c; sieve-plus's own kernel, which receives its experts pre-sorted, 1.05-1.93x).

**Concurrent slot** (``concurrent``, default on; microbatch only): in the staggered pipeline
(:func:`sieveopt.overlap.pipeline_schedule`) a slot's experts run beside the *next* slot's dense
chain (the other micro-batch's QKV, attention, O-proj, router), not beside its own. Layers differ
in their dense work (GPT-OSS alternates sliding-window and full attention: 0.9 vs 11.1 us on PIM
per slot at B = 256), so a split balanced against the slot's own attention tips the phase it runs
in. :func:`sieveopt.overlap.plan_modes` passes the next slot's layer DAG (``concurrent_dag``, the
window's slots taken cyclically); the load terms use its GPU dense work (this slot's shared
expert kept) and its PIM attention. Both are known before routing (the model's layer kinds and
the micro-batch's context lengths), so the GPU has them at run time; the sweep is unchanged.
Measured (charged, pipeline runtime): GPT-OSS x4 B = 256 M = 2 68.98 -> 66.25 us, Qwen3.5 x8
B = 256 M = 2 159.64 -> 153.61 us (docs/design-notes/overlap.md, round 5).

**Carried load** (``carry``, default on; microbatch and ideal): the time per layer of both
models is set by every resource's load summed over the window's slots, not slot by slot, and
with whole experts a split balanced slot by slot leaves each slot a fraction of an expert off
balance, in the same direction. A GPU knows the loads its earlier decisions put on its own
GPU, HBM and PIM (run-time information: it made them), so each slot is planned on the load
carried from the earlier slots of the window (:func:`sieveopt.overlap.plan_modes` passes
``prior_load_ns`` and ``prior_slots``): the load term becomes ``M * max_r (carried_r +
load_r(k)) / (slots so far + 1)``, the projected per-layer load of the window. One more add per
resource in the sweep; the decision latency is unchanged.

**Hedge** (``hedge``, default on; microbatch only): under ``ideal`` the window's summed load *is*
the time per layer, but a pipeline also needs each slot's own phases to fit (one micro-batch's
expert phase overlaps another's dense chain), so a slot tipped far off balance to even out the
window costs period. Under ``microbatch`` the load term is ``max(projected window load, this
slot's own load)``: the carry still moves a slot towards the resource the window under-uses, but
never beyond the window's projected load. Measured on the study's 29 microbatch points
(charged 1 us, ``benchmarks/overlap_study.py --successor``): the carry alone lost up to 12 % to
Sieve's modes on GPT-OSS x4 M = 3, 4 and 3 % on Qwen3.5 x8 B = 64 M = 2 (e.g. 72.8 vs 65.0 us at
B' = 60, M = 3); hedged it equals Sieve's period on 24 points, beats it on one and is 0.2-2.5 %
above on four (docs/design-notes/overlap.md, "Round 4").
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numba import njit

from sieveopt.dag import ATTN, LAUNCH, OPROJ, QKV, REDUCE, ROUTER, SHARED, TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM, CostModel
from sieveopt.solvers._sieve_numba import sort_desc
from sieveopt.solvers.base import SolveResult
from sieveopt.solvers.plan_inputs import P_T_COMM, plan_inputs
from sieveopt.solvers.sieve import finish


def _gpu_terms(dag: TaskDAG, g: int) -> dict[str, int]:
    """GPU g's fixed work of one slot (ns): ``other`` GPU work (QKV, O-proj, router, shared
    expert, reduce, attention when on the GPU), ``pre`` the chain before the experts, ``launch``,
    ``attn_pim`` the attention on PIM, ``reduce``, ``shared``."""
    other = pre = launch = attn_pim = reduce_ = shared = 0
    for t in dag.tasks:
        if t.gpu != g:
            continue
        if t.kind in (QKV, OPROJ, ROUTER, SHARED, REDUCE):
            d = t.modes[MODE_GPU].duration_ns
            other += d
            if t.kind in (QKV, OPROJ, ROUTER):
                pre += d
            if t.kind == REDUCE:
                reduce_ = d
            if t.kind == SHARED:
                shared += d
        elif t.kind == LAUNCH:
            launch = t.modes[MODE_GPU].duration_ns
        elif t.kind == ATTN:
            if MODE_PIM in t.modes:
                attn_pim = t.modes[MODE_PIM].duration_ns
            else:
                other += t.modes[MODE_GPU].duration_ns
                pre += t.modes[MODE_GPU].duration_ns
    return {"other": other, "pre": pre + attn_pim, "launch": launch, "attn_pim": attn_pim, "reduce": reduce_,
            "shared": shared}


@njit(cache=True, nogil=True, boundscheck=False)
def _sweep(tokens: np.ndarray, dur: np.ndarray, scal: np.ndarray, ws: np.ndarray,
           order: np.ndarray) -> int:  # pragma: no cover (compiled)
    """The hottest-first sweep: the best k (``order[:k]`` run on the GPU), or -1 when a token count
    is outside ``ws``. ``dur`` float64 [2, E]: GPU and PIM ns of each expert; scal = (other,
    attn_pim, launch, pre + T_comm + reduce, M, exclusive, carried GPU, carried HBM, carried PIM,
    slots the load is averaged over, hedge). Sorts like Sieve's planner (counting sort into the caller's
    ``ws``/``order``, descending, stable) and, like it, allocates nothing and takes five
    arguments (numba's dispatch cost grows with their number)."""
    n = tokens.shape[0]
    if sort_desc(tokens, ws.shape[0] - 1, ws, order) < 0:
        return -1
    other, attn, launch, chain0, M, excl = scal[0], scal[1], scal[2], scal[3], scal[4], scal[5]
    c_gpu, c_hbm, c_pim, slots, hedge = scal[6], scal[7], scal[8], scal[9], scal[10]
    psum = 0.0
    for i in range(n):
        psum += dur[1, i]
    gsum = 0.0
    best, best_k = 1e300, 0
    for k in range(n + 1):
        if k > 0:
            e = order[k - 1]
            gsum += dur[0, e]
            psum -= dur[1, e]
        lg = gsum + (launch if k > 0 else 0.0)
        t_gpu = other + lg
        t_pim = attn + psum
        t_hbm = t_gpu + t_pim if excl > 0 else t_gpu
        load = max(c_gpu + t_gpu, max(c_hbm + t_hbm, c_pim + t_pim)) / slots
        if hedge > 0:  # this slot's own load never above the projected window's
            load = max(load, max(t_gpu, max(t_hbm, t_pim)))
        obj = max(M * load, chain0 + max(lg, psum))
        if obj < best:
            best, best_k = obj, k
    return best_k


SplitArgs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def split_args(tokens: np.ndarray, gpu_ns: np.ndarray, pim_ns: np.ndarray, terms: dict[str, int], t_comm: float,
               microbatches: int, exclusive: bool, carried: tuple[float, float, float] = (0.0, 0.0, 0.0),
               prior_slots: int = 0, hedge: bool = False) -> SplitArgs:
    """The compiled sweep's arguments (prepared before the timed call, as for Sieve's planner:
    a serving GPU keeps the workspace and output arrays allocated)."""
    scal = np.array([terms["other"], terms["attn_pim"], terms["launch"],
                     terms["pre"] + t_comm + terms["reduce"], microbatches, 1.0 if exclusive else 0.0,
                     *carried, prior_slots + 1.0, 1.0 if hedge else 0.0])
    tok = np.ascontiguousarray(tokens, dtype=np.int32)
    dur = np.ascontiguousarray(np.stack([np.asarray(gpu_ns, dtype=np.float64), np.asarray(pim_ns, dtype=np.float64)]))
    ws = np.zeros(int(tok.max(initial=0)) + 2, dtype=np.int32)
    return tok, dur, scal, ws, np.zeros(max(1, len(tok)), dtype=np.int32)


def plan_split(tokens: np.ndarray, gpu_ns: np.ndarray, pim_ns: np.ndarray, terms: dict[str, int], t_comm: float,
               microbatches: int, exclusive: bool, carried: tuple[float, float, float] = (0.0, 0.0, 0.0),
               prior_slots: int = 0, hedge: bool = False) -> tuple[np.ndarray, int]:
    """(bool [E_g] "runs on the GPU" flags, planning ns): the best k of the hottest-first sweep;
    ``carried``: (GPU, HBM, PIM) load of ``prior_slots`` earlier slots."""
    args = split_args(tokens, gpu_ns, pim_ns, terms, t_comm, microbatches, exclusive, carried, prior_slots, hedge)
    t0 = time.perf_counter_ns()
    k = _sweep(*args)
    dt = time.perf_counter_ns() - t0
    if k < 0:
        raise ValueError("sieve-pipe: a token count is outside the workspace")
    on_gpu = np.zeros(len(args[0]), dtype=np.bool_)
    on_gpu[args[4][:k]] = True
    return on_gpu, dt


def warm_up() -> None:
    """Compile the sweep once (so no decision latency includes compilation)."""
    plan_split(np.array([2, 1]), np.array([1, 1]), np.array([1, 1]),
               {"other": 0, "attn_pim": 0, "launch": 0, "pre": 0, "reduce": 0}, 0.0, 2, False)


PLAN_OVERLAPS = ("serial", "microbatch", "ideal")


def solve_sieve_pipe(dag: TaskDAG, instance: LayerInstance, cost: CostModel, *, microbatches: int = 1,
                     overlap: str = "serial", carry: bool = True, hedge: bool = True,
                     prior_load_ns: dict[tuple[str, int], float] | None = None, prior_slots: int = 0,
                     concurrent: bool = True, concurrent_dag: TaskDAG | None = None, **_: Any) -> SolveResult:
    """Plan every GPU for the time per layer of ``overlap`` (see the module docstring)."""
    if overlap not in PLAN_OVERLAPS:
        raise ValueError(f"sieve-pipe overlap {overlap!r}: expected one of {', '.join(PLAN_OVERLAPS)}")
    t_wall = time.perf_counter()
    if overlap == "serial":
        from sieveopt.solvers.base import HEURISTIC
        from sieveopt.solvers.sieve_pipe_serial import decide_serial
        from sieveopt.solvers.sieve_plus import split_schedule

        on_gpu, times = decide_serial(dag)
        sched = split_schedule(dag, on_gpu, "sieve-pipe")
        return SolveResult("sieve-pipe", sched, HEURISTIC, sched.makespan_ns, None, time.perf_counter() - t_wall,
                           max(times, default=0), (),
                           {"plan": "sieve-plus's decision, serial kernel (serial execution: the layer's makespan)",
                            "overlap": "serial", "decision_ns_per_gpu": times, "order": sched.meta["order"]})
    inputs = plan_inputs(dag, instance, cost)
    exclusive = dag.meta.get("hbm_sharing") == "exclusive"
    expert_modes: dict[int, str] = {}
    times = []
    warm_up()
    for inp in inputs:
        terms = _gpu_terms(dag, inp.gpu)
        if overlap == "ideal":  # the busiest resource only: no chain term
            terms = {**terms, "pre": 0, "reduce": 0}
        elif concurrent and concurrent_dag is not None:  # balance against the dense work beside the experts
            c = _gpu_terms(concurrent_dag, inp.gpu)
            terms = {**terms, "other": c["other"] - c["shared"] + terms["shared"], "attn_pim": c["attn_pim"]}
        t_comm = 0.0 if overlap == "ideal" else float(inp.params[P_T_COMM])
        prior = prior_load_ns if carry and prior_load_ns else {}
        carried = tuple(float(prior.get((k, inp.gpu), 0.0)) for k in ("gpu", "hbm", "pim"))
        on_gpu, dt = plan_split(inp.tokens, inp.gpu_ns, inp.pim_ns, terms, t_comm,
                                max(1, int(microbatches)), exclusive, carried, prior_slots if prior else 0,
                                hedge and overlap == "microbatch")
        times.append(dt)
        for e, f in zip(inp.experts.tolist(), on_gpu.tolist(), strict=True):
            expert_modes[e] = MODE_GPU if f else MODE_PIM
    meta = {"microbatches": microbatches, "overlap": overlap, "carried_slots": prior_slots if carry else 0,
            "concurrent": concurrent and concurrent_dag is not None and overlap == "microbatch",
            "hedge": bool(hedge and overlap == "microbatch"),
            "decision_ns_per_gpu": times}
    return finish(dag, "sieve-pipe", expert_modes, wall_t0=t_wall, decision_ns=int(max(times, default=0)), meta=meta)
