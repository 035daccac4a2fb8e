"""How fast Ctrl-C ends a program during a long HiGHS LP (session 10, BENCHMARKS §20).

Runs the placement LP bound of ``tests/test_lp_interrupt.py`` (one 12.5 s interior-point round
on the shared VM) in a subprocess, sends SIGINT 2 s into it and prints, per run, when the
``KeyboardInterrupt`` reached the script and when the process ended; then the exit time of the
same script with no LP running (module teardown alone), for comparison.

Usage: ``python benchmarks/lp_interrupt_latency.py [--runs 5]`` from the repository root.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.interrupt import running  # noqa: E402
from tests.test_lp_interrupt import _LP_BOUND, interruptible_script  # noqa: E402


def one_interrupt() -> tuple[float, float]:
    """(seconds from SIGINT to the KeyboardInterrupt in the script, to the process's exit)."""
    with running([sys.executable, "-c", interruptible_script(_LP_BOUND)], cwd=ROOT) as proc:
        assert proc.stdout.readline() == "solving\n"
        time.sleep(2.0)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        caught = float(proc.stdout.readline().split()[1])
        proc.communicate()
        assert proc.returncode == 130, proc.returncode
        return caught - sent, time.time() - sent


def plain_exit() -> float:
    """Seconds from the script's last line to the process's exit, no LP running."""
    body = textwrap.dedent(_LP_BOUND).split('print("solving"')[0] + \
        "import sys, time\nprint('done', time.time(), flush=True)\nsys.exit(130)\n"
    proc = subprocess.Popen([sys.executable, "-c", body], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    t = float(proc.stdout.readline().split()[1])
    proc.communicate()
    return time.time() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = [one_interrupt() for _ in range(args.runs)]
    base = [plain_exit() for _ in range(3)]
    for i, (c, e) in enumerate(rows):
        print(f"run {i}: KeyboardInterrupt after {c * 1e3:.1f} ms, exit after {e:.2f} s")
    print(f"median exit after SIGINT {statistics.median(e for _, e in rows):.2f} s; the same script's exit "
          f"with no LP running: {min(base):.2f}-{max(base):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
