"""Every CP-SAT solve runs through :func:`sieveopt.solvers.cpsat_run.solve_by`: Ctrl-C interrupts
the program (CP-SAT would otherwise swallow it and return a truncated FEASIBLE result), and the
helper changes nothing about the solve itself."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from ortools.sat.python import cp_model

from sieveopt.solvers._interval_model import make_solver
from sieveopt.solvers.cpsat_run import solve_by
from tests.interrupt import interrupt, running


def _jobshop(n: int = 8) -> tuple[cp_model.CpModel, list]:
    """A small single-machine scheduling model with release times (deterministic, solves fast)."""
    m = cp_model.CpModel()
    dur = [3 + (7 * i) % 11 for i in range(n)]
    rel = [(5 * i) % 13 for i in range(n)]
    s = [m.new_int_var(rel[i], 200, f"s{i}") for i in range(n)]
    ivs = [m.new_fixed_size_interval_var(s[i], dur[i], f"i{i}") for i in range(n)]
    m.add_no_overlap(ivs)
    mk = m.new_int_var(0, 300, "mk")
    for i in range(n):
        m.add(mk >= s[i] + dur[i])
    m.minimize(mk + sum((i % 3) * s[i] for i in range(n)))
    return m, s


@pytest.mark.parametrize("in_thread", [False, True])
def test_solve_by_gives_the_plain_solve_result(in_thread):
    """Same status, objective and assignment as ``solver.solve`` with the same (deterministic)
    parameters, from the main thread (worker-thread path) and from another thread (direct)."""
    model, s = _jobshop()
    plain = make_solver(workers=2, seed=3, time_limit_s=5.0, deterministic=True)
    st0 = plain.solve(model)
    helper = make_solver(workers=2, seed=3, time_limit_s=5.0, deterministic=True)
    out: dict = {}
    if in_thread:
        th = threading.Thread(target=lambda: out.setdefault("st", solve_by(helper, model)))
        th.start()
        th.join()
    else:
        out["st"] = solve_by(helper, model)
    assert st0 == cp_model.OPTIMAL and out["st"] == st0
    assert helper.objective_value == plain.objective_value
    assert [helper.value(v) for v in s] == [plain.value(v) for v in s]
    assert helper.parameters.catch_sigint_signal is False  # the only parameter it sets


def test_solve_by_hands_a_solver_error_to_the_caller():
    """An error raised inside the solve (here: a solution callback) reaches the caller."""
    class Boom(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            raise ValueError("boom")

    model, _ = _jobshop()
    with pytest.raises(ValueError, match="boom"):
        solve_by(make_solver(workers=1, seed=0, time_limit_s=5.0), model, callback=Boom())


@pytest.mark.slow
def test_ctrl_c_during_a_cli_cpsat_solve_stops_the_command(tmp_path):
    """SIGINT while CP-SAT searches (its log has started) ends the command promptly with exit
    130 and no result; before the fix CP-SAT caught it and the command printed a FEASIBLE result
    and exited 0. The instance does not finish within its 120 s limit (measured: still FEASIBLE
    at a 20 s limit)."""
    with running([sys.executable, "-m", "sieveopt", "solve", "--model", "qwen3.5-397b-a17b", "--gpus", "8",
                  "--batch", "64", "--ignore-capacity", "--policy", "cpsat", "--time-limit", "120",
                  "--solver-param", "log=true", "--json"]) as proc:
        t0 = time.monotonic()
        for line in proc.stdout:  # CP-SAT's log goes to stdout, flushed line by line
            if "Starting CP-SAT solver" in line:
                break
            assert time.monotonic() - t0 < 90, "CP-SAT did not start"
        else:
            pytest.fail(f"exited before CP-SAT started: {proc.wait()} {proc.stderr.read()}")
        time.sleep(1.5)  # well inside the search
        rest, err, took_s = interrupt(proc, timeout_s=30)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert took_s < 10, took_s
    assert '"status"' not in rest and '"makespan_ns"' not in rest  # no JSON result printed
    assert "interrupted" in err
