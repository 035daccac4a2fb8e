"""Messages and the collectives of one MoE layer expressed as point-to-point messages.

A collective is the set of its GPU-to-GPU messages; the simulator, not the helper, decides
when each one lands. Local (src == dst) traffic never touches NVLink and is left out.
Helpers number messages so that, under the default order (release time, then ``msg_id``),
each source sends to ``src+1, src+2, ...`` (mod G): a rotated schedule in which no two
sources start with the same destination, which avoids an avoidable incast at t = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sieveopt.validation.interconnect.params import InterconnectError


@dataclass(frozen=True, slots=True)
class Message:
    """``bytes`` from GPU ``src`` to GPU ``dst``, ready to send at ``release_ns``.

    ``release_ns`` is when the producer of the data finishes (e.g. the router kernel for the
    AllGather, the dispatch gather for the all-to-all).
    """

    msg_id: int
    src: int
    dst: int
    bytes: int
    release_ns: float = 0


def _per_gpu(values: float | Sequence[float] | None, num_gpus: int, name: str) -> list[float]:
    if values is None:
        return [0.0] * num_gpus
    if isinstance(values, int | float):
        return [float(values)] * num_gpus
    vals = list(values)
    if len(vals) != num_gpus:
        raise InterconnectError(
            f"{name}: expected {num_gpus} values (one per GPU), got {len(vals)}; "
            "give one release time per source GPU or a single number")
    return [float(v) for v in vals]


def allgather_messages(num_gpus: int, bytes_per_gpu: int | Sequence[int],
                       release_ns_per_gpu: float | Sequence[float] | None = None,
                       first_msg_id: int = 0) -> list[Message]:
    """AllGather as direct sends: every GPU sends its block to each of the other GPUs.

    ``bytes_per_gpu`` is the size of each GPU's block (one value or one per GPU), e.g. its
    routing map. NVLink switches deliver it as G-1 point-to-point copies per source.
    """
    if num_gpus < 2:
        raise InterconnectError(f"allgather_messages: num_gpus must be >= 2, got {num_gpus}")
    sizes = _per_gpu(bytes_per_gpu, num_gpus, "bytes_per_gpu")
    release = _per_gpu(release_ns_per_gpu, num_gpus, "release_ns_per_gpu")
    msgs: list[Message] = []
    for src in range(num_gpus):
        for step in range(1, num_gpus):
            dst = (src + step) % num_gpus
            msgs.append(Message(first_msg_id + len(msgs), src, dst, int(sizes[src]), release[src]))
    return msgs


def alltoall_messages(matrix_bytes: Sequence[Sequence[int]],
                      release_ns_per_src: float | Sequence[float] | None = None,
                      first_msg_id: int = 0, skip_empty: bool = True) -> list[Message]:
    """All-to-all (dispatch or combine): ``matrix_bytes[src][dst]`` bytes from src to dst.

    The diagonal (local data) is ignored; zero entries are skipped unless ``skip_empty`` is
    False (then they become header-only messages, e.g. an explicit "nothing for you").
    """
    rows = [list(r) for r in matrix_bytes]
    num_gpus = len(rows)
    if num_gpus < 2 or any(len(r) != num_gpus for r in rows):
        raise InterconnectError(
            f"alltoall_messages: matrix_bytes must be square G x G with G >= 2, got "
            f"{num_gpus} rows of lengths {[len(r) for r in rows]}")
    release = _per_gpu(release_ns_per_src, num_gpus, "release_ns_per_src")
    msgs: list[Message] = []
    for src in range(num_gpus):
        for step in range(1, num_gpus):
            dst = (src + step) % num_gpus
            size = rows[src][dst]
            if isinstance(size, float) and not size.is_integer() or not math.isfinite(size):
                raise InterconnectError(
                    f"alltoall_messages: matrix_bytes[{src}][{dst}] = {size!r} is not a whole "
                    "number of bytes")
            if size == 0 and skip_empty:
                continue
            msgs.append(Message(first_msg_id + len(msgs), src, dst, int(size), release[src]))
    return msgs
