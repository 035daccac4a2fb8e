"""Address mappings that share a name with Ramulator 2.0 decode bit for bit like it.

The oracle is a line-by-line transcription of Ramulator 2.0's ``LinearMapperBase`` /
``RoBaRaCoCh`` / ``ChRaBaRoCo`` (src/addr_mapper/impl/linear_mappers.cpp, tag v2.0a) for its
HBM3 level order [channel, pseudochannel, bankgroup, bank, row, column]: drop the transaction
offset bits, then slice fields off the low end with ``slice_lower_bits``. It shares no code
with :mod:`sieveopt.validation.dram.mapping` (mixed-radix division over a field string)."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.validation.dram.api import load_dram_preset
from sieveopt.validation.dram.mapping import AddressMapping


def _ramulator_decode(addr: int, counts: list[int], prefetch: int, channel_width: int,
                      mapper: str) -> list[int]:
    """Ramulator 2.0's linear mappers, transcribed (levels ch, pch, bg, ba, ro, co)."""
    bits = [c.bit_length() - 1 for c in counts]
    bits[-1] -= prefetch.bit_length() - 1          # column at prefetch granularity
    tx_offset = (prefetch * channel_width // 8).bit_length() - 1
    row_idx, col_idx = 4, 5
    vec = [-1] * 6
    a = addr >> tx_offset

    def slice_lower_bits(n: int) -> int:
        nonlocal a
        v = a & ((1 << n) - 1)
        a >>= n
        return v

    if mapper == "ChRaBaRoCo":
        for i in range(len(bits) - 1, -1, -1):
            vec[i] = slice_lower_bits(bits[i])
    elif mapper == "RoBaRaCoCh":
        vec[0] = slice_lower_bits(bits[0])
        vec[col_idx] = slice_lower_bits(bits[col_idx])
        for i in range(1, row_idx + 1):
            vec[i] = slice_lower_bits(bits[i])
    return vec


@pytest.mark.parametrize("channels", [1, 16])
@pytest.mark.parametrize("mapper", ["RoBaRaCoCh", "ChRaBaRoCo"])
def test_shared_names_decode_like_ramulator(channels, mapper):
    cfg = load_dram_preset("ramulator2_hbm3_2gbps", channels_per_stack=channels)
    org = cfg.org
    counts = [channels, org.pseudo_channels_per_channel, org.bank_groups, org.banks_per_group,
              org.rows, 64]  # HBM3_2Gb: 64 columns, internal prefetch 2, channel_width 128
    rng = np.random.default_rng(channels)
    cap = channels * org.pseudo_channels_per_channel * org.banks * org.rows * org.page_bytes
    addrs = np.concatenate([np.arange(4096) * 32, rng.integers(0, cap, 4096),
                            (1 << np.arange(0, cap.bit_length() - 1)).astype(np.int64)])
    d = AddressMapping.parse(mapper, org).decode(addrs)
    ppc = org.pseudo_channels_per_channel
    ours = np.stack([d["pch"] // ppc, d["pch"] % ppc, d["bg"], d["bank"], d["row"], d["col"]], 1)
    ref = np.array([_ramulator_decode(int(a), counts, 2, 128, mapper) for a in addrs])
    assert (ours == ref).all()


def test_ramulator_robaracoch_is_robabgpccoch_and_old_layout_kept():
    org = load_dram_preset("hbm3_5200").org
    a = np.arange(1 << 16) * 977 * 32
    new = AddressMapping.parse("RoBaRaCoCh", org).decode(a)
    explicit = AddressMapping.parse("RoBaBgPcCoCh", org).decode(a)
    assert all((new[k] == explicit[k]).all() for k in new)
    # the old sieveopt "RoBaRaCoCh" (bank group above bank, pCH below channel) differs
    old = AddressMapping.parse("RoBgBaCoChPc", org).decode(a)
    assert not (old["pch"] == new["pch"]).all()
    assert load_dram_preset("hbm3_5200").controller.address_mapping == "RoBgBaCoChPc"
