"""The in-memory routing trace shared by the generator, the loaders and every consumer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sieveopt.errors import TraceError


@dataclass(frozen=True, eq=False)
class RoutingTrace:
    """Routed-expert choices of a decode batch: ``expert_ids[step, layer, b, :]``.

    expert_ids:         int16 ``[steps, layers, B, k]``; the k *distinct* routed experts of
                        request slot b (ordered by router score for synthetic traces, as
                        stored for real ones). Shared experts are not listed: they always
                        get every token (N = B).
    num_experts:        routed experts per layer E (ids in ``[0, E)``).
    top_k:              routed experts per token k.
    num_shared_experts: always-on experts per layer.
    model:              model name (free text).
    source:             ``"synthetic"``, ``"chaos"`` (Patterns-behind-Chaos JSON) or a path.
    seed:               generator seed (None for real traces).
    profile:            routing-profile name for synthetic traces.
    layer_ids:          absolute layer index of each stored layer (len == layers).
    request_ids:        optional int32 ``[steps, B]``: which request occupies each slot
                        (continuous batching replaces finished requests).
    """

    expert_ids: np.ndarray
    num_experts: int
    top_k: int
    num_shared_experts: int = 0
    model: str = ""
    source: str = "synthetic"
    seed: int | None = None
    profile: str | None = None
    layer_ids: tuple[int, ...] = field(default=())
    request_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = self.expert_ids
        where = f"routing trace ({self.source or 'unknown source'})"
        if not isinstance(ids, np.ndarray) or ids.ndim != 4:
            raise TraceError(f"{where}: expert_ids must be a 4-D array [steps, layers, B, k]")
        if ids.dtype != np.int16:
            if not np.issubdtype(ids.dtype, np.integer):
                raise TraceError(f"{where}: expert_ids must be integers, got {ids.dtype}")
            object.__setattr__(self, "expert_ids", ids.astype(np.int16))
        if self.num_experts < 1 or self.num_experts > np.iinfo(np.int16).max:
            raise TraceError(f"{where}: num_experts={self.num_experts} out of range [1, 32767]")
        if ids.shape[3] != self.top_k:
            raise TraceError(f"{where}: rows have {ids.shape[3]} ids but top_k={self.top_k}")
        if self.top_k > self.num_experts:
            raise TraceError(f"{where}: top_k={self.top_k} > num_experts={self.num_experts}")
        if self.num_shared_experts < 0:
            raise TraceError(f"{where}: num_shared_experts must be >= 0")
        if not self.layer_ids:
            object.__setattr__(self, "layer_ids", tuple(range(ids.shape[1])))
        else:
            object.__setattr__(self, "layer_ids", tuple(int(x) for x in self.layer_ids))
        if len(self.layer_ids) != ids.shape[1]:
            raise TraceError(
                f"{where}: {len(self.layer_ids)} layer_ids for {ids.shape[1]} stored layers"
            )
        if self.request_ids is not None and self.request_ids.shape != ids.shape[0:1] + ids.shape[2:3]:
            raise TraceError(f"{where}: request_ids must have shape [steps, B]")

    @property
    def steps(self) -> int:
        return int(self.expert_ids.shape[0])

    @property
    def num_layers(self) -> int:
        return int(self.expert_ids.shape[1])

    @property
    def batch(self) -> int:
        return int(self.expert_ids.shape[2])

    def check_ids(self) -> None:
        """Raise TraceError unless every id is in ``[0, E)`` and no row repeats an id."""
        check_expert_ids(self.expert_ids, self.num_experts, f"routing trace ({self.source})")

    def counts(self) -> np.ndarray:
        """Per-expert token counts, int32 ``[steps, layers, E]`` (routed experts only)."""
        return expert_counts(self.expert_ids, self.num_experts)

    def layer(self, step: int, layer: int) -> np.ndarray:
        """Expert ids ``[B, k]`` of one step and stored layer (a view)."""
        return self.expert_ids[step, layer]


def expert_counts(expert_ids: np.ndarray, num_experts: int) -> np.ndarray:
    """Bincount the last two axes: ``[..., B, k]`` ids -> int32 ``[..., E]`` token counts."""
    lead = expert_ids.shape[:-2]
    n = int(np.prod(lead)) if lead else 1
    flat = expert_ids.reshape(n, -1).astype(np.int64)
    flat += (np.arange(n, dtype=np.int64) * num_experts)[:, None]
    cnt = np.bincount(flat.ravel(), minlength=n * num_experts)
    return cnt.reshape(*lead, num_experts).astype(np.int32)


def check_expert_ids(expert_ids: np.ndarray, num_experts: int, where: str) -> None:
    """Vectorised range and duplicate check of ``[..., k]`` id rows."""
    if expert_ids.size == 0:
        return
    lo, hi = int(expert_ids.min()), int(expert_ids.max())
    if lo < 0 or hi >= num_experts:
        bad = np.argwhere((expert_ids < 0) | (expert_ids >= num_experts))[0]
        raise TraceError(
            f"{where}: expert id {int(expert_ids[tuple(bad)])} at index {tuple(int(i) for i in bad)} "
            f"outside [0, {num_experts})"
        )
    srt = np.sort(expert_ids, axis=-1)
    dup = srt[..., 1:] == srt[..., :-1]
    if dup.any():
        bad = np.argwhere(dup.any(axis=-1))[0]
        raise TraceError(
            f"{where}: duplicate expert id in row {tuple(int(i) for i in bad)}: "
            f"{expert_ids[tuple(bad)].tolist()}"
        )
