"""Streaming readers of Ramulator 2.0 memory traces.

* ``LoadStoreTrace``: one request per line, ``LD <addr>`` or ``ST <addr>``; the byte address
  is hexadecimal with a ``0x`` prefix or decimal (as Ramulator's ``std::stoll``).
* ``ReadWriteTrace``: ``R <vec>`` or ``W <vec>`` with a comma-separated address vector in
  Ramulator's HBM3 level order: channel, pseudochannel, bankgroup, bank, row, column (a
  7-element vector with a rank/SID after the pseudo-channel is accepted when the SID is 0).

Files are read in chunks of decoded numpy arrays, never whole. Blank lines and ``#`` comments
are skipped. A malformed line raises :class:`TraceError` naming the file and line number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sieveopt.errors import TraceError

CHUNK = 1 << 18


def detect_format(path: str | Path) -> str:
    """``loadstore`` or ``readwrite`` from the first request line."""
    with open(path, encoding="ascii", errors="replace") as fh:
        for line in fh:
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            if tok[0] in ("LD", "ST"):
                return "loadstore"
            if tok[0] in ("R", "W"):
                return "readwrite"
            break
    raise TraceError(f"{path}: cannot tell the trace format (fix: write Ramulator LoadStore lines 'LD 0x1f40' / 'ST ...' or ReadWrite lines 'R 0x1f40' / 'W ...')")


def _loadstore_slow(path, lines: list[str], first_lineno: int) -> tuple[list[int], list[int]]:
    """Line-by-line parse of one block; raises TraceError at the first malformed line."""
    addrs: list[int] = []
    wr: list[int] = []
    for lineno, line in enumerate(lines, first_lineno):
        tok = line.split()
        if not tok or tok[0].startswith("#"):
            continue
        if len(tok) != 2 or tok[0] not in ("LD", "ST"):
            raise TraceError(f"{path}:{lineno}: expected 'LD <addr>' or 'ST <addr>', got {line.strip()!r}")
        try:
            a = int(tok[1], 16) if tok[1][:2] in ("0x", "0X") else int(tok[1])
        except ValueError:
            raise TraceError(f"{path}:{lineno}: bad address {tok[1]!r} (fix: a decimal or 0x-hex byte address)") from None
        if a < 0 or a >= 1 << 62:
            raise TraceError(f"{path}:{lineno}: address {tok[1]} out of range")
        addrs.append(a)
        wr.append(1 if tok[0] == "ST" else 0)
    return addrs, wr


def read_loadstore(path: str | Path, chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (byte_addresses, is_write) int64 chunks of a LoadStoreTrace file.

    Blocks of lines are split in one go (fast path); a block with any other line (blank,
    comment, malformed) is re-parsed line by line, which reports the bad line."""
    try:
        fh = open(path, encoding="ascii", errors="replace")
    except OSError as exc:
        raise TraceError(f"{path}: cannot open trace ({exc.strerror})") from None
    lineno = 1
    with fh:
        while True:
            lines = fh.readlines(1 << 20)
            if not lines:
                break
            toks = "".join(lines).split()
            ops = toks[0::2]
            try:  # fast path: every line is exactly "LD|ST <addr>"
                if len(toks) != 2 * len(lines) or not set(ops) <= {"LD", "ST"}:
                    raise ValueError
                addrs = [int(a, 16) if a[:2] in ("0x", "0X") else int(a) for a in toks[1::2]]
                if addrs and (max(addrs) >= 1 << 62 or min(addrs) < 0):
                    raise ValueError
                wr = [1 if op == "ST" else 0 for op in ops]
            except ValueError:
                addrs, wr = _loadstore_slow(path, lines, lineno)
            lineno += len(lines)
            for s in range(0, len(addrs), chunk):
                yield (np.array(addrs[s:s + chunk], dtype=np.int64),
                       np.array(wr[s:s + chunk], dtype=np.int64))


def read_readwrite(path: str | Path, org, chunk: int = CHUNK) -> Iterator[dict[str, np.ndarray]]:
    """Yield dict chunks (pch, bg, bank, row, col, wr) of a ReadWriteTrace file."""
    limits = (org.channels, org.pseudo_channels_per_channel, org.bank_groups,
              org.banks_per_group, org.rows, org.columns)
    names = ("channel", "pseudochannel", "bankgroup", "bank", "row", "column")
    buf: list[tuple[int, ...]] = []
    try:
        fh = open(path, encoding="ascii", errors="replace")
    except OSError as exc:
        raise TraceError(f"{path}: cannot open trace ({exc.strerror})") from None

    def pack(rows: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
        a = np.array(rows, dtype=np.int64).reshape(-1, 7)
        return {"pch": a[:, 0] * org.pseudo_channels_per_channel + a[:, 1], "bg": a[:, 2],
                "bank": a[:, 3], "row": a[:, 4], "col": a[:, 5], "wr": a[:, 6]}

    with fh:
        for lineno, line in enumerate(fh, 1):
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            if len(tok) != 2 or tok[0] not in ("R", "W"):
                raise TraceError(f"{path}:{lineno}: expected 'R <vec>' or 'W <vec>', got {line.strip()!r}")
            try:
                vec = [int(v) for v in tok[1].split(",")]
            except ValueError:
                raise TraceError(f"{path}:{lineno}: bad address vector {tok[1]!r}") from None
            if len(vec) == 7:
                if vec[2] != 0:
                    raise TraceError(f"{path}:{lineno}: rank/SID {vec[2]} not modelled (use 0)")
                vec = vec[:2] + vec[3:]
            if len(vec) != 6:
                raise TraceError(f"{path}:{lineno}: address vector needs 6 values "
                                 "(channel,pseudochannel,bankgroup,bank,row,column)")
            for v, lim, nm in zip(vec, limits, names, strict=False):
                if not 0 <= v < lim:
                    raise TraceError(f"{path}:{lineno}: {nm} {v} out of range 0..{lim - 1}")
            buf.append((*vec, 1 if tok[0] == "W" else 0))
            if len(buf) >= chunk:
                yield pack(buf)
                buf = []
    if buf:
        yield pack(buf)


def simulate_trace(cfg, path: str | Path, *, fmt: str | None = None, channels: int | None = None,
                   observer=None):
    """Run a Ramulator 2.0 trace file through :class:`DramSim`, streaming it in chunks."""
    from sieveopt.validation.dram.sim import DramSim

    path = Path(path)
    if not path.exists():
        raise TraceError(f"{path}: trace file not found")
    fmt = fmt or detect_format(path)
    sim = DramSim(cfg, channels=channels, observer=observer)
    if fmt == "loadstore":
        for addr, wr in read_loadstore(path):
            sim.feed_addresses(addr, wr)
    elif fmt == "readwrite":
        for d in read_readwrite(path, cfg.org):
            if channels is not None and d["pch"].size and d["pch"].max() >= sim.n_pch:
                raise TraceError(f"{path}: request for channel beyond the {channels} simulated")
            sim.feed(d["pch"], d["bg"], d["bank"], d["row"], d["col"], d["wr"])
    else:
        raise TraceError(f"{path}: unknown trace format {fmt!r} (use loadstore or readwrite)")
    return sim.finish()
