"""``sieveopt plugins``: every registry (cost models, solvers, ...) and what is in it."""

from __future__ import annotations

import argparse

from sieveopt.cli.common import add_json
from sieveopt.cli.output import emit, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list registered cost models, solvers and other plugins")
    add_json(p)
    p.set_defaults(handler=_plugins)


def _plugins(args: argparse.Namespace) -> int:
    from sieveopt.registry import all_registries
    from sieveopt.solvers import SOLVERS, policy_info

    data: dict = {group: reg.describe() for group, reg in all_registries().items()}
    caps = {}
    for name in SOLVERS.names():
        info = policy_info(name)
        caps[name] = {"decision": info.decision, "params": sorted(info.params), "default": info.default,
                      "needs_modes": list(info.needs_modes), "role": info.role}

    def render(d: dict) -> None:
        rows = [(group, name, doc) for group, items in d.items() if group != "policy_capabilities"
                for name, doc in items.items()]
        print_table("Plugins (entry-point group / name)", ["group", "name", "description"], rows)
        print_table("Policy capabilities (--solver-param KEY=VALUE takes the declared parameters)",
                    ["policy", "decision", "parameters", "needs expert modes", "default", "role"],
                    [(n, c["decision"], ", ".join(c["params"]) or "-", ", ".join(c["needs_modes"]) or "any",
                      "yes" if c["default"] else "no", c["role"] or "-") for n, c in d["policy_capabilities"].items()])

    data["policy_capabilities"] = caps

    return emit(args, data, render)
