"""Host-memory guard: estimate what a run will allocate and refuse it before it starts.

A typo such as ``--batch 1000000000`` or ``--gpus 100000`` would otherwise allocate
terabytes (routing logits are ``[batch, experts]`` per sampled layer; the layer DAG has
``GPUs^2`` dispatch/combine messages) and be killed by the OS after minutes. The estimate is a
simple upper-bound model fitted to peak RSS measured on ``sieveopt solve`` (qwen3-30b-a3b,
sieve policy, Python 3.11, numpy 2): 172 MiB at B=64/8 GPUs, 290 MiB at B=1e5, 2.33 GiB at
B=1e6 (about 2.3 KiB per request with 128 experts), 192 MiB at 128 GPUs.
"""

from __future__ import annotations

from typing import Any

from sieveopt.errors import SieveoptError

#: Interpreter, numpy, numba, OR-Tools and the catalog, before any problem data, including
#: numba's first compile of the planners in a fresh environment (cold cache: a B=5e4, 8-GPU
#: `solve` peaked at 386 MiB in a fresh CI venv on 2026-11-29, 212 MiB with a warm cache).
BASE_BYTES = 512 * 2**20
#: Per request and sampled layer: logits and their temporaries (3 float32 [B, E] arrays) plus
#: the per-token bookkeeping of the instance and the DAG (~1 KiB).
PER_REQUEST_FIXED_BYTES = 1024
#: Per GPU pair: one dispatch and one combine message task with modes and edges.
PER_GPU_PAIR_BYTES = 4096


def estimate_run_bytes(model: Any, num_gpus: int, batch: int, *, layers: int = 1, steps: int = 1) -> int:
    """Upper-bound estimate of the peak host memory of sampling and scheduling ``layers``
    layers of ``batch`` requests on ``num_gpus`` GPUs (bytes)."""
    experts = int(model.num_routed_experts)
    per_request = 12 * experts + PER_REQUEST_FIXED_BYTES + 2 * int(model.top_k) * max(1, steps) * max(1, layers)
    per_gpu = 2048 * (experts // max(1, num_gpus) + 1) + PER_GPU_PAIR_BYTES * num_gpus
    return BASE_BYTES + int(batch) * per_request + int(num_gpus) * per_gpu


def check_memory(need_bytes: int, limit_gib: float) -> None:
    """Raise (CLI exit 2) when ``need_bytes`` exceeds ``limit_gib``."""
    if need_bytes > limit_gib * 2**30:
        raise SieveoptError(
            f"this run is estimated to need {need_bytes / 2**30:,.1f} GiB of memory, above --max-memory "
            f"{limit_gib:g} GiB (fix: lower --batch / --gpus / --layers, or raise --max-memory "
            f"if the machine has the memory)")
