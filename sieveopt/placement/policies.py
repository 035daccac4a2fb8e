"""Placement policies: round-robin, EPLB (DeepSeek, as published) and GEM (as published, reconstructed).

Every policy maps a load history or forecast ``loads[T, E]`` (tokens per expert per step of one
layer) and a :class:`PlacementProblem` to a :class:`~sieveopt.placement.core.Placement`.
They are registered by name in :data:`PLACEMENT_POLICIES` (the exact optimiser, in
:mod:`sieveopt.placement.exact`, registers itself there too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sieveopt.placement.core import Placement
from sieveopt.placement.surrogate import Surrogate


@dataclass(frozen=True, eq=False)
class PlacementProblem:
    """What a placement policy may use: geometry, HBM capacity, replica budget, the surrogate."""

    num_experts: int
    num_gpus: int
    capacity: int                 # slots per GPU per layer (HBM)
    redundant: int                # extra replica slots EPLB may use (0 = none)
    surrogate: Surrogate
    expert_bytes: float = 0.0
    link_GBps: float = 0.0
    time_limit_s: float = 60.0
    workers: int = 8
    seed: int = 0
    gap_limit: float = 0.0        # exact optimiser: stop at this relative gap (0 = optimality)


PolicyFn = Callable[[np.ndarray, PlacementProblem], Placement]
PLACEMENT_POLICIES: dict[str, PolicyFn] = {}


def register(name: str) -> Callable[[PolicyFn], PolicyFn]:
    def deco(fn: PolicyFn) -> PolicyFn:
        PLACEMENT_POLICIES[name] = fn
        return fn
    return deco


def from_gpu_map(expert_gpu: np.ndarray, prob: PlacementProblem, policy: str) -> Placement:
    """One slot per expert on the given GPU."""
    E = prob.num_experts
    return Placement(np.arange(E), np.asarray(expert_gpu, dtype=np.int64), E, prob.num_gpus, prob.capacity, policy)


@register("round-robin")
def round_robin(loads: np.ndarray, prob: PlacementProblem) -> Placement:
    """Today's default: expert e on GPU ``e % G`` (no replicas, load-blind)."""
    return from_gpu_map(np.arange(prob.num_experts) % prob.num_gpus, prob, "round-robin")


# --- EPLB -------------------------------------------------------------------------------------
def balanced_packing(weight: np.ndarray, num_packs: int) -> tuple[np.ndarray, np.ndarray]:
    """EPLB's ``balanced_packing`` for one layer: "Sort items by weight in descending order.
    Give each item in turn to the least-loaded pack that still has free slots. Every pack must
    end up with exactly n/m items" (moe_models.md §4). Returns (pack, rank in pack) per item."""
    n = weight.size
    per = n // num_packs
    pack = np.zeros(n, dtype=np.int64)
    rank = np.zeros(n, dtype=np.int64)
    if per == 1:
        return np.arange(n) % num_packs, rank
    pw = np.zeros(num_packs)
    cnt = np.zeros(num_packs, dtype=np.int64)
    for i in np.argsort(-weight, kind="stable"):
        free = np.flatnonzero(cnt < per)
        p = int(free[np.argmin(pw[free])])
        pack[i], rank[i] = p, cnt[p]
        pw[p] += weight[i]
        cnt[p] += 1
    return pack, rank


def replicate_experts(weight: np.ndarray, num_phy: int) -> tuple[np.ndarray, np.ndarray]:
    """EPLB's ``replicate_experts``: start with one replica each, then "add a replica to the
    expert whose per-replica load (load / replica count) is largest" until the slots are full.
    Returns (phy2log [num_phy], logcnt [E])."""
    E = weight.size
    phy2log = np.concatenate([np.arange(E), np.zeros(num_phy - E, dtype=np.int64)])
    cnt = np.ones(E, dtype=np.int64)
    for i in range(E, num_phy):
        e = int(np.argmax(weight / cnt))
        phy2log[i] = e
        cnt[e] += 1
    return phy2log, cnt


def eplb_slots(prob: PlacementProblem) -> int:
    """EPLB's ``num_replicas``: E + redundant, a multiple of G (EPLB requires it), within HBM."""
    E, G = prob.num_experts, prob.num_gpus
    num_phy = min(E + prob.redundant, prob.capacity * G)
    num_phy -= num_phy % G
    return max(num_phy, -(-E // G) * G)


@register("eplb")
def eplb(loads: np.ndarray, prob: PlacementProblem) -> Placement:
    """DeepSeek EPLB, global policy on one node (github.com/deepseek-ai/EPLB, ``e1100fe``).

    weight = mean load per expert over the window ("Feed it weight = window-summed counts",
    moe_models.md §4); ``num_replicas = E + redundant`` rounded down to a multiple of G (EPLB
    requires it); replicate, then pack replicas of weight load/count onto GPUs with equal slot
    counts. With one node the hierarchical policy's group-to-node step is trivial, so this is
    also what EPLB does for DeepSeek-V3's 8 groups on one 8-GPU node. GPU speed is ignored
    (EPLB balances token counts).
    """
    E, G = prob.num_experts, prob.num_gpus
    weight = np.asarray(loads, dtype=float).reshape(-1, E).mean(axis=0)
    phy2log, cnt = replicate_experts(weight, eplb_slots(prob))
    pack, _ = balanced_packing(weight[phy2log] / cnt[phy2log], G)
    return Placement(phy2log, pack, E, G, prob.capacity, "eplb")


# --- GEM --------------------------------------------------------------------------------------
def classify_experts(loads: np.ndarray, *, consistent_frac: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """GEM's consistent vs temporal experts (trimoe_gem.md §2.3).

    "Consistent experts are used in most time steps"; "temporal experts are used in the
    remaining time steps ... together (correlated, bursty)". The paper's thresholds were not
    found; defaults [I]: an expert is *used* at a step when it gets at least the mean load per
    expert (B k / E tokens; with large decode batches nearly every expert gets >= 1 token, so
    ">= 1 token" would call every expert consistent); consistent = used in >= 50 % of steps;
    temporal = used at least once otherwise. Returns (used [T, E] bool, kind [E]: 2 consistent,
    1 temporal, 0 cold).
    """
    L = np.atleast_2d(np.asarray(loads, dtype=float))
    mean = L.sum(axis=1, keepdims=True) / L.shape[1]
    used = (L >= mean) & (L > 0)
    frac = used.mean(axis=0)
    kind = np.where(frac >= consistent_frac, 2, np.where(frac > 0, 1, 0))
    return used, kind


def coactivation_groups(used: np.ndarray, members: np.ndarray, threshold: float = 0.5) -> list[list[int]]:
    """Temporal experts grouped by co-activation: connected components of the pairs whose
    used-step Jaccard similarity is >= ``threshold`` (trimoe_gem.md §2.3 default [I])."""
    m = [int(e) for e in members]
    if not m:
        return []
    U = used[:, m].astype(np.float64)
    inter = U.T @ U
    size = U.sum(axis=0)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, inter / union, 0.0)
    parent = list(range(len(m)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ii, jj = np.nonzero(np.triu(jac >= threshold, 1))
    for a, b in zip(ii.tolist(), jj.tolist(), strict=True):
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i, e in enumerate(m):
        groups.setdefault(find(i), []).append(e)
    return list(groups.values())


def gpu_speeds(sur: Surrogate, loads: np.ndarray) -> np.ndarray:
    """GEM's capacity targets need a speed per GPU: ``unit_ns`` of the fastest GPU over GPU g's,
    at the mean load of an activated expert (GEM profiles t_g(n) per GPU; the surrogate is ours)."""
    L = np.atleast_2d(loads)
    act = L[L > 0]
    n = int(np.clip(np.round(act.mean()) if act.size else 1, 1, sur.max_tokens))
    t = sur.unit_ns[:, n]
    return t.min() / t


def swap_search(assign: np.ndarray, cost: np.ndarray, *, max_iters: int) -> tuple[np.ndarray, int]:
    """GEM step 6: "pairwise swaps between the straggler GPU and the others, keep a swap if it
    lowers mean step latency over the trace". ``cost[T, E, G]``; returns (assignment, swaps)."""
    T, E, G = cost.shape
    a = assign.copy()
    loads = np.zeros((T, G))
    for g in range(G):
        loads[:, g] = cost[:, a == g, g].sum(axis=1)
    cur = loads.max(axis=1).mean()
    swaps = 0
    for _ in range(max_iters):
        strag = np.bincount(loads.argmax(axis=1), weights=loads.max(axis=1), minlength=G)
        s = int(np.argmax(strag))
        best = (cur - 1e-9, -1, -1)
        k3 = min(3, G)
        top_g = np.argsort(-loads, axis=1)[:, :k3]                  # [T, 3] GPUs by load
        top_v = np.take_along_axis(loads, top_g, axis=1)
        for x in np.flatnonzero(a == s):
            others = np.flatnonzero(a != s)
            if not others.size:
                break
            og = a[others]                                        # GPU of each candidate
            new_s = loads[:, s][:, None] - cost[:, x, s][:, None] + cost[:, others, s]       # [T, K]
            new_o = loads[:, og] - cost[:, others, og] + cost[:, x, og]                     # [T, K]
            rest = _max_excluding(top_v, top_g, s, og)           # [T, K] max over untouched GPUs
            obj = np.maximum(np.maximum(new_s, new_o), rest).mean(axis=0)
            k = int(np.argmin(obj))
            if obj[k] < best[0]:
                best = (float(obj[k]), int(x), int(others[k]))
        if best[1] < 0:
            break
        x, y = best[1], best[2]
        gx, gy = a[x], a[y]
        loads[:, gx] += cost[:, y, gx] - cost[:, x, gx]
        loads[:, gy] += cost[:, x, gy] - cost[:, y, gy]
        a[x], a[y] = gy, gx
        cur = best[0]
        swaps += 1
    return a, swaps


def _max_excluding(top_v: np.ndarray, top_g: np.ndarray, s: int, og: np.ndarray) -> np.ndarray:
    """Per step, the largest load among GPUs other than ``s`` and ``og[k]``: ``[T, K]``
    (from each step's three largest loads)."""
    T, k3 = top_v.shape
    out = np.zeros((T, og.size))
    done = np.zeros((T, og.size), dtype=bool)
    for r in range(k3):
        g = top_g[:, r][:, None]
        ok = (g != s) & (g != og[None, :]) & ~done
        out = np.where(ok, top_v[:, r][:, None], out)
        done |= ok
    return out


@register("gem")
def gem(loads: np.ndarray, prob: PlacementProblem, *, max_swaps: int | None = None) -> Placement:
    """GEM (arXiv 2605.19945), the reconstruction of trimoe_gem.md §2.4 (steps 1-6).

    Paper constraints kept: "Each expert sits on exactly one GPU, with experts per GPU = total
    experts / number of GPUs: no replication and no token splitting"; "Fast GPUs get
    proportionally more tokens, slow GPUs get fewer, and co-used experts are spread across
    GPUs". Left open by the paper, our defaults [I]: the used/consistent thresholds
    (:func:`classify_experts`), Jaccard >= 0.5 co-activation groups, the speed of a GPU from
    the surrogate (GEM profiles per-GPU layer latency), the swap cap (E^2 in the note; we cap
    at 4 E improving swaps, each the best swap off the straggler), mean step latency as the
    search objective, on the serial surrogate (``Surrogate.item_costs``; GEM measures latency).
    """
    E, G = prob.num_experts, prob.num_gpus
    L = np.atleast_2d(np.asarray(loads, dtype=float))
    per = -(-E // G)
    sur = prob.surrogate
    speed = gpu_speeds(sur, L)
    avg = L.mean(axis=0)
    target = avg.sum() * speed / speed.sum()
    used, kind = classify_experts(L)
    assign = np.full(E, -1, dtype=np.int64)
    got = np.zeros(G)
    cnt = np.zeros(G, dtype=np.int64)

    def put(e: int, allowed: np.ndarray) -> None:
        free = np.flatnonzero((cnt < per) & allowed)
        if not free.size:
            free = np.flatnonzero(cnt < per)
        g = int(free[np.argmax((target - got)[free])])
        assign[e], got[g], cnt[g] = g, got[g] + avg[e], cnt[g] + 1

    for e in np.argsort(-avg, kind="stable"):               # step 4: consistent, heaviest first
        if kind[e] == 2:
            put(int(e), np.ones(G, dtype=bool))
    groups = coactivation_groups(used, np.flatnonzero(kind == 1))
    groups.sort(key=lambda grp: -avg[grp].sum())
    for grp in groups:                                        # step 5: spread each group
        taken = np.zeros(G, dtype=bool)
        for e in sorted(grp, key=lambda x: -avg[x]):
            put(e, ~taken)
            taken[assign[e]] = True
    for e in np.argsort(-avg, kind="stable"):                 # cold experts last
        if assign[e] < 0:
            put(int(e), np.ones(G, dtype=bool))
    cost = sur.item_costs(np.rint(L).astype(np.int64))        # [T, E, G]
    assign, _ = swap_search(assign, cost, max_iters=4 * E if max_swaps is None else max_swaps)
    return from_gpu_map(assign, prob, "gem")
