"""DRAM energy by the IDD method (Micron TN-41-01; DRAMPower, Chandrasekar et al.), per
pseudo-channel, from command counts and device-state residency.

Per command, with VDD and the currents of one pseudo-channel (``data/dram/<preset>.toml``):

* ACT  = VDD (IDD0 - IDD3N) tRAS,  PRE = VDD (IDD0 - IDD2N) tRP  (tRP = tRC - tRAS): DRAMPower's
  split of the IDD0 loop; every activation is closed by exactly one precharge (PRE, PREA or
  an auto-precharge), so ACT/PRE energy = activations x (ACT + PRE);
* RD   = VDD (IDD4R - IDD3N) nBL tCK,   WR = VDD (IDD4W - IDD3N) nBL tCK  (one burst);
* REF  = VDD (IDD5B - IDD3N) tRFC  (all-bank refresh);
* background: active standby VDD IDD3N while a bank (or the PIM row buffer) of the
  pseudo-channel is open, precharge standby VDD IDD2N otherwise (power-down not modelled);
* I/O: ``io.pJ_per_bit`` per bit crossing the interface (RD, WR, PIM token write GWR and
  result read-back RDRES);
* PIM: ACTAB / PREAB = banks x ACT / PRE (all-bank activation); a MAC command reads
  ``pim.mac_bytes(bpe)`` per PU from its bank(s) at ``pim.mac_read_pJ_per_bit``, and each
  operation costs ``pim.alu_pJ_per_op``; GWR is timed and charged as a WR, RDRES as a RD.

Scaling: currents are per pseudo-channel, so a GPU's energy is the representative channel's
(what the simulator runs) times the number of channels (the DRAM API's symmetry assumption).
Units: energies in pJ, times in ns (mA x ns x V = pJ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sieveopt.validation.dram.config import DramConfig
from sieveopt.validation.energy.spec import EnergySpec

#: energy components of a DRAM/PIM device, in report order
DRAM_COMPONENTS = ("dram_background", "dram_refresh", "dram_act_pre", "dram_rd_wr", "dram_io",
                   "pim_mac")


@dataclass(frozen=True)
class CommandEnergy:
    """Energy per command of one pseudo-channel (pJ) and background power (mW = pJ/ns)."""

    act_pJ: float
    pre_pJ: float
    rd_pJ: float
    wr_pJ: float
    ref_pJ: float
    active_standby_mW: float
    precharge_standby_mW: float
    io_pJ_per_bit: float
    access_bits: int
    actab_pJ: float            # all-bank ACT + PREAB, one pair (banks it opens)
    mac_read_pJ_per_bit: float
    alu_pJ_per_op: float
    pus_per_pch: int

    @property
    def act_pre_pJ(self) -> float:
        return self.act_pJ + self.pre_pJ


def command_energy(cfg: DramConfig, spec: EnergySpec) -> CommandEnergy:
    """Per-command energies of ``cfg`` (timing in the DRAMPower formulas) from ``spec``."""
    t, tck = cfg.timing, cfg.tCK_ns
    vdd = spec["rails.vdd"]
    i0, i2n, i3n = spec["currents.idd0"], spec["currents.idd2n"], spec["currents.idd3n"]
    tras, trc = t.nRAS * tck, t.nRC * tck
    act = vdd * (i0 - i3n) * tras
    pre = vdd * (i0 - i2n) * (trc - tras)
    burst = t.nBL * tck
    banks = cfg.org.banks
    # an all-bank ACT opens every bank, except in Samsung's even/odd tile layout
    # (pim.tile_bank_parity), where it opens one bank of each pair
    ab_banks = banks // 2 if cfg.pim.tile_bank_parity else banks
    return CommandEnergy(
        act_pJ=act, pre_pJ=pre,
        rd_pJ=vdd * (spec["currents.idd4r"] - i3n) * burst,
        wr_pJ=vdd * (spec["currents.idd4w"] - i3n) * burst,
        ref_pJ=vdd * (spec["currents.idd5b"] - i3n) * t.nRFC * tck,
        active_standby_mW=vdd * i3n, precharge_standby_mW=vdd * i2n,
        io_pJ_per_bit=spec["io.pJ_per_bit"], access_bits=8 * cfg.org.access_bytes,
        actab_pJ=ab_banks * (act + pre),
        mac_read_pJ_per_bit=spec["pim.mac_read_pJ_per_bit"],
        alu_pJ_per_op=spec["pim.alu_pJ_per_op"],
        pus_per_pch=banks // cfg.pim.banks_per_pu)


def energy_from_counts(ce: CommandEnergy, counts: dict[str, float], *, active_ns: float,
                       precharged_ns: float, mac_bytes: float = 0.0,
                       pim_ops: float = 0.0) -> dict[str, float]:
    """Components (pJ) from command counts (summed over pseudo-channels), the pseudo-channel-ns
    spent with a bank open / all banks closed, the bytes one MAC reads per PU and the PIM
    operations done."""
    c = {k: float(v) for k, v in counts.items()}
    g = c.get
    acts = g("ACT", 0.0)
    rd = g("RD", 0.0) + g("RDA", 0.0)
    wr = g("WR", 0.0) + g("WRA", 0.0)
    gwr, rdres = g("GWR", 0.0), g("RDRES", 0.0)
    bits = (rd + wr + gwr + rdres) * ce.access_bits
    return {
        "dram_background": ce.active_standby_mW * active_ns + ce.precharge_standby_mW * precharged_ns,
        "dram_refresh": g("REF", 0.0) * ce.ref_pJ,
        "dram_act_pre": acts * ce.act_pre_pJ + g("ACTAB", 0.0) * ce.actab_pJ,
        "dram_rd_wr": (rd + rdres) * ce.rd_pJ + (wr + gwr) * ce.wr_pJ,
        "dram_io": bits * ce.io_pJ_per_bit,
        "pim_mac": (g("MAC", 0.0) * ce.pus_per_pch * mac_bytes * 8 * ce.mac_read_pJ_per_bit
                    + pim_ops * ce.alu_pJ_per_op),
    }


class ResidencyObserver:
    """Command-log observer (pass as ``DramSim(observer=...)``) that accumulates, per
    pseudo-channel, the cycles with at least one bank (or the PIM row buffer) open: ACT opens a
    bank, PRE / RDA / WRA close it (auto-precharge counted at issue), PREA closes the
    pseudo-channel, ACTAB / PREAB open / close the PIM rows. Chunks arrive in issue order."""

    def __init__(self, n_pch: int) -> None:
        from sieveopt.validation.dram.timing import CMD

        self.n_pch = n_pch
        self.active = np.zeros(n_pch, dtype=np.int64)
        self._open: list[set[int]] = [set() for _ in range(n_pch)]
        self._pim = [False] * n_pch
        self._since = [0] * n_pch
        self._c = CMD

    def __call__(self, chunk: np.ndarray) -> None:
        C = self._c
        act, pre, prea, actab, preab = C["ACT"], C["PRE"], C["PREA"], C["ACTAB"], C["PREAB"]
        closers = (C["RDA"], C["WRA"])
        order = np.argsort(chunk["cycle"], kind="stable")
        cyc_a, cmd_a, p_a = chunk["cycle"][order], chunk["cmd"][order], chunk["pch"][order]
        bank_a = chunk["bg"][order] * 1000 + chunk["bank"][order]
        keep = np.isin(cmd_a, (act, pre, prea, actab, preab, *closers))
        for cyc, cmd, p, bank in zip(cyc_a[keep].tolist(), cmd_a[keep].tolist(), p_a[keep].tolist(),
                                     bank_a[keep].tolist(), strict=True):
            ob = self._open[p]
            was = bool(ob) or self._pim[p]
            if cmd == act:
                ob.add(bank)
            elif cmd == pre or cmd in closers:
                ob.discard(bank)
            elif cmd == prea:
                ob.clear()
            elif cmd == actab:
                self._pim[p] = True
            else:
                self._pim[p] = False
            now = bool(ob) or self._pim[p]
            if now and not was:
                self._since[p] = cyc
            elif was and not now:
                self.active[p] += cyc - self._since[p]

    def finish(self, end_cycle: int) -> np.ndarray:
        """Active cycles per pseudo-channel up to ``end_cycle`` (banks still open count to it)."""
        out = self.active.copy()
        for p in range(self.n_pch):
            if self._open[p] or self._pim[p]:
                out[p] += max(0, end_cycle - self._since[p])
        return out


def active_cycles_from_log(records: np.ndarray, n_pch: int, end_cycle: int) -> np.ndarray:
    """:class:`ResidencyObserver` over a whole command log (``sim.LOG_DTYPE`` records)."""
    obs = ResidencyObserver(n_pch)
    if len(records):
        obs(records)
    return obs.finish(end_cycle)


def energy_of_run(cfg: DramConfig, spec: EnergySpec, stats: Any, active_cycles: np.ndarray,
                  *, pim_bytes_per_element: float = 2.0, pim_ops: float = 0.0) -> dict[str, float]:
    """Components (pJ) of one simulator run: its command counts (``DramStats.commands``) and
    the residency a :class:`ResidencyObserver` measured, over ``stats.cycles`` on every
    simulated pseudo-channel."""
    ce = command_energy(cfg, spec)
    tck = cfg.tCK_ns
    act = float(active_cycles.sum())
    return energy_from_counts(ce, stats.commands, active_ns=act * tck,
                              precharged_ns=(stats.pseudo_channels * stats.cycles - act) * tck,
                              mac_bytes=cfg.pim.mac_bytes(pim_bytes_per_element), pim_ops=pim_ops)
