"""Model and system presets shipped as TOML inside the package, or a user's own TOML file.

Anywhere a preset name is accepted, a path to a ``.toml`` file works too. Overrides are
dotted keys (``gpu.kernel_overhead_ns=1000``) applied before validation.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

from sieveopt.errors import SpecError
from sieveopt.models.dram import fill_from_preset
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.tomlspec import from_dict, read_toml

_CATALOG = resources.files("sieveopt.models") / "catalog"


def _names(kind: str) -> list[str]:
    return sorted(p.name[:-5] for p in (_CATALOG / kind).iterdir() if p.name.endswith(".toml"))


def list_models() -> list[str]:
    return _names("models")


def list_systems() -> list[str]:
    return _names("systems")


def _resolve(kind: str, name_or_path: str) -> tuple[str, dict[str, Any]]:
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        return str(path), read_toml(path)
    entry = _CATALOG / kind / f"{name_or_path}.toml"
    if not entry.is_file():
        known = ", ".join(_names(kind))
        raise SpecError(name_or_path, "<name>", f"no {kind[:-1]} preset with this name",
                        f"use one of: {known}, or a path to a .toml file")
    with resources.as_file(entry) as real:
        return f"{kind}/{name_or_path}.toml", read_toml(real)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key overrides set (tables must already exist)."""
    data = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise SpecError(source, dotted, "override path does not exist", "check the dotted key")
            node = node[part]
        node[parts[-1]] = value
    return data


def load_model(name_or_path: str, overrides: dict[str, Any] | None = None) -> ModelSpec:
    """A catalog model by name (see :func:`list_models`) or a user TOML file."""
    source, data = _resolve("models", name_or_path)
    data = apply_overrides(data, overrides, source)
    prof = data.get("routing_profile")
    if isinstance(prof, str) and prof.endswith(".toml") and not Path(prof).is_absolute():
        # a user's profile file is named relative to the model file that uses it
        base = Path(source).parent if source.endswith(".toml") and Path(source).exists() else Path(".")
        data["routing_profile"] = str(base / prof)
    return from_dict(ModelSpec, data, source)


def load_system(name_or_path: str, num_gpus: int | None = None,
                overrides: dict[str, Any] | None = None) -> SystemSpec:
    """A catalog system by name (see :func:`list_systems`) or a user TOML file; the
    ``[hbm_pim]`` fields it leaves out come from its DRAM preset (:mod:`sieveopt.models.dram`)."""
    source, data = _resolve("systems", name_or_path)
    overrides = dict(overrides or {})
    if "hbm_pim.dram_preset" in overrides:      # another preset: fill from it, not the file's
        data = apply_overrides(data, {"hbm_pim.dram_preset": overrides.pop("hbm_pim.dram_preset")}, source)
    data = fill_from_preset(data, source)
    if num_gpus is not None:
        overrides["num_gpus"] = num_gpus
    return from_dict(SystemSpec, apply_overrides(data, overrides, source), source)


def check_fits(model: ModelSpec, system: SystemSpec, *, batch: int | None = None,
               context_len_tokens: int | None = None) -> None:
    """Raise unless one GPU holds everything placed on it: its share of routed experts, the
    replicated weights (attention, dense FFN, shared experts, routers, embeddings, LM head) and
    the KV cache of its requests (``batch`` requests at ``context_len_tokens``; none when
    ``batch`` is None). See :mod:`sieveopt.models.capacity`."""
    from sieveopt.models.capacity import GIB, gpu_memory, min_gpus_to_fit

    ctx = 2048 if context_len_tokens is None else int(context_len_tokens)
    b = int(batch or 0)
    mem = gpu_memory(model, system, batch=b, context_len_tokens=ctx)
    if mem.fits:
        return
    need = min_gpus_to_fit(model, system, batch=b, context_len_tokens=ctx)
    if need is not None:
        fix = f"use --gpus {need} or more, or a system with more gpu.hbm_capacity_GiB"
    else:
        fix = ("no GPU count fits: the weights every GPU replicates (or the KV cache) exceed one GPU; "
               "use a system with more gpu.hbm_capacity_GiB, a lower precision, or a smaller "
               "--batch / --context-len")
    raise SpecError(system.name, "num_gpus",
                    f"{model.name} needs {mem.total / GIB:.1f} GiB per GPU on {system.num_gpus} GPU(s), more "
                    f"than gpu.hbm_capacity_GiB={system.gpu.hbm_capacity_GiB:g} (GiB: {mem.breakdown()})", fix)
