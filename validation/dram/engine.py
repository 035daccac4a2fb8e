"""Compiled (numba) core: per pseudo-channel controllers, bank state machines, refresh, PIM.

The engine is event-driven over integer DRAM cycles. A controller recomputes, when it is
looked at, the earliest cycle at which any of its candidate commands could issue; since its
constraints only tighten until it issues a command or receives a request, it sleeps until
that cycle. Idle time is therefore skipped but no constraint is approximated: every command
issues at a cycle where every table row, the bank state and the command bus allow it.

Timing rows are applied forward: issuing command ``c`` at node path (ch, pch, bg, bank) raises
``ready[node_L, f]`` to ``now + latency`` for every row (L, c -> f) of the table (windowed rows
use the ``w``-th most recent ``c`` at that node). The earliest cycle of ``f`` is then the max
of ``ready`` over the nodes on its path and the command bus, which is exactly the max over all
table rows. The checker in :mod:`.checker` verifies logs against the table directly.

All state lives in one flat int64 array ``mem`` (parameters, tables, state; offsets in its
header) so that the compiled helpers pass a single array (numba reference-counts every array
argument of every call, which dominated the run time with ~30 separate arrays). The owner,
:class:`sieveopt.validation.dram.sim.DramSim`, keeps numpy views into it; a trace can be fed in
chunks (streamed) and the command log drained when its buffer fills.
"""

from __future__ import annotations

from numba import carray, njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from sieveopt.validation.dram.layout import (
    ACT,
    ACTAB,
    DONE,
    F_ARR,
    F_BANK,
    F_BG,
    F_COL,
    F_NX,
    F_PCH,
    F_PV,
    F_ROW,
    F_SEQ,
    F_STAT,
    F_WR,
    INF,
    LOG_FULL,
    N_FIELD,
    N_STAT,
    NEED_MORE,
    NEG,
    O_AN,
    O_AQ,
    O_BGOF,
    O_BL,
    O_BMASK,
    O_BOCC,
    O_BQ,
    O_BUS,
    O_CHOF,
    O_CNT,
    O_DRAIN,
    O_FREE,
    O_HIST,
    O_HPOS,
    O_KMASK,
    O_LAT,
    O_NEXT,
    O_NFREE,
    O_NXT,
    O_OPEN,
    O_PIMLAST,
    O_PIMPOS,
    O_PIMROW,
    O_PVF,
    O_PVL,
    O_PVLAT,
    O_PVS,
    O_PVW,
    O_QH,
    O_QN,
    O_QS,
    O_REF,
    O_S,
    O_STATS,
    O_WINC,
    P_BG,
    P_BPG,
    P_BUFCTL,
    P_BUS_PER_CH,
    P_CHSCOPE,
    P_CLOSED,
    P_FCFS,
    P_IPC,
    P_LOG,
    P_NBL,
    P_NCH,
    P_NCL,
    P_NCWL,
    P_NREFI,
    P_ORDY,
    P_PIM_MODE,
    P_PIM_STRICT,
    P_PPC,
    P_QMAX,
    P_QR,
    P_QW,
    P_REFRESH,
    P_SPLIT,
    P_WHI,
    P_WLO,
    P_WMAX,
    PIM_EXCLUSIVE,
    PIM_NONE,
    PRE,
    PREA,
    PREAB,
    RD,
    RDA,
    RDRES,
    REF,
    S_END,
    S_FREED,
    S_INJ_COUNT,
    S_INJ_CYCLE,
    S_ITER,
    S_LAST_ACC,
    S_LOG_N,
    S_NOW,
    S_PIM_LEFT,
    S_PIMT,
    S_PIMX,
    S_QUEUED,
    S_SCHED,
    S_SEQ,
    ST_CMD0,
    ST_CONFLICTS,
    ST_HITS,
    ST_LAST_CMD,
    ST_LAST_DATA,
    ST_MISSES,
    ST_PIM_END,
    ST_RDLAT,
    ST_READS,
    ST_WRITES,
    WR,
    WRA,
)
from sieveopt.validation.dram.timing import N_CMD


@intrinsic
def _voidptr(typingctx, addr):
    """int address -> void* (for :func:`_borrow`)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(addr), codegen


@njit(cache=True, inline="always")
def _borrow(a):
    """A view of ``a`` without a reference count. Numba increments and decrements the count
    of every array passed to a helper with atomic instructions (~12 % of the run time here);
    the caller keeps ``a`` alive for the whole call, so the engine works on borrowed views."""
    return carray(_voidptr(a.ctypes.data), a.shape, dtype=a.dtype)


@njit(cache=True, inline="always")
def _is_row(cmd):
    """Row-bus command (ACT, PRE, PREA, REF, ACTAB, PREAB), see timing.ROW_COMMANDS."""
    return cmd <= PREA or cmd == REF or cmd == ACTAB or cmd == PREAB


@njit(cache=True, inline="always")
def _is_bank(cmd):
    """Bank-scope command (ACT, PRE, RD, WR, RDA, WRA), see timing.BANK_SCOPE."""
    return cmd <= PRE or (cmd >= RD and cmd <= WRA)


@njit(cache=True, inline="always")
def _inst(lv, p, g, b, m):
    n_ch = m[P_NCH]
    n_pch = n_ch * m[P_PPC]
    if lv == 0:
        return m[m[O_CHOF] + p]
    if lv == 1:
        return n_ch + p
    if lv == 2:
        return n_ch + n_pch + p * m[P_BG] + g
    return n_ch + n_pch + n_pch * m[P_BG] + (p * m[P_BG] + g) * m[P_BPG] + b


@njit(cache=True, inline="always")
def _slot(q0, h, i, qmax):
    """Address of the ``i``-th oldest entry of a ring-buffer queue (base ``q0``, head ``h``)."""
    j = h + i
    if j >= qmax:
        j -= qmax
    return q0 + j * N_FIELD


@njit(cache=True, inline="always")
def _upper(cmd, p, m):
    """Earliest cycle of ``cmd`` from its channel and pseudo-channel nodes and command bus."""
    nx = m[O_NXT]
    ch = m[m[O_CHOF] + p]
    t = m[nx + ch * N_CMD + cmd]
    t1 = m[nx + (m[P_NCH] + p) * N_CMD + cmd]
    if t1 > t:
        t = t1
    bus = ch if m[P_BUS_PER_CH] != 0 else p
    t1 = m[m[O_BUS] + bus * 2 + (0 if _is_row(cmd) else 1)]
    return t1 if t1 > t else t


@njit(cache=True, inline="always")
def _lower(cmd, p, g, b, m):
    """Earliest cycle of ``cmd`` from its bank-group and bank nodes."""
    n_ch = m[P_NCH]
    n_pch = n_ch * m[P_PPC]
    gi = p * m[P_BG] + g
    nx = m[O_NXT]
    t = m[nx + (n_ch + n_pch + gi) * N_CMD + cmd]
    t1 = m[nx + (n_ch + n_pch + n_pch * m[P_BG] + gi * m[P_BPG] + b) * N_CMD + cmd]
    return t if t > t1 else t1


@njit(cache=True, inline="always")
def _earliest(cmd, p, g, b, m):
    t = _upper(cmd, p, m)
    if _is_bank(cmd):
        t1 = _lower(cmd, p, g, b, m)
        if t1 > t:
            t = t1
    return t


@njit(cache=True, inline="always")
def _kind_bits(p, w, bi, m):
    """Buffer controller: bank ``bi``'s bits in the masks of (pCH ``p``, direction ``w``) of
    banks with queued row hits (column command), with other entries in a closed bank (ACT)
    and with other entries in an open bank (PRE), from its counts at O_BQ and its open row.
    Called wherever those change, so a scheduler call visits only the banks whose command
    kind its channel / pseudo-channel / bus part lets issue now."""
    if m[P_BUFCTL] == 0:
        return
    nb = m[P_BG] * m[P_BPG]
    bq = m[O_BQ] + ((p * 2 + w) * nb + bi) * 2
    km = m[O_KMASK] + (p * 2 + w) * 3
    bit = 1 << bi
    miss = m[bq] > m[bq + 1]
    is_open = m[m[O_OPEN] + p * nb + bi] >= 0
    m[km] = m[km] | bit if m[bq + 1] > 0 else m[km] & ~bit
    m[km + 1] = m[km + 1] | bit if miss and not is_open else m[km + 1] & ~bit
    m[km + 2] = m[km + 2] | bit if miss and is_open else m[km + 2] & ~bit


@njit(cache=True)
def _issue(cmd, p, g, b, row, col, now, m, log):
    """Issue ``cmd``: apply its table rows forward, update bank state, bus, counters, log."""
    wmax = m[P_WMAX]
    hi = m[O_HIST]
    hp = m[O_HPOS]
    nx = m[O_NXT]
    # the command's node at each level (channel, pCH, bank group, bank), once per issue
    i0 = _inst(0, p, g, b, m)
    i1 = _inst(1, p, g, b, m)
    i2 = _inst(2, p, g, b, m)
    i3 = _inst(3, p, g, b, m)
    if wmax > 1 and m[m[O_WINC] + cmd] != 0:  # only commands some windowed row looks back at
        top = 4 if _is_bank(cmd) else 2
        for lv in range(top):
            ic = (i0 if lv == 0 else (i1 if lv == 1 else (i2 if lv == 2 else i3))) * N_CMD + cmd
            m[hi + ic * wmax + m[hp + ic]] = now
            m[hp + ic] = m[hp + ic] + 1 if m[hp + ic] + 1 < wmax else 0
    pvl = m[O_PVL]
    pvw = m[O_PVW]
    pvlat = m[O_PVLAT]
    pvf = m[O_PVF]
    for k in range(m[m[O_PVS] + cmd], m[m[O_PVS] + cmd + 1]):
        lv = m[pvl + k]
        inst = i0 if lv == 0 else (i1 if lv == 1 else (i2 if lv == 2 else i3))
        w = m[pvw + k]
        if w == 1:
            t = now + m[pvlat + k]
        else:
            ic = inst * N_CMD + cmd
            t = m[hi + ic * wmax + (m[hp + ic] - w + wmax) % wmax]
            if t <= NEG // 2:
                continue
            t += m[pvlat + k]
        j = nx + inst * N_CMD + m[pvf + k]
        if t > m[j]:
            m[j] = t
    # command bus: [row side, column side]. Split buses: a command holds its own side for its
    # occupancy (nACTBUS for ACT, else 1). One shared bus: any command holds both sides for
    # one cycle, and a row command holds the row side for its whole occupancy (Ramulator's
    # 2-cycle ACT blocks the next row command, not a column command).
    bus = m[O_BUS] + (m[m[O_CHOF] + p] if m[P_BUS_PER_CH] != 0 else p) * 2
    occ = m[m[O_BOCC] + cmd]
    row_side = _is_row(cmd)
    if m[P_SPLIT] != 0:
        j = bus if row_side else bus + 1
        if now + occ > m[j]:
            m[j] = now + occ
    else:
        t_row = now + occ if row_side else now + 1
        if t_row > m[bus]:
            m[bus] = t_row
        if now + 1 > m[bus + 1]:
            m[bus + 1] = now + 1
    nb = m[P_BG] * m[P_BPG]
    ob = m[O_OPEN] + p * nb
    bi = g * m[P_BPG] + b
    if cmd == ACT:
        m[ob + bi] = row
        qmax = m[P_QMAX]
        for w in range(2):  # queued entries that now hit the opened row
            hits = 0
            if m[P_BUFCTL] != 0:  # the bank's list in its owner's buffer
                own = p - p % m[P_PPC] if m[P_CHSCOPE] != 0 else p
                base = m[O_QS] + (own * 2 + w) * qmax * N_FIELD
                s_ = m[m[O_BL] + ((p * 2 + w) * nb + bi) * 2]
                while s_ >= 0:
                    e = base + s_ * N_FIELD
                    if m[e + F_ROW] == row:
                        hits += 1
                    s_ = m[e + F_NX]
            else:
                q0 = m[O_QS] + ((p * 2 + w) * qmax) * N_FIELD
                h = m[m[O_QH] + p * 2 + w]
                for i in range(m[m[O_QN] + p * 2 + w]):
                    e = _slot(q0, h, i, qmax)
                    if m[e + F_ROW] == row and m[e + F_BG] == g and m[e + F_BANK] == b:
                        hits += 1
            m[m[O_BQ] + ((p * 2 + w) * nb + bi) * 2 + 1] = hits
            _kind_bits(p, w, bi, m)
    elif cmd == PRE or cmd == RDA or cmd == WRA:
        m[ob + bi] = -1
        for w in range(2):
            m[m[O_BQ] + ((p * 2 + w) * nb + bi) * 2 + 1] = 0
            _kind_bits(p, w, bi, m)
    elif cmd == PREA:
        for i in range(nb):
            m[ob + i] = -1
            for w in range(2):
                m[m[O_BQ] + ((p * 2 + w) * nb + i) * 2 + 1] = 0
                _kind_bits(p, w, i, m)
    elif cmd == ACTAB:
        m[m[O_PIMROW] + p] = row
    elif cmd == PREAB:
        m[m[O_PIMROW] + p] = -1
    st = m[O_STATS] + p * N_STAT
    m[st + ST_CMD0 + cmd] += 1
    if now + 1 > m[st + ST_LAST_CMD]:
        m[st + ST_LAST_CMD] = now + 1
    if m[P_LOG] != 0:
        n = m[m[O_S] + S_LOG_N]
        log[n, 0] = now
        log[n, 1] = cmd
        log[n, 2] = p
        log[n, 3] = g
        log[n, 4] = b
        log[n, 5] = row
        log[n, 6] = col
        m[m[O_S] + S_LOG_N] = n + 1


@njit(cache=True)
def _any_open(p, m):
    nb = m[P_BG] * m[P_BPG]
    ob = m[O_OPEN] + p * nb
    for i in range(nb):
        if m[ob + i] >= 0:
            return True
    return False


@njit(cache=True)
def _sched_pim_refresh(p, now, m, pim, log):
    """Refresh and PIM part of the scheduler. Returns (issued, next_cycle, blocks_normal)."""
    tmin = INF
    ref_pending = False
    if m[P_REFRESH] != 0:
        if now >= m[m[O_REF] + p]:
            ref_pending = True
            if _any_open(p, m):
                t = _upper(PREA, p, m)
                if t <= now:
                    _issue(PREA, p, 0, 0, -1, -1, now, m, log)
                    return True, now + 1, True
                tmin = t
            elif m[m[O_PIMROW] + p] < 0:
                t = _upper(REF, p, m)
                if t <= now:
                    _issue(REF, p, 0, 0, -1, -1, now, m, log)
                    m[m[O_REF] + p] += m[P_NREFI]
                    return True, now + 1, True
                tmin = t
        else:
            tmin = m[m[O_REF] + p]
    pim_mode = m[P_PIM_MODE]
    pim_active = False
    pos = m[m[O_PIMPOS] + p]
    if pim_mode != PIM_NONE and pos < pim.shape[1]:
        rel = pim[3, pos]
        if rel <= now:
            pim_active = True
            c = pim[0, pos]
            if not (ref_pending and c == ACTAB):
                if c == ACTAB and pim_mode == PIM_EXCLUSIVE and _any_open(p, m):
                    t = _upper(PREA, p, m)
                    if t <= now:
                        _issue(PREA, p, 0, 0, -1, -1, now, m, log)
                        return True, now + 1, True
                else:
                    t = _upper(c, p, m)
                    last = m[m[O_PIMLAST] + p]
                    if last + 1 > t:
                        t = last + 1
                    if t <= now:
                        _issue(c, p, 0, 0, pim[1, pos], pim[2, pos], now, m, log)
                        m[m[O_PIMLAST] + p] = now
                        m[m[O_PIMPOS] + p] = pos + 1
                        m[m[O_S] + S_PIM_LEFT] -= 1
                        end = now + m[P_NCL] + m[P_NBL] if c == RDRES else now + 1
                        st = m[O_STATS] + p * N_STAT + ST_PIM_END
                        if end > m[st]:
                            m[st] = end
                        return True, now + 1, True
                    elif m[P_PIM_STRICT] != 0:
                        # waiting: normal traffic may use the gap only without delaying it
                        m[m[O_S] + S_PIMX] = c
                        m[m[O_S] + S_PIMT] = t
                if t < tmin:
                    tmin = t
        elif rel < tmin:
            tmin = rel
    return False, tmin, ref_pending or (pim_active and pim_mode == PIM_EXCLUSIVE)


@njit(cache=True, inline="always")
def _sched(p, now, m, pim, log):
    """Try to issue one command on pCH ``p`` at ``now``. Returns (issued, next_cycle)."""
    tmin = INF
    m[m[O_S] + S_PIMX] = -1
    if m[P_PIM_MODE] != PIM_NONE or (m[P_REFRESH] != 0 and now >= m[m[O_REF] + p]):
        issued, tmin, blocked = _sched_pim_refresh(p, now, m, pim, log)
        if issued or blocked:
            return issued, tmin
    elif m[P_REFRESH] != 0:
        tmin = m[m[O_REF] + p]
    # ---- normal traffic: pick the queue (write drain with watermarks)
    qn = m[O_QN] + p * 2
    nrd = m[qn]
    nwr = m[qn + 1]
    dr = m[O_DRAIN] + p
    if m[dr] == 0:
        if nwr >= m[P_WHI] or (nrd == 0 and nwr > 0):
            m[dr] = 1
    else:
        if nwr == 0 or (nwr <= m[P_WLO] and nrd > 0):
            m[dr] = 0
    w = m[dr]
    is_wr = w == 1
    n = m[qn + w]
    if n == 0:
        return False, tmin
    col_cmd = WR if is_wr else RD
    cola_cmd = WRA if is_wr else RDA
    u_col = _upper(col_cmd, p, m)
    closed = m[P_CLOSED] != 0
    u_cola = _upper(cola_cmd, p, m) if closed else INF
    u_act = _upper(ACT, p, m)
    u_pre = _upper(PRE, p, m)
    px = m[m[O_S] + S_PIMX]
    if px >= 0:  # a waiting PIM command keeps priority: skip commands that would delay it
        pt = m[m[O_S] + S_PIMT]
        lat = m[O_LAT] + px
        if now + m[lat + col_cmd * N_CMD] > pt:
            u_col = max(u_col, pt)
        if closed and now + m[lat + cola_cmd * N_CMD] > pt:
            u_cola = max(u_cola, pt)
        if now + m[lat + ACT * N_CMD] > pt:
            u_act = max(u_act, pt)
        if now + m[lat + PRE * N_CMD] > pt:
            u_pre = max(u_pre, pt)
    lb = min(min(u_col, u_cola), min(u_act, u_pre))
    if lb > now:  # nothing can issue before lb whatever the bank: skip the scan
        return False, min(lb, tmin)
    nb = m[P_BG] * m[P_BPG]
    bpg = m[P_BPG]
    ob = m[O_OPEN] + p * nb
    qmax = m[P_QMAX]
    q0 = m[O_QS] + ((p * 2 + w) * qmax) * N_FIELD
    qh = m[O_QH] + p * 2 + w
    h = m[qh]
    bq = m[O_BQ] + (p * 2 + w) * nb * 2  # per bank: [queued entries, queued row hits]
    fcfs = m[P_FCFS] != 0
    tb = m[O_CNT]  # per bank: earliest cycle of its hit command / of its row command
    # ---- phase 1, per bank: the earliest cycle of the command its hits / misses need
    hit_ready = False   # some bank's queued row hits can be served now
    row_ready = False   # some bank's ACT / PRE for its other entries can issue now
    mask = m[m[O_BMASK] + p * 2 + w]  # banks with queued entries
    while mask != 0:
        bi = trailing_zeros(mask)
        mask &= mask - 1
        ne = m[bq + 2 * bi]
        nh = m[bq + 2 * bi + 1]
        g = bi // bpg
        b = bi - g * bpg
        th = INF
        if nh > 0:
            if closed and nh == 1:
                th = u_cola
                if th <= now:
                    th = max(th, _lower(cola_cmd, p, g, b, m))
            else:
                th = u_col
                if th <= now:
                    th = max(th, _lower(col_cmd, p, g, b, m))
        tr = INF
        if ne > nh:
            if m[ob + bi] < 0:
                tr = u_act
                if tr <= now:
                    tr = max(tr, _lower(ACT, p, g, b, m))
            elif nh == 0 or fcfs:  # FR-FCFS keeps a row open while it has queued hits
                tr = u_pre
                if tr <= now:
                    tr = max(tr, _lower(PRE, p, g, b, m))
        m[tb + 2 * bi] = th
        m[tb + 2 * bi + 1] = tr
        if th <= now:
            hit_ready = True
        if tr <= now:
            row_ready = True
        if not fcfs:
            tmin = min(tmin, min(th, tr))
    if not (fcfs or hit_ready or row_ready):
        return False, tmin
    # ---- phase 2, in arrival order: oldest ready hit, else oldest ready other command.
    # FR-FCFS stops at the first entry that settles it (phase 1 says whether a ready hit
    # exists), so a scan always ends in an issue; FCFS looks at the oldest entry only.
    pick = -1
    pick_cmd = -1
    for i in range(n):
        e = _slot(q0, h, i, qmax)
        bi = m[e + F_BG] * bpg + m[e + F_BANK]
        orow = m[ob + bi]
        if orow == m[e + F_ROW]:
            t = m[tb + 2 * bi]
            if t <= now:
                pick = i
                pick_cmd = cola_cmd if (closed and m[bq + 2 * bi + 1] == 1) else col_cmd
                break
        else:
            t = m[tb + 2 * bi + 1]
            if t <= now and pick < 0:
                pick = i
                pick_cmd = ACT if orow < 0 else PRE
                if not hit_ready:
                    break
        if fcfs:
            if pick < 0:
                tmin = min(tmin, t)
            break
    if pick < 0:
        return False, tmin
    e = _slot(q0, h, pick, qmax)
    g = m[e + F_BG]
    b = m[e + F_BANK]
    st = m[O_STATS] + p * N_STAT
    _classify_request(e, st, pick_cmd, m)
    is_col = pick_cmd == RD or pick_cmd == RDA or pick_cmd == WR or pick_cmd == WRA
    if is_col:  # leaves the queue (bookkeeping before _issue, which may close the bank)
        bi = g * bpg + b
        m[bq + 2 * bi] -= 1
        m[bq + 2 * bi + 1] -= 1
        if m[bq + 2 * bi] == 0:
            m[m[O_BMASK] + p * 2 + w] &= ~(1 << bi)
    _issue(pick_cmd, p, g, b, m[e + F_ROW], m[e + F_COL], now, m, log)
    if is_col:
        _count_column(is_wr, e, st, now, m)
        _ring_remove(q0, qh, qn + w, pick, qmax, m)  # order kept
        m[m[O_S] + S_QUEUED] -= 1
    return True, now + 1


@njit(cache=True, inline="always")
def _entry_bound(p, g, b, row, w, m):
    """Lower bound on the cycle a newly queued access could make its controller issue: the
    earliest cycle of the command it needs now. Other entries are unchanged by its arrival
    (it can only veto a precharge), so the controller's previous wake-up cycle stays valid."""
    orow = m[m[O_OPEN] + p * m[P_BG] * m[P_BPG] + g * m[P_BPG] + b]
    if orow == row:
        t = _earliest(WR if w != 0 else RD, p, g, b, m)
        if m[P_CLOSED] != 0:
            t = min(t, _earliest(WRA if w != 0 else RDA, p, g, b, m))
        return t
    return _earliest(ACT if orow < 0 else PRE, p, g, b, m)


# ---------------------------------------------------------------- buffer controller
# Every (queue_scope, arbitration) but ("pseudo_channel", "rotate"): one decision per channel
# over its read/write buffers. A buffer is a pool of ``qmax`` slots (free-slot stack) and, per
# (pCH, direction, bank), a list of its entries in arrival order (head/tail at O_BL, links in
# F_NX / F_PV) with the counts [entries, row hits] at O_BQ and the bank bitmask at O_BMASK.
# Every entry of a bank that hits its open row needs the same column command at the same
# cycle, every other entry the same ACT or PRE, so a scheduler call looks at each bank with
# queued entries once (two commands) instead of at every entry; the oldest entry of a kind
# is the first of that kind in the bank's list (``F_SEQ``: insertion number = arrival order).
_KIND_CMD = (ACT, PRE, RD, WR)

@njit(cache=True, inline="always")
def _entry_cmd(e, m):
    """The command a queued entry needs next: its column command on a row hit, else ACT
    (bank closed) or PRE (another row open) -- Ramulator's ``get_preq_command``."""
    nb = m[P_BG] * m[P_BPG]
    orow = m[m[O_OPEN] + m[e + F_PCH] * nb + m[e + F_BG] * m[P_BPG] + m[e + F_BANK]]
    if orow == m[e + F_ROW]:
        return WR if m[e + F_WR] != 0 else RD
    return ACT if orow < 0 else PRE


@njit(cache=True, inline="always")
def _channel_uppers(c, m):
    """Channel / pCH / bus part of each candidate command (ACT PRE RD WR) of every pCH of
    channel ``c``, into the scratch at O_CNT: once per scheduler call, shared by the active
    buffer and the read/write buffers (they are equal within one call)."""
    ppc = m[P_PPC]
    p0 = c * ppc
    up = m[O_CNT]
    nx = m[O_NXT]
    chn = nx + c * N_CMD
    per_ch = m[P_BUS_PER_CH] != 0
    for j in range(ppc):
        p = p0 + j
        pn = nx + (m[P_NCH] + p) * N_CMD
        bus = m[O_BUS] + (c if per_ch else p) * 2
        br = m[bus]       # row side: ACT, PRE
        bc = m[bus + 1]   # column side: RD, WR
        m[up + 4 * j] = max(max(m[chn + ACT], m[pn + ACT]), br)
        m[up + 4 * j + 1] = max(max(m[chn + PRE], m[pn + PRE]), br)
        m[up + 4 * j + 2] = max(max(m[chn + RD], m[pn + RD]), bc)
        m[up + 4 * j + 3] = max(max(m[chn + WR], m[pn + WR]), bc)


@njit(cache=True, inline="always")
def _owner(p, m):
    """The buffer owner of pCH ``p``: its channel's first pCH (queue_scope = "channel") or
    ``p`` itself; buffers, counts and the read/write mode are indexed by the owner."""
    if m[P_CHSCOPE] != 0:
        return p - p % m[P_PPC]
    return p


@njit(cache=True, inline="always")
def _buf_insert(own, p, g, b, row, col, w, now, m):
    """Queue a request in buffer (owner, direction): a free slot, the tail of its bank's
    list, the bank counts and bitmask. Returns the entry's address."""
    qmax = m[P_QMAX]
    qi = own * 2 + w
    m[m[O_QN] + qi] += 1
    nf = m[O_NFREE] + qi
    m[nf] -= 1
    slot = m[m[O_FREE] + qi * qmax + m[nf]]
    base = m[O_QS] + qi * qmax * N_FIELD
    e = base + slot * N_FIELD
    m[e + F_BG] = g
    m[e + F_BANK] = b
    m[e + F_ROW] = row
    m[e + F_COL] = col
    m[e + F_ARR] = now
    m[e + F_STAT] = 0
    m[e + F_PCH] = p
    m[e + F_WR] = w
    s0 = m[O_S]
    m[e + F_SEQ] = m[s0 + S_SEQ]
    m[s0 + S_SEQ] += 1
    nb = m[P_BG] * m[P_BPG]
    bi = g * m[P_BPG] + b
    li = m[O_BL] + ((p * 2 + w) * nb + bi) * 2
    tail = m[li + 1]
    m[e + F_NX] = -1
    m[e + F_PV] = tail
    if tail >= 0:
        m[base + tail * N_FIELD + F_NX] = slot
    else:
        m[li] = slot
    m[li + 1] = slot
    bq = m[O_BQ] + ((p * 2 + w) * nb + bi) * 2
    if m[bq] == 0:
        m[m[O_BMASK] + p * 2 + w] |= 1 << bi
    m[bq] += 1
    if m[m[O_OPEN] + p * nb + bi] == row:
        m[bq + 1] += 1
    _kind_bits(p, w, bi, m)
    return e


@njit(cache=True, inline="always")
def _buf_remove(e, own, m):
    """Take entry ``e`` out of its buffer: unlink it from its bank's list, update the counts
    (a hit of the open row also leaves the hit count) and free its slot. The slot's fields
    stay readable until the next insertion."""
    qmax = m[P_QMAX]
    p = m[e + F_PCH]
    w = m[e + F_WR]
    qi = own * 2 + w
    base = m[O_QS] + qi * qmax * N_FIELD
    slot = (e - base) // N_FIELD
    nb = m[P_BG] * m[P_BPG]
    bi = m[e + F_BG] * m[P_BPG] + m[e + F_BANK]
    li = m[O_BL] + ((p * 2 + w) * nb + bi) * 2
    nx = m[e + F_NX]
    pv = m[e + F_PV]
    if pv >= 0:
        m[base + pv * N_FIELD + F_NX] = nx
    else:
        m[li] = nx
    if nx >= 0:
        m[base + nx * N_FIELD + F_PV] = pv
    else:
        m[li + 1] = pv
    bq = m[O_BQ] + ((p * 2 + w) * nb + bi) * 2
    m[bq] -= 1
    if m[m[O_OPEN] + p * nb + bi] == m[e + F_ROW]:
        m[bq + 1] -= 1
    if m[bq] == 0:
        m[m[O_BMASK] + p * 2 + w] &= ~(1 << bi)
    _kind_bits(p, w, bi, m)
    m[m[O_QN] + qi] -= 1
    nf = m[O_NFREE] + qi
    m[m[O_FREE] + qi * qmax + m[nf]] = slot
    m[nf] += 1


@njit(cache=True, inline="always")
def _first_of_kind(base, s_, orow, hit, m):
    """First entry (address) of a bank list starting at slot ``s_`` that hits the open row
    ``orow`` (``hit``) or does not; -1 if none."""
    while s_ >= 0:
        e = base + s_ * N_FIELD
        if (m[e + F_ROW] == orow) == hit:
            return e
        s_ = m[e + F_NX]
    return -1


@njit(cache=True, inline="always")
def _best_entry(a0, n, blocked, now, m):
    """Ramulator's FRFCFS ``get_best_request`` over the active buffer (``n`` entries from
    ``a0``): a ready entry beats a not-ready one, then the earlier arrival, then the earlier
    position. Returns (index, cmd, ready, earliest cycle over the buffer). The channel / pCH
    part of each command's earliest cycle is read from the scratch :func:`_channel_uppers`
    filled."""
    best = -1
    best_cmd = -1
    best_ready = False
    best_arr = INF
    tmin = INF
    fcfs = m[P_FCFS] != 0
    if n == 0:
        return best, best_cmd, best_ready, tmin
    ppc = m[P_PPC]
    p0 = m[m[O_CHOF] + m[a0 + F_PCH]] * ppc
    up = m[O_CNT]
    for i in range(n):
        e = a0 + i * N_FIELD
        p = m[e + F_PCH]
        cmd = _entry_cmd(e, m)
        if (blocked >> (p - p0)) & 1:
            t = INF
        else:
            k = 0 if cmd == ACT else (1 if cmd == PRE else (2 if cmd == RD else 3))
            t = m[up + 4 * (p - p0) + k]
            t1 = _lower(cmd, p, m[e + F_BG], m[e + F_BANK], m)
            if t1 > t:
                t = t1
        ready = t <= now
        if t < tmin:
            tmin = t
        if (best < 0 or (ready and not best_ready)
                or (ready == best_ready and m[e + F_ARR] < best_arr)):
            best, best_cmd, best_ready, best_arr = i, cmd, ready, m[e + F_ARR]
        if fcfs:
            break
    return best, best_cmd, best_ready, tmin


@njit(cache=True)
def _classify_request(e, st, cmd, m):
    """On a request's first command, count it once as a row miss (ACT), conflict (PRE) or hit."""
    if m[e + F_STAT] == 0:
        m[e + F_STAT] = 1
        if cmd == ACT:
            m[st + ST_MISSES] += 1
        elif cmd == PRE:
            m[st + ST_CONFLICTS] += 1
        else:
            m[st + ST_HITS] += 1


@njit(cache=True)
def _count_column(is_wr, e, st, now, m):
    """Statistics of a request served by its column command at ``now``: reads/writes, read
    latency and the end of the last data burst."""
    if is_wr:
        done = now + m[P_NCWL] + m[P_NBL]
        m[st + ST_WRITES] += 1
    else:
        done = now + m[P_NCL] + m[P_NBL]
        m[st + ST_READS] += 1
        m[st + ST_RDLAT] += done - m[e + F_ARR]
    if done > m[st + ST_LAST_DATA]:
        m[st + ST_LAST_DATA] = done


@njit(cache=True)
def _ring_remove(q0, qh, qn, pick, qmax, m):
    """Remove entry ``pick`` of a ring-buffer queue, moving the shorter side (order kept)."""
    h = m[qh]
    n = m[qn]
    if pick < n - 1 - pick:
        for i in range(pick, 0, -1):
            d = _slot(q0, h, i, qmax)
            s_ = _slot(q0, h, i - 1, qmax)
            for f in range(N_FIELD):
                m[d + f] = m[s_ + f]
        m[qh] = h + 1 if h + 1 < qmax else 0
    else:
        for i in range(pick, n - 1):
            d = _slot(q0, h, i, qmax)
            s_ = _slot(q0, h, i + 1, qmax)
            for f in range(N_FIELD):
                m[d + f] = m[s_ + f]
    m[qn] = n - 1


@njit(cache=True)
def _sched_buf(c, now, m, pim, log):
    """One command for channel ``c`` from its buffers (every queue_scope / arbitration pair
    but pseudo_channel + rotate). ``oldest_ready`` follows Ramulator 2.0's
    GenericDRAMController::schedule_request: (1) the best entry of the *active* buffer
    (requests whose ACT issued) if it is ready; else (2) over the read or write buffer(s)
    (the mode of each buffer owner, as Ramulator's set_write_mode), the oldest entry whose
    next command is ready; (3) a PRE that would close the bank of an active request is held
    back; after an ACT the request moves to the active buffer (its slot is freed).
    ``rotate`` is sieveopt's FR-FCFS over the same buffers: the oldest ready row hit, else the
    oldest ready ACT / PRE, and no PRE for a bank with queued hits; an activated request stays
    queued. With queue_scope = "pseudo_channel" each pCH has its own buffers and mode, and one
    decision per channel picks among all of them (the oldest ready across pCHs).
    Returns (issued, next_cycle): next_cycle is a lower bound of the earliest cycle at which
    a command could issue (exact unless a whole pCH is skipped on its channel / bus part)."""
    ppc = m[P_PPC]
    q = c * ppc
    tmin = INF
    blocked = 0
    if m[P_REFRESH] != 0:
        for j in range(ppc):
            issued, t, blk = _sched_pim_refresh(q + j, now, m, pim, log)
            if issued:
                return True, now + 1
            if t < tmin:
                tmin = t
            if blk:
                blocked |= 1 << j
    qmax = m[P_QMAX]
    ordy = m[P_ORDY] != 0
    chs = m[P_CHSCOPE] != 0
    fcfs = m[P_FCFS] != 0
    a0 = m[O_AQ] + c * qmax * N_FIELD
    an = m[O_AN] + c
    _channel_uppers(c, m)
    up = m[O_CNT]
    if ordy and m[an] > 0:
        best, cmd, ready, t = _best_entry(a0, m[an], blocked, now, m)
        if t < tmin:
            tmin = t
        if ready:
            e = a0 + best * N_FIELD
            p = m[e + F_PCH]
            st = m[O_STATS] + p * N_STAT
            _classify_request(e, st, cmd, m)
            _issue(cmd, p, m[e + F_BG], m[e + F_BANK], m[e + F_ROW], m[e + F_COL], now, m, log)
            if cmd == RD or cmd == WR:
                _count_column(cmd == WR, e, st, now, m)
                m[m[O_S] + S_QUEUED] -= 1
                for i in range(best, m[an] - 1):
                    for f in range(N_FIELD):
                        m[a0 + i * N_FIELD + f] = m[a0 + (i + 1) * N_FIELD + f]
                m[an] -= 1
            return True, now + 1
    # read / write mode of each buffer owner (Ramulator's set_write_mode)
    for j in range(1 if chs else ppc):
        qn = m[O_QN] + (q + j) * 2
        nrd = m[qn]
        nwr = m[qn + 1]
        dr = m[O_DRAIN] + q + j
        if m[dr] == 0:
            if nwr >= m[P_WHI] or nrd == 0:
                m[dr] = 1
        elif nwr <= m[P_WLO] and nrd > 0:
            m[dr] = 0
    nb = m[P_BG] * m[P_BPG]
    pick = -1       # oldest_ready: oldest ready entry; rotate: oldest ready ACT / PRE
    pick_seq = INF
    pick_cmd = -1
    hit = -1        # rotate: oldest ready row hit
    hit_seq = INF
    hit_cmd = -1
    for j in range(ppc):
        p = q + j
        own = q if chs else p
        w = m[m[O_DRAIN] + own]
        mask = m[m[O_BMASK] + p * 2 + w]
        if mask == 0:
            continue
        base = m[O_QS] + (own * 2 + w) * qmax * N_FIELD
        ob = m[O_OPEN] + p * nb
        bq = m[O_BQ] + (p * 2 + w) * nb * 2
        bl = m[O_BL] + (p * 2 + w) * nb * 2
        # this pCH's bank-group and bank nodes in the ready table (what _lower reads)
        n_ch = m[P_NCH]
        n_pch = n_ch * ppc
        bgn = m[O_NXT] + (n_ch + n_pch + p * m[P_BG]) * N_CMD
        bgof = m[O_BGOF]
        bkn = m[O_NXT] + (n_ch + n_pch + n_pch * m[P_BG] + p * nb) * N_CMD
        if fcfs:  # the owner's oldest entry only (its pCHs' bank-list heads)
            if chs and j > 0:
                continue
            e = -1
            for jj in range(ppc if chs else 1):
                pp = p + jj
                mk = m[m[O_BMASK] + pp * 2 + w]
                bll = m[O_BL] + (pp * 2 + w) * nb * 2
                while mk != 0:
                    bi = trailing_zeros(mk)
                    mk &= mk - 1
                    e1 = base + m[bll + 2 * bi] * N_FIELD
                    if e < 0 or m[e1 + F_SEQ] < m[e + F_SEQ]:
                        e = e1
            if e < 0:
                continue
            pe = m[e + F_PCH]
            cmd = _entry_cmd(e, m)
            if (blocked >> (pe - q)) & 1:
                continue
            k = 0 if cmd == ACT else (1 if cmd == PRE else (2 if cmd == RD else 3))
            t = max(m[up + 4 * (pe - q) + k], _lower(cmd, pe, m[e + F_BG], m[e + F_BANK], m))
            if t > now:
                tmin = min(tmin, t)
            elif m[e + F_SEQ] < pick_seq:
                pick, pick_seq, pick_cmd = e, m[e + F_SEQ], cmd
            continue
        if (blocked >> j) & 1:
            continue
        col_cmd = WR if w != 0 else RD
        u_col = m[up + 4 * j + (3 if w != 0 else 2)]
        u_act = m[up + 4 * j]
        u_pre = m[up + 4 * j + 1]
        if u_col > now and u_act > now and u_pre > now:
            # nothing of this pCH can issue before its channel / bus part allows: a lower
            # bound (the controller looks again then; a call that issues nothing changes
            # nothing), instead of every bank's exact cycle
            tmin = min(tmin, min(u_col, min(u_act, u_pre)))
            continue
        if ordy:
            # only banks with a command of a kind the channel / pCH / bus part allows now;
            # the others' earliest cycles are at least that part (a lower bound, as above)
            km = m[O_KMASK] + (p * 2 + w) * 3
            mask = 0
            for kk in range(3):
                u = u_col if kk == 0 else (u_act if kk == 1 else u_pre)
                if u <= now:
                    mask |= m[km + kk]
                elif m[km + kk] != 0 and u < tmin:
                    tmin = u
            # the oldest ready entry of a bank is its list head when the head's command is
            # ready (no later entry of the bank is older), else the first entry of the other
            # kind (hit / not hit) when that one's command is ready. A bank whose head is
            # younger than the pick so far cannot hold the answer and is skipped (something
            # then issues, so the wake-up bound ``tmin`` it would lower is not needed).
            while mask != 0:
                bi = trailing_zeros(mask)
                mask &= mask - 1
                e = base + m[bl + 2 * bi] * N_FIELD
                seq = m[e + F_SEQ]
                if seq >= pick_seq:
                    continue
                orow = m[ob + bi]
                g = m[bgof + bi]  # bi // bpg without a division per bank
                hit_head = m[e + F_ROW] == orow
                if hit_head:
                    k = col_cmd
                    t = u_col
                elif orow < 0:
                    k = ACT
                    t = u_act
                else:
                    k = PRE
                    t = u_pre
                if t <= now:
                    t = max(t, max(m[bgn + g * N_CMD + k], m[bkn + bi * N_CMD + k]))
                if t <= now:
                    pick, pick_seq, pick_cmd = e, seq, k
                    continue
                if t < tmin:
                    tmin = t
                nh = m[bq + 2 * bi + 1]
                if nh == 0 or nh == m[bq + 2 * bi]:  # one kind only
                    continue
                # the other kind: a head hit leaves the row's conflicts (PRE), a head
                # conflict leaves the open row's hits (column command)
                k = PRE if hit_head else col_cmd
                t = u_pre if hit_head else u_col
                if t <= now:
                    t = max(t, max(m[bgn + g * N_CMD + k], m[bkn + bi * N_CMD + k]))
                if t > now:
                    if t < tmin:
                        tmin = t
                else:
                    e = _first_of_kind(base, m[e + F_NX], orow, not hit_head, m)
                    if m[e + F_SEQ] < pick_seq:
                        pick, pick_seq, pick_cmd = e, m[e + F_SEQ], k
            continue
        while mask != 0:  # rotate: oldest ready hit, else oldest ready ACT / PRE
            bi = trailing_zeros(mask)
            mask &= mask - 1
            ne = m[bq + 2 * bi]
            nh = m[bq + 2 * bi + 1]
            g = m[bgof + bi]  # bi // bpg without a division per bank
            orow = m[ob + bi]
            if nh > 0:
                t = u_col
                if t <= now:
                    t = max(t, max(m[bgn + g * N_CMD + col_cmd], m[bkn + bi * N_CMD + col_cmd]))
                if t > now:
                    if t < tmin:
                        tmin = t
                else:
                    e = _first_of_kind(base, m[bl + 2 * bi], orow, True, m)
                    if m[e + F_SEQ] < hit_seq:
                        hit, hit_seq, hit_cmd = e, m[e + F_SEQ], col_cmd
            if ne > nh:
                if orow < 0:
                    k = ACT
                    t = u_act
                elif nh == 0:  # FR-FCFS keeps a row open while it has queued hits
                    k = PRE
                    t = u_pre
                else:
                    continue
                if t <= now:
                    t = max(t, max(m[bgn + g * N_CMD + k], m[bkn + bi * N_CMD + k]))
                if t > now:
                    if t < tmin:
                        tmin = t
                else:
                    e = _first_of_kind(base, m[bl + 2 * bi], orow, False, m)
                    if m[e + F_SEQ] < pick_seq:
                        pick, pick_seq, pick_cmd = e, m[e + F_SEQ], k
    if hit >= 0:
        pick, pick_cmd = hit, hit_cmd
    if pick < 0:
        return False, tmin
    e = pick
    cmd = pick_cmd
    p = m[e + F_PCH]
    g = m[e + F_BG]
    b = m[e + F_BANK]
    if ordy and cmd == PRE:  # do not close a row an activated request is waiting for
        for i in range(m[an]):
            ea = a0 + i * N_FIELD
            if m[ea + F_PCH] == p and m[ea + F_BG] == g and m[ea + F_BANK] == b:
                return False, now + 1
    own = q if chs else p
    st = m[O_STATS] + p * N_STAT
    _classify_request(e, st, cmd, m)
    if cmd == RD or cmd == WR:
        _buf_remove(e, own, m)  # before _issue: the row stays open, the hit leaves its count
        _issue(cmd, p, g, b, m[e + F_ROW], m[e + F_COL], now, m, log)
        _count_column(cmd == WR, e, st, now, m)
        m[m[O_S] + S_QUEUED] -= 1
        m[m[O_S] + S_FREED] = 1
    elif cmd == ACT and ordy and m[an] < qmax:
        ea = a0 + m[an] * N_FIELD
        for f in range(N_FIELD):
            m[ea + f] = m[e + f]
        m[an] += 1
        _buf_remove(e, own, m)  # before _issue, whose hit recount must not see it
        _issue(cmd, p, g, b, m[ea + F_ROW], m[ea + F_COL], now, m, log)
        m[m[O_S] + S_FREED] = 1
    else:
        _issue(cmd, p, g, b, m[e + F_ROW], m[e + F_COL], now, m, log)
    return True, now + 1


@njit(cache=True)
def _forward(own, p, g, b, row, col, now, m):
    """Ramulator's read forwarding: a read of an address with a write waiting in its write
    buffer is served at once (counted as a read, no DRAM command)."""
    nb = m[P_BG] * m[P_BPG]
    bi = g * m[P_BPG] + b
    base = m[O_QS] + (own * 2 + 1) * m[P_QMAX] * N_FIELD
    s_ = m[m[O_BL] + ((p * 2 + 1) * nb + bi) * 2]
    while s_ >= 0:
        e = base + s_ * N_FIELD
        if m[e + F_COL] == col and m[e + F_ROW] == row:
            m[m[O_STATS] + p * N_STAT + ST_READS] += 1
            m[m[O_S] + S_INJ_COUNT] += 1
            m[m[O_S] + S_LAST_ACC] = now
            return True
        s_ = m[e + F_NX]
    return False


@njit(cache=True)
def run_engine(m, r_pch, r_bg, r_bank, r_row, r_col, r_wr, final, pim, log):
    """Advance the simulation over one chunk of requests (all injected in order).

    Returns (status, used): NEED_MORE when the chunk is fully injected and ``final`` is false,
    LOG_FULL when the command-log buffer must be drained, DONE when everything finished
    (the end cycle is at S_END; -1 if the engine could not make progress).
    """
    m = _borrow(m)
    pim = _borrow(pim)
    log = _borrow(log)
    n_ch = m[P_NCH]
    ppc = m[P_PPC]
    n_pch = n_ch * ppc
    ipc = m[P_IPC]
    n_req = r_pch.shape[0]
    s0 = m[O_S]
    nxt0 = m[O_NEXT]
    req = 0
    attempts = 2 if m[P_SPLIT] != 0 else 1
    chscope = m[P_CHSCOPE] != 0
    bufctl = m[P_BUFCTL] != 0
    ordy = m[P_ORDY] != 0
    # buffer controller on one shared command bus per channel: after a command nothing else
    # can issue in this cycle, so the controller looks again at now + 1 instead of rescanning
    # its buffers now only to learn that (an early look changes nothing: a controller that
    # finds no ready command changes no state and returns a lower bound of the earliest cycle)
    ch_attempts = 1 if (m[P_BUS_PER_CH] != 0 and m[P_SPLIT] == 0) else attempts + 1
    now = m[s0 + S_NOW]
    while True:
        m[s0 + S_ITER] += 1
        m[s0 + S_FREED] = 0
        if m[P_LOG] != 0 and m[s0 + S_LOG_N] + 2 * n_pch + 2 > log.shape[0]:
            m[s0 + S_NOW] = now
            return LOG_FULL, req
        # ---- frontend: inject in order, stall on a full queue
        stalled = False
        if m[s0 + S_INJ_CYCLE] != now:
            m[s0 + S_INJ_CYCLE] = now
            m[s0 + S_INJ_COUNT] = 0
        while req < n_req and (ipc == 0 or m[s0 + S_INJ_COUNT] < ipc):
            p = r_pch[req]
            w = r_wr[req]
            if bufctl:
                q = p - p % ppc  # the channel controller's wake-up slot
                own = q if chscope else p
                if (ordy and w == 0 and m[m[O_QN] + own * 2 + 1] > 0
                        and _forward(own, p, r_bg[req], r_bank[req], r_row[req], r_col[req],
                                     now, m)):
                    req += 1
                    continue
                k = m[m[O_QN] + own * 2 + w]
                if k >= (m[P_QW] if w != 0 else m[P_QR]):
                    stalled = True
                    break
                e = _buf_insert(own, p, r_bg[req], r_bank[req], r_row[req], r_col[req], w,
                                now, m)
                m[s0 + S_QUEUED] += 1
                m[s0 + S_INJ_COUNT] += 1
                m[s0 + S_LAST_ACC] = now
                if m[nxt0 + q] > now:
                    # wake the channel controller at the new entry's earliest command unless
                    # the arrival may flip its buffer's read/write mode (then at once)
                    mode = m[m[O_DRAIN] + own]
                    t = now
                    if w == mode and not (w == 0 and m[m[O_QN] + own * 2] == 1):
                        t = max(now, _earliest(_entry_cmd(e, m), p, r_bg[req], r_bank[req], m))
                    elif (w == 1 and mode == 0 and k + 1 < m[P_WHI]
                          and m[m[O_QN] + own * 2] > 0):
                        t = INF  # a write waiting behind read mode changes nothing yet
                    if t < m[nxt0 + q]:
                        m[nxt0 + q] = t
                req += 1
                continue
            qn = m[O_QN] + p * 2 + w
            k = m[qn]
            if k >= (m[P_QW] if w != 0 else m[P_QR]):
                stalled = True
                break
            m[qn] = k + 1
            e = _slot(m[O_QS] + (p * 2 + w) * m[P_QMAX] * N_FIELD, m[m[O_QH] + p * 2 + w], k,
                      m[P_QMAX])
            m[e + F_BG] = r_bg[req]
            m[e + F_BANK] = r_bank[req]
            m[e + F_ROW] = r_row[req]
            m[e + F_COL] = r_col[req]
            m[e + F_ARR] = now
            m[e + F_STAT] = 0
            m[e + F_PCH] = p
            m[e + F_WR] = w
            m[s0 + S_LAST_ACC] = now
            nb = m[P_BG] * m[P_BPG]
            bi = r_bg[req] * m[P_BPG] + r_bank[req]
            bq = m[O_BQ] + ((p * 2 + w) * nb + bi) * 2
            if m[bq] == 0:
                m[m[O_BMASK] + p * 2 + w] |= 1 << bi
            m[bq] += 1
            if m[m[O_OPEN] + p * nb + bi] == r_row[req]:
                m[bq + 1] += 1
            m[s0 + S_QUEUED] += 1
            m[s0 + S_INJ_COUNT] += 1
            if m[nxt0 + p] > now:
                t = now
                if w == m[m[O_DRAIN] + p]:  # same queue as served: the mode cannot flip
                    t = max(now, _entry_bound(p, r_bg[req], r_bank[req], r_row[req], w, m))
                if t < m[nxt0 + p]:
                    m[nxt0 + p] = t
            req += 1
        if req == n_req and not final:
            m[s0 + S_NOW] = now
            return NEED_MORE, req
        # ---- controllers (rotating priority inside a channel for a shared command bus)
        nxt_all = INF
        rot = 0 if bufctl else now % ppc
        for c in range(n_ch):
            if bufctl:  # one decision per channel, woken through its first pCH's slot
                q = c * ppc
                if m[nxt0 + q] > now:
                    if m[nxt0 + q] < nxt_all:
                        nxt_all = m[nxt0 + q]
                    continue
                nxt = now + 1
                for _a in range(ch_attempts):
                    issued, t = _sched_buf(c, now, m, pim, log)
                    m[s0 + S_SCHED] += 1
                    if not issued:
                        nxt = t
                        break
                m[nxt0 + q] = nxt
                if nxt < nxt_all:
                    nxt_all = nxt
                continue
            for j in range(ppc):
                jj = j + rot
                p = c * ppc + (jj if jj < ppc else jj - ppc)
                if m[nxt0 + p] > now:
                    if m[nxt0 + p] < nxt_all:
                        nxt_all = m[nxt0 + p]
                else:
                    # issue while possible (row + column bus: up to two per cycle); the
                    # failing call returns the exact earliest next cycle for this controller
                    nxt = now + 1
                    for _a in range(attempts + 1):
                        issued, t = _sched(p, now, m, pim, log)
                        m[s0 + S_SCHED] += 1
                        if not issued:
                            nxt = t
                            break
                    m[nxt0 + p] = nxt
                    if nxt < nxt_all:
                        nxt_all = nxt
        if final and req == n_req and m[s0 + S_QUEUED] == 0 and m[s0 + S_PIM_LEFT] == 0:
            end = 0
            for p in range(n_pch):
                st = m[O_STATS] + p * N_STAT
                if m[st + ST_LAST_DATA] > end:
                    end = m[st + ST_LAST_DATA]
                if m[st + ST_PIM_END] > end:
                    end = m[st + ST_PIM_END]
            m[s0 + S_END] = end
            m[s0 + S_NOW] = now
            return DONE, req
        nxt = nxt_all
        if req < n_req and not stalled and nxt > now + 1:
            nxt = now + 1
        # a stalled frontend retries the next cycle once a buffer slot was freed (channel
        # scope: every cycle, as Ramulator's frontend tick) or when nothing else is pending
        if stalled and (m[s0 + S_FREED] != 0 or nxt >= INF):
            nxt = now + 1
        if nxt <= now:
            nxt = now + 1
        if nxt >= INF:
            m[s0 + S_END] = -1
            m[s0 + S_NOW] = now
            return DONE, req
        now = nxt
