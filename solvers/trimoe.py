"""TriMoE policies on the offloading DAG (modes ``gpu_fetch``/``cpu``/``ndp``, :mod:`sieveopt.offload_tiers`).

* ``trimoe``: the paper's hot/warm/cold classification + bottleneck-aware greedy
  (:mod:`sieveopt.solvers.trimoe_ref`; ``impl=numba`` runs the compiled twin, whose decision
  latency is measured per layer and charged like Sieve's).
* the paper's baselines (trimoe_gem.md §1.1 item 2): ``gpu-cpu`` ("GPU-CPU designs offload cold
  experts to the CPU": an expert runs on the CPU when the CPU is faster than the GPU including
  its PCIe fetch, else on the GPU), ``gpu-ndp`` ("GPU-NDP designs offload all non-hot experts
  to DIMM-NDP": the GPU only when it beats NDP) and ``gpu-fetch`` (GPU-only, every expert's
  weights fetched over PCIe).

Every policy fixes modes and hands them to the list scheduler (:func:`sieveopt.solvers.sieve.finish`),
so its schedule is a real schedule of the DAG that ``check()`` verifies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sieveopt.dag import PREFETCH, SHARED, TaskDAG
from sieveopt.instance import LayerInstance
from sieveopt.models.costmodel import CostModel
from sieveopt.offload_dimms import task_home
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH, MODE_NDP, ndp_ridge_tokens
from sieveopt.solvers.base import SolveResult
from sieveopt.solvers.sieve import finish
from sieveopt.solvers.trimoe_ref import CLASS_NAMES, trimoe_plan_ref
from sieveopt.targets import MODE_GPU

_UNIT_MODE = (MODE_GPU_FETCH, MODE_CPU, MODE_NDP)


@dataclass(frozen=True)
class TrimoeInputs:
    """One GPU's planner inputs (integer ns from the DAG)."""

    gpu: int
    experts: np.ndarray     # routed expert ids
    tokens: np.ndarray
    t_gpu: np.ndarray       # GPU durations (gpu_fetch, or gpu for an HBM-resident expert)
    t_cpu: np.ndarray
    t_ndp: np.ndarray
    base_gpu_ns: int        # shared experts on the GPU (they run beside the routed ones)
    num_dimms: int
    n_warm: int
    homes: np.ndarray | None = None   # home DIMM per expert (ndp_placement "home"), None = any engine


def _arr(tasks: list, f: Any) -> np.ndarray:
    return np.array([f(t) for t in tasks], np.int64)


def gpu_mode(task: Any) -> str:
    """The task's GPU mode: ``gpu`` when its weights are resident in HBM ("GPU hit:
    f_calc_gpu(L)", trimoe_gem.md §1.3 item 3; ``DagOptions.resident_experts``), else the fetch."""
    return MODE_GPU if MODE_GPU in task.modes else MODE_GPU_FETCH


def trimoe_inputs(dag: TaskDAG, instance: LayerInstance) -> list[TrimoeInputs]:
    """Per-GPU inputs of the TriMoE planner, read from the DAG's mode durations."""
    n_warm = ndp_ridge_tokens(instance.system, instance.model)
    out = []
    for g in range(dag.num_gpus):
        tasks = [t for t in dag.tasks if t.kind == "expert" and t.gpu == g]
        base = sum(t.modes[MODE_GPU].duration_ns for t in dag.tasks if t.kind == SHARED and t.gpu == g)
        # Next-layer prefetches hold the PCIe link every GPU miss needs: the GPU unit starts with
        # them (the paper runs prefetch in the background, outside its objective [I]).
        base += sum(c.duration_ns for t in dag.tasks if t.kind == PREFETCH and t.gpu == g for c in t.modes.values())
        dimms = dag.resource("ndp", g).capacity
        out.append(TrimoeInputs(g, _arr(tasks, lambda t: t.expert), _arr(tasks, lambda t: t.tokens),
                                _arr(tasks, lambda t: t.modes[gpu_mode(t)].duration_ns),
                                _arr(tasks, lambda t: t.modes[MODE_CPU].duration_ns),
                                _arr(tasks, lambda t: t.modes[MODE_NDP].duration_ns), int(base), int(dimms), n_warm,
                                homes if (homes := _arr(tasks, lambda t: task_home(dag, t, MODE_NDP))).size
                                and homes.min() >= 0 else None))
    return out


def plan(inp: TrimoeInputs, impl: str = "numba", refine: bool = True) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(unit per expert, class per expert, predicted makespan ns, decision ns) on one GPU;
    ``refine=False`` stops after the greedy pass (no bottleneck moves)."""
    if impl == "numba":
        from sieveopt.solvers._trimoe_numba import make_workspace, trimoe_plan, warm_up

        warm_up()
        n = len(inp.tokens)
        out, loads = make_workspace(n, inp.num_dimms, int(inp.tokens.max(initial=0)))
        rows = [inp.t_gpu, inp.t_cpu, inp.t_ndp, inp.tokens] + ([inp.homes] if inp.homes is not None else [])
        data = np.stack(rows).astype(np.int64)
        ints = np.array([inp.n_warm, inp.base_gpu_ns, inp.num_dimms, int(refine)], np.int64)
        t0 = time.perf_counter_ns()
        m = trimoe_plan(data, ints, out, loads)
        dt = time.perf_counter_ns() - t0
        if m < 0:
            raise RuntimeError("trimoe_plan: workspace too small for the largest token count")
        return out[0, :n].copy(), out[1, :n].copy(), int(m), dt
    t0 = time.perf_counter_ns()
    u, c, m = trimoe_plan_ref(inp.t_gpu.tolist(), inp.t_cpu.tolist(), inp.t_ndp.tolist(), inp.tokens.tolist(),
                              inp.n_warm, inp.base_gpu_ns, inp.num_dimms, refine,
                              None if inp.homes is None else inp.homes.tolist())
    dt = time.perf_counter_ns() - t0
    return np.array(u, np.int64), np.array(c, np.int64), int(m), dt


def solve_trimoe(dag: TaskDAG, instance: LayerInstance, cost: CostModel, *, impl: str = "numba",
                 refine: bool = True, **_: Any) -> SolveResult:
    """TriMoE's classification + bottleneck-aware greedy on every GPU (``refine=False``: the
    greedy pass without the bottleneck moves, the refinement-off ablation)."""
    t_wall = time.perf_counter()
    modes: dict[int, str] = {}
    classes = {name: 0 for name in CLASS_NAMES}
    predicted, decision = 0, 0
    for inp in trimoe_inputs(dag, instance):
        unit, cls, m, dt = plan(inp, impl, refine)
        for e, u in zip(inp.experts.tolist(), unit.tolist(), strict=True):
            modes[e] = gpu_mode(dag.tasks[dag.expert_task[e]]) if u == 0 else _UNIT_MODE[min(u, 2)]
        for c in cls.tolist():
            classes[CLASS_NAMES[c]] += 1
        predicted, decision = max(predicted, m), max(decision, dt)
    meta = {"impl": impl, "refine": bool(refine), "classes": classes, "predicted_expert_phase_ns": predicted,
            "n_warm_tokens": ndp_ridge_tokens(instance.system, instance.model)}
    return finish(dag, "trimoe", modes, attention=MODE_GPU, wall_t0=t_wall,
                  decision_ns=decision if impl == "numba" else None, meta=meta)


def _static(dag: TaskDAG, policy: str, choose) -> SolveResult:  # noqa: ANN001
    t_wall = time.perf_counter()
    modes = {t.expert: choose(t) for t in dag.tasks if t.kind == "expert"}
    return finish(dag, policy, modes, attention=MODE_GPU, wall_t0=t_wall, decision_ns=0)


def _faster(t: Any, alt: str) -> str:
    g = gpu_mode(t)
    return g if t.modes[g].duration_ns <= t.modes[alt].duration_ns else alt


def solve_gpu_cpu(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    """GPU-CPU offloading: cold experts (CPU faster than GPU + fetch) on the CPU, the rest on the GPU."""
    return _static(dag, "gpu-cpu", lambda t: _faster(t, MODE_CPU))


def solve_gpu_ndp(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    """GPU-NDP offloading: non-hot experts (NDP faster than GPU + fetch) on DIMM-NDP."""
    return _static(dag, "gpu-ndp", lambda t: _faster(t, MODE_NDP))


def solve_gpu_fetch(dag: TaskDAG, instance: LayerInstance, cost: CostModel, **_: Any) -> SolveResult:
    """GPU only, every routed expert fetched over PCIe (or read from HBM when resident)."""
    return _static(dag, "gpu-fetch", gpu_mode)
