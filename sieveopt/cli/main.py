"""Entry point of the ``sieveopt`` console script and ``python -m sieveopt``."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import pkgutil
import sys

from sieveopt.errors import SieveoptError

EXIT_USAGE = 2


def _command_module(argv: list[str], names: set[str]) -> str | None:
    """The command module ``argv`` selects: its first word when a module of that name exists
    (``sieveopt dram run ...`` -> ``dram``), else ``None`` (help, an option first, or a command
    registered under another module's name such as ``show``)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or any(a.startswith("-") for a in argv[:argv.index(first)]):
        return None
    return first if first in names else None


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default, unless its help already states it or it has none
    (``None``, a flag's ``False``, an empty list): a newcomer sees what a bare command runs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default is argparse.SUPPRESS
                or default is None or default is False or default == []):
            return text
        return f"{text} (default: %(default)s)".lstrip()


class Parser(argparse.ArgumentParser):
    """The tool's parsers (nested sub-commands included) show defaults in ``--help``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Parser with the command modules under ``sieveopt.cli.commands`` registered: only the
    one ``argv`` selects when it names one (start-up cost: every module imports its own
    dependencies, e.g. the end-to-end policies, which ``sieveopt dram run`` does not need),
    else all of them."""
    from sieveopt import __version__
    from sieveopt.cli import commands

    parser = Parser(
        prog="sieveopt",
        description="Design, solve and validate GPU/HBM-PIM schedulers for MoE decode.",
    )
    parser.add_argument("--version", action="version", version=f"sieveopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
    only = _command_module(argv, set(names)) if argv is not None else None
    for name in [only] if only else names:
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(sub)
    return parser


@contextlib.contextmanager
def gc_paused():
    """Cyclic garbage collection off for the block (restored after). Importing numba, scipy
    and the command modules allocates ~10^6 long-lived objects; the collector's passes over
    them cost ~0.25 s CPU per start-up and free nothing. For short commands (``dram run``)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: True while ``main`` runs as the process's command (console script / ``python -m``), not
#: called from Python with an argument list: a command may then trade process-wide state for
#: start-up time (see ``sieveopt.cli.commands.dram``).
WHOLE_PROCESS = False


def main(argv: list[str] | None = None) -> int:
    global WHOLE_PROCESS
    WHOLE_PROCESS = argv is None
    with gc_paused():
        parser = build_parser(sys.argv[1:] if argv is None else list(argv))
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
    except KeyboardInterrupt as exc:  # its message (if any) says what was kept, e.g. finished sweep points
        print("sieveopt: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
