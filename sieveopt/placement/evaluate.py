"""Multi-step decode runs under a placement policy: per-step layer time, straggler share, latency.

For every evaluated MoE layer the run keeps a placement; it is decided at the first evaluated
step from the ``history`` steps before it (the profiling window) and, with ``replace_every=K``,
again every K steps from the predictor's forecast of the history (the forecast-driven variant).
Each re-placement is charged its weight movement over NVLink (:func:`~sieveopt.placement.core.
movement`), serially, on the step where it happens (no overlap with compute: an upper bound).
The exact optimiser also *decides* with that cost: it is given the current placement and the
movement time weighted 1/K per step (:class:`EvalConfig` ``charge_movement``).

Layer time per (step, layer):

* ``mode="dag"``: the layer DAG of the step's routing under the placement (replicas are
  physical experts; tokens split round-robin) solved by the per-layer policy (``sieve`` by
  default) with the ``roofline`` cost model; the time is the schedule's makespan (serialized
  execution model, one layer). Router FLOPs count the physical slots (a few % of a tiny task).
* ``mode="surrogate"``: the surrogate straggler work (:mod:`~sieveopt.placement.surrogate`;
  ``surrogate="overlap"``: GPU/PIM-overlapped expert work, the default; ``"serial"``: earlier rounds').

The end-to-end figure is the MoE-layer part of the time per output token: the mean layer time
times the model's MoE layers (the evaluated layers stand for all), plus the amortised movement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.placement.core import Placement, movement
from sieveopt.placement.exact import POLICY_ALPHA, POLICY_OBJECTIVE
from sieveopt.placement.forecast import forecast_error, predict
from sieveopt.placement.policies import PLACEMENT_POLICIES, PlacementProblem
from sieveopt.placement.surrogate import straggler_share
from sieveopt.workload.trace import RoutingTrace


@dataclass(frozen=True)
class EvalConfig:
    policy: str
    predictor: str = "window"
    history: int = 32
    replace_every: int = 0
    layer_policy: str = "sieve"
    mode: str = "dag"
    exact_objective: str = POLICY_OBJECTIVE
    #: the ``cvar`` objective's level (mean of the window's worst (1 - alpha) share of steps)
    exact_alpha: float = POLICY_ALPHA
    #: exact optimiser: charge the movement from the current placement, amortised over the
    #: re-placement period (weight 1/K per step); staying put is always a candidate
    charge_movement: bool = True
    #: exact optimiser's placement space: "model" (HBM capacity, replicas) or "gem" (E/G per GPU)
    exact_space: str = "model"
    #: exact optimiser's replica candidates: "loaded" (the R most loaded) or "cheap" (cheapest splits)
    exact_replicas: str = "loaded"


@dataclass(eq=False)
class PolicyRun:
    config: EvalConfig
    layer_ns: np.ndarray                 # [steps, layers] layer time (mode's measure)
    surrogate_ns: np.ndarray             # [steps, layers] surrogate straggler work
    straggler: np.ndarray                # [steps, layers] 1 - mean_g / max_g
    move_ns: np.ndarray                  # [steps, layers] movement time charged at the step
    move_bytes: float = 0.0
    moved_experts: int = 0
    placements: int = 0
    exact: list[dict[str, Any]] = field(default_factory=list)
    forecast: list[dict[str, float]] = field(default_factory=list)
    decide_s: float = 0.0
    wall_s: float = 0.0

    def summary(self, num_moe_layers: int, *, per_step: bool = False) -> dict[str, Any]:
        x = self.layer_ns.ravel()
        n_eval = self.layer_ns.shape[1]
        move_total_ns = float(self.move_ns.sum()) * num_moe_layers / max(n_eval, 1)
        steps = self.layer_ns.shape[0]
        tpot = float(self.layer_ns.mean(axis=1).mean()) * num_moe_layers
        out: dict[str, Any] = {
            "policy": self.config.policy, "predictor": self.config.predictor,
            "replace_every": self.config.replace_every, "mode": self.config.mode,
            "layer_policy": self.config.layer_policy,
            "layer_mean_ns": float(x.mean()), "layer_p99_ns": float(np.percentile(x, 99)),
            "surrogate_mean_ns": float(self.surrogate_ns.mean()),
            "straggler_share_mean": float(self.straggler.mean()),
            "moe_tpot_ns": tpot, "moe_tpot_with_move_ns": tpot + move_total_ns / max(steps, 1),
            "movement": {"placements": self.placements, "moved_experts": self.moved_experts,
                         "bytes_evaluated_layers": self.move_bytes, "time_ns_all_layers": move_total_ns},
            "decide_s": self.decide_s, "wall_s": self.wall_s,
        }
        if self.exact:
            out["exact"] = {"runs": self.exact, "objective": self.config.exact_objective,
                            "alpha": self.exact[0]["alpha"],
                            "gap_max": max(r["gap"] for r in self.exact),
                            "bound_ns_first": self.exact[0]["bound_ns"],
                            "objective_ns_first": self.exact[0]["objective_ns"]}
        if self.forecast:
            out["forecast"] = {k: float(np.mean([f[k] for f in self.forecast])) for k in self.forecast[0]}
        if per_step:   # [step][layer] series: layer time, straggler share, movement charged
            out["per_step"] = {"layer_ns": self.layer_ns.tolist(), "straggler_share": self.straggler.tolist(),
                               "move_ns": self.move_ns.tolist()}
        return out


def drifting_trace(model, batch: int, steps: int, seed: int, layers: list[int], segments: int = 1,
                   dominant: float = 0.7) -> RoutingTrace:
    """Generator routing with workload drift: ``segments`` equal phases, phase j drawing
    requests mostly (``dominant``) from domain ``j mod n_dom`` (Orders in Chaos Ob6: hot experts
    differ by task). Same seed in every phase, so the router (expert identities) is the same."""
    from sieveopt.workload.generator import generate_routing
    from sieveopt.workload.profiles import get_profile

    if segments <= 1:
        from sieveopt.workload import generate_for_model

        return generate_for_model(model, batch, steps, seed, layers=layers)
    prof = get_profile(model.routing_profile)
    n_dom = max(prof.n_dom, 2)
    lens = [steps // segments + (j < steps % segments) for j in range(segments)]
    parts, rids, offset = [], [], 0
    for j, n in enumerate(lens):
        mix = np.full(n_dom, (1.0 - dominant) / (n_dom - 1))
        mix[j % n_dom] = dominant
        tr = generate_routing(model.num_routed_experts, model.top_k, model.num_moe_layers, batch, n,
                              prof, seed, num_shared_experts=model.num_shared_experts,
                              n_group=model.n_group, topk_group=model.topk_group, layer_ids=layers,
                              n_dom=n_dom, domain_mix=mix, model=model.name)
        parts.append(tr.expert_ids)
        rids.append(tr.request_ids + offset)
        offset = int(rids[-1].max()) + 1
    return RoutingTrace(np.concatenate(parts), model.num_routed_experts, model.top_k,
                        model.num_shared_experts, model.name, "synthetic", seed,
                        f"{prof.name}+drift{segments}", tuple(layers), np.concatenate(rids))


class _DagTimer:
    """Layer time of one step under a placement with the per-layer policy (cached cost models)."""

    def __init__(self, model, system, layer_policy: str, context_len: int) -> None:
        self.model, self.system, self.policy, self.ctx = model, system, layer_policy, context_len
        self._cache: dict[int, tuple[Any, Any]] = {}

    def __call__(self, placement: Placement, ids_bk: np.ndarray, moe_layer: int, step: int) -> tuple[int, float]:
        from sieveopt.dag import EXPERT, build_layer_dag
        from sieveopt.instance import LayerInstance
        from sieveopt.models.costmodel import make_cost_model
        from sieveopt.solvers import solve

        S = placement.num_slots
        if S not in self._cache:
            mp = self.model if S == self.model.num_routed_experts and np.array_equal(
                placement.slots, np.arange(S)) else replace(self.model, num_routed_experts=S, n_group=1, topk_group=1)
            self._cache[S] = (mp, make_cost_model("roofline", self.system, mp))
        mp, cost = self._cache[S]
        phys = placement.physical_ids(ids_bk)
        inst = LayerInstance.from_expert_ids(mp, self.system, phys, moe_layer=moe_layer, step=step,
                                             context_lens=np.full(len(ids_bk), self.ctx),
                                             placement=placement.slot_gpu)
        dag = build_layer_dag(inst, cost)
        res = solve(self.policy, dag, inst, cost)
        self.last = (dag, res)            # the last layer solved (tests check() it)
        sched = res.schedule
        G = self.system.num_gpus
        end = np.zeros(G)
        for t in dag.tasks:
            if t.kind == EXPERT:
                end[t.gpu] = max(end[t.gpu], sched.end_ns[t.tid])
        share = 0.0 if end.max() <= 0 else 1.0 - end.mean() / end.max()
        return int(res.makespan_ns), float(share)


def run_policy(trace: RoutingTrace, layers: list[int], model, system, prob: PlacementProblem,
               cfg: EvalConfig, steps: int, *, context_len: int = 2048) -> PolicyRun:
    """One policy over ``steps`` evaluated steps after ``cfg.history`` profiling steps."""
    from sieveopt.placement.exact import exact_with_report

    W, K = cfg.history, cfg.replace_every
    if cfg.policy not in PLACEMENT_POLICIES:
        raise SpecError("placement", "policy", f"unknown policy {cfg.policy!r}",
                        f"use one of: {', '.join(PLACEMENT_POLICIES)}")
    if W < 1:
        raise SpecError("placement", "history", f"must be >= 1, got {W}", "use e.g. --history 32")
    if W + steps > trace.steps:
        raise SpecError("placement", "steps",
                        f"history {W} + horizon {steps} = {W + steps} steps > {trace.steps} in the trace",
                        f"use --steps <= {max(trace.steps - W, 0)} or a longer trace / smaller --history")
    t_wall = time.perf_counter()
    counts = trace.counts()                                   # [T, L, E]
    timer = _DagTimer(model, system, cfg.layer_policy, context_len) if cfg.mode == "dag" else None
    nL = len(layers)
    run = PolicyRun(cfg, np.zeros((steps, nL)), np.zeros((steps, nL)), np.zeros((steps, nL)),
                    np.zeros((steps, nL)))
    sur = prob.surrogate
    current: dict[int, Placement] = {}
    for s in range(steps):
        t = W + s
        for j, li in enumerate(layers):
            if li not in current or (K > 0 and s % K == 0 and s > 0):
                hist = counts[max(0, t - W):t, j, :]
                fut = counts[t:t + max(K, 1), j, :]
                scen = predict(cfg.predictor, hist, window=W, future=fut)
                run.forecast.append(forecast_error(scen, fut))
                t0 = time.perf_counter()
                if cfg.policy == "exact":
                    prev = current.get(li)
                    mw = 1.0 / K if (cfg.charge_movement and K > 0 and prev is not None) else 0.0
                    res = exact_with_report(scen, prob, objective_kind=cfg.exact_objective, space=cfg.exact_space,
                                            alpha=cfg.exact_alpha, replica_choice=cfg.exact_replicas,
                                            previous=prev if mw else None, move_weight=mw)
                    p = res.placement
                    run.exact.append({"status": res.status, "objective_ns": res.objective_ns,
                                      "bound_ns": res.bound_ns, "gap": res.gap, "wall_s": res.wall_s,
                                      "hint_objective_ns": res.hint_objective_ns,
                                      "given_hint_objective_ns": res.meta["given_hint_objective_ns"],
                                      "jensen_bound_ns": res.meta["jensen_bound_ns"],
                                      "lp_bound_ns": res.meta["lp_bound_ns"],
                                      "anneal_phases": res.meta["anneal_phases"],
                                      "anneal_rounds": res.meta["anneal_rounds"],
                                      "stage_s": {k: round(v, 3) for k, v in res.meta["stage_s"].items()},
                                      "space": cfg.exact_space,
                                      "replica_choice": cfg.exact_replicas,
                                      "replicas_used": res.meta["replicas_used"],
                                      "objective": cfg.exact_objective, "steps": res.meta["steps"],
                                      "alpha": res.meta["alpha"], "worst_steps": res.meta["worst_steps"],
                                      "move_ns": res.meta["move_ns"]})
                else:
                    prev = current.get(li)
                    p = PLACEMENT_POLICIES[cfg.policy](scen, prob)
                run.decide_s += time.perf_counter() - t0
                mv = movement(prev, p, prob.expert_bytes, prob.link_GBps, system.interconnect.latency_ns)
                run.move_ns[s, j] = mv["time_ns"]
                run.move_bytes += mv["bytes"]
                run.moved_experts += mv["moved_experts"]
                run.placements += 1
                current[li] = p
            p = current[li]
            loads = sur.gpu_loads(p, counts[t, j, :][None, :])
            run.surrogate_ns[s, j] = loads.max()
            if timer is None:
                run.layer_ns[s, j] = loads.max()
                run.straggler[s, j] = straggler_share(loads)[0]
            else:
                ns, share = timer(p, trace.expert_ids[t, j], int(trace.layer_ids[j]), t)
                run.layer_ns[s, j] = ns
                run.straggler[s, j] = share
    run.wall_s = time.perf_counter() - t_wall
    return run


def compare_policies(model, system, *, policies: list[str], steps: int, history: int = 32,
                     batch: int = 256, layers: int | list[int] = 1, seed: int = 0,
                     redundant: int = 32, capacity: int | None = None, predictor: str = "window",
                     replace_every: int = 0, layer_policy: str = "sieve", mode: str = "dag",
                     exact_objective: str = POLICY_OBJECTIVE, exact_alpha: float = POLICY_ALPHA,
                     time_limit_s: float = 60.0, workers: int = 8,
                     drift_segments: int = 1, trace: RoutingTrace | None = None,
                     context_len: int = 2048, gap_limit: float = 0.0,
                     per_step: bool = False, exact_space: str = "model", exact_replicas: str = "loaded",
                     surrogate: str = "overlap") -> dict[str, Any]:
    """Every placement policy on the same trace; the dict the CLI prints (``--json``)."""
    from sieveopt.placement.core import check_capacity, slots_per_gpu
    from sieveopt.placement.surrogate import Surrogate
    from sieveopt.variability import speed_factors

    E, G = model.num_routed_experts, system.num_gpus
    cap = slots_per_gpu(model, system) if capacity is None else int(capacity)
    if cap < 1:
        raise SpecError("placement", "capacity", f"{cap} expert slots per GPU per layer",
                        "use more GPUs, a smaller model or a larger gpu.hbm_capacity_GiB / --slots-per-gpu")
    check_capacity(E, G, cap, 0)
    red = max(0, min(redundant, cap * G - E))
    if not 0 < exact_alpha < 1:
        raise SpecError("placement", "exact_alpha", f"must be in (0, 1), got {exact_alpha}",
                        "use e.g. 0.9 (the mean of the worst 10 % of the window's steps)")
    if steps < 1:
        raise SpecError("placement", "steps", f"must be >= 1, got {steps}", "use e.g. --steps 200")
    if replace_every < 0:
        raise SpecError("placement", "replace_every", f"must be >= 0, got {replace_every}",
                        "use 0 (static) or a period in steps")
    if trace is None:
        rng = np.random.default_rng(seed)
        if isinstance(layers, int):
            if not 1 <= layers <= model.num_moe_layers:
                raise SpecError("placement", "layers", f"must be in [1, {model.num_moe_layers}], got {layers}",
                                "evaluate fewer layers")
            lids = sorted(int(x) for x in rng.choice(model.num_moe_layers, layers, replace=False))
        else:
            lids = list(layers)
        trace = drifting_trace(model, batch, history + steps, seed, lids, drift_segments)
        idx = list(range(len(lids)))
    else:
        if trace.num_experts != E:
            raise SpecError("placement", "trace", f"trace has E={trace.num_experts}, model {E}", "use the trace's --model")
        n = layers if isinstance(layers, int) else len(layers)
        idx = list(range(min(n, trace.num_layers)))
        trace = RoutingTrace(trace.expert_ids[:, idx], trace.num_experts, trace.top_k, trace.num_shared_experts,
                             trace.model, trace.source, trace.seed, trace.profile,
                             tuple(trace.layer_ids[i] for i in idx), trace.request_ids)
    sur = Surrogate(model, system, trace.batch, kind=surrogate)
    prob = PlacementProblem(E, G, cap, red, sur, model.expert_weight_bytes,
                            system.interconnect.bw_per_direction_GBps, time_limit_s, workers, seed, gap_limit)
    out = []
    for pol in policies:
        cfg = EvalConfig(pol, predictor, history, replace_every, layer_policy, mode, exact_objective,
                         exact_alpha=exact_alpha, exact_space=exact_space, exact_replicas=exact_replicas)
        out.append(run_policy(trace, idx, model, system, prob, cfg, steps, context_len=context_len)
                   .summary(model.num_moe_layers, per_step=per_step))
    sf = speed_factors(system)
    return {"model": model.name, "system": system.name, "num_gpus": G, "batch": trace.batch,
            "steps": steps, "history": history, "layers": list(trace.layer_ids),
            "trace": trace.source if trace.profile is None else f"{trace.source}:{trace.profile}",
            "seed": seed, "capacity_slots_per_gpu": cap, "redundant_experts": red,
            "variability": {**sf.to_dict(), "spread": sf.spread, "kind": system.variability.kind},
            "surrogate": sur.name, "cost_model": "roofline",
            # the layer DAG that times each step: the serial execution model, as every command names it
            "execution_model": "serial", "precision": model.expert_precision,
            "policies": out}
