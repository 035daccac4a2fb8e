"""Compiled LoadStoreTrace line parser (numba); called through :func:`.native.kernels`."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def parse_lines(u, addr, wr):
    """Parse whole ``LD|ST <addr>\n`` lines of the byte array ``u`` into ``addr`` / ``wr``
    (hex with 0x / 0X, or decimal; at most 15 hex / 18 decimal digits, so no overflow).
    Returns the number of lines, or -1 at the first line that is anything else."""
    n = 0
    i = 0
    end = u.shape[0]
    while i < end:
        if i + 3 >= end:
            return -1
        c0 = u[i]
        c1 = u[i + 1]
        if c0 == 76 and c1 == 68:      # LD
            w = 0
        elif c0 == 83 and c1 == 84:    # ST
            w = 1
        else:
            return -1
        if u[i + 2] != 32:
            return -1
        j = i + 3
        is_hex = j + 1 < end and u[j] == 48 and (u[j + 1] | 32) == 120
        if is_hex:
            j += 2
        v = 0
        nd = 0
        while j < end and u[j] != 10:
            c = u[j]
            if is_hex:
                if 48 <= c <= 57:
                    d = c - 48
                elif 97 <= (c | 32) <= 102:
                    d = (c | 32) - 87
                else:
                    return -1
                v = v * 16 + d
            else:
                if not 48 <= c <= 57:
                    return -1
                v = v * 10 + (c - 48)
            nd += 1
            j += 1
        if nd == 0 or j >= end or nd > (15 if is_hex else 18):
            return -1
        addr[n] = v
        wr[n] = w
        n += 1
        i = j + 1
    return n
