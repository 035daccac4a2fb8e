"""Run one native solve (CP-SAT, an LP or MIP) so that Ctrl-C interrupts the program at once.

Every solver call that can run for long goes through :func:`run_interruptible`: CP-SAT through
:func:`sieveopt.solvers.cpsat_run.solve_by`, each LP / MIP directly (scipy's HiGHS ``linprog`` /
``milp``, OR-Tools' GLOP ``Solve``). Why: Python runs a signal handler only when the main thread
returns to the interpreter, so a Ctrl-C during a long native call waited for the call to end
(measured: a 12 s HiGHS interior-point solve exited 10 s after SIGINT) and a command could not be
stopped while an LP ran. Here, in the main thread, the call runs in a worker thread (all three
solvers release the GIL while they work) and the main thread waits on an event, which a signal
interrupts at once. On ``KeyboardInterrupt``:

* with ``stop`` (CP-SAT ``stop_search``, GLOP ``InterruptSolve``) the solve is stopped, waited for
  (repeated Ctrl-C absorbed, so no native solve outlives the interrupt), and the interrupt
  re-raised;
* without (scipy's HiGHS: scipy gives no handle to stop a running solve) the interrupt is
  re-raised at once and the solve is abandoned: it finishes in its daemon thread, its result
  dropped, or ends with the process (the CLI exits 130 right after).

Either way the caller never reads the interrupted result, so nothing is stored as finished. The
call itself, its parameters and its result are unchanged (deterministic solves stay
deterministic); off the main thread no signal can arrive, and the call runs directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

WAIT_STEP_S = 0.5  # longest wait between deadline checks; a signal interrupts a wait at once
STOP_REPEAT_S = 0.05  # interval of the repeated stop request while a stopped solve returns


def run_interruptible(call: Callable[[], R], *, stop: Callable[[], Any] | None = None,
                      deadline: float | None = None) -> R:
    """``call()``, interruptible by Ctrl-C (module docstring), and stopped with ``stop()`` at
    ``deadline`` (a ``time.perf_counter()`` value; None: none; needs ``stop``). Returns the call's
    result; an exception raised by the call reaches the caller."""
    if deadline is not None and stop is None:
        raise ValueError("run_interruptible: a deadline needs a stop function")
    if threading.current_thread() is not threading.main_thread() and deadline is None:
        return call()  # no signal can reach this thread: nothing to watch
    done = threading.Event()
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            out["result"] = call()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread below
            out["error"] = exc
        finally:
            done.set()

    # Daemon: a native solve never blocks interpreter exit.
    threading.Thread(target=work, name="native-solve", daemon=True).start()
    # Wait on an event, not Thread.join: on Python 3.11 a Ctrl-C inside join can mark a live
    # thread as finished.
    try:
        while not done.is_set():
            left = WAIT_STEP_S if deadline is None else deadline - time.perf_counter()
            if left <= 0:
                _stop(stop, done)
            else:
                done.wait(min(WAIT_STEP_S, left))
    except KeyboardInterrupt:
        if stop is not None:
            _stop(stop, done)
        raise
    if "error" in out:
        raise out["error"]
    return out["result"]


def _stop(stop: Callable[[], Any], done: threading.Event) -> None:
    """Stop the solve and wait until it has returned. The request is repeated: one made before
    the worker thread has entered the solve is a no-op (CP-SAT, GLOP). A further Ctrl-C meanwhile
    is absorbed, so the native solve never outlives the interrupt that ends it."""
    while not done.is_set():
        stop()
        try:
            done.wait(STOP_REPEAT_S)
        except KeyboardInterrupt:
            pass
