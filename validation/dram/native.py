"""The DRAM simulator's two compiled kernels (engine, LoadStore parser), built ahead of time.

A ``sieveopt dram run`` process spent ~1 s CPU of its ~1.7 s start-up importing numba and
starting its CPU target only to load the cached engine (measured: BENCHMARKS.md, "DRAM").
The two kernels a run calls (:func:`.engine.run_engine`, :func:`.trace_kernel.parse_lines`)
are therefore also compiled by numba's ahead-of-time compiler (``numba.pycc``) into a plain
CPython extension module, once per source version, and cached beside numba's own cache
(``__pycache__`` of this package, else the user cache directory). A later process imports that
module (~1 ms, no numba import). Same numba code, same LLVM optimisation, compiled for the host
CPU as the JIT does: the results are identical (``tests/test_dram_native.py``).

:func:`kernels` returns the module when it exists, else builds it once in a child process
(like numba's first-call compile, ~30 s CPU here) and falls back to numba's JIT dispatchers
when the build fails (no C compiler, no setuptools, pycc removed from numba): the failure is
remembered per source version so later processes do not retry. ``SIEVEOPT_DRAM_NATIVE=0``
forces the JIT dispatchers (``=1``, the default, allows the module).

The module is keyed by a hash of the kernels' sources (engine, layout, timing, parser, this
file), numpy's version (the C API the wrappers use), the interpreter's extension suffix and
the host CPU, so an edit rebuilds it and a stale module is never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

_HERE = Path(__file__).resolve().parent
#: files whose text the compiled kernels depend on
_SOURCES = ("engine.py", "layout.py", "timing.py", "trace_kernel.py", "native.py")
#: exported name -> numba signature (arrays C-contiguous; the callers pass int64 / uint8)
_I8 = "i8[::1]"
EXPORTS = {
    "run_engine": f"UniTuple(i8, 2)({_I8}, {_I8}, {_I8}, {_I8}, {_I8}, {_I8}, {_I8}, b1, "
                  "i8[:, ::1], i8[:, ::1])",
    "parse_lines": f"i8(u1[::1], {_I8}, {_I8})",
}


class Kernels(NamedTuple):
    """The compiled kernels and where they come from (``aot`` module or ``jit`` dispatchers)."""

    run_engine: Any
    parse_lines: Any
    backend: str


_loaded: Kernels | None = None


def _cpu_tag() -> str:
    """The host CPU as the built code depends on it (model and feature flags; Linux reads
    /proc/cpuinfo, elsewhere the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            info = fh.read(1 << 16)
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
        return "\n".join(lines)
    except OSError:
        return platform.processor() or platform.machine()


def module_name() -> str:
    """Name of the extension module of the current sources (also its PyInit symbol)."""
    h = hashlib.sha256()
    for f in _SOURCES:
        h.update((_HERE / f).read_bytes())
    for part in (np.__version__, importlib.machinery.EXTENSION_SUFFIXES[0], _cpu_tag()):
        h.update(part.encode())
    return "_dram_native_" + h.hexdigest()[:20]


def _cache_dirs() -> list[Path]:
    """Where the module may live: beside numba's cache of this package, else the user's."""
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sieveopt"
    return [_HERE / "__pycache__", user]


def jit_kernels() -> Kernels:
    """numba's JIT dispatchers of the kernels (compiled or loaded from numba's cache on call)."""
    from sieveopt.validation.dram.engine import run_engine
    from sieveopt.validation.dram.trace_kernel import parse_lines

    return Kernels(run_engine, parse_lines, "jit")


def _import(name: str, path: Path) -> Kernels:
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return Kernels(mod.run_engine, mod.parse_lines, "aot")


def aot_kernels() -> Kernels | None:
    """The ahead-of-time module of the current sources: loaded, else built (once per source
    version: a failed build is not retried, see :func:`failure_reason`); None if unavailable."""
    name = module_name()
    fname = name + importlib.machinery.EXTENSION_SUFFIXES[0]
    for d in _cache_dirs():
        if (d / fname).is_file():
            return _import(name, d / fname)
    if failure_reason(name):
        return None
    path = build(name)
    return _import(name, path) if path is not None else None


def failure_reason(name: str | None = None) -> str:
    """Why the module of the current sources could not be built ("" if it was not tried or
    succeeded). Delete the ``.failed`` file it comes from to try again."""
    name = name or module_name()
    for d in _cache_dirs():
        f = d / (name + ".failed")
        if f.is_file():
            return f.read_text(errors="replace") or "build failed"
    return ""


def kernels() -> Kernels:
    """The kernels of this process: the ahead-of-time module (built on first use), else the
    JIT dispatchers (``SIEVEOPT_DRAM_NATIVE=0``, or no module could be built)."""
    global _loaded
    if _loaded is None:
        aot = None if os.environ.get("SIEVEOPT_DRAM_NATIVE", "1") == "0" else aot_kernels()
        _loaded = aot if aot is not None else jit_kernels()
    return _loaded


def build(name: str) -> Path | None:
    """Build the module in a child process into the first writable cache directory; its
    path, or None after writing ``<name>.failed`` (the reason) where it could."""
    fname = name + importlib.machinery.EXTENSION_SUFFIXES[0]
    reason = "no writable cache directory"
    for d in _cache_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=name + ".", dir=d))
        except OSError:
            continue
        try:
            proc = subprocess.run([sys.executable, "-m", "sieveopt.validation.dram.native", name,
                                   str(tmp)], capture_output=True, text=True)
            out = tmp / fname
            if proc.returncode == 0 and out.is_file():
                os.replace(out, d / fname)  # atomic: a concurrent build writes the same file
                if d == _HERE / "__pycache__":  # this tree's own folder: drop stale versions
                    _prune(d, name)
                return d / fname
            reason = (proc.stderr or proc.stdout)[-4000:] or f"exit status {proc.returncode}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        try:
            (d / (name + ".failed")).write_text(reason)
        except OSError:
            pass
        return None
    return None


def _prune(d: Path, keep: str) -> None:
    """Remove modules (and failure notes) of earlier source versions for this interpreter."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for f in d.glob("_dram_native_*"):
        stale = f.name.endswith((suffix, ".failed")) and not f.name.startswith(keep)
        if stale and f.is_file():
            with contextlib.suppress(OSError):
                f.unlink()


def _compile(name: str, out_dir: str) -> None:
    """Child process of :func:`build`: compile the kernels with numba.pycc."""
    import warnings

    warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
    from llvmlite import binding as llvm
    from numba.pycc import CC

    from sieveopt.validation.dram.engine import run_engine
    from sieveopt.validation.dram.trace_kernel import parse_lines

    cc = CC(name)
    cc.output_dir = out_dir
    cc.target_cpu = llvm.get_host_cpu_name()  # as numba's JIT: code for this CPU
    cc.verbose = False
    for fn_name, fn in (("run_engine", run_engine), ("parse_lines", parse_lines)):
        cc.export(fn_name, EXPORTS[fn_name])(fn.py_func)
    cc.compile()


if __name__ == "__main__":
    _compile(sys.argv[1], sys.argv[2])
