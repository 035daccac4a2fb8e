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
from sieveopt.validation.dram.native import kernels

CHUNK = 1 << 20


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


BLOCK_BYTES = 4 << 20


def _parse_block(buf: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Compiled parse of whole lines ``LD|ST <addr>\n``. Returns None when any line is not
    exactly that (blank, comment, CRLF, malformed, an address of more than 15 hex / 18
    decimal digits): the caller then parses the block line by line."""
    u = np.frombuffer(buf, dtype=np.uint8)
    n_max = buf.count(b"\n")
    addr = np.empty(n_max, dtype=np.int64)
    wr = np.empty(n_max, dtype=np.int64)
    n = kernels().parse_lines(u, addr, wr)
    if n < 0 or (n and addr[:n].max() >= 1 << 62):
        return None
    return addr[:n], wr[:n]


def read_loadstore(path: str | Path, chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (byte_addresses, is_write) int64 chunks of a LoadStoreTrace file.

    The file is streamed in blocks of ~4 MiB cut at a line end; a block of well-formed lines
    is parsed by one compiled pass (:func:`_parse_block`, no Python object per line); a block
    with any other line (blank, comment, malformed) is re-parsed line by line, which skips
    blanks / comments and reports the bad line with its number."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise TraceError(f"{path}: cannot open trace ({exc.strerror})") from None
    lineno = 1
    rest = b""
    with fh:
        while True:
            data = fh.read(BLOCK_BYTES)
            eof = not data
            buf = rest + data
            if eof:
                if not buf:
                    break
                if not buf.endswith(b"\n"):
                    buf += b"\n"
                rest = b""
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    rest = buf
                    continue
                buf, rest = buf[:cut], buf[cut:]
            parsed = _parse_block(buf)
            n_lines = buf.count(b"\n")
            if parsed is None:
                lines = buf.decode("ascii", errors="replace").split("\n")[:-1]
                addrs, wr = _loadstore_slow(path, lines, lineno)
                parsed = (np.array(addrs, dtype=np.int64), np.array(wr, dtype=np.int64))
            lineno += n_lines
            addr, wr = parsed
            for s in range(0, len(addr), chunk):
                yield addr[s:s + chunk], wr[s:s + chunk]
            if eof:
                break


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
                   observer=None, timings: dict[str, float] | None = None):
    """Run a Ramulator 2.0 trace file through :class:`DramSim`, streaming it in chunks.
    ``timings`` (optional) receives ``parse_s`` (reading + decoding the file) and
    ``simulate_s`` (address mapping + engine), wall seconds."""
    import time

    from sieveopt.validation.dram.sim import DramSim

    t_parse = t_sim = 0.0

    def timed(it):
        nonlocal t_parse
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                t_parse += time.perf_counter() - t0
                return
            t_parse += time.perf_counter() - t0
            yield item

    path = Path(path)
    if not path.exists():
        raise TraceError(f"{path}: trace file not found")
    fmt = fmt or detect_format(path)
    sim = DramSim(cfg, channels=channels, observer=observer)
    if fmt == "loadstore":
        for addr, wr in timed(read_loadstore(path)):
            t0 = time.perf_counter()
            sim.feed_addresses(addr, wr)
            t_sim += time.perf_counter() - t0
    elif fmt == "readwrite":
        for d in timed(read_readwrite(path, cfg.org)):
            if channels is not None and d["pch"].size and d["pch"].max() >= sim.n_pch:
                raise TraceError(f"{path}: request for channel beyond the {channels} simulated")
            t0 = time.perf_counter()
            sim.feed(d["pch"], d["bg"], d["bank"], d["row"], d["col"], d["wr"])
            t_sim += time.perf_counter() - t0
    else:
        raise TraceError(f"{path}: unknown trace format {fmt!r} (use loadstore or readwrite)")
    t0 = time.perf_counter()
    st = sim.finish()
    t_sim += time.perf_counter() - t0
    if timings is not None:
        timings.update(parse_s=t_parse, simulate_s=t_sim)
    return st
