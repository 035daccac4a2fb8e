"""Loader for "Patterns behind Chaos" (Orders in Chaos) per-request routing traces.

File format (moe_models.md §3): one JSON list per request; step 0 is the prefill, steps
1..N are decode tokens. Each step is a dict ``{"<layer_id>": [[id x k] x tokens] | null}``
where ``null`` marks a dense layer. Requests were recorded at batch 1, so a decode batch of
B is emulated by interleaving B request files step by step; when a request runs out of
decode steps its slot is refilled from the next file (continuous batching).

Validation (errors name the file, step, layer and problem): ids in ``[0, E)``, every row
has exactly k ids, no duplicate id in a row, decode steps hold one token per layer, the
same set of null (dense) layers in every step and in every file. A file with only the
prefill step (empty decode) is valid and contributes nothing to decode batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from sieveopt.errors import TraceError
from sieveopt.workload.trace import RoutingTrace


@dataclass(frozen=True, eq=False)
class RequestTrace:
    """One request file: MoE layer ids, prefill ``[layers, n_prompt, k]``, decode ``[n, layers, k]``."""

    path: str
    moe_layers: tuple[int, ...]
    prefill: np.ndarray
    decode: np.ndarray


def _rows(
    value: object, where: str, num_experts: int, top_k: int, one_token: bool
) -> np.ndarray:
    if not isinstance(value, list):
        raise TraceError(f"{where}: expected a list of token rows, got {type(value).__name__}")
    if one_token and len(value) != 1:
        raise TraceError(f"{where}: a decode step must hold exactly 1 token row, got {len(value)}")
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != top_k:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise TraceError(f"{where}, token {i}: row must list k={top_k} expert ids, got {got}")
        for x in row:
            if type(x) is not int:
                raise TraceError(f"{where}, token {i}: expert id {x!r} is not an integer")
            if not 0 <= x < num_experts:
                raise TraceError(f"{where}, token {i}: expert id {x} outside [0, {num_experts})")
        if len(set(row)) != top_k:
            raise TraceError(f"{where}, token {i}: duplicate expert id in row {row}")
    return np.asarray(value, dtype=np.int16).reshape(len(value), top_k)


def parse_request(
    payload: bytes, source: str, num_experts: int, top_k: int
) -> RequestTrace:
    """Parse and validate one request's JSON bytes (``source`` names it in errors)."""
    try:
        steps = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise TraceError(f"{source}: malformed JSON ({exc}) (fix: a Patterns-behind-Chaos request file, a JSON list of steps)") from None
    if not isinstance(steps, list) or not steps:
        raise TraceError(f"{source}: expected a non-empty JSON list of steps (step 0 = prefill) (fix: give Patterns-behind-Chaos request files)")
    layers: tuple[int, ...] | None = None
    null_set: frozenset[int] | None = None
    prefill: list[np.ndarray] = []
    decode = np.empty((len(steps) - 1, 0, top_k), dtype=np.int16)
    for s, step in enumerate(steps):
        if not isinstance(step, dict):
            raise TraceError(f"{source}: step {s}: expected an object of layers, got {type(step).__name__}")
        try:
            keys = {int(k): v for k, v in step.items()}
        except ValueError:
            raise TraceError(f"{source}: step {s}: layer keys must be integers, got {sorted(step)}") from None
        nulls = frozenset(k for k, v in keys.items() if v is None)
        moe = tuple(sorted(k for k, v in keys.items() if v is not None))
        if layers is None:
            layers, null_set = moe, nulls
            if not moe:
                raise TraceError(f"{source}: step 0: no MoE layer (every layer is null)")
            decode = np.empty((len(steps) - 1, len(moe), top_k), dtype=np.int16)
        elif nulls != null_set or moe != layers:
            raise TraceError(
                f"{source}: step {s}: layer set differs from step 0 "
                f"(null layers {sorted(nulls)} vs {sorted(null_set or ())}, "
                f"MoE layers {list(moe)} vs {list(layers)})"
            )
        for j, lid in enumerate(moe):
            where = f"{source}: step {s}, layer {lid}"
            rows = _rows(keys[lid], where, num_experts, top_k, one_token=s > 0)
            if s == 0:
                prefill.append(rows)
            else:
                decode[s - 1, j] = rows[0]
    assert layers is not None
    n_prompt = {len(p) for p in prefill}
    if len(n_prompt) > 1:
        raise TraceError(f"{source}: step 0: MoE layers list different prompt lengths {sorted(n_prompt)}")
    return RequestTrace(source, layers, np.stack(prefill), decode)


def _expand(paths_or_dir: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths_or_dir] if isinstance(paths_or_dir, str | Path) else list(paths_or_dir)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.rglob("*.json"))
            if not found:
                raise TraceError(f"{p}: directory holds no .json request files (fix: name a directory of Patterns-behind-Chaos .json files, or a .npz trace)")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise TraceError(f"{p}: no such file or directory")
    if not out:
        raise TraceError("load_chaos_trace: no request files given")
    return out


def iter_requests(
    paths_or_dir: str | Path | Sequence[str | Path], num_experts: int, top_k: int
) -> Iterator[RequestTrace]:
    """Parse request files one at a time (directories are searched recursively, sorted)."""
    for p in _expand(paths_or_dir):
        try:
            payload = p.read_bytes()
        except OSError as exc:
            raise TraceError(f"{p}: cannot read ({exc})") from None
        yield parse_request(payload, str(p), num_experts, top_k)


def _request_stream(
    paths: str | Path | Sequence[str | Path], num_experts: int, top_k: int, recycle: bool
) -> Iterable[RequestTrace]:
    while True:
        any_decode = False
        for req in iter_requests(paths, num_experts, top_k):
            if len(req.decode):
                any_decode = True
                yield req
        if not recycle or not any_decode:
            return


def load_chaos_trace(
    paths_or_dir: str | Path | Sequence[str | Path],
    num_experts: int,
    top_k: int,
    batch: int,
    *,
    steps: int | None = None,
    num_shared_experts: int = 0,
    model: str = "",
    recycle: bool = False,
) -> RoutingTrace:
    """Interleave request files into decode batches of ``batch`` (continuous batching).

    Slot b starts with the b-th request that has decode steps; a finished slot is refilled
    from the next file. The trace ends after ``steps`` steps, or (``steps=None``) at the
    last step for which every slot could be filled. ``recycle=True`` restarts from the first
    file when all are used (block bootstrap of a small set). Every file must list the same
    MoE layers. ``request_ids`` numbers requests in admission order.
    """
    if batch < 1:
        raise TraceError(f"load_chaos_trace: batch must be >= 1, got {batch}")
    if steps is not None and steps < 1:
        raise TraceError(f"load_chaos_trace: steps must be >= 1, got {steps}")
    if recycle and steps is None:
        raise TraceError("load_chaos_trace: recycle=True needs a number of steps")
    stream = iter(_request_stream(paths_or_dir, num_experts, top_k, recycle))
    layers: tuple[int, ...] | None = None
    first_path = ""
    slots: list[RequestTrace | None] = [None] * batch
    pos = [0] * batch
    rid = [0] * batch
    admitted = 0

    def admit(b: int) -> bool:
        nonlocal layers, first_path, admitted
        req = next(stream, None)
        if req is None:
            return False
        if layers is None:
            layers, first_path = req.moe_layers, req.path
        elif req.moe_layers != layers:
            raise TraceError(
                f"{req.path}: MoE layers {list(req.moe_layers)} differ from "
                f"{first_path} ({list(layers)}); mix files of one model only"
            )
        slots[b], pos[b], rid[b] = req, 0, admitted
        admitted += 1
        return True

    out: list[np.ndarray] = []
    rids: list[list[int]] = []
    for b in range(batch):
        if not admit(b):
            raise TraceError(
                f"load_chaos_trace: only {b} request(s) with decode steps for a batch of {batch} "
                "(fix: lower --batch, add files, or pass recycle=True)"
            )
    while steps is None or len(out) < steps:
        full = True
        for b in range(batch):
            req = slots[b]
            if req is None or pos[b] >= len(req.decode):
                if not admit(b):
                    full = False
                    break
        if not full:
            break
        out.append(np.stack([slots[b].decode[pos[b]] for b in range(batch)], axis=1))  # type: ignore[union-attr]
        rids.append(list(rid))
        for b in range(batch):
            pos[b] += 1
    if steps is not None and len(out) < steps:
        raise TraceError(
            f"load_chaos_trace: the files fill only {len(out)} of {steps} decode steps at batch "
            f"{batch} (fix: fewer steps, more files, or recycle=True)"
        )
    assert layers is not None
    return RoutingTrace(
        expert_ids=np.stack(out), num_experts=num_experts, top_k=top_k,
        num_shared_experts=num_shared_experts, model=model, source="chaos", seed=None,
        profile=None, layer_ids=layers, request_ids=np.asarray(rids, dtype=np.int32),
    )
