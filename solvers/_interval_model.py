"""The interval model of a layer DAG in CP-SAT, shared by the exact solvers.

One definition of the core every CP-SAT formulation of a layer DAG starts from
(:mod:`.cpsat`'s docstring): per task a start variable; per mode of a multi-mode task a Boolean
(exactly one) and an optional fixed-size interval on the shared start, ``end = start + sum(lit x
duration)``; a single-mode task's end is ``start + duration`` and must fit the horizon; per
resource ``NoOverlap`` (``Cumulative`` when capacity > 1) over the intervals that hold it; every
DAG edge ``start[dst] >= end[src] + lag`` (a conditional edge enforced by its mode literal); ``M
>= end`` of every task that is a sink under some mode choice. Durations and lags are given (ns,
or quanta), so a caller may scale them. Variables and constraints are created in the same order
as :func:`.cpsat.solve_cpsat` builds them, so a model built here is the same CP-SAT model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from sieveopt.dag import TaskDAG


@dataclass
class IntervalModel:
    """The built model and its variables. ``lit[t][m]`` is a Boolean, or the int 1 for the only
    mode of a single-mode task; ``end[t]`` a variable (multi-mode) or a linear expression."""

    model: cp_model.CpModel
    makespan: Any
    start: list[Any]
    end: list[Any]
    lit: list[dict[str, Any]]


def build_interval_model(dag: TaskDAG, durations: list[dict[str, int]], lags: list[int],
                         horizon: int, model: cp_model.CpModel | None = None) -> IntervalModel:
    """The interval model of ``dag`` with ``durations[t][mode]`` and ``lags[i]`` (edge ``i``),
    every time variable in ``[0, horizon]`` (see module docstring)."""
    model = model or cp_model.CpModel()
    n = len(dag.tasks)
    M = model.new_int_var(0, horizon, "makespan")
    start = [model.new_int_var(0, horizon, f"s{t}") for t in range(n)]
    end: list[Any] = [None] * n
    lit: list[dict[str, Any]] = [dict() for _ in range(n)]
    by_res: dict[int, list[Any]] = {}
    for t in dag.tasks:
        tid, d = t.tid, durations[t.tid]
        if t.has_choice:
            for m in t.modes:
                lit[tid][m] = model.new_bool_var(f"x{tid}_{m}")
            model.add_exactly_one(lit[tid].values())
            end[tid] = model.new_int_var(0, horizon, f"e{tid}")
            model.add(end[tid] == start[tid] + sum(d[m] * lit[tid][m] for m in t.modes))
            for m, mc in t.modes.items():
                if d[m] <= 0:
                    continue
                iv = model.new_optional_fixed_size_interval_var(start[tid], d[m], lit[tid][m], f"i{tid}_{m}")
                for rid in mc.resources:
                    by_res.setdefault(rid, []).append(iv)
        else:
            (m, mc), = t.modes.items()
            lit[tid][m] = 1
            end[tid] = start[tid] + d[m]
            model.add(start[tid] + d[m] <= horizon)
            if d[m] > 0:
                iv = model.new_fixed_size_interval_var(start[tid], d[m], f"i{tid}")
                for rid in mc.resources:
                    by_res.setdefault(rid, []).append(iv)
    for rid, ivs in by_res.items():
        cap = dag.resources[rid].capacity
        if len(ivs) < 2 and cap == 1:
            continue
        if cap == 1:
            model.add_no_overlap(ivs)
        else:
            model.add_cumulative(ivs, [1] * len(ivs), cap)
    for i, e in enumerate(dag.edges):
        lv = 1 if e.if_mode is None else lit[e.if_mode[0]].get(e.if_mode[1])
        if lv is None:
            continue  # conditioned on a mode the task does not have: never active
        c = model.add(start[e.dst] >= end[e.src] + lags[i])
        if not isinstance(lv, int):
            c.only_enforce_if(lv)
    for t in range(n):
        if all(e.if_mode is not None for e in dag.succs[t]):  # a sink under some mode choice
            model.add(M >= end[t])
    return IntervalModel(model, M, start, end, lit)


def mode_literals(model: cp_model.CpModel, dag: TaskDAG) -> list[dict[str, Any]]:
    """Per task, mode -> Boolean (exactly one) or the constant 1 of a single-mode task (the mode
    choice of the models that need no intervals: the periodic load and phase models)."""
    lit: list[dict[str, Any]] = []
    for t in dag.tasks:
        if t.has_choice:
            d = {m: model.new_bool_var(f"x{t.tid}{m}") for m in t.modes}
            model.add_exactly_one(d.values())
        else:
            d = {next(iter(t.modes)): 1}
        lit.append(d)
    return lit


def chosen_modes(solver: cp_model.CpSolver, lit: list[dict[str, Any]]) -> tuple[str, ...]:
    """The mode each task runs in, read from a solved model's literals."""
    return tuple(next(m for m, lv in d.items() if (lv if isinstance(lv, int) else solver.boolean_value(lv)))
                 for d in lit)


def make_solver(*, workers: int, seed: int, time_limit_s: float, deterministic: bool = False,
                log: bool = False) -> cp_model.CpSolver:
    """A CP-SAT solver with the toolkit's conventions: ``deterministic`` bounds deterministic
    time (interleaved search when several workers, so runs repeat), else wall seconds."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = max(1, int(workers))
    p.random_seed = int(seed)
    p.log_search_progress = bool(log)
    if deterministic:
        if p.num_workers > 1:
            p.interleave_search = True
        p.max_deterministic_time = float(time_limit_s)
    else:
        p.max_time_in_seconds = float(time_limit_s)
    return solver
