"""Run one CP-SAT solve so that Ctrl-C interrupts the program and a deadline stops the search.

Every CP-SAT call in the toolkit goes through :func:`solve_by` (one mechanism, not a patch per
site). Why: by default CP-SAT installs its own SIGINT handler for the duration of a solve
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

import threading
import time
from typing import Any

from ortools.sat.python import cp_model

WAIT_STEP_S = 0.5  # longest wait between deadline checks; a signal interrupts a wait at once
STOP_REPEAT_S = 0.05  # interval of the repeated stop request while a stopped solve returns


def solve_by(solver: cp_model.CpSolver, model: cp_model.CpModel, deadline: float | None = None,
             callback: cp_model.CpSolverSolutionCallback | None = None) -> Any:
    """``solver.solve(model, callback)``, interruptible by Ctrl-C, and stopped (``stop_search``)
    at ``deadline`` (a ``time.perf_counter()`` value; None: no deadline). CP-SAT checks its own
    wall-clock limit between chunks of work; the deadline stops a solve whose limit was computed
    before a slow model build or presolve near the caller's deadline. A deterministic solve
    (``max_deterministic_time``) should get no deadline. Returns the solve's status."""
    solver.parameters.catch_sigint_signal = False
    main = threading.current_thread() is threading.main_thread()
    if not main and deadline is None:  # no signal can reach this thread: nothing to watch
        return solver.solve(model, callback)
    done = threading.Event()
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            out["status"] = solver.solve(model, callback)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread below
            out["error"] = exc
        finally:
            done.set()

    # Daemon: a native solve never blocks interpreter exit (it is always waited for below).
    threading.Thread(target=work, name="cpsat-solve", daemon=True).start()
    # Wait on an event, not Thread.join: on Python 3.11 a Ctrl-C inside join can mark a live
    # thread as finished.
    try:
        while not done.is_set():
            left = WAIT_STEP_S if deadline is None else deadline - time.perf_counter()
            if left <= 0:
                _stop(solver, done)
            else:
                done.wait(min(WAIT_STEP_S, left))
    except KeyboardInterrupt:
        _stop(solver, done)
        raise
    if "error" in out:
        raise out["error"]
    return out["status"]


def _stop(solver: cp_model.CpSolver, done: threading.Event) -> None:
    """Stop the search and wait until the solve has returned. The request is repeated: one made
    before the worker thread has entered the solve is a no-op in OR-Tools. A further Ctrl-C
    meanwhile is absorbed, so the native solve never outlives the interrupt that ends it."""
    while not done.is_set():
        solver.stop_search()
        try:
            done.wait(STOP_REPEAT_S)
        except KeyboardInterrupt:
            pass
