"""Every cross-check the project has, as rows a user can rerun: ``sieveopt validate``.

Each check returns :class:`Row` (check, reference, sieveopt value, error, tolerance, pass).
References are computed here by hand from the timing / energy data, by an independent
implementation (command-log checker, brute force), or read from stored fixtures of other
simulators; a check whose reference is missing says why instead of passing silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

PRESETS = ("sieve_b200_hbm3e_pim", "hbm3_5200", "samsung_hbm2_pim")
#: presets whose timing and command log are checked (the HBM ones plus TriMoE's host DIMM; energy
#: data exists for PRESETS only)
TIMING_PRESETS = (*PRESETS, "ddr5_4800_rdimm")


@dataclass(frozen=True)
class Row:
    group: str
    check: str
    reference: str
    expected: float | None
    measured: float | None
    tolerance_pct: float
    passed: bool | None          # None: not run (``note`` says why)
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        if self.expected is None or self.measured is None:
            return None
        if self.expected == 0:
            return 0.0 if self.measured == 0 else math.inf
        return 100.0 * (self.measured - self.expected) / abs(self.expected)

    def to_dict(self) -> dict:
        return {**asdict(self), "error_pct": self.error_pct}


def _row(group, check, reference, expected, measured, tol_pct, note="") -> Row:
    err = 0.0 if expected == measured else (
        math.inf if expected == 0 else abs(measured - expected) / abs(expected) * 100.0)
    return Row(group, check, reference, float(expected), float(measured), tol_pct, err <= tol_pct, note)


# -- DRAM timing oracles -----------------------------------------------------------------------
def dram_timing() -> list[Row]:
    from sieveopt.validation.dram.api import load_dram_preset, stream_requests
    from sieveopt.validation.dram.sim import DramSim, simulate_accesses

    rows = []
    for p in TIMING_PRESETS:
        cfg = load_dram_preset(p, refresh=False)
        t = cfg.timing
        z = np.zeros(1, dtype=np.int64)
        st = simulate_accesses(cfg, z, z + 1, z + 2, z + 7, z + 3, z, channels=1)
        rows.append(_row("dram timing", f"{p}: single read", "tRCD + CL + BL (hand)",
                         t.nRCDRD + t.nCL + t.nBL, st.cycles, 0.0))
        n = 8
        zz = np.zeros(n, dtype=np.int64)
        st = simulate_accesses(cfg, zz, zz, zz, np.arange(n) + 3, zz, zz, channels=1)
        stride = max(t.nRC, t.nRAS + t.nRP, t.nRCDRD + t.nRTP + t.nRP)
        rows.append(_row("dram timing", f"{p}: {n} row conflicts, one bank",
                         "(n-1) max(tRC, tRAS+tRP, tRCD+tRTP+tRP) + tRCD+CL+BL",
                         (n - 1) * stride + t.nRCDRD + t.nCL + t.nBL, st.cycles, 0.0))
    cfg = load_dram_preset(PRESETS[0], refresh=False)
    n = 20000
    r = stream_requests(cfg, n)
    sim = DramSim(cfg, channels=1, frontend_requests_per_cycle=0)
    sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    st = sim.finish()
    rows.append(_row("dram timing", f"{PRESETS[0]}: sequential stream cycles",
                     "data-bus limit n x nBL per pCH", n * cfg.timing.nBL, st.cycles, 3.0))
    return rows


def dram_checker() -> list[Row]:
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.dram.checker import check_log
    from sieveopt.validation.dram.sim import CommandLog, DramSim
    from sieveopt.validation.dram.timing import CMD

    rows = []
    for p in TIMING_PRESETS:
        cfg = load_dram_preset(p)
        log = CommandLog()
        sim = DramSim(cfg, channels=1, observer=log)
        rng = np.random.default_rng(3)
        n = 2000
        sim.feed_addresses(rng.integers(0, 1 << 18, n) * 32, rng.integers(0, 2, n))
        sim.finish()
        rec = log.records
        errs = check_log(cfg, rec)
        rows.append(_row("dram command log", f"{p}: {len(rec)} commands, random R/W + refresh",
                         "independent checker: violations", 0, len(errs), 0.0))
    # the checker must see a planted violation (RD one cycle after its ACT)
    bad = rec.copy()
    i = int(np.flatnonzero(bad["cmd"] == CMD["RD"])[0])
    same = ((bad["cmd"] == CMD["ACT"]) & (bad["bank"] == bad["bank"][i]) & (bad["bg"] == bad["bg"][i])
            & (bad["pch"] == bad["pch"][i]) & (bad["cycle"] <= bad["cycle"][i]))
    act = int(np.flatnonzero(same)[-1])
    bad["cycle"][i] = bad["cycle"][act] + 1
    bad = bad[np.argsort(bad["cycle"], kind="stable")]
    found = any("ACT->RD" in e for e in check_log(cfg, bad))
    rows.append(_row("dram command log", f"{p}: planted tRCD violation", "detected (1)",
                     1, int(found), 0.0))
    return rows


def pim_counts() -> list[Row]:
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.dram.pim import gemv_layout, pim_program
    from sieveopt.validation.dram.sim import DramSim

    cfg = load_dram_preset(PRESETS[0], refresh=False)
    P, banks = cfg.org.pseudo_channels, cfg.org.banks
    rows_, cols, tokens = P * banks * 2, 1024, 3
    lay = gemv_layout(cfg, rows_, cols)
    st = DramSim(cfg, channels=1, pim=pim_program(cfg, [(rows_, cols)], tokens)).finish()
    n_pch = cfg.org.pseudo_channels_per_channel
    return [_row("pim", f"{PRESETS[0]}: GEMV {rows_}x{cols} x{tokens} MAC commands",
                 "layout: tokens x rows x MACs/row (hand)", n_pch * tokens * lay.total_macs,
                 st.commands.get("MAC", 0), 0.0)]


# -- interconnect closed forms -----------------------------------------------------------------
def interconnect() -> list[Row]:
    from sieveopt.validation.interconnect import LinkParams, Message, simulate

    rows = []
    p = LinkParams(num_gpus=8, bw_per_direction_GBps=1000.0, latency_ns=500.0, packet_bytes=256)
    for nbytes in (1, 4096, 1_000_003):
        r = simulate([Message(7, 2, 5, nbytes, release_ns=1000)], p)
        rows.append(_row("interconnect", f"one message, {nbytes} B (1 B/ps link)",
                         "release + latency + bytes/bw (ps)", 1_000_000 + 500_000 + nbytes,
                         int(r.arrival_ps[0]), 0.0))
    k, nbytes = 4, 65536
    r = simulate([Message(i, i + 1, 0, nbytes) for i in range(k)], p)
    rows.append(_row("interconnect", f"incast {k} x {nbytes} B into one port",
                     "latency + k x bytes/bw (ps)", 500_000 + k * nbytes, int(r.arrival_ps.max()), 0.0))
    return rows


# -- CP-SAT against brute force ----------------------------------------------------------------
def cpsat_bruteforce() -> list[Row]:
    from sieveopt.check import check
    from sieveopt.dag import DagOptions
    from sieveopt.models.catalog import load_system
    from sieveopt.pipeline import build_dag
    from sieveopt.solvers import policy_with_role, solve
    from sieveopt.testing import random_instance, tiny_model
    from sieveopt.validation.bruteforce import brute_force

    rows = []
    for seed, gpus, experts, batch, shared, kernel, sharing in (
            (0, 1, 4, 6, 0, "grouped", None), (2, 1, 3, 5, 0, "per_expert", "exclusive"),
            (3, 2, 4, 4, 0, "grouped", None)):
        rng = np.random.default_rng(seed)
        model = tiny_model(num_experts=experts, top_k=2, shared=shared)
        inst = random_instance(rng, model, load_system("sieve-b200-hbm3e-pim", num_gpus=gpus), batch, skew=0.5)
        dag, cost = build_dag(inst, options=DagOptions(gpu_kernel=kernel, hbm_sharing=sharing))
        # the registry's reference (exact) solver, deterministic
        r = solve(policy_with_role("reference"), dag, inst, cost, deterministic=True, workers=1,
                  time_limit_s=30.0, seed=0)
        ok = check(r.schedule, dag).ok
        rows.append(_row("cpsat", f"tiny seed {seed}: {gpus} GPU, {experts} experts, B={batch} ({r.status}"
                         f"{'' if ok else ', check FAILED'})", "brute-force optimum (ns)",
                         brute_force(dag), r.objective_ns if ok else -1, 0.0))
    return rows


def cpsat_energy_bruteforce() -> list[Row]:
    from sieveopt.check import check
    from sieveopt.models.catalog import load_system
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers.cpsat_energy import mode_energy_pJ, solve_cpsat_energy
    from sieveopt.testing import random_instance, tiny_model
    from sieveopt.validation.bruteforce import brute_force_energy_pJ
    from sieveopt.validation.energy.layer import energy_model_for

    rows = []
    for seed, gpus, experts, batch, slack in ((0, 1, 4, 6, 1.0), (1, 1, 4, 9, 1.5), (3, 2, 3, 4, 1.2)):
        rng = np.random.default_rng(seed)
        model = tiny_model(num_experts=experts, top_k=2, shared=0)
        system = load_system("sieve-b200-hbm3e-pim", num_gpus=gpus)
        inst = random_instance(rng, model, system, batch, skew=0.5)
        dag, cost = build_dag(inst)
        em = energy_model_for(system, model)
        hint = run_layer(inst, "sieve", dag=dag, cost=cost).result.schedule
        limit = int(hint.makespan_ns * slack)
        r = solve_cpsat_energy(dag, em, latency_limit_ns=limit, hints=[hint])
        ok = r.schedule is not None and check(r.schedule, dag).ok and r.makespan_ns <= limit
        ref = brute_force_energy_pJ(dag, mode_energy_pJ(dag, em), em.constant_pJ_per_ns(gpus), limit)
        rows.append(_row("cpsat energy", f"tiny seed {seed}: {gpus} GPU, {experts} experts, B={batch}, "
                         f"limit {limit} ns ({r.status}{'' if ok else ', check FAILED'})",
                         "brute-force min energy (pJ)", ref, r.meta["energy_J"] * 1e12 if ok else -1,
                         1e-6))
    return rows


# -- energy against closed forms ----------------------------------------------------------------
def energy() -> list[Row]:
    from sieveopt.validation.energy.closed_form import refresh_case, row_hit_case, row_miss_case

    rows = []
    for p in PRESETS:
        for name, fn in (("row-hit stream", row_hit_case), ("row-miss stream", row_miss_case),
                         ("refresh", refresh_case)):
            hand, counted = fn(p)
            rows.append(_row("energy", f"{p}: {name} (pJ)", "IDD-method closed form (hand)",
                             hand, counted, 1e-9))
    from sieveopt.validation.dram.api import load_dram_preset
    from sieveopt.validation.energy.idd import command_energy
    from sieveopt.validation.energy.spec import (
        dram_energy_spec,
        list_energy_specs,
        system_energy_spec,
    )

    files = list_energy_specs()   # the loader rejects a field without unit or source: count them
    specs = [dram_energy_spec(n) for n in files["dram"]] + [system_energy_spec(n) for n in files["systems"]]
    fields = [v for sp in specs for v in sp.values.values()]
    rows.append(_row("energy", f"energy data: {len(specs)} files, fields naming unit and source",
                     "every field", len(fields), sum(bool(v.source and v.unit) for v in fields), 0.0,
                     f"{sum(v.open for v in fields)} open"))
    for p in ("sieve_b200_hbm3e_pim", "hbm3_5200"):   # derived currents reproduce FGDRAM per-bit figures
        cfg = load_dram_preset(p)
        ce = command_energy(cfg, dram_energy_spec(p))
        rows.append(_row("energy", f"{p}: RD energy per bit from IDD4R (pJ/bit)",
                         "FGDRAM 0.44+1.01+1.23+0.5 (MICRO'17 via AttAcc)", 3.18, ce.rd_pJ / ce.access_bits, 0.01))
        rows.append(_row("energy", f"{p}: ACT+PRE energy per page bit from IDD0 (pJ/bit)",
                         "FGDRAM 0.11 (MICRO'17 via AttAcc)", 0.11, ce.act_pre_pJ / (8 * cfg.org.page_bytes), 0.01))
    return rows


# -- other simulators ---------------------------------------------------------------------------
def external_parity() -> list[Row]:
    """Cycle parity against Ramulator 2.0 fixtures (cycles it printed, with their command and config in
    tests/fixtures/dram/ramulator2/README.md) and against Samsung PIMSimulator's GEMV with and
    without PIM (tests/fixtures/dram/pimsimulator/README.md)."""
    from sieveopt.validation.dram.ramulator_parity import (
        FIXTURE,
        PRESET,
        load_cases,
        sieveopt_cycles,
    )

    rows = []
    fx = load_cases()
    if fx is None:
        rows.append(Row("parity", "Ramulator 2.0 cycle parity", "stored Ramulator outputs", None, None,
                        0.0, None, f"fixture {FIXTURE} is absent (a tree without tests/)"))
    else:
        n = fx["requests"]
        for case in fx["cases"]:
            kind, ch = case["trace"], case["channels"]
            rows.append(_row("parity", f"Ramulator 2.0 v2.0a: {kind}, {n} requests, {ch} ch (cycles)",
                             f"stored Ramulator 2.0 memory_system_cycles ({PRESET})",
                             case["ramulator_cycles"], sieveopt_cycles(kind, n, ch),
                             100.0 * case["tolerance"]))
    from sieveopt.validation.dram import pimsimulator_parity as ps

    pfx = ps.load_fixture()
    if pfx is None:
        rows.append(Row("parity", "PIM GEMV vs Samsung PIMSimulator", "stored PIMSimulator outputs",
                        None, None, 0.0, None, f"fixture {ps.FIXTURE} is absent (a tree without tests/)"))
    else:
        g, commit = pfx["gemv"], pfx["commit"][:7]
        what = {"pim_gemv": "GEMV on PIM", "nopim_gemv": "GEMV data movement without PIM"}
        for case in pfx["cases"]:
            kind, preset = case["kind"], case["preset"]
            rows.append(_row("parity", f"PIMSimulator {commit}: {g['rows']}x{g['cols']} FP16 "
                             f"{what[kind]}, {g['pseudo_channels']} pCH (cycles)",
                             f"stored PIMSimulator cycles ({preset})", case["reference_cycles"],
                             ps.sieveopt_cycles(kind, preset), 100.0 * case["tolerance"]))
    return rows
    return rows


# -- offloading host tiers (TriMoE, issue 16) -----------------------------------------------------
def host_tiers() -> list[Row]:
    """DDR5 rank-level NDP reads against the refresh-limited data-bus peak, and replayed NDP jobs
    against the NDP cost hook (read-bound within the stated tolerance, compute-bound exactly)."""
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.models.roofline import RooflineCostModel
    from sieveopt.models.work import expert_work
    from sieveopt.offload_tiers import ndp_cost_ns, ndp_ridge_tokens
    from sieveopt.validation.dram import api, ndp
    from sieveopt.validation.replay_offload import NDP_COST_TOLERANCE, host_times

    rows = []
    cfg = api.load_dram_preset("ddr5_4800_rdimm")
    t = cfg.timing
    nbytes = 16 << 20
    peak = ndp.internal_peak_GBps(cfg) * (1.0 - t.nRFC / t.nREFI)
    rows.append(_row("host tiers", "ddr5_4800_rdimm: 2-rank NDP stream of 16 MiB (GB/s)",
                     "pin peak x (1 - tRFC/tREFI) (hand)", peak, nbytes / ndp.ndp_read_ns(cfg, nbytes), 2.0))
    system, model = load_system("trimoe-h100-xeon-ndp"), load_model("deepseek-v2")
    cost, ht = RooflineCostModel(system, model), host_times(system)
    n = system.offload.ndp
    ridge = ndp_ridge_tokens(system, model)
    for tokens, tol, what in ((1, 100 * NDP_COST_TOLERANCE, "read-bound"), (4 * ridge, 0.5, "compute-bound")):
        w = expert_work(model, tokens)
        replayed = (n.job_overhead_ns + max(w.flops / n.peak_GFLOPS, ht.ndp_read_ns(int(w.weight_bytes)))
                    + ht.round_trip_ns(w.act_bytes))
        rows.append(_row("host tiers", f"DeepSeek-V2 NDP job, {tokens} token(s), {what} (ns)",
                         "replayed on DDR5 + PCIe simulators", replayed, ndp_cost_ns(cost, w), tol))
    return rows


CHECKS: dict[str, Callable[[], list[Row]]] = {
    "dram": dram_timing, "checker": dram_checker, "pim": pim_counts, "interconnect": interconnect,
    "cpsat": cpsat_bruteforce, "cpsat_energy": cpsat_energy_bruteforce, "energy": energy, "parity": external_parity,
    "host_tiers": host_tiers,
}


def run_checks(only: list[str] | None = None) -> tuple[list[Row], dict[str, float]]:
    """Run the named check groups (default all); returns rows and wall seconds per group."""
    rows, wall = [], {}
    for name, fn in CHECKS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            rows.extend(fn())
        except Exception as exc:   # a crashed check is a failed row, never a silent skip
            rows.append(Row(name, f"{name} checks", "-", None, None, 0.0, False,
                            f"crashed: {type(exc).__name__}: {exc}"))
        wall[name] = time.perf_counter() - t0
    return rows, wall
