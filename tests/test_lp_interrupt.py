"""Every LP / MIP solve (scipy's HiGHS, OR-Tools' GLOP) runs through
:func:`sieveopt.solvers.interruptible.run_interruptible`, as every CP-SAT solve does: a real
Ctrl-C during a long LP ends the program at once (exit 130, no result), and the helper changes
nothing about the call."""

from __future__ import annotations

import re
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sieveopt.solvers.interruptible import run_interruptible
from tests.interrupt import interrupt, running

ROOT = Path(__file__).resolve().parents[1]

# The placement LP bound (sieveopt place's exact policy) on a synthetic 64-step window with 8
# surrogate levels: 4096 level rows, one HiGHS interior-point solve of 12.5 s on the shared VM
# (0.2 s to build it), so a SIGINT 2 s after the start lands inside HiGHS.
_LP_BOUND = """
    import numpy as np
    from sieveopt.placement.lp_bound import lp_bound
    rng = np.random.default_rng(0)
    T, n, G, K = 64, 256, 8, 8
    c = (rng.integers(1, 1000, size=(T, n, 1, 1)) * (1 + rng.random((1, 1, G, K)))).astype(np.int64)
    print("solving", flush=True)
    print("value", lp_bound(c, np.arange(n), {}, capacity=n // G + 2, budget=0, max_rounds=1), flush=True)
"""
# A GLOP LP of 5 s (4000 sparse rows), through the helper with GLOP's stop (InterruptSolve).
_GLOP = """
    import numpy as np
    from ortools.linear_solver import pywraplp
    from sieveopt.solvers.interruptible import run_interruptible
    rng = np.random.default_rng(0)
    n = 4000
    lp = pywraplp.Solver.CreateSolver("GLOP")
    x = [lp.NumVar(0, 1, "") for _ in range(n)]
    for i in range(n):
        ct = lp.Constraint(-lp.infinity(), float(rng.random() * 10 + 1))
        for j in rng.choice(n, 50, replace=False):
            ct.SetCoefficient(x[j], float(rng.random()))
    for j in range(n):
        lp.Objective().SetCoefficient(x[j], -float(rng.random()))
    print("solving", flush=True)
    print("value", run_interruptible(lp.Solve, stop=lp.InterruptSolve), flush=True)
"""


def interruptible_script(src: str) -> str:
    """``src`` (printing "solving" before its long solve) as a ``python -c`` program that, on
    Ctrl-C, prints "interrupted <time.time()>" and exits 130 as the CLI does."""
    return ("import sys, time\ntry:\n" + textwrap.indent(textwrap.dedent(src), "    ")
            + "except KeyboardInterrupt:\n    print('interrupted', time.time(), flush=True)\n    sys.exit(130)\n")


@pytest.mark.slow
@pytest.mark.parametrize("script", [_LP_BOUND, _GLOP], ids=["highs-lp_bound", "glop"])
def test_ctrl_c_during_a_long_lp_ends_the_program_at_once(script):
    """The interrupt reaches the program within a second (measured: 0.2-4 ms; BENCHMARKS §20) and
    it exits 130 printing no value. Before the helper it waited for HiGHS to return: the lp_bound
    case ended 9.3 s after SIGINT (this test failed on the old code)."""
    with running([sys.executable, "-c", interruptible_script(script)]) as proc:
        assert proc.stdout.readline() == "solving\n"
        time.sleep(2.0)
        sent = time.time()
        out, err, _ = interrupt(proc)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    word, at = out.split()  # no value printed
    assert word == "interrupted" and float(at) - sent < 1.0, (out, sent)


def test_run_interruptible_gives_the_call_result_and_its_error():
    assert run_interruptible(lambda: 41 + 1) == 42
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("v", run_interruptible(lambda: "direct")))
    th.start()
    th.join()
    assert out["v"] == "direct"

    def boom():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_interruptible(boom)
    with pytest.raises(ValueError, match="deadline needs a stop"):
        run_interruptible(lambda: 1, deadline=time.perf_counter() + 1)


def test_run_interruptible_stops_at_the_deadline():
    """A call that runs until stopped returns once ``stop`` is called at the deadline."""
    flag = threading.Event()
    t0 = time.perf_counter()
    assert run_interruptible(lambda: flag.wait(30), stop=flag.set, deadline=t0 + 0.3) is True
    assert time.perf_counter() - t0 < 5


_LP_CALL = re.compile(r"\b(linprog|milp)\(|\.Solve\(\)|\.solve\(")


def test_every_lp_solve_goes_through_the_helper():
    """Each LP/MIP (and CP-SAT) solve in the package sits inside ``run_interruptible`` (directly
    or through ``solve_by``), like the CP-SAT rule; a bare new call fails this."""
    bare = []
    for path in [*(ROOT / "sieveopt").rglob("*.py"), *(ROOT / "solvers").rglob("*.py")]:
        for no, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _LP_CALL.search(code) and "run_interruptible(" not in code and "def " not in code \
                    and not code.strip().startswith(('"', "``", "'")):
                bare.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not bare, "\n".join(bare)
