"""Token and expert placement over G GPUs, and the per-step count / dispatch matrices.

* Tokens (data-parallel attention): request slot b of a batch of B lives on GPU
  ``b * G // B``, i.e. contiguous blocks of B/G requests per GPU (when G does not divide B
  the blocks differ by at most one request; with B < G some GPUs hold none).
* Experts (expert parallelism): expert e lives on GPU ``e % G`` by default; a placement map
  (int array of length E with values in [0, G)) overrides it.
"""

from __future__ import annotations

import numpy as np

from sieveopt.errors import SpecError


def token_gpu(batch: int, num_gpus: int) -> np.ndarray:
    """GPU of each request slot ``[B]`` (int64): ``b * G // B``."""
    if batch < 1:
        raise SpecError("token placement", "batch", f"must be >= 1, got {batch}")
    if num_gpus < 1:
        raise SpecError("token placement", "num_gpus", f"must be >= 1, got {num_gpus}")
    return np.arange(batch, dtype=np.int64) * num_gpus // batch


def expert_gpu(
    num_experts: int, num_gpus: int, placement: np.ndarray | None = None
) -> np.ndarray:
    """GPU of each routed expert ``[E]`` (int64): ``e % G`` or the validated ``placement``."""
    if num_experts < 1:
        raise SpecError("expert placement", "num_experts", f"must be >= 1, got {num_experts}")
    if num_gpus < 1:
        raise SpecError("expert placement", "num_gpus", f"must be >= 1, got {num_gpus}")
    if placement is None:
        return np.arange(num_experts, dtype=np.int64) % num_gpus
    arr = np.asarray(placement)
    if arr.shape != (num_experts,):
        raise SpecError(
            "expert placement", "placement",
            f"shape {arr.shape}, expected ({num_experts},)", "give one GPU id per routed expert",
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise SpecError("expert placement", "placement", "GPU ids must be integers")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= num_gpus))
    if bad.size:
        e = int(bad[0])
        raise SpecError(
            "expert placement", f"placement[{e}]",
            f"GPU id {int(arr[e])} outside [0, {num_gpus})", f"use GPU ids 0..{num_gpus - 1}",
        )
    return arr


def count_matrix(
    expert_ids_bk: np.ndarray, token_gpu: np.ndarray, num_gpus: int, num_experts: int
) -> np.ndarray:
    """``cnt[g, e]`` (int32 ``[G, E]``): tokens of GPU g routed to expert e, one step+layer."""
    ids = np.asarray(expert_ids_bk, dtype=np.int64)
    if ids.ndim != 2 or ids.shape[0] != len(token_gpu):
        raise SpecError(
            "count_matrix", "expert_ids_bk",
            f"shape {ids.shape} does not match {len(token_gpu)} tokens", "pass one [B, k] layer",
        )
    flat = (np.asarray(token_gpu, dtype=np.int64)[:, None] * num_experts + ids).ravel()
    cnt = np.bincount(flat, minlength=num_gpus * num_experts)
    return cnt.reshape(num_gpus, num_experts).astype(np.int32)


def dispatch_tokens(
    expert_ids_bk: np.ndarray, token_gpu: np.ndarray, expert_gpu: np.ndarray, num_gpus: int
) -> np.ndarray:
    """``tok[i, j]`` (int32 ``[G, G]``): tokens of GPU i with >=1 chosen expert on GPU j.

    A token is sent once per destination GPU however many of its experts live there
    (deduplicated dispatch). The diagonal counts tokens served locally (no link traffic).
    """
    ids = np.asarray(expert_ids_bk, dtype=np.int64)
    src = np.asarray(token_gpu, dtype=np.int64)
    b = ids.shape[0]
    if ids.ndim != 2 or b != len(src):
        raise SpecError(
            "dispatch_tokens", "expert_ids_bk",
            f"shape {ids.shape} does not match {len(src)} tokens", "pass one [B, k] layer",
        )
    dst = np.asarray(expert_gpu, dtype=np.int64)[ids]
    hit = np.zeros((b, num_gpus), dtype=bool)
    hit[np.arange(b)[:, None], dst] = True
    flat = (src[:, None] * num_gpus + np.arange(num_gpus)[None, :])[hit]
    tok = np.bincount(flat, minlength=num_gpus * num_gpus)
    return tok.reshape(num_gpus, num_gpus).astype(np.int32)
