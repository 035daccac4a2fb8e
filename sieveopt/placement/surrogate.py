"""The fast layer-time surrogate every placement policy optimises (and the evaluation reports).

Placement decides which GPU holds which expert for many steps; scoring each candidate with the
full layer DAG and a per-layer policy would cost ~0.1 s per (step, layer). The surrogate scores
a GPU's *expert phase* at a step from the token counts of the expert slots it holds. Per slot
with n tokens on GPU g it knows two times, ``a = T_GPU,g(n)`` (the ``roofline`` cost model's
GPU time of that expert: weights streamed once, no launch, at GPU g's speed factors,
:mod:`sieveopt.variability`) and ``b = T_PIM(n)`` (its n GEMVs on PIM; nominal, the PIM units
are in the stacks).

**Overlap-aware (default, ``kind="overlap"``).** Sieve runs a GPU's GPU-side and PIM-side
experts at the same time: its planner picks, per GPU, layer and iteration, the PIM set S that
minimises "max(T_Comm, T_GPU(G), T_PIM(S))", an objective "that assumes fine-grained overlap of
comm and compute" (papers.md §1.5, Eq. 1). The surrogate is that split's expert part, relaxed
to fractional experts:

    O_g = min over u in [0, 1]^slots of  max( sum_i a_i u_i , sum_i b_i (1 - u_i) )
        = max over lambda in [0, 1] of   sum_i min(lambda a_i, (1 - lambda) b_i)      (LP duality)

The second form is a maximum of functions *linear in the placement*: for a fixed level lambda
each slot adds its own cost ``min(lambda a_i, (1 - lambda) b_i)``. The maximum is reached at a
breakpoint ``lambda_n = b(n) / (a(n) + b(n))`` of some slot's token count n (a concave
piecewise-linear function peaks at a kink), so the surrogate takes the levels of the token
counts 1..``levels`` (:data:`LEVEL_TOKENS`; exact whenever the expert the fractional split
divides has at most that many tokens; measured on the DeepSeek-V3 window: <= 16). In the exact
optimiser each level is one more linear constraint per (step, GPU) (:mod:`~sieveopt.placement.exact`).
T_comm, attention and the dense GPU work are left out: in the layer DAG they run before the
expert phase (Sieve's planner counts them in T_GPU / T_PIM, which shifts its split, but the
measured GPU-side and PIM-side sums of its splits on the DeepSeek-V3 headline window are
84.4 / 85.0 us for GEM's placement and 85.3 / 86.6 us for an annealed one, on average; the
per-GPU error against the dag's expert phase is in benchmarks/placement_surrogate_vs_dag.py).

**Serial (``kind="serial"``)**, the previous rounds' surrogate: every slot on its better unit,
``min(a, b)``, summed per GPU (one "level"). It ignores that a GPU's PIM idles while its GPU
streams heavy experts, so it rewarded giving fast GPUs few, heavy experts (docs/results.md).

A GPU's surrogate layer time is O_g (or the serial sum); the layer's is the max over GPUs (the
straggler: GEM, "the straggler GPU therefore sets the layer latency", trimoe_gem.md §2.1). It
ranks placements; absolute layer times come from the DAG evaluation. Execution model: one
layer's expert phase, GPU and PIM overlapped (serial: serialized); precision: the model's expert
bytes/param.
"""

from __future__ import annotations

import numpy as np

from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.work import expert_work
from sieveopt.placement.core import Placement
from sieveopt.variability import gpu_kernel_ns, speed_factors

#: Token counts whose breakpoints are the overlap surrogate's levels (1..LEVEL_TOKENS).
LEVEL_TOKENS = 32
NAMES = {"overlap": "overlapped GPU/PIM expert work (fractional Sieve split, roofline)",
         "serial": "best-unit serial work (roofline)"}
SURROGATE_KINDS = tuple(NAMES)


class Surrogate:
    """Per-GPU slot cost tables for n = 0..max_tokens tokens (float64 ns).

    ``unit_ns[g, n] = min(a, b)`` (the serial slot cost); ``level_ns[g, n, k]`` the slot's cost
    at level k (overlap: ``min(lambda_gk a, (1 - lambda_gk) b)``, levels in increasing lambda;
    serial: one level equal to ``unit_ns``). A GPU's surrogate work is the max over k of the
    sum of its slots' level costs."""

    def __init__(self, model, system, max_tokens: int, kind: str = "overlap", levels: int = LEVEL_TOKENS) -> None:
        if kind not in NAMES:
            raise ValueError(f"surrogate kind must be one of {', '.join(NAMES)}, got {kind!r}")
        self.model, self.system, self.kind = model, system, kind
        self.name = NAMES[kind]
        self.num_gpus = system.num_gpus
        cost = RooflineCostModel(system, model, include_kernel_overhead=False)
        speed = speed_factors(system)
        n_max = max(1, int(max_tokens))
        gpu = np.zeros((self.num_gpus, n_max + 1))
        pim = np.zeros(n_max + 1)
        for n in range(1, n_max + 1):
            w = expert_work(model, n, launches=0)        # the layer-work model's routed expert
            pim[n] = cost.duration_ns(w, MODE_PIM)
            for g in range(self.num_gpus):
                gpu[g, n] = gpu_kernel_ns(lambda x: cost.duration_ns(x, MODE_GPU), w,
                                          float(speed.compute[g]), float(speed.memory[g]))
        self.gpu_ns, self.pim_ns = gpu, pim
        self.unit_ns = np.minimum(gpu, pim[None, :])
        self.unit_ns[:, 0] = 0.0
        if kind == "serial":
            self.lam = np.ones((self.num_gpus, 1))
            self.level_ns = self.unit_ns[:, :, None].copy()
        else:
            ks = np.arange(1, min(int(levels), n_max) + 1)
            lam = np.sort(pim[ks][None, :] / (gpu[:, ks] + pim[ks][None, :]), axis=1)     # [G, K]
            self.lam = lam
            self.level_ns = np.minimum(lam[:, None, :] * gpu[:, :, None],
                                       (1.0 - lam[:, None, :]) * pim[None, :, None])    # [G, N+1, K]
            self.level_ns[:, 0, :] = 0.0

    @property
    def max_tokens(self) -> int:
        return self.unit_ns.shape[1] - 1

    @property
    def num_levels(self) -> int:
        return self.level_ns.shape[2]

    def _check(self, n: np.ndarray) -> np.ndarray:
        n = np.asarray(n, dtype=np.int64)
        if n.size and n.max() > self.max_tokens:
            raise ValueError(f"surrogate: {int(n.max())} tokens > table size {self.max_tokens}")
        return n

    def gpu_loads(self, placement: Placement, counts_te: np.ndarray) -> np.ndarray:
        """Surrogate work per step and GPU ``[T, G]`` (ns) of ``counts_te[T, E]`` under ``placement``."""
        n = self._check(placement.slot_tokens(np.atleast_2d(counts_te)))     # [T, S]
        cost = self.level_ns[placement.slot_gpu[None, :], n]                   # [T, S, K]
        out = np.zeros((n.shape[0], self.num_gpus))
        for g in range(self.num_gpus):
            out[:, g] = cost[:, placement.slot_gpu == g].sum(axis=1).max(axis=1)
        return out

    def step_times(self, placement: Placement, counts_te: np.ndarray) -> np.ndarray:
        """Surrogate layer time per step ``[T]`` (ns): the straggler GPU's work."""
        return self.gpu_loads(placement, counts_te).max(axis=1)

    def item_costs(self, tokens_ti: np.ndarray) -> np.ndarray:
        """Serial cost of every item (slot with known tokens) on every GPU: ``[T, I, G]`` (ns)."""
        n = self._check(tokens_ti)
        return np.stack([self.unit_ns[g, n] for g in range(self.num_gpus)], axis=-1)

    def level_costs(self, tokens_ti: np.ndarray) -> np.ndarray:
        """Level costs of every item on every GPU: ``[T, I, G, K]`` (ns); an assignment's GPU
        work at step t is ``max_k sum_i cost[t, i, g, k]`` over the items on g."""
        n = self._check(tokens_ti)
        return np.stack([self.level_ns[g, n] for g in range(self.num_gpus)], axis=2)


def straggler_share(loads_tg: np.ndarray) -> np.ndarray:
    """Per step: share of the layer time the average GPU waits for the straggler,
    ``1 - mean_g / max_g`` (0 = perfectly balanced)."""
    mx = loads_tg.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mx > 0, 1.0 - loads_tg.mean(axis=1) / mx, 0.0)
