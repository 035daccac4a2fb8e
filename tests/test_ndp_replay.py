"""TriMoE's host tiers on the simulators: DDR5 preset, rank-level NDP reads, replay timers, tolerance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieveopt.errors import SpecError
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.host_dram import resolve_host_dram
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.work import expert_work
from sieveopt.offload_tiers import MODE_CPU, MODE_GPU_FETCH, MODE_NDP, ndp_cost_ns, ndp_ridge_tokens
from sieveopt.pipeline import run_layer
from sieveopt.validation.dram import api, ndp
from sieveopt.validation.replay import replay
from sieveopt.validation.replay_offload import NDP_COST_TOLERANCE, host_times

SYSTEM = "trimoe-h100-xeon-ndp"


def test_ddr5_preset_peaks_and_views() -> None:
    cfg = api.load_dram_preset("ddr5_4800_rdimm")
    assert cfg.org.access_bytes == 64 and cfg.timing.nBL == 8 and cfg.org.banks == 32
    # 64 B per 8 clocks of 0.416 ns per sub-channel, two sub-channels: DDR5-4800's 38.4 GB/s (tCK rounding)
    assert ndp.external_peak_GBps(cfg) == pytest.approx(38.46, abs=0.01)
    assert ndp.internal_peak_GBps(cfg) == pytest.approx(2 * 38.46, abs=0.02)        # 2 ranks
    assert ndp.internal_peak_GBps(cfg, ranks=4) == pytest.approx(4 * 38.46, abs=0.04)
    assert ndp.host_config(cfg).org.pseudo_channels == 2


def test_system_resolves_its_dimms_and_rejects_inconsistent_values() -> None:
    host = resolve_host_dram(load_system(SYSTEM).offload)
    assert host is not None and host.ranks == 4 and host.host_channels == 8
    for key, value, field in (("offload.ndp.internal_bw_multiplier", 2.5, "internal_bw_multiplier"),
                              ("offload.ndp.dimm_bw_GBps", 50.0, "dimm_bw_GBps"),
                              ("offload.cpu.host_mem_bw_GBps", 100.0, "host_mem_bw_GBps"),
                              ("offload.ndp.dram_preset", "sieve_b200_hbm3e_pim", "dram_preset"),
                              ("offload.ndp.dram_preset", "no_such_preset", "dram_preset")):
        with pytest.raises(SpecError, match=field):
            load_system(SYSTEM, overrides={key: value})


def test_stream_extrapolation_matches_a_direct_simulation(monkeypatch) -> None:
    """Linear extrapolation converges on the direct simulation as the exact part grows (the default
    part is 4x longer than the largest tried here)."""
    cfg = ndp.ndp_config(api.load_dram_preset("ddr5_4800_rdimm"), ranks=4)
    nbytes = (1 << 16) * cfg.org.pseudo_channels * cfg.org.access_bytes   # 64 Ki accesses per rank
    direct = ndp.stream_ns(cfg, nbytes)                                   # not above EXACT_ACCESSES: simulated
    errs = []
    for exact in (1 << 12, 1 << 14):
        monkeypatch.setattr(ndp, "EXACT_ACCESSES", exact)
        errs.append(abs(ndp.stream_ns(cfg, nbytes) / direct - 1.0))
    assert errs[1] < errs[0] and errs[1] < 0.005


def test_rank_level_read_beats_the_host_channel_and_stays_below_peak() -> None:
    cfg = ndp.ndp_config(api.load_dram_preset("ddr5_4800_rdimm"), ranks=4)
    nbytes = 8 << 20
    t_ndp = ndp.ndp_read_ns(cfg, nbytes)
    t_host_one = ndp.host_read_ns(cfg, nbytes, channels=1)
    assert 3.0 < t_host_one / t_ndp <= 4.0          # 4 ranks in parallel vs one shared bus
    assert 0.8 < nbytes / t_ndp / ndp.internal_peak_GBps(cfg) < 1.0   # refresh and the shared CA bus


@pytest.mark.parametrize("model", ["deepseek-v2", "glm-4.5-air"])
def test_replayed_ndp_job_agrees_with_the_cost_model_within_the_stated_tolerance(model: str) -> None:
    system, m = load_system(SYSTEM), load_model(model)
    cost = RooflineCostModel(system, m)
    ht = host_times(system)
    from types import SimpleNamespace

    from sieveopt.validation.gpu_model import GpuModel
    from sieveopt.validation.replay import ReplayTimers, make_timer
    from sieveopt.validation.replay_offload import ndp_task_time

    timer = make_timer(system, m)
    ctx = ReplayTimers(GpuModel(system, timer.stream_ns), timer, None)
    ridge = ndp_ridge_tokens(system, m)
    for n in (1, 2, ridge, ridge + 1, 4 * ridge):
        work = expert_work(m, n)
        task = SimpleNamespace(kind="expert", tokens=n, work=work)   # the fields a timer reads
        tt = ndp_task_time(ctx, task, MODE_NDP)
        replayed = tt.overhead_ns + tt.body_ns
        predicted = ndp_cost_ns(cost, work)
        err = (predicted - replayed) / replayed
        assert abs(err) <= NDP_COST_TOLERANCE, (n, err)
        if work.flops / system.offload.ndp.peak_GFLOPS > ht.ndp_read_ns(int(work.weight_bytes)):
            assert abs(err) < 0.005, (n, err)     # compute-bound: the same closed form on both sides
        else:
            assert err < 0, (n, err)              # read-bound: the roofline reads at the pin peak


def _trimoe_run(model: str = "glm-4.5-air", batch: int = 64):
    system, m = load_system(SYSTEM), load_model(model)
    inst = sample_layers(m, system, batch, 1, 0)[0]
    return system, inst, run_layer(inst, "trimoe")


def test_layer_replay_reports_per_kind_errors_and_runs_ndp_jobs_concurrently() -> None:
    system, inst, run = _trimoe_run()
    rep = replay(run.result.schedule, run.dag, system, instance=inst)
    ke = rep.kind_error
    assert f"expert:{MODE_NDP}" in ke
    assert ke[f"expert:{MODE_NDP}"].mean_abs_pct <= 100 * NDP_COST_TOLERANCE
    modes = rep.schedule.modes
    ndp = [t.tid for t in run.dag.tasks if modes[t.tid] == MODE_NDP]
    assert len(ndp) > system.offload.ndp.num_dimms
    # concurrency: at the start of every NDP job, how many NDP jobs run
    s, e = rep.schedule.start_ns, rep.schedule.end_ns
    running = [sum(1 for u in ndp if s[u] <= s[t] < e[u]) for t in ndp]
    assert 1 < max(running) <= system.offload.ndp.num_dimms
    assert 0 < rep.utilisation["ndp[0]"] <= 1.0
    # every host tier used by the schedule is timed by the simulators (none is the cost hook)
    for mode in {modes[t.tid] for t in run.dag.tasks if t.kind == "expert"}:
        assert mode in (MODE_NDP, MODE_CPU, MODE_GPU_FETCH)


def test_analytic_replay_of_the_host_tiers_is_the_cost_hook() -> None:
    system, inst, run = _trimoe_run(batch=32)
    rep = replay(run.result.schedule, run.dag, system, instance=inst, memory="analytic")
    for key, err in rep.kind_error.items():
        if key.startswith("expert:"):
            assert err.median_abs_pct < 0.01, key   # only integer-ns rounding differs


def test_capacity_one_replay_is_unchanged_by_the_capacity_rule() -> None:
    """Resources of capacity 1 keep the old rule: one task at a time, in the schedule's order."""
    system, inst, run = _trimoe_run(batch=16)
    rep = replay(run.result.schedule, run.dag, system, instance=inst, memory="analytic")
    modes = rep.schedule.modes
    for kind in ("pcie", "cpu"):
        tids = sorted((t.tid for t in run.dag.tasks if kind in {run.dag.resources[r].kind for r in
                       t.modes[modes[t.tid]].resources}), key=lambda t: rep.schedule.start_ns[t])
        for a, b in zip(tids, tids[1:], strict=False):
            assert rep.schedule.end_ns[a] <= rep.schedule.start_ns[b]


def test_compare_replay_cli_reports_replayed_makespans(capsys) -> None:
    from sieveopt.cli.main import main

    rc = main(["compare", "--system", SYSTEM, "--model", "glm-4.5-air", "--gpus", "1", "--batch", "32",
               "--policies", "trimoe,gpu-ndp", "--layers", "1", "--replay", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["replayed"]
    for pol in ("trimoe", "gpu-ndp"):
        row = data["per_layer"][0]["policies"][pol]
        assert row["replayed_makespan_ns"] > 0
        assert np.isfinite(row["replay_error_pct"]) and f"expert:{MODE_NDP}" in row["replay_kind_error"]
        assert data["summary"][pol]["median_replayed_ns"] == row["replayed_makespan_ns"]
    rc = main(["compare", "--system", SYSTEM, "--model", "glm-4.5-air", "--batch", "32", "--policies", "trimoe",
               "--replay", "--overlap", "microbatch", "--microbatches", "2"])
    assert rc == 2 and "--replay" in capsys.readouterr().err


def test_replay_without_a_dimm_preset_names_the_field() -> None:
    from sieveopt.errors import SieveoptError

    system = load_system(SYSTEM, overrides={"offload.ndp.dram_preset": ""})
    inst = sample_layers(load_model("glm-4.5-air"), system, 16, 1, 0)[0]
    run = run_layer(inst, "trimoe")
    with pytest.raises(SieveoptError, match="offload.ndp.dram_preset"):
        replay(run.result.schedule, run.dag, system, instance=inst)


def test_offload_mode_names_appear_only_in_their_own_modules() -> None:
    """Issue 16's integration rule: the three tiers reach the rest of the tool through the target
    registry; no other module names them (registry entries, the TriMoE policies and TriMoE's own
    modules: file names with trimoe / offload / relayout in them)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    own = re.compile(r"trimoe|offload|relayout")
    pat = re.compile(r"""["'](gpu_fetch|ndp)["']""")
    offenders = [str(p.relative_to(root)) for d in ("sieveopt", "solvers", "models", "validation")
                 for p in (root / d).rglob("*.py")
                 if not own.search(p.name) and pat.search(p.read_text())]
    assert offenders == []


def test_ndp_stream_command_log_obeys_every_ddr5_timing_rule() -> None:
    """The 4-rank NDP view's command log (shared CA bus, two-cycle ACT/RD, refresh per rank) passes
    the independent checker, and the CA bus is what limits it: its reads never exceed one per
    two cycles per sub-channel."""
    from sieveopt.validation.dram.checker import check_log
    from sieveopt.validation.dram.sim import CommandLog, DramSim
    from sieveopt.validation.dram.timing import CMD

    cfg = ndp.ndp_config(api.load_dram_preset("ddr5_4800_rdimm"), ranks=4)
    log = CommandLog()
    sim = DramSim(cfg, channels=1, observer=log, frontend_requests_per_cycle=0)
    r = api.stream_requests(cfg, 4096)
    sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    st = sim.finish()
    rec = log.records
    assert check_log(cfg, rec) == []
    assert st.reads == 4 * 4096 and st.commands.get("REF", 0) > 0
    rd = np.sort(rec["cycle"][rec["cmd"] == CMD["RD"]])
    assert np.diff(rd).min() >= 2


#: DDR5-4800B / 16 Gb x8 values in ns as the public sources quote them (preset header:
#: Micron-based gem5 configs, a real module's SPD base block, Ramulator 2.0), and nCK floors
_DDR5_MIN_NS = {"nRCDRD": (16.0, 0), "nRP": (16.0, 0), "nRAS": (32.0, 0), "nRC": (48.0, 0),
                "nWR": (30.0, 0), "nRTP": (7.5, 12), "nCCDL": (5.0, 8), "nRRDL": (5.0, 8),
                "nFAW": (13.333, 32), "nWTRS": (2.5, 4), "nWTRL": (10.0, 16), "nRFC": (295.0, 0)}


def test_ddr5_preset_cycles_are_the_sources_ns_at_the_2400_MHz_clock() -> None:
    """Each ns parameter is max(nCK floor, ns x 2.4 rounded up) (tREFI, a maximum, rounded down),
    which equals JESD79-5's rounding algorithm (Ramulator's JEDEC_rounding_DDR5) at tCK 416 ps."""
    t = api.load_dram_preset("ddr5_4800_rdimm").timing
    for field, (ns, floor_nck) in _DDR5_MIN_NS.items():
        want = max(floor_nck, -(-round(ns * 2400) // 1000))          # ceil of ns x 2.4, exact integers
        jedec = max(floor_nck, int(ns * 1000 * 997 // t.tCK_ps) // 1000 + 1)
        assert getattr(t, field) == want == jedec, field
    assert t.nREFI == 3900 * 24 // 10 and t.nCL == 40 and t.nCWL == t.nCL - 2 and t.nRCDWR == t.nRCDRD
    assert (t.nCCDS, t.nRRDS, t.nBL, t.nACTBUS) == (8, 8, 8, 2)
    o = api.load_dram_preset("ddr5_4800_rdimm").org       # 32 GB 2Rx8 of 16 Gb x8 dies
    assert o.rows * o.page_bytes * o.banks * o.pseudo_channels_per_channel * o.channels_per_stack == 32 << 30


def test_ddr5_writes_to_one_bank_group_are_spaced_by_tccd_l_wr2() -> None:
    """The preset's timing row gives WR -> WR in one bank group max(16 nCK, 10 ns) = 24 cycles
    (not the read tCCD_L = 12), and writes to alternating bank groups stay at tCCD_S = 8."""
    from sieveopt.validation.dram.checker import check_log
    from sieveopt.validation.dram.sim import CommandLog, DramSim
    from sieveopt.validation.dram.timing import CMD

    cfg = api.load_dram_preset("ddr5_4800_rdimm")
    gaps = {}
    for name, bg in (("same", np.zeros(64, dtype=np.int64)), ("alt", np.arange(64, dtype=np.int64) % 2)):
        log = CommandLog()
        sim = DramSim(cfg, channels=1, observer=log, frontend_requests_per_cycle=0)
        z = np.zeros(64, dtype=np.int64)
        sim.feed(z, bg, z, z, np.arange(64, dtype=np.int64) // 2 if name == "alt" else np.arange(64),
                 np.ones(64, dtype=np.int64))
        sim.finish()
        rec = log.records
        assert check_log(cfg, rec) == []
        wr = np.sort(rec["cycle"][rec["cmd"] == CMD["WR"]])
        assert len(wr) == 64
        gaps[name] = int(np.diff(wr).min())
    assert gaps["same"] == 24 and gaps["alt"] == cfg.timing.nCCDS
