"""Layout of the DRAM engine's state array and its codes: parameter / region slots of the
``mem`` header, scalar state, queue-entry fields, per-pseudo-channel statistics, return codes.

Shared by the compiled engine (:mod:`.engine`, numba) and its Python owner (:mod:`.sim`), which
allocates the array; kept free of numba so that a process running the ahead-of-time built
engine (:mod:`.native`) never imports numba.
"""

from __future__ import annotations

from sieveopt.validation.dram.timing import CMD, N_CMD

NEG = -(1 << 40)
INF = 1 << 62

# command ids (mirror timing.COMMANDS)
ACT, PRE, PREA, RD, WR, RDA, WRA, REF = (CMD[c] for c in ("ACT", "PRE", "PREA", "RD", "WR",
                                                          "RDA", "WRA", "REF"))
ACTAB, PREAB, MAC, GWR, RDRES = (CMD[c] for c in ("ACTAB", "PREAB", "MAC", "GWR", "RDRES"))

# header of ``mem``: parameters, then offsets of each region
(P_NCH, P_PPC, P_BG, P_BPG, P_QR, P_QW, P_WHI, P_WLO, P_FCFS, P_CLOSED, P_REFRESH, P_NREFI,
 P_BUS_PER_CH, P_SPLIT, P_IPC, P_NCL, P_NBL, P_NCWL, P_PIM_MODE, P_WMAX, P_LOG, P_QMAX,
 P_PIM_STRICT, O_PVS, O_PVL, O_PVF, O_PVLAT, O_PVW, O_NXT, O_HIST, O_HPOS, O_BUS, O_OPEN, O_PIMROW, O_QS, O_QN,
 O_DRAIN, O_REF, O_NEXT, O_PIMPOS, O_PIMLAST, O_STATS, O_S, O_CNT, O_BQ, O_CHOF,
 O_LAT, O_QH, O_WINC, O_BMASK, P_CHSCOPE, O_BOCC, O_AQ, O_AN, P_ORDY, P_BUFCTL, O_BL, O_FREE,
 O_NFREE, O_BGOF, O_KMASK, O_END) = range(62)
N_HEADER = 62
MAX_BANKS = 63  # per-queue bitmask of the banks with queued entries fits an int64
PIM_NONE, PIM_EXCLUSIVE, PIM_DUAL = 0, 1, 2

# scalar state (at O_S)
(S_NOW, S_INJ_CYCLE, S_INJ_COUNT, S_QUEUED, S_PIM_LEFT, S_LOG_N, S_END, S_SCAN, S_PIMX,
 S_PIMT, S_ITER, S_SCHED, S_LAST_ACC, S_FREED, S_SEQ) = range(15)
N_SCALAR = 15

# queue entry fields (F_SEQ, F_NX, F_PV: buffer controller only -- insertion number, next /
# previous slot of the same bank's list in arrival order, -1 at the ends)
F_BG, F_BANK, F_ROW, F_COL, F_ARR, F_STAT, F_PCH, F_WR, F_SEQ, F_NX, F_PV = range(11)
N_FIELD = 11

# per-pCH statistics
(ST_READS, ST_WRITES, ST_HITS, ST_MISSES, ST_CONFLICTS, ST_RDLAT, ST_LAST_DATA, ST_PIM_END,
 ST_LAST_CMD) = range(9)
ST_CMD0 = 9
N_STAT = ST_CMD0 + N_CMD

# return codes
NEED_MORE, DONE, LOG_FULL = 0, 1, 2
