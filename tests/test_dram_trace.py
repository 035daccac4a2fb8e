"""Ramulator 2.0 trace formats: parsing, streaming in chunks, errors with line numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sieveopt.errors import TraceError
from sieveopt.validation.dram import trace as T
from sieveopt.validation.dram.api import load_dram_preset
from sieveopt.validation.dram.sim import DramSim

FIX = Path(__file__).parent / "fixtures" / "dram"


def test_loadstore_parse_hex_and_decimal(tmp_path):
    p = tmp_path / "t.trace"
    p.write_text("# comment\nLD 0x40\n\nST 0128\nLD 0X1F\n")
    chunks = list(T.read_loadstore(p, chunk=2))
    assert [len(a) for a, _ in chunks] == [2, 1]
    addr = np.concatenate([a for a, _ in chunks])
    wr = np.concatenate([w for _, w in chunks])
    assert list(addr) == [0x40, 128, 0x1F] and list(wr) == [0, 1, 0]
    assert T.detect_format(p) == "loadstore"


@pytest.mark.parametrize("line,msg", [("LD", "expected"), ("XX 0x10", "expected"),
                                      ("LD 0xZZ", "bad address"), ("LD 0x1 0x2", "expected")])
def test_loadstore_malformed_line_names_file_and_line(tmp_path, line, msg):
    p = tmp_path / "bad.trace"
    p.write_text(f"LD 0x0\nST 0x20\n{line}\n")
    with pytest.raises(TraceError, match=rf"bad.trace:3: .*{msg}"):
        list(T.read_loadstore(p))


def test_readwrite_parse_and_errors(tmp_path):
    cfg = load_dram_preset("hbm3_5200")
    chunks = list(T.read_readwrite(FIX / "small_readwrite.trace", cfg.org, chunk=64))
    assert sum(len(c["pch"]) for c in chunks) == 200
    first = chunks[0]
    assert (first["pch"][17], first["bg"][17], first["bank"][17], first["col"][17]) == (3, 1, 0, 17)
    p = tmp_path / "rw.trace"
    p.write_text("R 0,0,0,0,0,0\nW 0,0,9,0,0,0\n")
    with pytest.raises(TraceError, match="rw.trace:2: bankgroup 9"):
        list(T.read_readwrite(p, cfg.org))


def test_streamed_chunks_equal_one_shot():
    cfg = load_dram_preset("hbm3_5200", nREFI=900)
    addr, wr = next(T.read_loadstore(FIX / "small_loadstore.trace"))
    one = DramSim(cfg, channels=4)
    one.feed_addresses(addr, wr)
    a = one.finish()
    many = DramSim(cfg, channels=4)
    for s in range(0, len(addr), 37):
        many.feed_addresses(addr[s:s + 37], wr[s:s + 37])
    b = many.finish()
    assert a.to_dict() == b.to_dict()
    assert a.reads == 320 and a.writes == 80


def test_simulate_trace_files():
    cfg = load_dram_preset("hbm3_5200")
    st = T.simulate_trace(cfg, FIX / "small_loadstore.trace")
    assert st.requests == 400 and st.reads + st.writes == 400
    st2 = T.simulate_trace(cfg, FIX / "small_readwrite.trace")
    assert st2.reads == 150 and st2.writes == 50
    with pytest.raises(TraceError, match="not found"):
        T.simulate_trace(cfg, FIX / "missing.trace")


def test_request_bytes_expand_to_column_accesses():
    cfg = load_dram_preset("hbm3_5200", refresh=False, request_bytes=64)
    sim = DramSim(cfg, channels=1)
    sim.feed_addresses(np.array([0, 4096]), np.zeros(2, dtype=np.int64))
    st = sim.finish()
    assert st.requests == 2 and st.reads == 4 and st.bytes == 128


def test_vectorised_reader_equals_line_parser(tmp_path):
    """The numpy block parser and the line-by-line parser agree on hex (0x / 0X, upper and
    lower case), decimal, mixed blocks, 15-digit hex, a missing final newline and block
    boundaries that cut lines."""
    rng = np.random.default_rng(5)
    n = 5000
    addr = rng.integers(0, 1 << 59, n)  # <= 15 hex / 18 decimal digits: the numpy path
    wr = rng.integers(0, 2, n)
    fmt = rng.integers(0, 3, n)
    lines = [("ST " if w else "LD ") + (hex(a) if f == 0 else f"0X{a:X}" if f == 1 else str(a))
             for a, w, f in zip(addr.tolist(), wr.tolist(), fmt.tolist(), strict=True)]
    p = tmp_path / "v.trace"
    p.write_text("\n".join(lines))  # no final newline
    assert T._parse_block(("\n".join(lines) + "\n").encode()) is not None
    old = T.BLOCK_BYTES
    try:
        T.BLOCK_BYTES = 4099  # many blocks, cut mid-line
        got = list(T.read_loadstore(p, chunk=777))
    finally:
        T.BLOCK_BYTES = old
    a = np.concatenate([c[0] for c in got])
    w = np.concatenate([c[1] for c in got])
    ref_a, ref_w = T._loadstore_slow(p, lines, 1)
    assert list(a) == ref_a and list(w) == ref_w and len(a) == n


def test_vectorised_reader_falls_back_for_errors(tmp_path):
    p = tmp_path / "e.trace"
    p.write_text("LD 0x0\n" * 1000 + "LD 0x1g\n" + "LD 0x0\n")
    with pytest.raises(TraceError, match=r"e.trace:1001: bad address"):
        list(T.read_loadstore(p))
    p.write_text("LD 0x10\r\nST 0x20\r\n")  # CRLF goes through the line parser
    a, w = next(T.read_loadstore(p))
    assert list(a) == [16, 32] and list(w) == [0, 1]
