"""The fast layer-time surrogate every placement policy optimises (and the evaluation reports).

Placement decides which GPU holds which expert for many steps; scoring each candidate with the
full layer DAG and a per-layer policy would cost ~0.1 s per (step, layer). The surrogate is the
**best-unit serial work** of a GPU: each activated expert slot with n tokens costs

    unit_ns[g, n] = min(T_GPU,g(n), T_PIM(n))

where ``T_GPU,g`` is the ``roofline`` cost model's GPU time of that expert (weights streamed
once, grouped GEMM, no launch) at GPU g's speed factors (:mod:`sieveopt.variability`) and
``T_PIM`` its PIM time (n GEMVs; nominal, the PIM units are in the stacks). A GPU's surrogate
layer time at a step is the sum over its slots, the layer's the max over GPUs (the straggler:
GEM, "the straggler GPU therefore sets the layer latency", trimoe_gem.md §2.1).

It is the serial work of a per-GPU split in which every expert runs on its better unit; the
real Sieve split overlaps GPU and PIM, so the surrogate ranks placements, it does not predict
absolute layer times (the evaluation measures those with the DAG; the study reports both).
Communication and attention do not depend on the expert placement to first order and are left
out. Execution model: serialized per-GPU work; precision: the model's expert bytes/param.
"""

from __future__ import annotations

import numpy as np

from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.work import expert_work
from sieveopt.placement.core import Placement
from sieveopt.variability import gpu_kernel_ns, speed_factors

NAME = "best-unit serial work (roofline)"


class Surrogate:
    """Per-GPU expert-slot cost table ``unit_ns[g, n]`` for n = 0..max_tokens (float64)."""

    name = NAME

    def __init__(self, model, system, max_tokens: int) -> None:
        self.model, self.system = model, system
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

    @property
    def max_tokens(self) -> int:
        return self.unit_ns.shape[1] - 1

    def _lookup(self, g: np.ndarray | int, n: np.ndarray) -> np.ndarray:
        n = np.asarray(n, dtype=np.int64)
        if n.size and n.max() > self.max_tokens:
            raise ValueError(f"surrogate: {int(n.max())} tokens > table size {self.max_tokens}")
        return self.unit_ns[g, n]

    def gpu_loads(self, placement: Placement, counts_te: np.ndarray) -> np.ndarray:
        """Surrogate work per step and GPU ``[T, G]`` (ns) of ``counts_te[T, E]`` under ``placement``."""
        n = placement.slot_tokens(np.atleast_2d(counts_te))           # [T, S]
        cost = self._lookup(placement.slot_gpu[None, :], n)             # [T, S]
        out = np.zeros((n.shape[0], self.num_gpus))
        for g in range(self.num_gpus):
            out[:, g] = cost[:, placement.slot_gpu == g].sum(axis=1)
        return out

    def step_times(self, placement: Placement, counts_te: np.ndarray) -> np.ndarray:
        """Surrogate layer time per step ``[T]`` (ns): the straggler GPU's work."""
        return self.gpu_loads(placement, counts_te).max(axis=1)

    def item_costs(self, tokens_ti: np.ndarray) -> np.ndarray:
        """Cost of every item (slot with known tokens) on every GPU: ``[T, I, G]`` (ns)."""
        n = np.asarray(tokens_ti, dtype=np.int64)
        return np.stack([self._lookup(g, n) for g in range(self.num_gpus)], axis=-1)


def straggler_share(loads_tg: np.ndarray) -> np.ndarray:
    """Per step: share of the layer time the average GPU waits for the straggler,
    ``1 - mean_g / max_g`` (0 = perfectly balanced)."""
    mx = loads_tg.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mx > 0, 1.0 - loads_tg.mean(axis=1) / mx, 0.0)
