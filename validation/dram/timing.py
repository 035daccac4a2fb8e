"""DRAM/PIM commands, hierarchy levels and the timing-constraint table, declared as data.

A constraint ``TimingConstraint(level, preceding, following, latency, window)`` reads: at the
node of ``level`` addressed by the following command, the following command may issue no
earlier than ``latency`` cycles after the ``window``-th most recent preceding command recorded
at that node (window 1 = the last one; tFAW uses window 4). Latencies are expressions over the
timing parameters (``"nCWL + nBL + nWR"``), evaluated once when a config is resolved.

Each command has a *scope*: bank-scope commands (ACT, PRE, RD, WR, RDA, WRA) are recorded at
the channel, pseudo-channel, bank-group and bank nodes on their path; pseudo-channel-scope
commands (PREA, REF and the all-bank PIM commands) are recorded at the channel and
pseudo-channel nodes only, so constraints that involve them are declared at those levels
(as in Ramulator 2.0). ``modes`` restricts a constraint to one PIM sharing mode.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

import numpy as np

from sieveopt.errors import SpecError

LEVELS = ("channel", "pseudo_channel", "bank_group", "bank")
LV_CH, LV_PCH, LV_BG, LV_BANK = range(4)

COMMANDS = ("ACT", "PRE", "PREA", "RD", "WR", "RDA", "WRA", "REF",
            "ACTAB", "PREAB", "MAC", "GWR", "RDRES")
CMD = {name: i for i, name in enumerate(COMMANDS)}
N_CMD = len(COMMANDS)
#: commands recorded down to the bank level; the others are pseudo-channel wide
BANK_SCOPE = frozenset({"ACT", "PRE", "RD", "WR", "RDA", "WRA"})
#: commands that travel on the row command bus (the rest use the column bus)
ROW_COMMANDS = frozenset({"ACT", "PRE", "PREA", "REF", "ACTAB", "PREAB"})
PIM_COMMANDS = frozenset({"ACTAB", "PREAB", "MAC", "GWR", "RDRES"})


@dataclass(frozen=True)
class TimingConstraint:
    """One row of the timing table (see module docstring)."""

    level: str
    preceding: tuple[str, ...]
    following: tuple[str, ...]
    latency: str
    window: int = 1
    modes: tuple[str, ...] = ("exclusive", "dual_row_buffer")


def _c(level: str, pre: str, fol: str, lat: str, window: int = 1,
       modes: tuple[str, ...] = ("exclusive", "dual_row_buffer")) -> TimingConstraint:
    return TimingConstraint(level, tuple(pre.split()), tuple(fol.split()), lat, window, modes)


RD_ = "RD RDA"
WR_ = "WR WRA"
EXCL = ("exclusive",)

#: The table. Data-bus occupancy is covered by the RD/WR/GWR/RDRES rows at pseudo-channel level:
#: consecutive bursts are ``max(nCCDS, nBL)`` apart, as in Ramulator 2.0's HBM3 model (which
#: declares both an ``nBL`` and an ``nCCDS`` row), so nCCDS < nBL keeps its meaning (minimum
#: column spacing) without overlapping bursts. Read/write turnarounds by nRTW and nWTR_S/L.
#: Read-to-precharge is split as in Ramulator (nRTPS to PREA / all-bank REF, nRTPL to PRE /
#: ACT of the same bank); both default to ``nRTP``.
TIMING_TABLE: tuple[TimingConstraint, ...] = (
    # ---- column to column (data bus, pseudo-channel and bank-group level)
    _c("pseudo_channel", RD_, RD_, "max(nCCDS, nBL)"),
    _c("bank_group", RD_, RD_, "nCCDL"),
    _c("pseudo_channel", WR_, WR_, "max(nCCDS, nBL)"),
    _c("bank_group", WR_, WR_, "nCCDL"),
    _c("pseudo_channel", RD_, WR_, "nCL + nBL + nRTW - nCWL"),
    _c("pseudo_channel", WR_, RD_, "nCWL + nBL + nWTRS"),
    _c("bank_group", WR_, RD_, "nCWL + nBL + nWTRL"),
    # ---- activation rate
    _c("pseudo_channel", "ACT", "ACT", "nRRDS"),
    _c("bank_group", "ACT", "ACT", "nRRDL"),
    _c("pseudo_channel", "ACT", "ACT", "nFAW", window=4),
    # ---- bank
    _c("bank", "ACT", "ACT", "nRC"),
    _c("bank", "ACT", RD_, "nRCDRD"),
    _c("bank", "ACT", WR_, "nRCDWR"),
    _c("bank", "ACT", "PRE", "nRAS"),
    _c("bank", "PRE", "ACT", "nRP"),
    _c("bank", "RD", "PRE", "nRTPL"),
    _c("bank", "WR", "PRE", "nCWL + nBL + nWR"),
    _c("bank", "RDA", "ACT", "nRTPL + nRP"),
    _c("bank", "WRA", "ACT", "nCWL + nBL + nWR + nRP"),
    # ---- all-bank precharge and refresh (pseudo-channel wide)
    _c("pseudo_channel", "ACT", "PREA", "nRAS"),
    _c("pseudo_channel", "RD", "PREA", "nRTPS"),
    _c("pseudo_channel", "WR", "PREA", "nCWL + nBL + nWR"),
    _c("pseudo_channel", "PREA", "ACT", "nRP"),
    _c("pseudo_channel", "PRE PREA", "REF", "nRP"),
    _c("pseudo_channel", "RDA", "REF", "nRTPS + nRP"),
    _c("pseudo_channel", "WRA", "REF", "nCWL + nBL + nWR + nRP"),
    _c("pseudo_channel", "REF", "ACT REF ACTAB", "nRFC"),
    # ---- PIM: all-bank activation / precharge of the PIM row (buffer)
    _c("pseudo_channel", "ACTAB", "ACTAB", "nRC + nABSTAG"),
    _c("pseudo_channel", "ACTAB", "MAC", "nRCDRD + nABSTAG"),
    _c("pseudo_channel", "ACTAB", "PREAB", "nRAS + nABSTAG"),
    _c("pseudo_channel", "PREAB", "ACTAB REF", "nRP"),
    _c("pseudo_channel", "MAC", "MAC", "nCCDMAC"),
    _c("pseudo_channel", "MAC", "PREAB", "nRTP"),
    _c("pseudo_channel", "MAC", "RDRES", "nMACLAT"),
    # power: a normal ACT and an all-bank ACT draw from the same budget
    _c("pseudo_channel", "ACT", "ACTAB", "nRRDS"),
    _c("pseudo_channel", "ACTAB", "ACT", "nRRDS + nABSTAG"),
    # exclusive mode: the PIM row and normal rows live in the same (single) row buffer
    _c("pseudo_channel", "ACT", "ACTAB", "nRC", modes=EXCL),
    _c("pseudo_channel", "PRE PREA", "ACTAB", "nRP", modes=EXCL),
    _c("pseudo_channel", "RDA", "ACTAB", "nRTPL + nRP", modes=EXCL),
    _c("pseudo_channel", "WRA", "ACTAB", "nCWL + nBL + nWR + nRP", modes=EXCL),
    _c("pseudo_channel", "PREAB", "ACT", "nRP", modes=EXCL),
    _c("pseudo_channel", "ACTAB", "ACT", "nRC + nABSTAG", modes=EXCL),
    # ---- PIM data-bus transfers: global-buffer write (like WR) and result read (like RD)
    _c("pseudo_channel", "GWR", "GWR WR WRA", "max(nCCDS, nBL)"),
    _c("pseudo_channel", "WR WRA", "GWR", "max(nCCDS, nBL)"),
    _c("pseudo_channel", "GWR", "MAC", "nCWL + nBL"),
    _c("pseudo_channel", "RDRES", "RDRES RD RDA", "max(nCCDS, nBL)"),
    _c("pseudo_channel", "RD RDA", "RDRES", "max(nCCDS, nBL)"),
    _c("pseudo_channel", "RD RDA RDRES", "GWR", "nCL + nBL + nRTW - nCWL"),
    _c("pseudo_channel", "RDRES", "WR WRA", "nCL + nBL + nRTW - nCWL"),
    _c("pseudo_channel", "GWR WR WRA", "RDRES", "nCWL + nBL + nWTRS"),
    _c("pseudo_channel", "GWR", "RD RDA", "nCWL + nBL + nWTRS"),
)

#: Command-bus occupancy in cycles, per command, as timing parameters (commands not listed hold
#: their bus one cycle). Ramulator 2.0's HBM model issues ACT over two cycles: "2-cycle ACT
#: command (for row commands)" -- a channel-level row ACT -> ACT/PRE/PREA/REF of latency 2.
#: ``nACTBUS = 2`` models exactly that: an ACT holds the *row* command path (the row bus with
#: split row/column buses, or the row side of a single bus) for two cycles, while column
#: commands may use the cycle after it. Default 1 (every preset before this knob).
BUS_OCCUPANCY: dict[str, str] = {"ACT": "nACTBUS"}


def bus_occupancy(params: dict[str, int]) -> np.ndarray:
    """int64 [N_CMD]: cycles each command holds its command bus (>= 1)."""
    occ = np.ones(N_CMD, dtype=np.int64)
    for name, expr in BUS_OCCUPANCY.items():
        occ[CMD[name]] = max(1, eval_latency(expr, params))
    return occ


_ROW_SYNTAX = "'<level>: <PREV ...> -> <NEXT ...> = <latency expr> [@<window>]'"


def parse_row(text: str) -> TimingConstraint:
    """Parse an extra timing row written as data, e.g. ``"channel: ACT -> ACT PRE = 2"`` or
    ``"pseudo_channel: ACT -> ACT = nFAW @4"`` (the window after ``@``, default 1). A preset
    lists such rows in ``timing_rows`` to extend the built-in table."""
    def bad(problem: str) -> SpecError:
        return SpecError("<spec>", "timing_rows", f"{problem} in {text!r}", f"write {_ROW_SYNTAX}")

    if ":" not in text or "->" not in text or "=" not in text:
        raise bad("cannot parse row")
    level, rest = (x.strip() for x in text.split(":", 1))
    pre, rest = (x.strip() for x in rest.split("->", 1))
    fol, lat = (x.strip() for x in rest.split("=", 1))
    window = 1
    if "@" in lat:
        lat, w = (x.strip() for x in lat.split("@", 1))
        if not w.isdigit() or int(w) < 1:
            raise bad(f"window {w!r} is not a positive integer")
        window = int(w)
    if level not in LEVELS:
        raise bad(f"unknown level {level!r} (use one of {', '.join(LEVELS)})")
    for c in pre.split() + fol.split():
        if c not in CMD:
            raise bad(f"unknown command {c!r} (use {' '.join(COMMANDS)})")
    if not pre.split() or not fol.split() or not lat:
        raise bad("empty command list or latency")
    return TimingConstraint(level, tuple(pre.split()), tuple(fol.split()), lat, window)


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv}


def eval_latency(expr: str, params: dict[str, int]) -> int:
    """Evaluate ``expr`` (names, integers, + - * //, max(), min()) over ``params``."""

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in params:
                raise SpecError("<timing table>", node.id, f"unknown timing parameter in '{expr}'",
                                "define it in [timing]")
            return int(params[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("max", "min")):
            fn = max if node.func.id == "max" else min
            return fn(ev(a) for a in node.args)
        raise SpecError("<timing table>", expr, "unsupported expression", "use + - * // max min")

    return ev(ast.parse(expr, mode="eval"))


@dataclass(frozen=True)
class CompiledTable:
    """The table flattened to integer arrays for the compiled engine (one row per pair)."""

    level: np.ndarray      # int64 [K]
    prev: np.ndarray       # int64 [K]
    next: np.ndarray       # int64 [K]
    latency: np.ndarray    # int64 [K]
    window: np.ndarray     # int64 [K]
    rows: tuple[tuple[str, str, str, int, int], ...]   # (level, prev, next, latency, window)


def compile_table(params: dict[str, int], mode: str,
                  table: tuple[TimingConstraint, ...] = TIMING_TABLE) -> CompiledTable:
    """Expand the table into (level, prev, next, latency, window) rows for ``mode``."""
    rows = []
    for con in table:
        if mode not in con.modes:
            continue
        wide = [c for c in con.preceding + con.following if c not in BANK_SCOPE]
        if wide and LEVELS.index(con.level) > LV_PCH:
            raise SpecError("<timing table>", f"{con.preceding}->{con.following}",
                            f"pseudo-channel-wide commands {wide} at level {con.level}",
                            "declare the row at channel or pseudo_channel level")
        lat = eval_latency(con.latency, params)
        for p in con.preceding:
            for f in con.following:
                rows.append((con.level, p, f, max(lat, 0), con.window))
    arr = np.array([(LEVELS.index(r[0]), CMD[r[1]], CMD[r[2]], r[3], r[4]) for r in rows],
                   dtype=np.int64).reshape(-1, 5)
    return CompiledTable(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy(), arr[:, 3].copy(),
                         arr[:, 4].copy(), tuple(rows))
