"""Charged scheduler latency: how long the ``sched[g]`` task of the layer DAG lasts, per policy.

The Sieve paper runs its scheduler on every GPU after the AllGather of the token counts, in
parallel with the dispatch, and says its overhead "is fully accounted for" in the results
(papers.md §1.5: "Overhead ~ 20 us on a B200 for one MoE layer of DeepSeek-R1, without kernel
optimization; ... counted in results"). So every command that reports a step or layer time
(``run``, ``replay``, ``pareto``, ``compare``) charges the same latency, and it comes from a
*model*, never from the wall clock of the one call that made the schedule (that made replays of
identical inputs differ by up to 6 %: issue 12).

Sources (:func:`resolve`), in order:

* ``"<N>"`` / an int: a fixed budget of N ns for every policy that decides at run time;
* ``"default"`` (the default): the deterministic figure each policy declares (below);
* ``"calibrated"``: the policy's median decision latency measured on this machine by a short
  calibration run (:func:`calibrate`), cached per machine in
  ``$SIEVEOPT_CACHE_DIR`` (default ``~/.cache/sieveopt``)/``scheduler_latency.json``; the same
  machine gives the same number on every later run.

Whatever the source, a policy charged nothing is one that declares (in its registry entry,
:class:`sieveopt.solvers.PolicyInfo`) a ``static`` decision (it decides nothing at run time:
``gpu_only``, ``noexp``, ``allexp``; label ``static``) or an ``offline`` one (a reference solver
run ahead of time, not something a serving loop runs per layer, e.g. CP-SAT; label ``offline``).

The default table is declared per policy (``PolicyInfo.scheduler_latency_ns``, ns per layer and
GPU): the compiled Sieve planner's median is 0.73-1.25 us per GPU plan on the development
machine (BENCHMARKS.md §1, 150 layers x every GPU, one core), rounded to 1000 ns. sieve-plus is
0.87-1.49x Sieve through the solver API (BENCHMARKS.md §1): 1500 ns. PIMoE and Duplex are the
same sort-and-walk shape as Sieve (one sort by token count, one linear scan, papers.md §3 "a
single parametrized greedy covers them"), so a compiled implementation would cost what Sieve
costs: 1000 ns; their in-tree code is reference Python, whose wall time is not what a serving
system would pay. A policy that runs another compiled planner under an overlapped execution
model may declare that planner's figure per model (``PolicyInfo.scheduler_latency_by_overlap``;
:func:`resolve` takes the model as ``overlap``). sieve-pipe makes sieve-plus's decision under
``serial`` with its own Sieve-shaped kernel and plans with its sweep under ``microbatch``/``ideal``;
both measured side by side with Sieve's planner on a pinned core at 0.93-1.32x its median
(``benchmarks/pipe_latency.py``, BENCHMARKS.md §16c): 1000 ns under every model. A policy that declares no figure (a plugin) is charged
:data:`UNKNOWN_POLICY_NS`, the Sieve planner's figure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sieveopt.errors import SieveoptError

#: What a policy declaring no ``scheduler_latency_ns`` is charged under ``default``: the Sieve
#: planner's figure (ns).
UNKNOWN_POLICY_NS = 1000
#: Decision kinds (``PolicyInfo.decision``) charged 0; the kind is the charge's label.
UNCHARGED_DECISIONS = ("static", "offline")
SOURCES = ("default", "calibrated")


@dataclass(frozen=True)
class SchedulerLatency:
    """The charge of one policy: ``ns`` and where it came from (``source``)."""

    policy: str
    ns: int
    source: str   # "default", "calibrated", "fixed", "static" (no decision), "offline"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_spec(text: str | int | None) -> str | int:
    """``--scheduler-latency-ns`` value: ``default``, ``calibrated`` or a non-negative integer."""
    if text is None:
        return "default"
    if isinstance(text, int):
        if text < 0:
            raise SieveoptError(f"--scheduler-latency-ns: must be >= 0, got {text}")
        return text
    s = str(text).strip().lower()
    if s in SOURCES:
        return s
    try:
        n = int(s)
    except ValueError:
        raise SieveoptError(f"--scheduler-latency-ns: expected 'default', 'calibrated' or an integer "
                            f"number of ns, got {text!r}") from None
    if n < 0:
        raise SieveoptError(f"--scheduler-latency-ns: must be >= 0, got {n}")
    return n


def resolve(policy: str, spec: str | int | None = "default", *, calibration: dict[str, Any] | None = None,
            overlap: str = "serial") -> SchedulerLatency:
    """The latency charged to ``policy`` under ``spec`` (see the module docstring) when it plans
    for execution model ``overlap`` (a policy may declare another figure per model).

    ``calibration`` (for ``"calibrated"``): keyword arguments of :func:`calibrate` (model,
    system, batch); required for that source."""
    from sieveopt.solvers import policy_info

    spec = parse_spec(spec)
    info = policy_info(policy)
    if info.decision in UNCHARGED_DECISIONS:
        return SchedulerLatency(policy, 0, info.decision)
    if isinstance(spec, int):
        return SchedulerLatency(policy, spec, "fixed")
    if spec == "default":
        return SchedulerLatency(policy, default_ns(policy, overlap), "default")
    if calibration is None:
        raise SieveoptError("scheduler latency 'calibrated' needs the problem (model, system, batch) to calibrate on")
    return SchedulerLatency(policy, calibrate(policy, **calibration, overlap=overlap), "calibrated")


def default_ns(policy: str, overlap: str = "serial") -> int:
    """The deterministic default charge ``policy`` declares for execution model ``overlap`` (0 for
    static/offline decisions)."""
    from sieveopt.solvers import policy_info

    info = policy_info(policy)
    if info.decision in UNCHARGED_DECISIONS:
        return 0
    if overlap in info.scheduler_latency_by_overlap:
        return int(info.scheduler_latency_by_overlap[overlap])
    return UNKNOWN_POLICY_NS if info.scheduler_latency_ns is None else int(info.scheduler_latency_ns)


def default_table(overlap: str = "serial") -> dict[str, int]:
    """Registered policy -> its default charge under ``overlap``, for those charged at run time
    (registration order)."""
    from sieveopt.solvers import SOLVERS, policy_info

    return {p: default_ns(p, overlap) for p in SOLVERS.ordered()
            if policy_info(p).decision not in UNCHARGED_DECISIONS}


# -- applying a charge to a DAG --------------------------------------------------------------------
def with_scheduler_latency(dag: Any, ns: int) -> Any:
    """``dag`` with every ``sched`` task lasting ``ns`` (the same object when it already does).

    Only the scheduler tasks are replaced; the other tasks, edges and resources are shared, so
    this costs O(tasks) and no cost-model calls."""
    from sieveopt.dag import SCHED, ModeCost, TaskDAG

    ns = int(ns)
    if all(t.kind != SCHED or all(c.duration_ns == ns for c in t.modes.values()) for t in dag.tasks):
        return dag
    tasks = tuple(
        dataclasses.replace(t, modes={m: ModeCost(ns, c.resources) for m, c in t.modes.items()})
        if t.kind == SCHED else t for t in dag.tasks)
    meta = {**dag.meta, "scheduler_latency_ns": ns}
    return TaskDAG(tasks, dag.edges, dag.resources, dag.num_gpus,
                   dataclasses.replace(dag.options, scheduler_latency_ns=ns), meta=meta)


# -- calibration, cached per machine ------------------------------------------------------------
def machine_key() -> str:
    """Identifies this machine (host, CPU, Python) in the calibration cache."""
    import numba

    return "|".join((platform.node(), platform.processor() or platform.machine(), platform.python_version(),
                     f"numba {numba.__version__}"))


def cache_path() -> Path:
    return Path(os.environ.get("SIEVEOPT_CACHE_DIR") or Path.home() / ".cache" / "sieveopt") / "scheduler_latency.json"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def calibrate(policy: str, model: Any, system: Any, batch: int, *, layers: int = 6, repeats: int = 15,
              seed: int = 0, refresh: bool = False, overlap: str = "serial") -> int:
    """Median decision latency (ns) of ``policy`` over ``layers`` sampled layers x ``repeats``
    calls through the solver API (``SolveResult.decision_ns``: the per-GPU plan time, max over
    GPUs), cached per (machine, policy, model, system, GPUs, batch); a policy that plans per
    execution model (declares ``overlap``) is timed planning for ``overlap`` (cached per model
    too)."""
    from sieveopt.cli.output import atomic_write_text
    from sieveopt.instance import sample_layers
    from sieveopt.pipeline import build_dag
    from sieveopt.solvers import policy_info, solve

    params = {"overlap": overlap} if "overlap" in policy_info(policy).params else {}
    key = "|".join((machine_key(), policy, model.name, system.name, str(system.num_gpus), str(batch),
                    *((overlap,) if params and overlap != "serial" else ())))
    path = cache_path()
    cache = _load_cache(path)
    if not refresh and isinstance(cache.get(key), int):
        return int(cache[key])
    samples = []
    for inst in sample_layers(model, system, batch, layers, seed):
        dag, cost = build_dag(inst)
        solve(policy, dag, inst, cost, **params)          # warm-up (JIT, caches)
        for _ in range(repeats):
            d = solve(policy, dag, inst, cost, **params).decision_ns
            if d is not None:
                samples.append(int(d))
    ns = int(statistics.median(samples)) if samples else 0
    cache[key] = ns
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cache, indent=1, sort_keys=True))
    return ns


def _policy_info(policy: str) -> Any:
    from sieveopt.solvers import policy_info

    return policy_info(policy)


def describe(spec: str | int | None) -> str:
    """One line for tables and result files."""
    spec = parse_spec(spec)
    if isinstance(spec, int):
        return f"scheduler latency: fixed {spec} ns per layer for run-time planners (static and offline: 0)"
    if spec == "default":
        tab = ", ".join(f"{p} {v} ns" for p, v in default_table().items())
        per = "; ".join(f"{p} under {o} {v} ns" for p in default_table() for o, v in
                        sorted(_policy_info(p).scheduler_latency_by_overlap.items()))
        return (f"scheduler latency: deterministic default ({tab}; "
                f"{per if per else 'the same under every execution model'}; static and offline: 0)")
    return "scheduler latency: calibrated median per policy on this machine (cached; static and offline: 0)"
