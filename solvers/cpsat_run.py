"""Run one CP-SAT solve so that Ctrl-C interrupts the program and a deadline stops the search.

Every CP-SAT call in the toolkit goes through :func:`solve_by` (one mechanism, not a patch per
site; LPs use the same core, :func:`sieveopt.solvers.interruptible.run_interruptible`). Why: by
default CP-SAT installs its own SIGINT handler for the duration of a solve
(``catch_sigint_signal``) and treats Ctrl-C like a reached time limit: the solve returns
FEASIBLE and Python never sees the interrupt, so a sweep would store a truncated solve as a
finished point and carry on. Here CP-SAT does not catch SIGINT; in the main thread (where Python
delivers signals) the solve runs in a worker thread (the OR-Tools binding releases the GIL while
it searches) and the main thread waits on an event, which a signal interrupts at once. On
``KeyboardInterrupt`` it stops the search, waits for the solver to return (ignoring repeated
Ctrl-C meanwhile, so no native solver thread outlives the interpreter), and re-raises: the
caller never reads the truncated result and the CLI's interrupt handling applies (exit 130,
a sweep's "INTERRUPTED: re-run to resume").

The parameters that reach CP-SAT are the caller's (``catch_sigint_signal`` only decides who
handles SIGINT), and the calling thread does not affect the search, so results and deterministic
solves are unchanged.
"""

from __future__ import annotations

from typing import Any

from ortools.sat.python import cp_model

from sieveopt.solvers.interruptible import run_interruptible


def solve_by(solver: cp_model.CpSolver, model: cp_model.CpModel, deadline: float | None = None,
             callback: cp_model.CpSolverSolutionCallback | None = None) -> Any:
    """``solver.solve(model, callback)``, interruptible by Ctrl-C, and stopped (``stop_search``)
    at ``deadline`` (a ``time.perf_counter()`` value; None: no deadline). CP-SAT checks its own
    wall-clock limit between chunks of work; the deadline stops a solve whose limit was computed
    before a slow model build or presolve near the caller's deadline. A deterministic solve
    (``max_deterministic_time``) should get no deadline. Returns the solve's status."""
    solver.parameters.catch_sigint_signal = False
    return run_interruptible(lambda: solver.solve(model, callback), stop=solver.stop_search, deadline=deadline)
