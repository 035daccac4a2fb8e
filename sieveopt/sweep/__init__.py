"""Sweeps: a TOML grid of (model, system, GPUs, batch, policy, seed, DAG options, overrides,
solver parameters), each point cached in a directory named by the hash of its resolved
configuration, resumable after interruption, run on a local process pool or a Ray cluster."""

from sieveopt.sweep.point import compute_point, resolve
from sieveopt.sweep.runner import SweepReport, resolve_all, run_sweep
from sieveopt.sweep.spec import SweepSpec, expand, load_sweep, parse_sweep
from sieveopt.sweep.store import SweepStore

__all__ = ["SweepReport", "SweepSpec", "SweepStore", "compute_point", "expand", "load_sweep", "parse_sweep",
           "resolve", "resolve_all", "run_sweep"]
