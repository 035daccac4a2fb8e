"""Error types. Every user-facing problem is a :class:`SieveoptError` naming what and where.

The CLI turns these into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations


class SieveoptError(Exception):
    """Base class for errors caused by user input (files, flags, values)."""


class SpecError(SieveoptError):
    """A spec/config value is missing, unknown, of the wrong type or impossible.

    ``source`` is the file (or preset name), ``field`` the dotted key, ``fix`` how to repair it.
    """

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source, self.field, self.problem, self.fix = source, field, problem, fix
        msg = f"{source}: field '{field}': {problem}"
        if fix:
            msg += f" (fix: {fix})"
        super().__init__(msg)


class TraceError(SieveoptError):
    """A routing trace file is malformed (wrong shape, ids out of range, bad JSON ...)."""


class ScheduleError(SieveoptError):
    """A schedule does not fit its DAG (wrong size, unknown mode ...)."""
