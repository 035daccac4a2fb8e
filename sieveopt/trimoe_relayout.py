"""TriMoE's prediction-driven relayout: HBM expert cache, per-DIMM homes, rebalancing (issue 16).

TriMoE "keeps an exponential moving average of each expert's load ... EMA_e <- alpha F_e +
(1 - alpha) EMA_e with alpha = 0.3" and uses it for three background actions: "prefetch
predicted-hot experts into GPU HBM", "relayout" of experts between layouts, and "rebalance: move
cold experts between DIMMs so that NDP load is even" (trimoe_gem.md §1.5, [S]). This module runs
those actions over a multi-step routing trace and reports the per-step time of each MoE layer's
expert phase with and without them.

**Layer time (execution model: TriMoE unit-load sum, cost model: the offload tiers' rooflines).**
The paper's objective, "Makespan = max(Σ GPU times, Σ CPU times, max over DIMMs d of [Σ NDP times
on d + T_contention^d])" (§1.3 item 5), with the per-expert times of the registered targets
(:mod:`sieveopt.offload_tiers`: ``gpu`` for an expert cached in HBM -- "GPU hit: f_calc_gpu(L)" --,
``gpu_fetch``, ``cpu``, ``ndp``) and the contention default of §1.9: "each DIMM's busy time = NDP
compute + every external read it serves" (a GPU fetch or CPU job of expert e reads its weights
from e's home DIMM at one DIMM's bandwidth). NDP runs an expert only on its home DIMM ("NDP can
run an expert only on the DIMM that stores it", §1.4 item 3). Each step's assignment comes from
an earliest-finish greedy over those units (experts by tokens, descending; the layout, not the
planner, is what this module studies). Attention and the dense part of the layer do not depend on
the layout and are left out: the reported time is the expert phase.

**Layout and relayout.** Every policy starts from the same layout, decided from the ``history``
steps before the evaluated ones: the HBM cache holds the ``cache_experts`` experts with the most
tokens, and DIMM homes are balanced on their predicted NDP time (from a round-robin start).
``static`` keeps it. ``relayout-<predictor>`` re-decides every K steps from the predictor's
forecast of the history (:func:`sieveopt.placement.forecast.predict`: ``last``, ``mean``,
``ema`` -- TriMoE's --, ``window``; ``oracle`` reads the future, a reference only), trying three
candidates (new cache, rebalanced homes, both) and applying the one whose predicted saving over
the next K steps exceeds its movement cost by the most (§1.9 default: "migrate only if the saving
exceeds the cost"; none if no candidate pays). Movement is charged serially on the step where it
happens (no overlap with compute: an upper bound, as :mod:`sieveopt.placement.evaluate` does):
newly cached experts cross PCIe (``offload.pcie``), a DIMM move costs "expert bytes / min(source,
destination) DIMM bandwidth" (§1.9) at ``offload.ndp.dimm_bw_GBps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH, MODE_NDP, pcie_ns
from sieveopt.placement.forecast import forecast_error, predict
from sieveopt.targets import MODE_GPU, get_target

RELAYOUT_PREDICTORS = ("last", "mean", "ema", "window", "oracle")


@dataclass(frozen=True)
class TierCosts:
    """Per-expert times by token count (index = tokens, 0..max_tokens) and movement costs, ns."""

    hit: np.ndarray          # GPU, weights cached in HBM
    fetch: np.ndarray        # GPU, weights over PCIe
    cpu: np.ndarray
    ndp: np.ndarray
    read_ns: int             # one expert's weights read from its home DIMM (contention)
    pcie_move_ns: int        # one expert's weights host -> HBM
    dimm_move_ns: int        # one expert's weights DIMM -> DIMM
    num_dimms: int
    expert_bytes: float


def tier_costs(model: Any, system: Any, cost: Any, max_tokens: int) -> TierCosts:
    """The registered targets' durations for 0..``max_tokens`` tokens (grouped GEMM work, as the DAG)."""
    from sieveopt.models.work import expert_work

    if MODE_NDP not in system.offload.expert_modes:
        raise SpecError(system.name, "offload.expert_modes",
                        f"{list(system.offload.expert_modes)} has no '{MODE_NDP}' tier",
                        "use an offloading system such as trimoe-h100-xeon-ndp")
    works = [expert_work(model, n, launches=0) for n in range(max_tokens + 1)]

    def arr(mode: str) -> np.ndarray:
        t = get_target(mode)
        return np.array([0 if w.tokens <= 0 else int(round(t.duration_ns(cost, w))) for w in works], np.int64)

    wb = float(model.expert_weight_bytes)
    n = system.offload.ndp
    dimm_ns = int(round(wb / n.dimm_bw_GBps))
    return TierCosts(arr(MODE_GPU), arr(MODE_GPU_FETCH), arr(MODE_CPU), arr(MODE_NDP), dimm_ns,
                     int(round(pcie_ns(system, wb))), dimm_ns, int(n.num_dimms), wb)


def cache_slots(model: Any, system: Any, batch: int, context_len_tokens: int = 2048) -> int:
    """Routed experts per MoE layer that fit in the HBM left after everything else (§1.9 default:
    "HBM left after dense weights, shared experts, activations and the KV reserve, divided by
    expert bytes")."""
    from sieveopt.models.capacity import gpu_memory

    mem = gpu_memory(model, system, batch=batch, context_len_tokens=context_len_tokens)
    free = max(0.0, mem.capacity - mem.total)
    return int(free // (model.expert_weight_bytes * max(1, model.num_moe_layers)))


def step_time(tokens: np.ndarray, cached: np.ndarray, home: np.ndarray, c: TierCosts,
              base_gpu_ns: int = 0) -> int:
    """Expert-phase time of one layer step under a layout (module docstring): earliest-finish
    greedy over GPU, CPU and the D DIMMs, experts by tokens descending (ties: lower id)."""
    D = c.num_dimms
    gpu, cpu = int(base_gpu_ns), 0
    dimm = [0] * D
    cur = gpu
    for e in np.lexsort((np.arange(tokens.size), -tokens)):
        n = int(tokens[e])
        if n <= 0:
            break
        h = int(home[e])
        if cached[e]:
            g_new, gd = gpu + int(c.hit[n]), dimm[h]
        else:
            g_new, gd = gpu + int(c.fetch[n]), dimm[h] + c.read_ns
        c_new = cpu + int(c.cpu[n])
        n_new = dimm[h] + int(c.ndp[n])
        opts = ((max(cur, g_new, gd), 0), (max(cur, c_new, dimm[h] + c.read_ns), 1), (max(cur, n_new), 2))
        best, kind = min(opts)
        if kind == 0:
            gpu, dimm[h] = g_new, gd
        elif kind == 1:
            cpu, dimm[h] = c_new, dimm[h] + c.read_ns
        else:
            dimm[h] = n_new
        cur = best
    return cur


def _rounded(pred: np.ndarray, max_tokens: int) -> np.ndarray:
    return np.clip(np.rint(pred), 0, max_tokens).astype(np.int64)


def choose_cache(pred: np.ndarray, slots: int) -> np.ndarray:
    """The ``slots`` experts with the most predicted tokens (ties: lower id), as a mask."""
    mask = np.zeros(pred.size, dtype=bool)
    if slots > 0:
        order = np.lexsort((np.arange(pred.size), -pred))
        keep = [e for e in order[:slots] if pred[e] > 0]
        mask[keep] = True
    return mask


def rebalance(pred_tokens: np.ndarray, cached: np.ndarray, home: np.ndarray, c: TierCosts,
              max_moves: int) -> np.ndarray:
    """Homes with predicted NDP load evened across DIMMs: up to ``max_moves`` moves, each of one
    expert from the most to the least loaded DIMM that lowers the larger of the two (the move
    whose result is most even; ties: lower id)."""
    home = home.copy()
    load = np.zeros(c.num_dimms, dtype=np.int64)
    x = np.where(cached, 0, c.ndp[pred_tokens])
    np.add.at(load, home, x)
    for _ in range(max_moves):
        src, dst = int(np.argmax(load)), int(np.argmin(load))
        gap = int(load[src] - load[dst])
        cand = np.flatnonzero((home == src) & (x > 0) & (x < gap))
        if cand.size == 0:
            break
        e = int(cand[np.argmin(np.abs(gap - 2 * x[cand]) * (1 << 20) + cand)])
        home[e] = dst
        load[src] -= x[e]
        load[dst] += x[e]
    return home


@dataclass(frozen=True)
class RelayoutRun:
    policy: str
    step_ns: np.ndarray        # [steps, layers] expert-phase time
    move_ns: np.ndarray        # [steps, layers] movement charged at the step
    moved_bytes: float
    relayouts: int
    wape: float | None         # forecast error (mean over decisions), None for static

    def summary(self) -> dict[str, Any]:
        tot = self.step_ns + self.move_ns
        return {"policy": self.policy, "layer_mean_ns": float(self.step_ns.mean()),
                "layer_p99_ns": float(np.percentile(self.step_ns, 99)),
                "layer_mean_with_move_ns": float(tot.mean()), "move_ns_total": float(self.move_ns.sum()),
                "moved_bytes": self.moved_bytes, "relayouts": self.relayouts, "forecast_wape": self.wape}


def _initial(hist: np.ndarray, c: TierCosts, slots: int, max_tokens: int, max_moves: int) -> tuple[np.ndarray, np.ndarray]:
    pred = hist.mean(axis=0)
    cached = choose_cache(pred, slots)
    home = np.arange(pred.size) % c.num_dimms
    return cached, rebalance(_rounded(pred, max_tokens), cached, home, c, max_moves=pred.size)


def run_layer(counts: np.ndarray, history: int, c: TierCosts, *, policy: str, every: int, slots: int,
              max_moves: int, base_gpu_ns: int = 0) -> tuple[np.ndarray, np.ndarray, float, int, list[float]]:
    """One layer's evaluated steps (``counts[history:]``) under ``policy`` (``static`` or a predictor)."""
    max_tokens = len(c.hit) - 1
    cached, home = _initial(counts[:history], c, slots, max_tokens, max_moves)
    steps = counts.shape[0] - history
    t = np.zeros(steps, dtype=np.int64)
    mv = np.zeros(steps, dtype=np.int64)
    moved, relayouts, errs = 0.0, 0, []
    for s in range(steps):
        now = history + s
        if policy != "static" and s > 0 and s % every == 0:
            past = counts[now - history:now]
            future = counts[now:now + every]
            scen = predict(policy, past, window=history, future=future)
            pred = scen.mean(axis=0)
            errs.append(forecast_error(scen, future)["wape"])
            pt = _rounded(pred, max_tokens)
            new_cache = choose_cache(pred, slots)
            cands = {"cache": (new_cache, home), "rebalance": (cached, rebalance(pt, cached, home, c, max_moves))}
            cands["both"] = (new_cache, rebalance(pt, new_cache, home, c, max_moves))
            pick = np.unique(np.linspace(0, scen.shape[0] - 1, min(scen.shape[0], 16)).round().astype(int))
            rows = [_rounded(r, max_tokens) for r in scen[pick]]   # up to 16 scenarios, evenly spaced

            def predicted(cache_m: np.ndarray, home_m: np.ndarray, rows: list = rows) -> float:
                return float(np.mean([step_time(r, cache_m, home_m, c, base_gpu_ns) for r in rows]))

            now_t = predicted(cached, home)
            best = None
            for cm, hm in cands.values():
                n_fetch = int(np.count_nonzero(cm & ~cached))
                n_move = int(np.count_nonzero(hm != home))
                cost = n_fetch * c.pcie_move_ns + n_move * c.dimm_move_ns
                gain = every * (now_t - predicted(cm, hm)) - cost
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, cm, hm, cost, n_fetch + n_move)
            if best is not None:
                _, cached, home, cost, n = best
                mv[s] = cost
                moved += n * c.expert_bytes
                relayouts += 1
        t[s] = step_time(counts[now], cached, home, c, base_gpu_ns)
    return t, mv, moved, relayouts, errs


def compare_relayout(model: Any, system: Any, *, trace: Any, history: int, every: int,
                     predictors: list[str], cache_experts: int | None, max_moves: int, batch: int,
                     cost_model: str = "roofline", layers: list[int] | None = None) -> dict[str, Any]:
    """Static layout vs relayout with each predictor on the same trace (the dict ``--json`` prints)."""
    from sieveopt.models.work import shared_expert_work
    from sieveopt.pipeline import make_cost_model

    for name, v, lo in (("history", history, 1), ("every", every, 1), ("max_moves", max_moves, 0)):
        if v < lo:
            raise SpecError("relayout", name, f"must be >= {lo}, got {v}", f"use --{name.replace('_', '-')} {max(lo, 4)}")
    bad = [p for p in predictors if p not in RELAYOUT_PREDICTORS]
    if bad or not predictors:
        raise SpecError("relayout", "predictors", f"unknown {bad}", f"use some of {', '.join(RELAYOUT_PREDICTORS)}")
    counts = trace.counts()
    if counts.shape[0] <= history:
        raise SpecError("relayout", "steps", f"trace has {counts.shape[0]} steps, history {history}",
                        "use a longer trace (--steps) or a shorter --history")
    cost = make_cost_model(cost_model, system, model)
    c = tier_costs(model, system, cost, int(counts.max()))
    slots = cache_slots(model, system, batch) if cache_experts is None else int(cache_experts)
    if slots < 0:
        raise SpecError("relayout", "cache_experts", f"must be >= 0, got {slots}", "use --cache-experts 8")
    base = 0
    if model.num_shared_experts:
        base = int(round(get_target(MODE_GPU).duration_ns(cost, shared_expert_work(model, batch))))
    lids = list(range(counts.shape[1])) if layers is None else layers
    out = []
    for pol in ["static", *predictors]:
        per = [run_layer(counts[:, li, :], history, c, policy=pol, every=every, slots=slots,
                         max_moves=max_moves, base_gpu_ns=base) for li in lids]
        errs = [e for p in per for e in p[4]]
        run = RelayoutRun("static" if pol == "static" else f"relayout-{pol}",
                          np.stack([p[0] for p in per], axis=1), np.stack([p[1] for p in per], axis=1),
                          float(sum(p[2] for p in per)), int(sum(p[3] for p in per)),
                          float(np.mean(errs)) if errs else None)
        out.append(run)
    static = out[0].summary()["layer_mean_with_move_ns"]
    rows = []
    for r in out:
        s = r.summary()
        s["speedup_vs_static"] = static / s["layer_mean_with_move_ns"] if s["layer_mean_with_move_ns"] else None
        rows.append(s)
    return {"model": model.name, "system": system.name, "batch": batch, "steps": int(counts.shape[0] - history),
            "history": history, "every": every, "cache_experts": slots, "max_moves": max_moves,
            "num_dimms": c.num_dimms, "cost_model": cost_model,
            "execution_model": "TriMoE unit-load sum (GPU, CPU, per-DIMM NDP + contention), expert phase only",
            "precision": "BF16 weights", "policies": rows, "runs": out}
