"""The decode-step model: one generated token per decode request, all layers + LM head.

    step_ns = sum_kind  n_layers(kind) * mean_{sampled layers of kind} layer_ns
            + dense (non-MoE) layers + LM head + embeddings (+ prefill attention)

where ``layer_ns`` is the policy's checked schedule makespan of the layer DAG (attention,
projections, router, AllGather, dispatch, scheduler, experts, shared expert, combine, reduce).
Layers are sampled per attention kind and weighted by their counts (:mod:`sieveopt.e2e.workload`).

    throughput    = B / step_s / G   generated tokens/s per GPU
    interactivity = 1 / step_s       generated tokens/s per user

(decode requests only: a prefill request in a mixed batch is not counted as generating).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sieveopt.dag import DagOptions, TaskDAG
from sieveopt.e2e import extras
from sieveopt.e2e.breakdown import (
    CATEGORIES,
    attention_mode,
    busy_ns,
    critical_path_breakdown,
    offload_mode,
)
from sieveopt.e2e.policies import ReplayFn, replayed_makespan_ns
from sieveopt.e2e.workload import (
    ContextDist,
    PrefillSpec,
    kind_counts,
    sample_layer_ids,
    step_instances,
)
from sieveopt.errors import SieveoptError
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import CostModel, make_cost_model
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.models.table import ObservedTables
from sieveopt.pim_groups import pim_busy_equivalent_ns
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers.sched_latency import SchedulerLatency, resolve, with_scheduler_latency


def throughput_tok_s_per_gpu(batch: int, step_ns: float, num_gpus: int) -> float:
    """Generated tokens per second per GPU: B tokens per step over G GPUs."""
    return batch / (step_ns * 1e-9) / num_gpus


def interactivity_tok_s_per_user(step_ns: float) -> float:
    """Generated tokens per second per user: one token per step."""
    return 1.0 / (step_ns * 1e-9)


@dataclass(frozen=True)
class StepSettings:
    """How a decode step is sampled and modelled."""

    num_layers: int = 4
    seed: int = 0
    context: ContextDist = field(default_factory=ContextDist)
    prefill: PrefillSpec = field(default_factory=PrefillSpec)
    cost_model: str = "roofline"
    dag_options: DagOptions = field(default_factory=DagOptions)
    #: Charge of the ``sched`` task per policy: "default", "calibrated" or N ns
    #: (:mod:`sieveopt.solvers.sched_latency`); it replaces ``dag_options.scheduler_latency_ns``.
    scheduler_latency: str | int = "default"
    #: In replayed runs, Sieve's planners read a runtime PIM cost table fed by the replayed PIM
    #: job times of earlier layers and steps (:class:`sieveopt.models.table.ObservedTables`).
    observed_table: bool = True
    #: Execution model of the MoE layers (:mod:`sieveopt.execution_model`): "serial" (the layer
    #: DAG), "microbatch" (steady-state period of M pipelined micro-batches) or "ideal" (resource-
    #: load bound); see :mod:`sieveopt.e2e.overlap_step`. 0: the execution model's default.
    overlap: str = "serial"
    microbatches: int = 0
    window_layers: int = 0
    #: Cap on the pipeline runtime's order descent under "microbatch" (None: the default, 1000;
    #: 0: the constructive runtime only; :data:`sieveopt.execution_model.DEFAULT_RUNTIME_ORDER_EVALUATIONS`).
    runtime_order_evaluations: int | None = None


@dataclass(frozen=True, eq=False)
class LayerSample:
    kind: str              # attention kind of the layer
    weight: float          # how many model layers this sample stands for
    instance: LayerInstance
    dag: TaskDAG


@dataclass(frozen=True, eq=False)
class StepProblem:
    """Everything policy-independent about one (model, system, batch) step, built once."""

    model: ModelSpec
    system: SystemSpec
    batch: int
    settings: StepSettings
    cost: CostModel
    samples: tuple[LayerSample, ...]
    context_lens: np.ndarray
    lm_head_ns: float
    embed_ns: float
    prefill_attn_ns: float   # per step, all layers
    head_tokens: np.ndarray | None = None   # tokens per GPU through the LM head and embedding


@dataclass
class StepResult:
    policy: str
    batch: int
    num_gpus: int
    step_ns: float
    moe_layers_ns: float
    dense_layers_ns: float
    lm_head_ns: float
    embed_ns: float
    prefill_attn_ns: float
    breakdown_ns: dict[str, float]          # critical-path categories, per step (all MoE layers)
    pim_busy_frac: list[float]              # per GPU, over the MoE layers' time
    gpu_busy_frac: list[float]
    check_ok: bool
    violations: int
    statuses: list[str]
    solver_wall_s: float
    decision_ns_median: float | None
    replay_step_ns: float | None = None
    error: str | None = None
    scheduler_latency_ns: int = 0
    scheduler_latency_source: str = ""
    #: cost-model / replayed energy of the MoE layers per step (J; None: no energy data)
    moe_energy_J: float | None = None
    replay_moe_energy_J: float | None = None
    #: cost-model energy of the rest of the step: dense layers, LM head, embedding (J)
    fixed_energy_J: float | None = None
    #: execution model label of the MoE layers, and a token's mean layer entry-to-exit time
    #: (serial: the layer's makespan; microbatch: the micro-batch's layer latency)
    execution_model: str = "serial"
    layer_latency_ns: float | None = None
    #: the rest of the step replayed (validation/replay_fixed.py): its time (ns) and energy (J)
    replay_fixed_ns: float | None = None
    replay_fixed_energy_J: float | None = None
    #: whole-step energy by component, predicted vs replayed (validation/energy/step.py), or None
    energy_block: dict[str, Any] | None = None

    @property
    def step_energy_J(self) -> float | None:
        return None if self.moe_energy_J is None or self.fixed_energy_J is None else self.moe_energy_J + self.fixed_energy_J

    @property
    def replay_step_energy_J(self) -> float | None:
        if self.replay_moe_energy_J is None or self.replay_fixed_energy_J is None:
            return None
        return self.replay_moe_energy_J + self.replay_fixed_energy_J

    @property
    def throughput_tok_s_per_gpu(self) -> float:
        return throughput_tok_s_per_gpu(self.batch, self.step_ns, self.num_gpus) if self.step_ns > 0 else float("nan")

    @property
    def interactivity_tok_s_per_user(self) -> float:
        return interactivity_tok_s_per_user(self.step_ns) if self.step_ns > 0 else float("nan")

    def row(self) -> dict[str, Any]:
        """Flat CSV/JSON row."""
        r: dict[str, Any] = {
            "policy": self.policy, "batch": self.batch, "execution_model": self.execution_model,
            "throughput_tok_s_per_gpu": self.throughput_tok_s_per_gpu,
            "interactivity_tok_s_per_user": self.interactivity_tok_s_per_user,
            "step_us": self.step_ns / 1e3, "moe_layers_us": self.moe_layers_ns / 1e3,
            "dense_layers_us": self.dense_layers_ns / 1e3, "lm_head_us": self.lm_head_ns / 1e3,
            "embed_us": self.embed_ns / 1e3, "prefill_attn_us": self.prefill_attn_ns / 1e3,
            "layer_latency_us": None if self.layer_latency_ns is None else self.layer_latency_ns / 1e3,
        }
        for c in CATEGORIES:
            r[f"cp_{c}_us"] = self.breakdown_ns.get(c, 0.0) / 1e3
        r["pim_busy_mean"] = float(np.mean(self.pim_busy_frac)) if self.pim_busy_frac else float("nan")
        r["pim_busy_per_gpu"] = " ".join(f"{x:.4f}" for x in self.pim_busy_frac)
        r["gpu_busy_mean"] = float(np.mean(self.gpu_busy_frac)) if self.gpu_busy_frac else float("nan")
        r["check"] = "ok" if self.check_ok else (f"FAIL({self.violations})" if self.violations else "error")
        r["solver_status"] = "/".join(sorted(set(self.statuses)))
        r["solver_wall_s"] = self.solver_wall_s
        r["decision_us_median"] = None if self.decision_ns_median is None else self.decision_ns_median / 1e3
        r["replay_step_us"] = None if self.replay_step_ns is None else self.replay_step_ns / 1e3
        r["replay_fixed_us"] = None if self.replay_fixed_ns is None else self.replay_fixed_ns / 1e3
        r["sched_charged_ns"] = self.scheduler_latency_ns
        r["sched_charged_source"] = self.scheduler_latency_source
        r["error"] = self.error or ""
        r["moe_energy_mJ"] = None if self.moe_energy_J is None else self.moe_energy_J * 1e3
        r["moe_tokens_per_J"] = None if not self.moe_energy_J else self.batch / self.moe_energy_J
        r["replay_moe_tokens_per_J"] = (None if not self.replay_moe_energy_J
                                        else self.batch / self.replay_moe_energy_J)
        e, re_ = self.step_energy_J, self.replay_step_energy_J
        r["step_energy_mJ"] = None if e is None else e * 1e3
        r["tokens_per_J"] = None if not e else self.batch / e
        r["replay_tokens_per_J"] = None if not re_ else self.batch / re_
        b = self.energy_block
        r["step_energy_error_pct"] = None if b is None else b["error_pct"]["total"]
        r["step_energy_within_tolerance"] = (None if b is None else "yes" if all(b["within_tolerance"].values())
                                             else "NO: " + " ".join(k for k, v in b["within_tolerance"].items() if not v))
        return r


def prepare_step(model: ModelSpec, system: SystemSpec, batch: int, settings: StepSettings | None = None) -> StepProblem:
    """Sample the step's layers, build their DAGs and the policy-independent extra work."""
    settings = settings or StepSettings()
    if batch < 1:
        raise SieveoptError(f"batch: must be >= 1, got {batch}")
    cost = make_cost_model(settings.cost_model, system, model)
    ctx = settings.context.draw(batch, settings.seed)
    chosen = sample_layer_ids(model, settings.num_layers, settings.seed)
    counts = kind_counts(model)
    flat = sorted(x for ids in chosen.values() for x in ids)
    insts = {i.moe_layer: i for i in step_instances(model, system, batch, flat, settings.seed, ctx, settings.prefill)}
    samples = []
    for kind, ids in chosen.items():
        for layer in ids:
            dag, _ = build_dag(insts[layer], cost, settings.dag_options)
            samples.append(LayerSample(kind, counts[kind] / len(ids), insts[layer], dag))
    first = samples[0].instance
    decode_per_gpu = np.asarray(first.meta.get("decode_tokens_per_gpu", first.tokens_per_gpu))
    pre = settings.prefill
    head_tokens = decode_per_gpu + (np.bincount(np.arange(pre.requests) % system.num_gpus, minlength=system.num_gpus)
                                    if pre.requests else 0)
    prefill_ns = 0.0
    if pre.tokens:
        per_gpu = first.meta["prefill_requests_per_gpu"]
        # MoE layers run their prefill attention inside the DAG (prefill_attn[g]); only the dense
        # (non-MoE) layers add it here.
        dense_kinds = [model.attention.layer_kind(i) for i in range(model.num_layers - model.num_moe_layers)]
        prefill_ns = sum(extras.prefill_attention_ns(model, cost, k, pre.len_tokens, per_gpu) for k in dense_kinds)
    return StepProblem(model, system, batch, settings, cost, tuple(samples), ctx,
                       extras.lm_head_ns(model, cost, head_tokens), extras.embedding_ns(model, cost, head_tokens),
                       prefill_ns, np.asarray(head_tokens))


def run_step(problem: StepProblem, policy: str, *, solver_params: dict[str, Any] | None = None,
             replay: ReplayFn | None = None, tables: ObservedTables | None = None) -> StepResult:
    """Schedule every sampled layer with ``policy`` and assemble the step time.

    With ``tables`` (and ``replay``), a table planner's layers are built on its observed runtime
    cost table, and each replayed layer's PIM job times are folded into it before the next.
    Under an overlapped execution model (``settings.overlap``) the layers are steady-state
    periods instead (:func:`sieveopt.e2e.overlap_step.run_overlap_step`)."""
    if problem.settings.overlap != "serial":
        from sieveopt.e2e.overlap_step import run_overlap_step

        return run_overlap_step(problem, policy, solver_params=solver_params, replay=replay, tables=tables)
    p, G = problem, problem.system.num_gpus
    moe = 0.0
    bd = dict.fromkeys(CATEGORIES, 0.0)
    pim_busy, gpu_busy = np.zeros(G), np.zeros(G)
    ok, nviol, statuses, wall, decisions = True, 0, [], 0.0, []
    replay_moe = 0.0
    replay_error: str | None = None
    attn_modes = set()
    em = _energy_model(p)
    energy_c: dict[str, float] = {}
    replay_energy_c: dict[str, float] = {}
    last_rep = None
    lat = scheduler_latency_of(p, policy)
    use_table = (tables is not None and replay is not None and tables.uses_table(policy)
                 and p.settings.cost_model in ("roofline", "table"))
    for base in p.samples:
        s = LayerSample(base.kind, base.weight, base.instance, with_scheduler_latency(base.dag, lat.ns))
        cost = p.cost
        if use_table:
            cost = tables.table(policy)
            s = LayerSample(s.kind, s.weight, s.instance, build_dag(s.instance, cost, s.dag.options)[0])
        run = run_layer(s.instance, policy, dag=s.dag, cost=cost, **(solver_params or {}))
        if run.dag is not s.dag:   # the policy executes on its own DAG (PIMoE: expert-parallel PIM)
            s = LayerSample(s.kind, s.weight, s.instance, run.dag)
        res = run.result
        statuses.append(res.status)
        wall += run.wall_s
        if res.decision_ns is not None:
            decisions.append(res.decision_ns)
        if res.schedule is None:
            raise SieveoptError(f"policy {policy}: no schedule for MoE layer {s.instance.moe_layer} "
                                f"(status {res.status})")
        ok &= run.check.ok
        nviol += len(run.check.violations)
        sch = res.schedule
        moe += s.weight * sch.makespan_ns
        for c, v in critical_path_breakdown(sch, s.dag).items():
            bd[c] = bd.get(c, 0.0) + s.weight * v
        busy = busy_ns(sch, s.dag)
        for g in range(G):
            pim_busy[g] += s.weight * pim_busy_equivalent_ns(busy, s.dag, g)
            gpu_busy[g] += s.weight * busy[("gpu", g)]
        attn_modes.add(attention_mode(sch, s.dag))
        if em is not None:
            _accumulate(energy_c, s.weight, _layer_energy_J(em, sch, s))
        if replay is not None and replay_error is None:
            try:
                rep = _call_replay(replay, sch, s)
                replay_moe += s.weight * replayed_makespan_ns(rep)
                last_rep = rep
                if use_table:
                    tables.observe(policy, rep, s.dag)
                if em is not None:
                    _accumulate(replay_energy_c, s.weight, _replayed_energy_J(rep, s))
            except Exception as exc:  # the schedule's own numbers stay valid; record why replay failed
                replay_error = f"replay: {type(exc).__name__}: {exc}"
    mode = offload_mode(attn_modes)
    first = p.samples[0].instance
    n_dense = p.model.num_layers - p.model.num_moe_layers
    dense = sum(extras.dense_layer_ns(p.model, p.cost, first.tokens_per_gpu, first.kv_tokens_per_gpu, i, mode)
                for i in range(n_dense))
    fixed = dense + p.lm_head_ns + p.embed_ns + p.prefill_attn_ns
    items = fixed_items_of(p, mode)
    fixed_c = None if em is None else _fixed_energy(em, p, items, fixed, simulated=False)
    fixed_rep, fixed_rep_c = None, None
    if replay is not None and replay_error is None and last_rep is not None and hasattr(last_rep, "meta"):
        try:   # the rest of the step on the same simulators (validation/replay_fixed.py)
            fixed_rep, fixed_rep_c = _replay_fixed(p, items, last_rep, em)
        except Exception as exc:  # noqa: BLE001  (recorded, like a failed layer replay)
            replay_error = f"replay (outside the MoE layers): {type(exc).__name__}: {exc}"
    block = None
    if em is not None and fixed_rep_c is not None and replay_energy_c and replay_error is None:
        from sieveopt.validation.energy.step import step_energy_block

        block = step_energy_block(energy_c, replay_energy_c, fixed_c, fixed_rep_c, batch=p.batch,
                                  fixed_ns={"predicted": fixed, "replayed": fixed_rep.replayed_total_ns,
                                            "replayed_by_part": fixed_rep.replayed_ns,
                                            "predicted_by_part": fixed_rep.predicted_ns,
                                            "not_simulated_items": fixed_rep.not_simulated})
    rep_ok = replay is not None and not replay_error
    return StepResult(
        policy=policy, batch=p.batch, num_gpus=G, step_ns=moe + fixed, moe_layers_ns=moe, dense_layers_ns=dense,
        lm_head_ns=p.lm_head_ns, embed_ns=p.embed_ns, prefill_attn_ns=p.prefill_attn_ns, breakdown_ns=bd,
        pim_busy_frac=(pim_busy / max(moe, 1e-9)).tolist(), gpu_busy_frac=(gpu_busy / max(moe, 1e-9)).tolist(),
        check_ok=ok, violations=nviol, statuses=statuses, solver_wall_s=wall,
        decision_ns_median=float(statistics.median(decisions)) if decisions else None,
        replay_step_ns=(replay_moe + fixed_rep.replayed_total_ns) if rep_ok and fixed_rep is not None else None,
        error=replay_error, scheduler_latency_ns=lat.ns, scheduler_latency_source=lat.source,
        moe_energy_J=None if em is None else sum(energy_c.values()),
        replay_moe_energy_J=sum(replay_energy_c.values()) if em is not None and rep_ok and replay_energy_c else None,
        fixed_energy_J=None if fixed_c is None else sum(fixed_c.values()),
        replay_fixed_ns=fixed_rep.replayed_total_ns if rep_ok and fixed_rep is not None else None,
        replay_fixed_energy_J=sum(fixed_rep_c.values()) if rep_ok and fixed_rep_c is not None else None,
        energy_block=block,
        layer_latency_ns=moe / max(sum(x.weight for x in p.samples), 1e-9))


# -- energy (sieveopt.validation.energy) ---------------------------------------------------------
def fixed_items_of(p: StepProblem, attention_mode: str) -> list[extras.FixedItem]:
    """The step's kernels outside the MoE layers (:func:`extras.fixed_items`): decode tokens and
    context of the first sampled layer's instance (every layer sees the same batch), head tokens,
    dense-layer prefill prompts."""
    first = p.samples[0].instance
    head = p.head_tokens if p.head_tokens is not None else np.asarray(first.tokens_per_gpu)
    pre = p.settings.prefill
    return extras.fixed_items(p.model, first.tokens_per_gpu, first.kv_tokens_per_gpu, head, attention_mode,
                              pre.len_tokens if pre.tokens else 0, first.meta.get("prefill_requests_per_gpu"))


def _fixed_energy(em, p: StepProblem, items: list[extras.FixedItem], fixed_ns: float, *,
                  simulated: bool) -> dict[str, float]:
    """Energy (J by component) of the step outside the MoE layers
    (:func:`sieveopt.validation.energy.step.fixed_energy_J`): every item priced like a DAG task,
    plus every GPU's static power, open-row background and refresh over ``fixed_ns`` (serial,
    memory-bound streams). Execution model: serialized step; a dense layer's attention on a
    target other than GPU/PIM is priced as GPU."""
    from sieveopt.validation.energy.step import fixed_energy_J

    return fixed_energy_J(em, items, fixed_ns, p.system.num_gpus, simulated=simulated)


def _replay_fixed(p: StepProblem, items: list[extras.FixedItem], rep, em):
    """Replay of the step outside the MoE layers on the simulators ``rep`` ran on, and its energy
    (None without energy data)."""
    from sieveopt.validation.replay_fixed import replay_fixed, timer_like

    timer = timer_like(rep, p.system, p.model)
    fr = replay_fixed(items, p.system, timer, p.cost)
    energy = None if em is None else _fixed_energy(em, p, items, fr.replayed_total_ns,
                                                   simulated=rep.meta.get("dram") is not None)
    return fr, energy


def _accumulate(acc: dict[str, float], weight: float, comps: dict[str, float]) -> None:
    for k, v in comps.items():
        acc[k] = acc.get(k, 0.0) + weight * v


def scheduler_latency_of(problem: StepProblem, policy: str) -> SchedulerLatency:
    """The scheduler task's charge for ``policy`` in this step (same rule as ``run``/``replay``,
    for the step's execution model)."""
    return resolve(policy, problem.settings.scheduler_latency,
                   calibration={"model": problem.model, "system": problem.system, "batch": problem.batch},
                   overlap=problem.settings.overlap)


def _energy_model(p: StepProblem):
    """The cost-model energy model of the step's system, or None when it has no energy data."""
    try:
        from sieveopt.validation.energy.layer import energy_model_for

        em = energy_model_for(p.system, p.model)
    except ImportError:
        return None
    return None if em.unavailable else em


def _layer_energy_J(em, schedule, sample: LayerSample) -> dict[str, float]:
    """Cost-model energy of a layer's schedule by component (sums to ``schedule_energy_J``)."""
    return em.energy(sample.dag, schedule.modes, schedule.start_ns, schedule.end_ns, schedule.makespan_ns,
                     simulated=False, residency="sum")


def _replayed_energy_J(rep, sample: LayerSample) -> dict[str, float]:
    from sieveopt.validation.energy.layer import COMPONENTS, replay_energy_block

    if not hasattr(rep, "meta"):
        return dict.fromkeys(COMPONENTS, float("nan"))
    return replay_energy_block(rep, sample.dag, sample.instance.system, sample.instance)["replayed_J"]


def _call_replay(replay: ReplayFn, schedule, sample: LayerSample):
    """The replay engine with the layer's instance (it needs the model)."""
    return replay(schedule, sample.dag, sample.instance.system, instance=sample.instance)


def failed_step(problem: StepProblem, policy: str, exc: BaseException) -> StepResult:
    """A recorded failure (never silently dropped from a sweep)."""
    nan = float("nan")
    return StepResult(policy=policy, batch=problem.batch, num_gpus=problem.system.num_gpus, step_ns=nan,
                      moe_layers_ns=nan, dense_layers_ns=nan, lm_head_ns=problem.lm_head_ns, embed_ns=problem.embed_ns,
                      prefill_attn_ns=problem.prefill_attn_ns, breakdown_ns={}, pim_busy_frac=[], gpu_busy_frac=[],
                      check_ok=False, violations=0, statuses=[], solver_wall_s=0.0, decision_ns_median=None,
                      error=f"{type(exc).__name__}: {exc}")


