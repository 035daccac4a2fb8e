"""Per-GPU speed variability (GEM, arXiv 2605.19945): factors, profiles, and the one timing hook.

GEM's premise, in its abstract: MoE serving engines process a batch in lock-step, so "the
straggler GPU" sets the layer latency, and nominally identical GPUs differ in speed
(trimoe_gem.md §2.1-2.2: 7.7-27.7 % among 8 x L40, attributed to process variation and
DVFS/thermal behaviour, with the fastest and slowest GPU the same at every batch size).

How a factor enters the timing (one place each, :func:`gpu_kernel_ns` and
:func:`scale_kernel_time`): a GPU-mode task's body is ``max(compute, memory)``; GPU g runs the
compute side at ``compute_speed[g]`` and its HBM streaming at ``memory_speed[g]`` of the
nominal rates; the kernel launch overhead, the PIM units inside the stacks and the NVLink
ports keep their nominal speed. [I] GEM measures whole-layer latency on plain GPUs; which
sub-rates vary is not separated there. We keep PIM nominal because process/DVFS variation is a
property of the GPU die, not of the DRAM stacks (an assumption; the factors are explicit).

Profile files (``kind = "profile"``): JSON or TOML with either

* ``compute_speed = [...]`` (and optionally ``memory_speed = [...]``), one factor per GPU, or
* GEM's measurement form: ``tokens = [n_1, ...]`` and ``latency_ns = [[t_g(n_1), ...], ...]``,
  one row per GPU (MoE-layer latency at each token load, sampled at GEMM tile boundaries as
  GEM does). The factor of GPU g is the median over n of ``min_h t_h(n) / t_g(n)`` (the
  fastest GPU is 1.0) and applies to compute and memory alike.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.models.specs import GpuVariabilitySpec, SystemSpec


@dataclass(frozen=True, eq=False)
class SpeedFactors:
    """Resolved per-GPU factors (float64 ``[G]`` each); 1.0 = the system spec's GPU."""

    compute: np.ndarray
    memory: np.ndarray

    @property
    def uniform(self) -> bool:
        """True when every GPU runs at the nominal speed (no hook needed)."""
        return bool(np.all(self.compute == 1.0) and np.all(self.memory == 1.0))

    @property
    def spread(self) -> float:
        """Relative gap between the fastest and the slowest GPU's compute speed."""
        return float(1.0 - self.compute.min() / self.compute.max())

    def to_dict(self) -> dict[str, list[float]]:
        return {"compute_speed": [round(float(x), 6) for x in self.compute],
                "memory_speed": [round(float(x), 6) for x in self.memory]}


def speed_factors(system: SystemSpec) -> SpeedFactors:
    """Factors of every GPU of ``system`` (deterministic in the spec and its seed)."""
    spec = getattr(system, "variability", None) or GpuVariabilitySpec()
    if spec.kind == "profile":              # not cached: the file may change between calls
        c, m = load_profile(spec.profile, system.num_gpus)
    else:
        c, m = _resolve(spec, system.num_gpus)
    out = SpeedFactors(np.array(c), np.array(m))
    out.compute.setflags(write=False)
    out.memory.setflags(write=False)
    return out


@lru_cache(maxsize=256)
def _resolve(spec: GpuVariabilitySpec, num_gpus: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    G = num_gpus
    ones = (1.0,) * G
    if spec.kind == "none":
        return ones, ones
    if spec.kind == "fixed":
        if len(spec.compute_speed) != G:
            raise SpecError("system", "variability.compute_speed",
                            f"{len(spec.compute_speed)} factors for {G} GPUs", f"list exactly {G} factors")
        return tuple(spec.compute_speed), tuple(spec.memory_speed) or ones
    rng = np.random.default_rng(spec.seed)
    u = rng.standard_normal(G) if spec.kind == "lognormal" else rng.random(G)
    c = _draw(spec.kind, u, spec.spread)
    m = c if spec.memory_spread < 0 else _draw(spec.kind, u, spec.memory_spread)
    return tuple(float(x) for x in c), tuple(float(x) for x in m)


def _draw(kind: str, u: np.ndarray, spread: float) -> np.ndarray:
    if kind == "uniform":
        return 1.0 - spread * u
    return np.minimum(1.0, np.exp(spread * u))  # lognormal, capped: the spec's GPU is the fastest


def load_profile(path: str | Path, num_gpus: int) -> tuple[np.ndarray, np.ndarray]:
    """(compute, memory) factors from a measured profile file (module docstring)."""
    p = Path(path)
    src = str(p)
    try:
        raw = p.read_bytes()
    except OSError:
        raise SpecError(src, "variability.profile", "cannot read the profile file",
                        "check the path (JSON or TOML)") from None
    try:
        data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(src, "<file>", f"malformed profile: {exc}", "write JSON or TOML") from None
    if not isinstance(data, dict):
        raise SpecError(src, "<file>", "expected a table/object", "see sieveopt.variability for the format")
    if "latency_ns" in data:
        lat = np.asarray(data["latency_ns"], dtype=float)
        tokens = np.asarray(data.get("tokens", []), dtype=float)
        if lat.ndim != 2 or lat.shape[0] != num_gpus:
            raise SpecError(src, "latency_ns", f"shape {lat.shape}, expected ({num_gpus}, n_loads)",
                            "one row of latencies per GPU")
        if tokens.size and tokens.size != lat.shape[1]:
            raise SpecError(src, "tokens", f"{tokens.size} loads but {lat.shape[1]} latency columns",
                            "give one latency per token load")
        if not np.all(lat > 0):
            raise SpecError(src, "latency_ns", "latencies must be > 0", "use measured times in ns")
        c = np.median(lat.min(axis=0)[None, :] / lat, axis=1)
        return c, c.copy()
    if "compute_speed" not in data:
        raise SpecError(src, "compute_speed", "missing", "give compute_speed = [...] or tokens + latency_ns")
    c = _factors(data["compute_speed"], src, "compute_speed", num_gpus)
    m = _factors(data["memory_speed"], src, "memory_speed", num_gpus) if "memory_speed" in data else c.copy()
    return c, m


def _factors(values: object, src: str, name: str, G: int) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (G,):
        raise SpecError(src, name, f"shape {arr.shape}, expected ({G},)", f"give one factor per GPU ({G})")
    bad = np.flatnonzero(~(arr > 0) | ~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise SpecError(src, f"{name}[{i}]", f"speed factor must be > 0, got {arr[i]}",
                        "use a positive factor, 1.0 = the spec's GPU")
    return arr


def variability_spec(spread: float, *, seed: int = 0, kind: str = "uniform",
                     memory_spread: float = -1.0) -> GpuVariabilitySpec:
    """The spec for a ``--variability`` value (0 = none); raises SpecError naming the field."""
    if not math.isfinite(spread) or spread < 0 or spread >= 1:
        raise SpecError("--variability", "variability.spread", f"must be in [0, 1), got {spread}",
                        "use e.g. 0.1 for GPUs up to 10 % slower than the fastest")
    if spread == 0:
        return GpuVariabilitySpec()
    return GpuVariabilitySpec(kind=kind, spread=spread, seed=seed, memory_spread=memory_spread)  # type: ignore[arg-type]


def with_variability(system: SystemSpec, spec: GpuVariabilitySpec) -> SystemSpec:
    """``system`` with ``spec`` (validated against its GPU count now, not at first use)."""
    out = replace(system, variability=spec)
    speed_factors(out)
    return out


# --- the timing hooks (DAG durations and replay) ----------------------------------------------
def gpu_kernel_ns(time_of, work, compute_speed: float, memory_speed: float) -> float:
    """GPU-mode duration of ``work`` on a GPU at the given speed factors, for any cost model.

    ``time_of(work) -> ns`` is the nominal GPU time (the GPU target's cost hook). It is asked
    three times: the work with its bytes removed (launch + compute), with its FLOPs removed
    (launch + memory), and with both removed (launch). For the ``roofline`` and ``calibrated``
    models, whose GPU time is ``launch + max(compute, memory)``, this recovers each side
    exactly; each side is then divided by its factor.
    """
    if compute_speed == 1.0 and memory_speed == 1.0:
        return float(time_of(work))
    fixed = time_of(replace(work, flops=0.0, weight_bytes=0.0, act_bytes=0.0, kv_bytes=0.0))
    comp = time_of(replace(work, weight_bytes=0.0, act_bytes=0.0, kv_bytes=0.0)) - fixed
    mem = time_of(replace(work, flops=0.0)) - fixed
    return fixed + max(comp / compute_speed, mem / memory_speed)


def scale_kernel_time(task_time, compute_speed: float, memory_speed: float):
    """A replay :class:`~sieveopt.validation.replay_engine.TaskTime` of a GPU kernel, slowed
    (or sped up) by one GPU's factors: compute and memory sides scale, the overhead does not."""
    if compute_speed == 1.0 and memory_speed == 1.0:
        return task_time
    c = task_time.compute_ns / compute_speed
    m = task_time.memory_ns / memory_speed
    return replace(task_time, compute_ns=c, memory_ns=m, body_ns=max(c, m))
