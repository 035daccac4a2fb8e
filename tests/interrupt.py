"""One way the tests send a real Ctrl-C: start a command in its own session, SIGINT it, read
what it printed and how long it took to end; a command left running is killed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def running(cmd: list[str], **kw: Any) -> Iterator[subprocess.Popen]:
    """``cmd`` started with text pipes in its own session; killed on leaving if still running."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def interrupt(proc: subprocess.Popen, timeout_s: float = 60.0) -> tuple[str, str, float]:
    """SIGINT to ``proc`` (asserted still running): its remaining stdout, its stderr and the
    seconds from the signal to its exit."""
    assert proc.poll() is None, "the process ended before the interrupt"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout_s)
    return out, err, time.monotonic() - sent
