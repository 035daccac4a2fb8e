"""``sieveopt energy``: the energy data of every DRAM preset and system, each value with its
unit, source and whether it is open (not a published figure for that device)."""

from __future__ import annotations

import argparse

from sieveopt.cli.common import add_json
from sieveopt.cli.output import emit, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("energy", help="energy data of the DRAM presets and systems, with sources")
    p.add_argument("name", nargs="?", default=None, help="one DRAM preset or system (default: all)")
    p.add_argument("--open-only", action="store_true", help="list only open (derived / guessed) values")
    add_json(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sieveopt.errors import SieveoptError
    from sieveopt.validation.dram.api import list_dram_presets
    from sieveopt.validation.energy.spec import (
        dram_energy_spec,
        list_energy_specs,
        system_energy_spec,
    )

    files = list_energy_specs()
    specs = [("dram", n, dram_energy_spec(n)) for n in files["dram"]]
    specs += [("system", n, system_energy_spec(n)) for n in files["systems"]]
    if args.name is not None:
        specs = [s for s in specs if s[1] == args.name]
        if not specs:
            from sieveopt.models.catalog import list_systems

            if args.name in list_dram_presets() or args.name in list_systems():
                raise SieveoptError(f"{args.name}: energy unavailable, no file under validation/energy/data/ (fix: "
                                    "add one with a source for every value, or name one of "
                                    f"{', '.join(files['dram'] + files['systems'])})")
            raise SieveoptError(f"{args.name}: not a DRAM preset or system with energy data (fix: use one of "
                                f"{', '.join(files['dram'] + files['systems'])}, or no name for all)")
    rows = [{"kind": k, "name": n, **r} for k, n, sp in specs for r in sp.table()
            if r["open"] or not args.open_only]
    missing = sorted(set(list_dram_presets()) - set(files["dram"]))

    def render(rs: list) -> None:
        print_table("energy data (validation/energy/data/)", ["kind", "name", "field", "value", "unit", "open", "source"],
                    [(r["kind"], r["name"], r["field"], r["value"], r["unit"], "open" if r["open"] else "",
                      r["source"]) for r in rs])
        if missing and args.name is None:
            print("DRAM presets without energy data (energy unavailable): " + ", ".join(missing))

    return emit(args, rows, render)
