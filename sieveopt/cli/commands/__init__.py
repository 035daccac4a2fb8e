"""Each module here defines ``register(subparsers)`` adding one or more subcommands.

Modules are discovered automatically, so a new command is a new file (no central list to edit).
A registered handler receives the parsed ``argparse.Namespace`` and returns an exit code.
"""
