"""Readable pure-Python Sieve greedy (papers.md §1.5) and the shared sort-and-walk machinery.

Every expert-placement baseline is "sort the GPU's experts by token count, then move a prefix
from one side to the other while an estimate improves" (papers.md §3): :func:`order_by_tokens`
and :func:`prefix_walk` are that machinery, used here and by :mod:`sieveopt.solvers.baselines`.

Decision rule, exactly as published, with the two choices the paper leaves open made explicit:

* sort: token count descending, ties by local index (the expert-id order of the GPU's
  activated experts), i.e. a stable sort;
* "decreases" means a *strict* decrease of ``max(T_comm, T_GPU, T_PIM)``; the walk stops at the
  first move that does not strictly decrease it (an equal value stops it too, so a plan whose
  maximum is pinned by ``T_comm`` keeps every expert on PIM).

This module is the oracle the compiled planner (:mod:`sieveopt.solvers._sieve_numba`) must
match decision for decision; both evaluate the same floating-point expressions in the same
order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def order_by_tokens(tokens: Sequence[int], *, descending: bool = True) -> list[int]:
    """Local indices sorted by token count (stable: ties keep index order)."""
    idx = range(len(tokens))
    if descending:
        return sorted(idx, key=lambda i: (-int(tokens[i]), i))
    return sorted(idx, key=lambda i: (int(tokens[i]), i))


def prefix_walk(objective: Callable[[int], float], n: int) -> int:
    """Move items 1, 2, ... n one at a time while ``objective(k)`` strictly decreases; return
    how many were moved (``objective(k)`` = estimate with the first ``k`` items moved)."""
    best, k = objective(0), 0
    while k < n:
        value = objective(k + 1)
        if not value < best:
            break
        best, k = value, k + 1
    return k


def prefix_walk_until_increase(objective: Callable[[int], float], n: int) -> int:
    """The paper's other reading of the stop rule ("stop when the next move would increase
    T_total"): walk while ``objective`` does not increase (plateaus are crossed), then keep the
    earliest prefix with the lowest value seen."""
    best, k_best, cur = objective(0), 0, objective(0)
    for k in range(1, n + 1):
        value = objective(k)
        if value > cur:
            break
        cur = value
        if value < best:
            best, k_best = value, k
    return k_best


def gpu_time_ns(params: Sequence[float], num_gpu_experts: int, gpu_tokens: int) -> float:
    """T_GPU with ``num_gpu_experts`` experts of ``gpu_tokens`` tokens in total on the GPU."""
    k = num_gpu_experts
    fixed = params[P_FIXED0]
    if k > 0:
        fixed = fixed + params[P_LAUNCH_NS] + k * params[P_EXPERT_FIXED]
    offchip = (params[P_BYTES0] + k * params[P_EXPERT_BYTES] + params[P_TOKEN_BYTES] * gpu_tokens) / params[P_BYTES_PER_NS]
    comp = (params[P_FLOPS0] + params[P_TOKEN_FLOPS] * gpu_tokens) / params[P_FLOPS_PER_NS]
    return fixed + (offchip if offchip > comp else comp)


def sieve_plan_ref(tokens: Sequence[int], table: Sequence[float], params: Sequence[float], *,
                   plateau: str = "stop") -> tuple[int, list[int]]:
    """Sieve's greedy for one GPU: returns ``(k, order)``; ``order[:k]`` run on the GPU, the
    rest on PIM. ``tokens[i]`` indexes ``table`` (PIM ns by token count). ``plateau="stop"``
    (default, what the compiled planner does): an equal estimate stops the walk;
    ``"cross"``: :func:`prefix_walk_until_increase`."""
    if any(int(n) < 0 or int(n) >= len(table) for n in tokens):
        raise ValueError("sieve_plan_ref: a token count is outside the PIM cost table")
    order = order_by_tokens(tokens)
    t_comm, t_attn = params[P_T_COMM], params[P_T_ATTN]
    # PIM time left and GPU tokens after the first k moves, accumulated in sorted order.
    pim_left = [0.0] * (len(order) + 1)
    acc = 0.0
    for i in order:
        acc = acc + table[int(tokens[i])]
    pim_left[0] = acc
    gpu_tokens = [0] * (len(order) + 1)
    for k, i in enumerate(order):
        pim_left[k + 1] = pim_left[k] - table[int(tokens[i])]
        gpu_tokens[k + 1] = gpu_tokens[k] + int(tokens[i])

    def t_total(k: int) -> float:
        return max(t_comm, gpu_time_ns(params, k, gpu_tokens[k]), t_attn + pim_left[k])

    if plateau == "cross":
        return prefix_walk_until_increase(t_total, len(order)), order
    if plateau != "stop":
        raise ValueError(f"sieve: plateau must be 'stop' or 'cross', got {plateau!r}")
    return prefix_walk(t_total, len(order)), order


def estimate_ns(tokens: Sequence[int], table: Sequence[float], params: Sequence[float],
                on_gpu: Sequence[bool]) -> dict[str, float]:
    """The planner's estimate terms for a given split (for reports)."""
    k = sum(1 for f in on_gpu if f)
    n_gpu = sum(int(n) for n, f in zip(tokens, on_gpu, strict=True) if f)
    t_pim = params[P_T_ATTN] + sum(table[int(n)] for n, f in zip(tokens, on_gpu, strict=True) if not f)
    t_gpu = gpu_time_ns(params, k, n_gpu)
    return {"t_comm_ns": float(params[P_T_COMM]), "t_gpu_ns": float(t_gpu), "t_pim_ns": float(t_pim),
            "t_total_ns": float(max(params[P_T_COMM], t_gpu, t_pim))}
