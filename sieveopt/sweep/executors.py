"""Where points run: in-process (one worker), a local process pool, or a Ray cluster.

Each executor takes resolved point configurations and yields one result dict per point as it
completes (see :func:`sieveopt.sweep.point.compute_point`). Workers only compute; the driver
writes every file, so a multi-node Ray cluster needs no shared file system. A crashed worker
(a killed process, a lost Ray node) becomes an error result for its point, never a lost point.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sieveopt.errors import SieveoptError
from sieveopt.sweep.point import compute_point, error_record

EXECUTORS = ("local", "ray")


def _failed(config: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    return {"hash": config["hash"], "ok": False, "error": error_record(exc)}


def end_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: end this worker when the sweep process dies, even by SIGKILL
    (which runs no cleanup). Linux: ``PR_SET_PDEATHSIG`` sends SIGKILL on the parent's death;
    everywhere: a daemon thread polls the parent pid once a second and exits when it changes."""
    import os
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _pool(workers: int) -> Any:
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=end_with_parent, initargs=(os.getpid(),))


def run_serial(configs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for cfg in configs:
        yield compute_point(cfg)


def run_local(configs: list[dict[str, Any]], workers: int) -> Iterator[dict[str, Any]]:
    """A ``ProcessPoolExecutor`` (spawned workers: safe with OR-Tools/numba threads)."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    if workers <= 1 or len(configs) <= 1:
        yield from run_serial(configs)
        return
    queue = list(reversed(configs))
    pool = _pool(workers)
    running: dict[Any, dict[str, Any]] = {}
    try:
        while queue or running:
            # Keep at most 2 x workers in flight so Ctrl-C loses little queued work.
            while queue and len(running) < 2 * workers:
                cfg = queue.pop()
                running[pool.submit(compute_point, cfg)] = cfg
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                cfg = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool as exc:  # a worker died: record it, start a fresh pool
                    yield _failed(cfg, exc)
                    for other in list(running):
                        queue.append(running.pop(other))
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _pool(workers)
                    break
                except Exception as exc:
                    yield _failed(cfg, exc)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_ray(configs: list[dict[str, Any]], workers: int, address: str | None = None) -> Iterator[dict[str, Any]]:
    """Ray tasks: connect to ``address`` (or ``auto``), else start a local cluster of ``workers`` CPUs."""
    try:
        import ray
    except ImportError as exc:
        raise SieveoptError("--executor ray needs Ray (fix: pip install 'sieveopt[ray]', or use --executor local)") from exc

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        started = True
    remote = ray.remote(num_cpus=1, max_retries=1)(compute_point)
    pending: dict[Any, dict[str, Any]] = {}
    try:
        for cfg in configs:
            pending[remote.remote(cfg)] = cfg
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cfg = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # worker crash, lost node, serialisation failure
                    yield _failed(cfg, exc)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
