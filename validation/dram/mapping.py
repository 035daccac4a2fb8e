"""Address mapping: byte address -> (pseudo-channel, bank group, bank, row, column).

A mapping name lists fields from the most significant to the least significant position,
Ramulator-style: ``Ro`` row, ``Ba`` bank, ``Bg`` bank group, ``Ra`` rank (always size 1
here), ``Co`` column, ``Ch`` channel, ``Pc`` pseudo-channel. The byte address is first divided
by ``access_bytes`` (the low bits select a byte within one column access). Fields are then
peeled off from the least significant end by mixed-radix division, so a power-of-two field of
size 2^k takes exactly k bits and a non-power-of-two one (24 banks = 6 groups x 4) still maps
every index once. When ``Bg`` is absent, ``Ba`` spans bank groups x banks (bank group in the
high part); when ``Pc`` is absent, ``Ch`` spans channels x pseudo-channels (pseudo-channel in
the low part). Addresses beyond the capacity wrap around in the most significant field.

Ramulator 2.0's names. Its linear mappers treat ``Ra`` as "every level between channel and
row" in its HBM level order (channel, pseudochannel, bankgroup, bank, row, column), so for HBM
its ``RoBaRaCoCh`` is row | bank | bank group | pseudo-channel | column | channel and its
``ChRaBaRoCo`` is channel | pseudo-channel | bank group | bank | row | column. These two
names therefore decode exactly as Ramulator's (:data:`RAMULATOR_NAMES`; bit-for-bit tests in
``tests/test_dram_mapping.py``). The layout that sieveopt called ``RoBaRaCoCh`` before
(2026-11-29; bank group above bank, pseudo-channel below channel) is now written
``RoBgBaCoChPc`` -- the HBM presets use it, so their results did not change.

Examples (LSB last): ``RoBaBgPcCoCh`` = Ramulator's RoBaRaCoCh: consecutive accesses go to
consecutive channels, then columns of the same bank of one pseudo-channel. ``ChRaBaRoCo``:
a contiguous block fills a channel column by column. ``RoCoBaBgCh`` = row | column | bank |
bank group | channel — consecutive accesses of one channel rotate over bank groups first
(streams at tCCD_S instead of tCCD_L).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sieveopt.errors import SpecError

_TOKEN = re.compile(r"Ro|Ba|Bg|Ra|Co|Ch|Pc")

#: Ramulator 2.0 linear-mapper names -> the same layout in sieveopt's field syntax (HBM levels).
RAMULATOR_NAMES = {"RoBaRaCoCh": "RoBaBgPcCoCh", "ChRaBaRoCo": "ChPcBgBaRoCo"}


@dataclass(frozen=True)
class AddressMapping:
    """Parsed mapping: ``fields`` from LSB to MSB as (name, size)."""

    name: str
    fields: tuple[tuple[str, int], ...]
    access_bytes: int
    banks_per_group: int
    pch_per_channel: int

    @staticmethod
    def parse(name: str, org) -> AddressMapping:
        spelled = RAMULATOR_NAMES.get(name, name)
        tokens = _TOKEN.findall(spelled)
        if "".join(tokens) != spelled or len(set(tokens)) != len(tokens):
            raise SpecError("<spec>", "address_mapping", f"cannot parse mapping {name!r}",
                            "write fields MSB->LSB from Ro Ba Bg Ra Co Ch Pc, each once, e.g. RoBaRaCoCh")
        for need in ("Ro", "Ba", "Co", "Ch"):
            if need not in tokens:
                raise SpecError("<spec>", "address_mapping", f"mapping {name!r} lacks {need}",
                                "include Ro, Ba, Co and Ch")
        sizes = {"Ro": org.rows, "Co": org.columns, "Ra": 1}
        expanded: list[tuple[str, int]] = []
        for t in tokens:  # MSB -> LSB
            if t == "Ch":
                expanded.append(("Ch", org.channels))
                if "Pc" not in tokens:
                    expanded.append(("Pc", org.pseudo_channels_per_channel))
            elif t == "Pc":
                expanded.append(("Pc", org.pseudo_channels_per_channel))
            elif t == "Ba":
                if "Bg" in tokens:
                    expanded.append(("Ba", org.banks_per_group))
                else:
                    expanded.append(("BgBa", org.banks))
            elif t == "Bg":
                expanded.append(("Bg", org.bank_groups))
            else:
                expanded.append((t, sizes[t]))
        return AddressMapping(name, tuple(reversed(expanded)), org.access_bytes,
                              org.banks_per_group, org.pseudo_channels_per_channel)

    def decode(self, addr: np.ndarray, drop: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Vectorised decode of byte addresses. ``drop`` names fields treated as size 1 (e.g.
        ``("Ch",)`` enumerates the addresses of channel 0 only, in address order).
        Returns int64 arrays ``pch`` (global pseudo-channel), ``bg``, ``bank``, ``row``, ``col``."""
        idx = np.asarray(addr, dtype=np.int64) // self.access_bytes
        vals: dict[str, np.ndarray] = {}
        last = len(self.fields) - 1
        for i, (fname, size) in enumerate(self.fields):
            if fname in drop:
                vals[fname] = np.zeros_like(idx)
            elif size & (size - 1) == 0:  # power of two: mask and shift (fast path)
                vals[fname] = idx & (size - 1)
                idx = idx >> (size.bit_length() - 1)
            elif i == last:  # the most significant field wraps around
                vals[fname] = idx % size
            else:
                idx, vals[fname] = np.divmod(idx, size)
        if "BgBa" in vals:
            bg, bank = np.divmod(vals["BgBa"], self.banks_per_group)
        else:
            bg, bank = vals["Bg"], vals["Ba"]
        pch = vals["Ch"] * self.pch_per_channel + vals["Pc"]
        return {"pch": pch, "bg": bg, "bank": bank, "row": vals["Ro"], "col": vals["Co"]}
