"""Dual-row-buffer mode: a PIM job next to a saturating GPU stream is slowed only by the
documented couplings (docs/design-notes/dram.md, "Dual-row-buffer coupling rules"): shared data bus
(GWR/RDRES vs RD/WR turnarounds), the activation power budget (ACT <-> ACTAB) and the
command bus. For every PIM command of the concurrent command log we recompute two earliest
cycles from the timing table: ``own`` (rows from PIM commands only, i.e. the job alone) and
``coupled`` (rows from normal commands). The command must issue exactly at max(own, coupled)
(nothing else can hold it back), and the job's total slow-down must not exceed the sum of the
per-command coupling delays. Under the default strict priority the coupling delay is zero."""

from __future__ import annotations

from collections import defaultdict

import pytest

from sieveopt.validation.dram.api import load_dram_preset, stream_requests
from sieveopt.validation.dram.pim import expert_matrices, pim_program
from sieveopt.validation.dram.sim import CommandLog, DramSim
from sieveopt.validation.dram.timing import CMD, PIM_COMMANDS, TIMING_TABLE, eval_latency

SIEVE = "sieve_b200_hbm3e_pim"
PIM_IDS = {CMD[c] for c in PIM_COMMANDS}
#: the rows that couple normal and PIM commands in dual-row-buffer mode (documented set)
COUPLING = {("RD", "GWR"), ("RDA", "GWR"), ("WR", "GWR"), ("WRA", "GWR"), ("RD", "RDRES"),
            ("RDA", "RDRES"), ("WR", "RDRES"), ("WRA", "RDRES"), ("ACT", "ACTAB"),
            ("REF", "ACTAB")}


def _rules(cfg):
    """following pim cmd -> [(level, prev cmd, latency)] (dual-row-buffer rows, window 1)."""
    rules = defaultdict(list)
    for con in TIMING_TABLE:
        if "dual_row_buffer" not in con.modes:
            continue
        lat = eval_latency(con.latency, cfg.timing_params)
        for f in con.following:
            for p in con.preceding:
                if CMD[f] in PIM_IDS and con.window == 1:
                    rules[CMD[f]].append((con.level, CMD[p], lat))
    return rules


def _run(cfg, accesses, prog, log=None):
    sim = DramSim(cfg, channels=1, pim=prog, frontend_requests_per_cycle=0, observer=log)
    if accesses:
        r = stream_requests(cfg, accesses, row_base=cfg.org.rows // 2)
        sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    return sim.finish()


@pytest.mark.parametrize("priority", ["strict", "ready"])
def test_pim_slowdown_is_explained_by_shared_buses(priority):
    cfg = load_dram_preset(SIEVE, refresh=False, **{"pim.priority": priority})
    prog = pim_program(cfg, expert_matrices(1024, 512), 2)
    alone = _run(cfg, 0, prog).pim_end_cycle
    log = CommandLog()
    st = _run(cfg, 4000, prog, log)
    assert st.data_end_cycle > 1.5 * alone          # the stream saturates the bus all along
    rules = _rules(cfg)
    for name, p in COUPLING:                      # the documented coupling rows exist
        assert any(pc == CMD[name] for _, pc, _ in rules[CMD[p]]), (name, p)
    last: dict[tuple, int] = {}                   # (level node, cmd) -> last issue cycle
    prev_pim: dict[int, int] = {}
    coupling_delay = 0
    binding: set[tuple[str, str]] = set()
    for cyc, cmd, pch, *_ in log.records.tolist():
        if cmd in PIM_IDS:
            own = prev_pim.get(pch, -1) + 1
            coupled = 0
            why = None
            for level, pc, lat in rules[cmd]:
                node = (pch // 2,) if level == "channel" else (pch // 2, pch)
                t = last.get((node, pc))
                if t is None:
                    continue
                if pc in PIM_IDS:
                    own = max(own, t + lat)
                elif t + lat > coupled:
                    coupled, why = t + lat, pc
            assert cyc == max(own, coupled), (cyc, own, coupled)   # nothing else holds it back
            if coupled > own:
                coupling_delay += coupled - own
                binding.add((_name(why), _name(cmd)))
            prev_pim[pch] = cyc
        for node in ((pch // 2,), (pch // 2, pch)):
            last[(node, cmd)] = cyc
    slowdown = st.pim_end_cycle - alone
    assert 0 <= slowdown <= coupling_delay
    assert binding <= COUPLING
    if priority == "strict":
        assert coupling_delay == 0 and slowdown == 0
    else:
        assert slowdown > 0 and binding            # the stream pushes the PIM job back


def _name(cmd_id: int) -> str:
    return next(k for k, v in CMD.items() if v == cmd_id)
