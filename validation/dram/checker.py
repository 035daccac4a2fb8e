"""Independent command-log checker: replays an issued-command log against the timing table.

Deliberately simple pure Python that shares nothing with the compiled engine except the
*data* (``DramConfig.table``: ``timing.TIMING_TABLE`` plus the preset's rows, and the config's parameter values): it keeps, for every node
of the hierarchy, the issue cycles of every command, and for each logged command checks every
table row, the bank / PIM row-buffer state machines, one command per command bus per cycle,
and that no two data bursts overlap on a pseudo-channel's data bus.
"""

from __future__ import annotations

from collections import defaultdict, deque

from sieveopt.validation.dram.config import DramConfig
from sieveopt.validation.dram.timing import (
    BANK_SCOPE,
    COMMANDS,
    LEVELS,
    ROW_COMMANDS,
    bus_occupancy,
    eval_latency,
)


def check_log(cfg: DramConfig, records, *, sharing: str = "dual_row_buffer",
              max_errors: int = 20) -> list[str]:
    """Return violations (empty when the log obeys every rule). ``records`` iterates rows
    (cycle, cmd, pch, bg, bank, row, col) with integer command ids, in issue order."""
    params = cfg.timing_params
    ppc = cfg.org.pseudo_channels_per_channel
    rules = defaultdict(list)  # following cmd -> [(level, prev, latency, window)]
    for con in cfg.table:
        if sharing not in con.modes:
            continue
        lat = max(0, eval_latency(con.latency, params))
        for f in con.following:
            for p in con.preceding:
                rules[f].append((con.level, p, lat, con.window))
    t = cfg.timing
    hist: dict[tuple, deque] = defaultdict(lambda: deque(maxlen=8))
    open_rows: dict[tuple, int] = {}
    pim_open: dict[int, int] = {}
    bus_used: set[tuple] = set()
    occ = bus_occupancy(params)
    row_busy: dict[int, tuple[int, str]] = {}  # bus -> (row side busy until, by whom)
    bursts: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    errors: list[str] = []
    last_cycle = -1

    def node(level: str, pch: int, bg: int, bank: int) -> tuple:
        if level == "channel":
            return ("ch", pch // ppc)
        if level == "pseudo_channel":
            return ("pch", pch)
        if level == "bank_group":
            return ("bg", pch, bg)
        return ("bank", pch, bg, bank)

    def err(msg: str) -> None:
        if len(errors) < max_errors:
            errors.append(msg)

    for rec in records:
        cyc, cid, pch, bg, bank = (int(rec[0]), int(rec[1]), int(rec[2]), int(rec[3]), int(rec[4]))
        row = int(rec[5])
        name = COMMANDS[cid]
        where = f"cycle {cyc} {name} pch{pch} bg{bg} ba{bank}"
        if cyc < last_cycle:
            err(f"{where}: log not in issue order")
        last_cycle = cyc
        bank_scope = name in BANK_SCOPE
        # ---- timing rows
        for level, prev, lat, window in rules[name]:
            if not bank_scope and LEVELS.index(level) > 1:
                continue
            h = hist[(node(level, pch, bg, bank), prev)]
            if len(h) >= window and cyc < h[-window] + lat:
                err(f"{where}: violates {prev}->{name} at {level} "
                    f"(needs {lat} cycles after cycle {h[-window]})")
        # ---- command bus
        bus = pch // ppc if cfg.controller.command_bus == "per_channel" else pch
        kind = "row" if (name in ROW_COMMANDS or not cfg.controller.row_column_buses) else "col"
        if (bus, kind, cyc) in bus_used:
            err(f"{where}: second {kind} command on bus {bus} in one cycle")
        bus_used.add((bus, kind, cyc))
        if not cfg.controller.row_column_buses:  # one bus: any command takes both sides
            bus_used.add((bus, "col", cyc))
        if name in ROW_COMMANDS:
            until, by = row_busy.get(bus, (-1, ""))
            if cyc < until:
                err(f"{where}: row command while {by} still holds the row command path")
            row_busy[bus] = (cyc + int(occ[COMMANDS.index(name)]), where)
        # ---- state machines
        key = (pch, bg, bank)
        banks_of = [k for k in open_rows if k[0] == pch]
        if name == "ACT":
            if key in open_rows:
                err(f"{where}: ACT to an open bank")
            if sharing == "exclusive" and pch in pim_open:
                err(f"{where}: ACT while the PIM row is open (exclusive mode)")
            open_rows[key] = row
        elif name in ("RD", "WR", "RDA", "WRA"):
            if open_rows.get(key) != row:
                err(f"{where}: column command to row {row} but open row is {open_rows.get(key)}")
            if name in ("RDA", "WRA"):
                open_rows.pop(key, None)
        elif name == "PRE":
            if key not in open_rows:
                err(f"{where}: PRE to a closed bank")
            open_rows.pop(key, None)
        elif name == "PREA":
            for k in banks_of:
                open_rows.pop(k)
        elif name == "REF":
            if banks_of or pch in pim_open:
                err(f"{where}: REF with open rows")
        elif name == "ACTAB":
            if pch in pim_open:
                err(f"{where}: ACTAB with the PIM row already open")
            if sharing == "exclusive" and banks_of:
                err(f"{where}: ACTAB with normal rows open (exclusive mode)")
            pim_open[pch] = row
        elif name == "MAC":
            if pim_open.get(pch) != row:
                err(f"{where}: MAC to row {row} but PIM row is {pim_open.get(pch)}")
        elif name == "PREAB":
            if pch not in pim_open:
                err(f"{where}: PREAB with no PIM row open")
            pim_open.pop(pch, None)
        # ---- data bus bursts
        if name in ("RD", "RDA", "RDRES"):
            bursts[pch].append((cyc + t.nCL, cyc + t.nCL + t.nBL, where))
        elif name in ("WR", "WRA", "GWR"):
            bursts[pch].append((cyc + t.nCWL, cyc + t.nCWL + t.nBL, where))
        # ---- history
        levels = LEVELS if bank_scope else LEVELS[:2]
        for level in levels:
            hist[(node(level, pch, bg, bank), name)].append(cyc)
    for pch, bl in bursts.items():
        bl.sort()
        for (_s0, e0, w0), (s1, _e1, w1) in zip(bl, bl[1:], strict=False):
            if s1 < e0:
                err(f"data bus of pch{pch}: burst of '{w1}' overlaps '{w0}'")
    return errors
