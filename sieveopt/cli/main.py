"""Entry point of the ``sieveopt`` console script and ``python -m sieveopt``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from sieveopt.errors import SieveoptError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Parser with every command module under ``sieveopt.cli.commands`` registered."""
    from sieveopt import __version__
    from sieveopt.cli import commands

    parser = argparse.ArgumentParser(
        prog="sieveopt",
        description="Design, solve and validate GPU/HBM-PIM schedulers for MoE decode.",
    )
    parser.add_argument("--version", action="version", version=f"sieveopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad option (exit 2, message printed) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE if args.command else 0
    try:
        return int(args.handler(args) or 0)
    except SieveoptError as exc:
        print(f"sieveopt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `sieveopt ... --json | head`: the reader left, not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("sieveopt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
