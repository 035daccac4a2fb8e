"""TriMoE's planner in reference Python: hot/warm/cold classification + bottleneck-aware greedy.

One MoE layer on one GPU (TriMoE, arXiv 2603.01058; trimoe_gem.md §1.2-§1.4). Units: the GPU
(unit 0), the AMX CPU (unit 1) and D DIMM-NDP engines (units 2..D+1). Inputs are the integer ns
durations of each activated expert on each tier (the DAG's ``gpu_fetch``/``cpu``/``ndp`` modes),
so the planner optimises exactly what the schedule will charge.

1. **Classify** ("hot experts to the GPU, warm experts to the AMX CPU, cold experts to DIMM-NDP",
   [C]): hot when the GPU including its PCIe fetch is no slower than the CPU (the crossover n_hot
   of T_GPU_miss(n) and T_CPU(n)); otherwise warm when the expert's tokens reach the NDP ridge
   n_warm (NDP compute-bound: "warm ... can saturate NDP compute" [C]); otherwise cold.
2. **Greedy initial assignment** ("online greedy initial assignment" [S]): experts by tokens,
   descending (ties: lower index first); each goes to the unit whose finish time after adding it
   is lowest (the least-loaded NDP engine stands for NDP); ties go to the expert's class unit,
   then GPU, CPU, NDP.
3. **Bottleneck-aware refinement** ("bottleneck-aware iterative moves that reduce the makespan"
   [S]): take the most loaded unit (first on ties); among moves of one of its experts to the
   GPU, the CPU or the least-loaded other NDP engine, apply the one with the lowest resulting
   makespan if it is strictly lower (first found on ties, experts by index, targets GPU, CPU,
   NDP); stop when none helps or after ``2 x experts`` moves (our cap [I]). ``refine=False``
   skips this step (the study's refinement-off ablation).

Objective: max(GPU sum + ``base_gpu_ns``, CPU sum, max over NDP engines of its sum) (§1.3 item 5,
without the contention term). :mod:`sieveopt.solvers._trimoe_numba` is the compiled twin
(identical decisions, tested).
"""

from __future__ import annotations

from collections.abc import Sequence

KIND_GPU, KIND_CPU, KIND_NDP = 0, 1, 2
CLASS_NAMES = ("hot", "warm", "cold")


def classify_ref(t_gpu: Sequence[int], t_cpu: Sequence[int], tokens: Sequence[int], n_warm: int) -> list[int]:
    """0 hot / 1 warm / 2 cold per expert (step 1)."""
    return [KIND_GPU if t_gpu[i] <= t_cpu[i] else KIND_CPU if tokens[i] >= n_warm else KIND_NDP
            for i in range(len(tokens))]


def _dur(kind: int, i: int, t_gpu: Sequence[int], t_cpu: Sequence[int], t_ndp: Sequence[int]) -> int:
    return t_gpu[i] if kind == KIND_GPU else t_cpu[i] if kind == KIND_CPU else t_ndp[i]


def trimoe_plan_ref(t_gpu: Sequence[int], t_cpu: Sequence[int], t_ndp: Sequence[int], tokens: Sequence[int],
                    n_warm: int, base_gpu_ns: int, num_dimms: int, refine: bool = True,
                    homes: Sequence[int] | None = None) -> tuple[list[int], list[int], int]:
    """(unit per expert, class per expert, predicted makespan ns); unit 0 GPU, 1 CPU, 2+d NDP d.
    ``refine=False``: the greedy pass alone (steps 1-2). ``homes[i] >= 0``: expert i's NDP job
    runs only on that DIMM ("NDP can run an expert only on the DIMM that stores it", §1.4 item 3;
    ``DagOptions.ndp_placement = "home"``); otherwise on the least-loaded engine."""
    n = len(tokens)
    cls = classify_ref(t_gpu, t_cpu, tokens, n_warm)
    loads = [int(base_gpu_ns), 0] + [0] * num_dimms
    unit = [-1] * n
    home = list(homes) if homes is not None else [-1] * n
    for i in sorted(range(n), key=lambda j: (-tokens[j], j)):
        k = 2 + home[i] if home[i] >= 0 else 2 + min(range(num_dimms), key=lambda d: (loads[2 + d], d))
        best_f, best_r, best_u = 0, 0, -1
        for kind, u in ((KIND_GPU, 0), (KIND_CPU, 1), (KIND_NDP, k)):
            f = loads[u] + _dur(kind, i, t_gpu, t_cpu, t_ndp)
            r = 0 if kind == cls[i] else 1 + kind
            if best_u < 0 or f < best_f or (f == best_f and r < best_r):
                best_f, best_r, best_u = f, r, u
        unit[i] = best_u
        loads[best_u] = best_f
    U = len(loads)
    for _ in range(2 * n if refine else 0):
        b = max(range(U), key=lambda u: (loads[u], -u))
        top = sorted(range(U), key=lambda u: (-loads[u], u))[:3]
        ndp_min = 2 + min((d for d in range(num_dimms) if 2 + d != b), key=lambda d: (loads[2 + d], d), default=-3)
        bkind = min(b, KIND_NDP)
        best_new, best_i, best_u = loads[b], -1, -1
        for i in range(n):
            if unit[i] != b:
                continue
            for kind, u in ((KIND_GPU, 0), (KIND_CPU, 1), (KIND_NDP, 2 + home[i] if home[i] >= 0 else ndp_min)):
                if u == b or u < 0:
                    continue
                other = next((loads[x] for x in top if x != b and x != u), 0)
                new = max(loads[b] - _dur(bkind, i, t_gpu, t_cpu, t_ndp),
                          loads[u] + _dur(kind, i, t_gpu, t_cpu, t_ndp), other)
                if new < best_new:
                    best_new, best_i, best_u = new, i, u
        if best_i < 0:
            break
        loads[b] -= _dur(bkind, best_i, t_gpu, t_cpu, t_ndp)
        loads[best_u] += _dur(min(best_u, KIND_NDP), best_i, t_gpu, t_cpu, t_ndp)
        unit[best_i] = best_u
    return unit, cls, max(loads)
