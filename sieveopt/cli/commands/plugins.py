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

    data = {group: reg.describe() for group, reg in all_registries().items()}

    def render(d: dict) -> None:
        rows = [(group, name, doc) for group, items in d.items() for name, doc in items.items()]
        print_table("Plugins (entry-point group / name)", ["group", "name", "description"], rows)

    return emit(args, data, render)
