"""``sieveopt catalog`` and ``sieveopt show model|system NAME``."""

from __future__ import annotations

import argparse

from sieveopt.cli.common import (
    DEFAULT_MODEL,
    DEFAULT_SYSTEM,
    add_json,
    context_len_int,
    gpus_int,
    nonneg_int,
)
from sieveopt.cli.output import emit, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="list the model and system presets")
    add_json(p)
    p.set_defaults(handler=_catalog)
    p = sub.add_parser("show", help="print a resolved model or system spec")
    p.add_argument("what", choices=["model", "system"])
    p.add_argument("name", help="preset name or .toml file")
    p.add_argument("--gpus", type=gpus_int, default=None, help="number of GPUs for the fit check "
                   "(default: the system preset's)")
    p.add_argument("--system", default=DEFAULT_SYSTEM, help="(model) system of the fit check")
    p.add_argument("--model", default=DEFAULT_MODEL, help="(system) model of the fit check")
    p.add_argument("--batch", type=nonneg_int, default=64, help="requests whose KV cache is counted")
    p.add_argument("--context-len", type=context_len_int, default=2048, help="tokens per request")
    add_json(p)
    p.set_defaults(handler=_show)


def _catalog(args: argparse.Namespace) -> int:
    from sieveopt.models.catalog import list_models, list_systems, load_model, load_system

    models = [load_model(n) for n in list_models()]
    systems = [load_system(n) for n in list_systems()]
    data = {
        "models": [{"name": m.name, "experts": m.num_routed_experts, "top_k": m.top_k,
                    "shared": m.num_shared_experts, "moe_layers": m.num_moe_layers,
                    "expert_MB": round(m.expert_weight_bytes / 1e6, 2), "description": m.description}
                   for m in models],
        "systems": [{"name": s.name, "gpus": s.num_gpus, "gpu": s.gpu.name, "hbm_bw_GBps": s.gpu.hbm_bw_GBps,
                     "pim_bw_GBps": s.pim_bw_GBps, "link_GBps": s.interconnect.bw_per_direction_GBps,
                     "description": s.description} for s in systems],
    }

    def render(d: dict) -> None:
        print_table("Models", ["name", "experts", "top-k", "shared", "MoE layers", "expert MB", "description"],
                    [list(m.values()) for m in d["models"]])
        print_table("Systems", ["name", "GPUs", "GPU", "HBM GB/s", "PIM GB/s", "link GB/s/dir", "description"],
                    [list(s.values()) for s in d["systems"]])

    return emit(args, data, render)


def _show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sieveopt.models.capacity import gpu_memory, min_gpus_to_fit, param_counts
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.tomlspec import to_dict

    if args.what == "model":
        spec = model = load_model(args.name)
        system = load_system(args.system, args.gpus)
    else:
        spec = system = load_system(args.name, args.gpus)
        model = load_model(args.model)
    data = to_dict(spec)
    if args.what == "model":
        pc = param_counts(spec)
        data["derived"] = {"expert_params": spec.expert_params, "expert_weight_bytes": spec.expert_weight_bytes,
                           "routed_expert_bytes_per_layer": spec.routed_expert_bytes_per_layer,
                           "total_params_B": round(pc.total / 1e9, 3), "active_params_B": round(pc.active / 1e9, 3),
                           "params_B": {k: round(v / 1e9, 3) for k, v in asdict(pc).items()
                                        if k not in ("total", "active")}}
    else:
        data["derived"] = {"pseudo_channels_per_gpu": spec.hbm_pim.pseudo_channels_per_gpu,
                           "pin_bw_GBps": spec.hbm_pim.peak_bw_GBps, "gpu_hbm_bw_GBps": spec.gpu_hbm_bw_GBps,
                           "pim_bw_GBps": spec.pim_bw_GBps}
    mem = gpu_memory(model, system, batch=args.batch, context_len_tokens=args.context_len)
    data["fit"] = {"model": model.name, "system": system.name, **mem.to_dict(),
                   "min_gpus": min_gpus_to_fit(model, system, batch=args.batch,
                                               context_len_tokens=args.context_len)}

    def render(d: dict) -> None:
        rows = []

        def walk(prefix: str, node: object) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                rows.append((prefix, node))

        walk("", d)
        print_table(f"{args.what} {args.name}", ["field", "value"], rows)

    return emit(args, data, render)
