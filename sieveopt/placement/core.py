"""A placement of one MoE layer's experts (and replicas) on G GPUs, its capacity and its cost to move.

A placement is EPLB's ``phy2log`` in our words (moe_models.md §4): ``slots[j]`` is the logical
expert held by physical slot j, ``slot_gpu[j]`` the GPU that slot lives on. Every logical expert
has at least one slot; replicas of one expert sit on distinct GPUs; a GPU holds at most
``capacity`` slots of the layer (its HBM share, :func:`slots_per_gpu`). Two replicas of one
expert may share a GPU (EPLB's packing does not forbid it; it only wastes a slot).

Tokens of a replicated expert are split over its replicas round-robin in batch order (the j-th
token routed to expert e goes to replica ``j mod r_e``), so each replica gets ``n/r`` tokens to
within one, the equal share EPLB's replication step assumes ("each replica is assumed to receive
an equal share of its expert's load", moe_models.md §4). EPLB leaves the runtime choice to the
serving engine; ours is stated here and used by the evaluation and the surrogate alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sieveopt.errors import SpecError


@dataclass(frozen=True, eq=False)
class Placement:
    """Physical slots of one layer: logical expert ``slots[j]`` on GPU ``slot_gpu[j]``."""

    slots: np.ndarray        # int64 [S] logical expert of each physical slot
    slot_gpu: np.ndarray     # int64 [S] GPU of each slot
    num_experts: int
    num_gpus: int
    capacity: int            # max slots per GPU
    policy: str = ""

    def __post_init__(self) -> None:
        s = np.asarray(self.slots, dtype=np.int64)
        g = np.asarray(self.slot_gpu, dtype=np.int64)
        object.__setattr__(self, "slots", s)
        object.__setattr__(self, "slot_gpu", g)
        src = f"placement ({self.policy or 'custom'})"
        if s.shape != g.shape or s.ndim != 1:
            raise SpecError(src, "slots", "slots and slot_gpu differ in shape", "give one GPU per slot")
        if ((s < 0) | (s >= self.num_experts)).any() or ((g < 0) | (g >= self.num_gpus)).any():
            raise SpecError(src, "slots", "expert or GPU id out of range", "use ids in [0, E) and [0, G)")
        missing = np.flatnonzero(np.bincount(s, minlength=self.num_experts) == 0)
        if missing.size:
            raise SpecError(src, f"slots (expert {int(missing[0])})", "an expert has no slot",
                            "place every expert at least once")
        per_gpu = np.bincount(g, minlength=self.num_gpus)
        if per_gpu.max() > self.capacity:
            raise SpecError(src, "capacity", f"GPU {int(per_gpu.argmax())} holds {int(per_gpu.max())} slots "
                            f"> capacity {self.capacity}", "raise the capacity or place fewer replicas")
        for a in (self.slots, self.slot_gpu):
            a.setflags(write=False)

    @property
    def num_slots(self) -> int:
        return int(self.slots.size)

    @cached_property
    def replicas(self) -> np.ndarray:
        """Replica count of every logical expert, int64 [E]."""
        return np.bincount(self.slots, minlength=self.num_experts)

    @cached_property
    def slots_of(self) -> list[np.ndarray]:
        """Slot ids of each logical expert (ascending)."""
        order = np.argsort(self.slots, kind="stable")
        return np.split(order, np.cumsum(self.replicas)[:-1])

    @cached_property
    def gpu_sets(self) -> np.ndarray:
        """Bool [E, G]: expert e has a replica on GPU g."""
        out = np.zeros((self.num_experts, self.num_gpus), dtype=bool)
        out[self.slots, self.slot_gpu] = True
        return out

    def slots_per_gpu(self) -> np.ndarray:
        return np.bincount(self.slot_gpu, minlength=self.num_gpus)

    def to_dict(self) -> dict:
        return {"policy": self.policy, "num_gpus": self.num_gpus, "capacity": self.capacity,
                "experts_per_gpu": [sorted(int(e) for e in self.slots[self.slot_gpu == g])
                                    for g in range(self.num_gpus)]}

    # -- routing through the placement ------------------------------------------------------
    def physical_ids(self, expert_ids_bk: np.ndarray) -> np.ndarray:
        """Logical ``[B, k]`` ids -> physical slot ids (replicas round-robin in batch order)."""
        ids = np.asarray(expert_ids_bk, dtype=np.int64)
        if np.all(self.replicas == 1):
            inv = np.empty(self.num_experts, dtype=np.int64)
            inv[self.slots] = np.arange(self.num_slots)
            return inv[ids]
        flat = ids.ravel()
        # rank of each occurrence among the occurrences of the same expert, in batch order
        order = np.argsort(flat, kind="stable")
        sorted_ids = flat[order]
        first = np.searchsorted(sorted_ids, sorted_ids, side="left")
        rank = np.empty_like(flat)
        rank[order] = np.arange(flat.size) - first
        r = self.replicas[flat]
        table = np.full((self.num_experts, int(self.replicas.max())), -1, dtype=np.int64)
        for e, sl in enumerate(self.slots_of):
            table[e, : sl.size] = sl
        return table[flat, rank % r].reshape(ids.shape)

    def slot_tokens(self, counts_e: np.ndarray) -> np.ndarray:
        """Tokens of each slot given per-expert token counts ``[..., E]`` -> ``[..., S]``."""
        n = np.asarray(counts_e)
        r = self.replicas[self.slots]
        j = np.zeros(self.num_slots, dtype=np.int64)
        for sl in self.slots_of:
            j[sl] = np.arange(sl.size)
        ne = n[..., self.slots]
        return ne // r + (j < ne % r)


def slots_per_gpu(model, system, *, reserve_GiB: float = 0.0) -> int:
    """Expert slots of ONE MoE layer a GPU can hold when every layer gets the same number:
    ``(HBM - reserve - shared experts of all layers) / (layers x expert bytes)``, floored.
    HBM is ``gpu.hbm_capacity_GiB`` (for HBM-PIM systems the half not given to PIM, as the
    system preset states); dense weights and the KV cache go into ``reserve_GiB``."""
    have = system.gpu.hbm_capacity_GiB * 2**30 - reserve_GiB * 2**30
    have -= model.num_shared_experts * model.shared_expert_weight_bytes * model.num_moe_layers
    return max(0, int(have // (model.num_moe_layers * model.expert_weight_bytes)))


def check_capacity(num_experts: int, num_gpus: int, capacity: int, redundant: int = 0) -> None:
    """Raise (exit 2 in the CLI) when no placement of E + redundant slots fits."""
    if redundant < 0:
        raise SpecError("placement", "redundant_experts", f"must be >= 0, got {redundant}", "use 0 for none")
    need = num_experts + redundant
    if capacity * num_gpus < need:
        raise SpecError("placement", "capacity",
                        f"{num_gpus} GPUs x {capacity} expert slots per layer < {need} slots needed "
                        f"({num_experts} experts + {redundant} replicas)",
                        f"use at least {-(-need // max(capacity, 1)) if capacity else 'more'} GPUs, "
                        "fewer --redundant-experts, or a larger --slots-per-gpu / HBM capacity")
    if redundant and redundant > num_experts * (num_gpus - 1):
        raise SpecError("placement", "redundant_experts",
                        f"{redundant} replicas cannot sit on distinct GPUs", "lower --redundant-experts")


def movement(prev: Placement | None, new: Placement, expert_bytes: float, link_GBps: float,
             latency_ns: float = 0.0) -> dict[str, float]:
    """Weight movement from ``prev`` to ``new`` over NVLink (one layer).

    A slot of GPU g must be filled over the link when g did not hold that expert before
    (copied from a GPU that did; NVLink ports are full duplex, so the time is the busiest
    ingress or egress port: ``bytes / bandwidth + latency``). Sources are spread over the
    previous holders round-robin.
    """
    if prev is None:
        return {"moved_experts": 0, "bytes": 0.0, "time_ns": 0.0}
    G = new.num_gpus
    ingress = np.zeros(G)
    egress = np.zeros(G)
    moved = 0
    turn = np.zeros(new.num_experts, dtype=np.int64)
    holders = [np.flatnonzero(row) for row in prev.gpu_sets]
    for e, g in zip(new.slots.tolist(), new.slot_gpu.tolist(), strict=True):
        if prev.gpu_sets[e, g]:
            continue
        src = holders[e][turn[e] % holders[e].size]
        turn[e] += 1
        ingress[g] += expert_bytes
        egress[src] += expert_bytes
        moved += 1
    busiest = max(ingress.max(), egress.max())
    t = 0.0 if moved == 0 else busiest / link_GBps + latency_ns
    return {"moved_experts": moved, "bytes": float(moved * expert_bytes), "time_ns": float(t)}
