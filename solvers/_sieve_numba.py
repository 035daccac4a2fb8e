"""Compiled Sieve planner: the serving-path entry point (one GPU, one MoE layer).

``sieve_plan(tokens, table, params, ws, order) -> k`` makes exactly the decisions of
:func:`sieveopt.solvers.sieve_ref.sieve_plan_ref` (same float expressions, same order) and
allocates nothing: the counting-sort buckets live in the caller's ``ws`` and the sorted order is
written to ``order``; ``order[:k]`` run on the GPU, ``order[k:]`` on PIM. Returns -1 when a
token count is outside the table (nothing else is checked on the hot path).

Arguments (few, to keep numba's dispatch cost down; scalars are packed in ``params``):

* ``tokens`` int32 [E_g]: token counts of this GPU's activated experts;
* ``table`` float64 [N+1]: PIM ns by token count;
* ``params`` float64 [NUM_PARAMS] (see :mod:`sieveopt.solvers.plan_inputs`);
* ``ws`` int32 [>= N+2]: workspace; ``order`` int32 [>= E_g]: output.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sieveopt.solvers.plan_inputs import (
    P_BYTES0,
    P_BYTES_PER_NS,
    P_EXPERT_BYTES,
    P_EXPERT_FIXED,
    P_FIXED0,
    P_FLOPS0,
    P_FLOPS_PER_NS,
    P_LAUNCH_NS,
    P_T_ATTN,
    P_T_COMM,
    P_TOKEN_BYTES,
    P_TOKEN_FLOPS,
)


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def sort_desc(tokens, limit, ws, order):  # noqa: ANN001, ANN201 (numba signature)
    """Counting sort of ``tokens`` by count, descending and stable, into ``order`` (allocates
    nothing: ``ws[n]`` is the bucket of count n, ``ws`` int32 [>= limit + 1]); the largest count,
    or -1 when a count is outside ``[0, limit)``. Shared by Sieve's and sieve-pipe's planners."""
    E = tokens.shape[0]
    max_n = 0
    for i in range(E):
        n = tokens[i]
        if n < 0 or n >= limit:
            return -1
        if n > max_n:
            max_n = n
    for n in range(max_n + 1):
        ws[n] = 0
    for i in range(E):
        ws[tokens[i]] += 1
    pos = 0
    for n in range(max_n, -1, -1):
        c = ws[n]
        ws[n] = pos
        pos += c
    for i in range(E):
        n = tokens[i]
        order[ws[n]] = i
        ws[n] += 1
    return max_n


@njit(cache=True, nogil=True, boundscheck=False)
def sieve_plan(tokens, table, params, ws, order):  # noqa: ANN001, ANN201 (numba signature)
    E = tokens.shape[0]
    # 1. counting sort by token count, descending, stable.
    if sort_desc(tokens, table.shape[0], ws, order) < 0:
        return -1
    # 2. all on PIM; move the hottest remaining expert while max(T) strictly decreases.
    t_comm = params[P_T_COMM]
    t_attn = params[P_T_ATTN]
    bytes0 = params[P_BYTES0]
    flops0 = params[P_FLOPS0]
    fixed0 = params[P_FIXED0]
    w_bytes = params[P_EXPERT_BYTES]
    tok_bytes = params[P_TOKEN_BYTES]
    tok_flops = params[P_TOKEN_FLOPS]
    bw = params[P_BYTES_PER_NS]
    peak = params[P_FLOPS_PER_NS]
    launch = params[P_LAUNCH_NS]
    e_fixed = params[P_EXPERT_FIXED]
    pim_left = 0.0
    for i in range(E):
        pim_left = pim_left + table[tokens[order[i]]]
    off = bytes0 / bw
    comp = flops0 / peak
    best = fixed0 + (off if off > comp else comp)
    if t_comm > best:
        best = t_comm
    if t_attn + pim_left > best:
        best = t_attn + pim_left
    gpu_tokens = 0
    k = 0
    while k < E:
        n = tokens[order[k]]
        new_pim = pim_left - table[n]
        new_tokens = gpu_tokens + n
        kk = k + 1
        fixed = fixed0 + launch + kk * e_fixed
        off = (bytes0 + kk * w_bytes + tok_bytes * new_tokens) / bw
        comp = (flops0 + tok_flops * new_tokens) / peak
        t = fixed + (off if off > comp else comp)
        if t_comm > t:
            t = t_comm
        if t_attn + new_pim > t:
            t = t_attn + new_pim
        if not t < best:
            break
        best = t
        pim_left = new_pim
        gpu_tokens = new_tokens
        k = kk
    return k


def make_workspace(max_experts: int, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Preallocated ``(ws, order)`` for up to ``max_experts`` experts and counts <= ``max_tokens``."""
    return np.zeros(max_tokens + 2, dtype=np.int32), np.zeros(max(1, max_experts), dtype=np.int32)


def warm_up() -> None:
    """Compile (or load from the numba cache) outside any timed region."""
    ws, order = make_workspace(2, 2)
    sieve_plan(np.array([1, 2], dtype=np.int32), np.zeros(3), np.ones(16), ws, order)
