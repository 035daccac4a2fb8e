"""PIM kernel generator: GEMV / MoE-expert jobs -> in-order PIM command streams.

Sieve's command interface (NeuPIMs style) is token write to the PIM global buffer
(``GWR``), the all-bank GEMV, and result read-back (``RDRES``). The GEMV over the weight rows
is expressed with all-bank commands: ``ACTAB`` opens the same DRAM row in every bank of the
pseudo-channel (in the PIM row buffer), ``MAC`` feeds every PU one ``pu_bytes_per_access``
slice of its bank(s) and multiply-accumulates against the global buffer, ``PREAB`` closes
the row.

Mapping (tensor parallelism over every pseudo-channel of the GPU, identical bank/row indices
everywhere): a ``rows x cols`` matrix ``W`` (output dim x input dim) is split by output rows,
``ceil(rows / P)`` per pseudo-channel (P = all pCHs of the GPU); inside a pseudo-channel the
shard is spread evenly over the banks, ``ceil(rows_pch x cols x bpe / banks)`` bytes each,
packed into 1-page DRAM rows at the same row indices in every bank. With at least as many
output rows as banks a bank holds whole rows; with fewer, rows are split along the input
dimension and each bank produces partial sums (``max(rows_pch, banks)`` results per pCH,
reduced by the GPU after read-back). One token = ``ceil(cols x act_bytes / access_bytes)`` GWR,
then per DRAM row one ACTAB, ``ceil(bytes_in_row / mac_bytes) x banks_per_pu`` MACs and one
PREAB, then ``ceil(max(rows_pch, banks) x act_bytes / access_bytes)`` RDRES. ``bpe`` (weight
bytes per element) sizes the weights; ``act_bytes`` (default 2.0, BF16) sizes the token
vector written to the global buffer and the results read back, so MXFP4 experts still move
BF16 activations. ``mac_bytes = pu_bytes_per_access`` unless the PU compute limit binds
(``pim.ops_per_byte``, 2 ops per weight element): then ``pu_bytes x ops_per_byte x bpe / 2``
(see :class:`~sieveopt.validation.dram.config.PimSpec`). ``tokens`` GEMVs run one after another (the
weights are re-read per token: PIM does N GEMVs, not a GEMM).

An MoE expert with hidden ``d`` and intermediate ``f`` holds 3 d f weights: gate and up are
stacked into one ``2f x d`` matrix, down is ``d x f``. Per token: GEMV(gate|up), read-back, the
GPU applies SiLU(gate) * up (not timed here), GWR of the intermediate, GEMV(down), read-back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.validation.dram.config import DramConfig
from sieveopt.validation.dram.sim import PimProgram
from sieveopt.validation.dram.timing import CMD


@dataclass(frozen=True)
class GemvLayout:
    """Per-pseudo-channel command counts of one GEMV (one token)."""

    rows_per_pch: int
    bytes_per_bank: int
    partials: int           # results read back per pCH
    dram_rows: int          # DRAM rows per bank the weights use (= ACTAB/PREAB pairs unless tiled)
    macs: tuple[int, ...]   # MAC commands per weight-row activation, in issue order
    gwr: int
    rdres: int
    mac_bytes: float = 0.0  # weight bytes per PU per MAC (below pu_bytes when compute-bound)
    #: input tiles (pim.input_tile_elements); tile k's GWRs precede the MACs that consume it
    tile_gwr: tuple[int, ...] = ()
    prologue: int = 0       # mode-switch writes before the first MAC
    epilogue: int = 0       # register write-back / mode-switch writes after the last MAC

    @property
    def total_macs(self) -> int:
        return sum(self.macs)


def gemv_layout(cfg: DramConfig, rows: int, cols: int, bytes_per_element: float = 2.0,
                pseudo_channels: int | None = None, act_bytes: float = 2.0) -> GemvLayout:
    """Command counts for a ``rows x cols`` GEMV sharded over ``pseudo_channels`` (default:
    every pCH of the GPU); weights at ``bytes_per_element``, activations at ``act_bytes``."""
    if not cfg.pim.enabled:
        raise SpecError(cfg.name, "pim.enabled", "this config has no PIM units",
                        "use a PIM preset or set pim.enabled = true")
    if rows <= 0 or cols <= 0 or bytes_per_element <= 0 or act_bytes <= 0:
        raise SpecError(cfg.name, "gemv", f"bad shape rows={rows} cols={cols} "
                        f"bytes_per_element={bytes_per_element} act_bytes={act_bytes}",
                        "use positive values")
    org, pim = cfg.org, cfg.pim
    n_pch = pseudo_channels or org.pseudo_channels
    rows_pch = math.ceil(rows / n_pch)
    # every bank gets an equal slice of the shard: whole output rows when there are at least
    # as many rows as banks, otherwise rows split along the input dimension (partial sums)
    bytes_bank = math.ceil(rows_pch * cols * bytes_per_element / org.banks)
    partials = max(rows_pch, org.banks)
    dram_rows = math.ceil(bytes_bank / org.page_bytes)
    if dram_rows > org.rows:
        raise SpecError(cfg.name, "gemv", f"{dram_rows} DRAM rows per bank exceed {org.rows}",
                        "shard over more channels or shrink the matrix")
    mac_bytes = pim.mac_bytes(bytes_per_element)
    macs = []
    left = bytes_bank
    for _ in range(dram_rows):
        in_row = min(left, org.page_bytes)
        macs.append(math.ceil(in_row / mac_bytes - 1e-9) * pim.banks_per_pu)
        left -= in_row
    rdres = math.ceil(partials * act_bytes / org.access_bytes)
    tile = pim.input_tile_elements
    if tile > 0:
        sizes = [min(tile, cols - s) for s in range(0, cols, tile)]
        tile_gwr = tuple(math.ceil(n * act_bytes / org.access_bytes) for n in sizes)
        gwr = sum(tile_gwr)
    else:
        gwr = math.ceil(cols * act_bytes / org.access_bytes)
        tile_gwr = (gwr,)
    gwr += pim.kernel_prologue_writes + pim.kernel_epilogue_writes
    if pim.tile_bank_parity:
        # Samsung's layout: each bank of a pair holds every other input tile in consecutive
        # columns, so an activation opens a row of one bank (row_macs MACs); the MAC sequence
        # is the per-activation split of the even tiles' MACs, then of the odd tiles'
        row_macs = _row_macs(cfg, mac_bytes)
        per = _tile_macs(sum(macs), len(tile_gwr))
        # rows a bank of the busier parity uses (an odd tile count gives the even banks more)
        dram_rows = max(math.ceil(sum(per[p::2]) / row_macs) for p in (0, 1))
        if dram_rows > org.rows - 1:   # the last row is the register row
            raise SpecError(cfg.name, "gemv", f"{dram_rows} DRAM rows per bank exceed {org.rows - 1}",
                            "shard over more channels or shrink the matrix")
        macs = [m for ms in _parity_activations(sum(macs), len(tile_gwr), row_macs) for m in ms]
    return GemvLayout(rows_pch, bytes_bank, partials, dram_rows, tuple(macs), gwr, rdres,
                      mac_bytes, tile_gwr, pim.kernel_prologue_writes, pim.kernel_epilogue_writes)


def _row_macs(cfg: DramConfig, mac_bytes: float) -> int:
    """MAC commands one bank's DRAM row feeds a PU (its page, ``mac_bytes`` per MAC)."""
    return math.ceil(cfg.org.page_bytes / mac_bytes - 1e-9)


def _tile_macs(total: int, n_tiles: int) -> list[int]:
    """MACs of each input tile: the flat MAC sequence cut into equal contiguous runs."""
    return [(k + 1) * total // n_tiles - k * total // n_tiles for k in range(n_tiles)]


def _parity_activations(total: int, n_tiles: int, row_macs: int) -> list[list[int]]:
    """Per tile in execution order (even tiles, then odd ones), the MACs of each activation
    it makes: a tile continues its parity's bank columns where the previous tile of that
    parity stopped, and every tile starts with a fresh activation (the weight row is closed
    at each tile boundary: PIMSimulator's controller precharges a row no queued request
    needs, and the barrier after the upload hides the tile's MACs until it is done)."""
    per = _tile_macs(total, n_tiles)
    used = [0, 0]
    out = []
    for k in [*range(0, n_tiles, 2), *range(1, n_tiles, 2)]:
        p, left, acts = k % 2, per[k], []
        while left > 0:
            n = min(left, row_macs - used[p] % row_macs)
            acts.append(n)
            used[p] += n
            left -= n
        out.append(acts)
    return out


def _append_gemv_parity(out: list[tuple[int, int, int]], cfg: DramConfig, lay: GemvLayout,
                        row_base: int) -> None:
    """Samsung's GEMV with even/odd tile banks (``pim.tile_bank_parity``): per tile in
    execution order, close the open weight row, upload the tile through the register row in
    the odd banks, then the tile's MACs, reopening the next row of its bank when one is used
    up. Between two even tiles the register row costs nothing on the in-order stream: the odd
    banks are idle, PIMSimulator opens the register row while the even bank still streams and
    closes it while the next even tile streams. Next to an odd tile (after it: its weight row
    holds the odd banks; before it: the register row must close before the odd weight row
    opens) the upload is the full round trip ACTAB register row, writes, PREAB. The first
    tile's upload finds the register row open (the CRF programming opened it)."""
    row_macs = _row_macs(cfg, lay.mac_bytes)
    reg_row = cfg.org.rows - 1
    n_t = len(lay.tile_gwr)
    order = [*range(0, n_t, 2), *range(1, n_t, 2)]
    acts = _parity_activations(lay.total_macs, n_t, row_macs)
    used = [0, 0]          # MACs placed so far in the even / odd banks' columns
    prev = -1              # parity of the previous tile
    open_row = -1          # weight row open in the previous tile's banks
    for k, tile_acts in zip(order, acts, strict=True):
        p = k % 2
        if open_row >= 0:
            out.append((CMD["PREAB"], open_row, -1))
        via_row = cfg.pim.upload_via_row and prev >= 0 and (prev == 1 or p == 1)
        if via_row:
            out.append((CMD["ACTAB"], reg_row, -1))
        for i in range(lay.tile_gwr[k]):
            out.append((CMD["GWR"], -1, i))
        if via_row:
            out.append((CMD["PREAB"], reg_row, -1))
        for j, n in enumerate(tile_acts):
            if j:
                out.append((CMD["PREAB"], open_row, -1))
            open_row = row_base + used[p] // row_macs
            out.append((CMD["ACTAB"], open_row, -1))
            for _ in range(n):
                out.append((CMD["MAC"], open_row, used[p] % row_macs))
                used[p] += 1
        prev = p
    if open_row >= 0:
        out.append((CMD["PREAB"], open_row, -1))


def _append_gemv(out: list[tuple[int, int, int]], cfg: DramConfig, lay: GemvLayout,
                 row_base: int) -> None:
    for i in range(lay.prologue):
        out.append((CMD["GWR"], -1, i))
    if cfg.pim.tile_bank_parity:
        _append_gemv_parity(out, cfg, lay, row_base)
        for i in range(lay.epilogue):
            out.append((CMD["GWR"], -1, i))
        for i in range(lay.rdres):
            out.append((CMD["RDRES"], -1, i))
        return
    cols = cfg.org.columns
    if len(lay.tile_gwr) <= 1:  # whole vector first (today's kernel, bit-identical order)
        for i in range(lay.tile_gwr[0] if lay.tile_gwr else 0):
            out.append((CMD["GWR"], -1, i))
        first_mac = {}
    else:
        # Samsung's layout stores each input tile's weights in consecutive columns, so the
        # MAC slots of the flat (row-major) MAC sequence are cut into equal contiguous runs,
        # one per tile; a tile's input upload precedes its first MAC
        total = lay.total_macs
        n_t = len(lay.tile_gwr)
        first_mac: dict[int, int] = {}  # MAC index -> GWRs to upload just before it
        for k in range(n_t):
            at = (k * total) // n_t
            first_mac[at] = first_mac.get(at, 0) + lay.tile_gwr[k]
    via_row = cfg.pim.upload_via_row and len(lay.tile_gwr) > 1
    reg_row = cfg.org.rows - 1  # the reserved register row (Samsung: 0x3fff)

    def upload(n: int) -> None:
        if via_row:
            out.append((CMD["ACTAB"], reg_row, -1))
        for i in range(n):
            out.append((CMD["GWR"], -1, i))
        if via_row:
            out.append((CMD["PREAB"], reg_row, -1))

    j = 0
    for r, n_mac in enumerate(lay.macs):
        if first_mac.get(j, 0):  # a tile starts with this row: upload before opening it
            upload(first_mac[j])
        out.append((CMD["ACTAB"], row_base + r, -1))
        for k in range(n_mac):
            if k and first_mac.get(j, 0):
                if via_row:
                    out.append((CMD["PREAB"], row_base + r, -1))
                upload(first_mac[j])
                if via_row:
                    out.append((CMD["ACTAB"], row_base + r, -1))
            out.append((CMD["MAC"], row_base + r, k % cols))
            j += 1
        out.append((CMD["PREAB"], row_base + r, -1))
    for i in range(lay.epilogue):
        out.append((CMD["GWR"], -1, i))
    for i in range(lay.rdres):
        out.append((CMD["RDRES"], -1, i))


def pim_program(cfg: DramConfig, matrices: list[tuple[int, int]], tokens: int, *,
                bytes_per_element: float = 2.0, row_base: int = 0, release_cycle: int = 0,
                pseudo_channels: int | None = None, act_bytes: float = 2.0) -> PimProgram:
    """Command stream of ``tokens`` sequential passes over ``matrices`` [(rows, cols), ...]
    (each matrix stored after the previous one, from DRAM row ``row_base``)."""
    if tokens < 0:
        raise SpecError(cfg.name, "tokens", f"{tokens} < 0", "use tokens >= 0")
    layouts = [gemv_layout(cfg, r, c, bytes_per_element, pseudo_channels, act_bytes)
               for r, c in matrices]
    one: list[tuple[int, int, int]] = []
    base = row_base
    for lay in layouts:
        _append_gemv(one, cfg, lay, base)
        base += lay.dram_rows
    if base > cfg.org.rows:
        raise SpecError(cfg.name, "pim", "job does not fit in the bank rows", "fewer/smaller matrices")
    arr = np.array(one, dtype=np.int64).reshape(-1, 3)
    arr = np.tile(arr, (tokens, 1))
    rel = np.full(arr.shape[0], release_cycle, dtype=np.int64)
    return PimProgram(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy(), rel)


def concat_programs(progs: list[PimProgram]) -> PimProgram:
    """Jobs one after another (each keeps its own release cycle)."""
    if not progs:
        return PimProgram.empty()
    return PimProgram(*(np.concatenate([getattr(p, f) for p in progs])
                        for f in ("cmd", "row", "col", "release")))


def expert_matrices(d: int, f: int) -> list[tuple[int, int]]:
    """MoE expert FFN as PIM GEMVs: gate|up stacked (2f x d), then down (d x f)."""
    return [(2 * f, d), (d, f)]
