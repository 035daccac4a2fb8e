"""Issue 15: capacity over everything on the GPU (Kimi K2 from a user TOML), MLA parameter
counts, routing profiles as TOML, output-path checks before work, --time-limit vs
--deterministic-time, resource guard, sweep checks up front, pool workers ending with the parent."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from sieveopt.errors import SieveoptError, SpecError
from sieveopt.models.capacity import gpu_memory, min_gpus_to_fit, param_counts
from sieveopt.models.catalog import check_fits, load_model, load_system

FIX = Path(__file__).parent / "fixtures"
KIMI = str(FIX / "models" / "kimi-k2.toml")
SYSTEM = "sieve-b200-hbm3e-pim"


def _cli(*argv: str) -> tuple[int, str, str]:
    from sieveopt.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_kimi_k2_parameter_counts_match_the_model_card() -> None:
    """Kimi K2: 1.04T total (moe_models.md reconstructs 1026B), 32B active."""
    pc = param_counts(load_model(KIMI))
    assert round(pc.total / 1e9) == 1026
    assert 32.0 <= pc.active / 1e9 <= 33.5
    ds = param_counts(load_model("deepseek-v3"))  # 671B total, 37B active
    assert round(ds.total / 1e9) == 671 and 37.0 <= ds.active / 1e9 <= 38.0


def test_kimi_k2_fit_verdict_and_gpu_count() -> None:
    """Expert weights alone (86.1 GiB) fit 11 x 96 GiB; with attention, shared experts,
    embeddings, LM head and KV cache it needs 97.9 GiB: 12 GPUs."""
    kimi, sys11 = load_model(KIMI), load_system(SYSTEM, 11)
    mem = gpu_memory(kimi, sys11, batch=64, context_len_tokens=2048)
    assert mem.routed_experts / 2**30 < 96 < mem.total / 2**30
    with pytest.raises(SpecError, match=r"--gpus 12 or more") as info:
        check_fits(kimi, sys11, batch=64, context_len_tokens=2048)
    for part in ("routed experts", "attention", "embeddings + LM head", "KV cache"):
        assert part in str(info.value)
    assert min_gpus_to_fit(kimi, sys11, batch=64, context_len_tokens=2048) == 12
    check_fits(kimi, load_system(SYSTEM, 12), batch=64, context_len_tokens=2048)
    rc, out, err = _cli("show", "model", KIMI, "--gpus", "11", "--json")
    assert rc == 0, err
    fit = json.loads(out)["fit"]
    assert fit["fits"] is False and fit["min_gpus"] == 12 and fit["total_GiB"] > 96
    rc, _, err = _cli("solve", "--model", KIMI, "--gpus", "11")
    assert rc == 2 and "--gpus 12 or more" in err


def test_capacity_fix_is_never_a_nonpositive_gpu_count() -> None:
    q35 = load_model("qwen3.5-397b-a17b")
    for g in (1, 2, 8):
        with pytest.raises(SpecError) as info:
            check_fits(q35, load_system(SYSTEM, g))
        assert "--gpus 10 or more" in str(info.value)
    tiny = load_system(SYSTEM, 8, {"gpu.hbm_capacity_GiB": 1.0})
    with pytest.raises(SpecError, match="no GPU count fits"):
        check_fits(q35, tiny)


def test_mla_needs_its_own_projection_count() -> None:
    with pytest.raises(SpecError, match="full_params_per_layer"):
        load_model("deepseek-v3", {"attention.full_params_per_layer": 0})


@pytest.mark.parametrize(("change", "field"), [
    ({"attention.num_kv_heads": 64}, "num_kv_heads"),   # 64 KV heads > 32 query heads
    ({"attention.num_kv_heads": 5}, "num_kv_heads"),    # 32 / 5 is not an integer
    ({"dense_weight_bytes_per_param": float("nan")}, "dense_weight_bytes_per_param"),
    ({"dense_weight_bytes_per_param": -1.0}, "dense_weight_bytes_per_param"),
    ({"vocab_size": -1}, "vocab_size"),
    ({"routing_profile": "no-such"}, "routing_profile"),
])
def test_gqa_and_domain_checks(change: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        load_model("qwen3-30b-a3b", change)
    assert info.value.field.endswith(field) and info.value.fix


def test_inf_only_where_the_schema_allows_it() -> None:
    ideal = load_system(SYSTEM, 2, {"interconnect.bw_per_direction_GBps": float("inf")})
    assert ideal.interconnect.bw_per_direction_GBps == float("inf")
    with pytest.raises(SpecError, match="latency_ns"):
        load_system(SYSTEM, 2, {"interconnect.latency_ns": float("inf")})
    with pytest.raises(SpecError, match="tRFC_ns"):
        load_system(SYSTEM, 2, {"hbm_pim.timing.tRFC_ns": 5000.0})


def test_user_routing_profile_from_toml(tmp_path: Path) -> None:
    from sieveopt.workload import generate_for_model
    from sieveopt.workload.profiles import PROFILES

    assert {"qwen128", "qwen512", "gptoss", "deepseek", "kimi"} <= set(PROFILES)
    (tmp_path / "glm.toml").write_text('name = "glm45air"\nsg = 0.2\nkappa = 1.1\nn_dom = 4\n')
    model_toml = (FIX / "models" / "kimi-k2.toml").read_text().replace('routing_profile = "kimi"',
                                                                     'routing_profile = "glm.toml"')
    (tmp_path / "m.toml").write_text(model_toml)
    model = load_model(str(tmp_path / "m.toml"))  # relative to the model file
    trace = generate_for_model(model, 8, 2, 0, layers=1)
    assert trace.profile == "glm45air" and trace.expert_ids.shape == (2, 1, 8, 8)
    (tmp_path / "bad.toml").write_text('name = "x"\nsg = nan\n')
    with pytest.raises(SpecError, match="sg"):
        load_model(KIMI, {"routing_profile": str(tmp_path / "bad.toml")})


def test_output_paths_checked_before_work(tmp_path: Path) -> None:
    from sieveopt.fileio import check_input_file, check_output_dir, check_output_file

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    for bad in (tmp_path / "d", tmp_path / "f" / "x.dot", tmp_path / "f" / "a" / "x.dot", Path("/dev/null")):
        with pytest.raises(SieveoptError, match="--out"):
            check_output_file(bad)
    check_output_file(tmp_path / "new" / "x.dot")
    assert not (tmp_path / "new").exists()  # a check creates nothing
    for bad in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(SieveoptError, match="--out"):
            check_output_dir(bad)
    with pytest.raises(SieveoptError, match="directory"):
        check_input_file(tmp_path / "d", "--trace")
    t0 = time.perf_counter()
    rc, _, err = _cli("viz", "gantt", "--policy", "cpsat", "--out", str(tmp_path / "f" / "g.png"))
    assert rc == 2 and "--out" in err and time.perf_counter() - t0 < 5.0


def test_time_limit_and_deterministic_time_options() -> None:
    import argparse

    from sieveopt.cli.common import cpsat_params

    assert cpsat_params(argparse.Namespace(time_limit=2.0, deterministic_time=None)) == {"time_limit_s": 2.0}
    assert cpsat_params(argparse.Namespace(time_limit=2.0, deterministic_time=3.0), seed=4) == {
        "time_limit_s": 3.0, "deterministic": True, "seed": 4}
    a = _cli("solve", "--policy", "cpsat", "--batch", "8", "--deterministic-time", "0.5", "--json")
    b = _cli("solve", "--policy", "cpsat", "--batch", "8", "--deterministic-time", "0.5", "--json")
    assert a[0] == 0 and b[0] == 0
    assert json.loads(a[1])["makespan_ns"] == json.loads(b[1])["makespan_ns"]


def test_memory_guard_refuses_huge_runs_quickly() -> None:
    t0 = time.perf_counter()
    rc, _, err = _cli("solve", "--batch", "100000000", "--ignore-capacity")
    assert rc == 2 and "--max-memory" in err and "GiB" in err
    assert time.perf_counter() - t0 < 5.0
    rc, _, err = _cli("workload", "generate", "--batch", "100000000", "--out", "/tmp/never-written.npz")
    assert rc == 2 and "--max-memory" in err and not Path("/tmp/never-written.npz").exists()


def test_sweep_checked_up_front(tmp_path: Path) -> None:
    grid = '[grid]\nmodel = "gpt-oss-120b"\ngpus = 4\nbatch = 8\npolicy = "cpsat"\n'
    for body, needle in ((grid + "[solver.cpsat]\ntime_limt_s = 1\n", "time_limt_s"),
                         (grid + "[solver.cpsat]\ntime_limit_s = nan\n", "time_limit_s"),
                         (grid.replace("gpt-oss-120b", "qwen3.5-397b-a17b"), "grid.gpus = 10")):
        (tmp_path / "s.toml").write_text(body)
        rc, _, err = _cli("sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"))
        assert rc == 2 and needle in err, err
        assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks Linux process state")
def test_pool_workers_end_with_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, time
        from sieveopt.sweep.executors import _pool
        pool = _pool(2)
        futs = [pool.submit(time.sleep, 60) for _ in range(2)]
        time.sleep(3.0)
        print(" ".join(str(p) for p in pool._processes), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 5.0
    alive = pids
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if _alive(p)]
    assert not alive, f"workers {alive} outlived their parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_models_doc_lists_every_field() -> None:
    """docs/models.md documents every model, system and routing-profile TOML field."""
    import dataclasses
    import re

    from sieveopt.models import specs
    from sieveopt.workload.profiles import RoutingProfile

    doc = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", doc))
    missing = [f"{cls.__name__}.{f.name}" for cls in (specs.ModelSpec, specs.AttentionSpec, specs.SystemSpec,
                                                     specs.GpuSpec, specs.HbmPimSpec, specs.DramTimingSpec,
                                                     specs.PimSpec, specs.InterconnectSpec, specs.OffloadSpec,
                                                     specs.PcieSpec, specs.HostCpuSpec, specs.DimmNdpSpec,
                                                     RoutingProfile)
               for f in dataclasses.fields(cls) if f.name not in named and f.name not in
               ("attention", "gpu", "hbm_pim", "interconnect", "timing", "pim", "pcie", "cpu", "ndp")]
    assert not missing, f"add to docs/models.md: {missing}"


@pytest.mark.parametrize("ys", [[50, 55, 60, 63], [10, 20, 40], [5, 50, 500, 5000]])
def test_pareto_axes_label_ticks_at_any_range(ys: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sieveopt.e2e.plot import pareto_axes

    rows = [{"policy": "sieve", "batch": 2**i, "throughput_tok_s_per_gpu": 100.0 * (i + 1),
             "interactivity_tok_s_per_user": float(y)} for i, y in enumerate(ys)]
    fig, ax = plt.subplots()
    pareto_axes(ax, rows, "t")
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    shown = [t for t, lab in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
             if lo <= t <= hi and lab.get_text()]
    plt.close(fig)
    assert len(shown) >= 2, f"y axis {lo:.3g}..{hi:.3g} has {len(shown)} labelled ticks"
    assert all("e" not in lab.get_text() and "$" not in lab.get_text() for lab in ax.get_yticklabels())


def test_gantt_row_selection(tmp_path: Path) -> None:
    from sieveopt.instance import sample_layers
    from sieveopt.pipeline import run_layer
    from sieveopt.viz import gantt_compare
    from sieveopt.viz.gantt import _shown
    from sieveopt.viz.layout import build_layout

    inst = sample_layers(load_model("qwen3-30b-a3b"), load_system(SYSTEM, 4), 16, 1, 0)[0]
    run = run_layer(inst, "sieve")
    lay = build_layout(run.result.schedule, run.dag)
    rows = _shown(lay, False, [1], ["gpu", "pim"])
    assert rows and {r.gpu for r in rows} == {1} and {r.kind for r in rows} <= {"gpu", "pim"}
    assert len(rows) < len(_shown(lay, False, None, None))
    out = gantt_compare([("sieve", run.result.schedule, run.dag)], tmp_path / "g.png", gpus=[1], resources=["pim"])
    assert out.stat().st_size > 0
    for bad, needle in ((["--gpus-shown", "4"], "does not exist"), (["--gpus-shown", "x"], "--gpus-shown"),
                        (["--resources", "gpu,foo"], "--resources")):
        rc, _, err = _cli("viz", "gantt", "--gpus", "4", "--out", str(tmp_path / "h.png"), *bad)
        assert rc == 2 and needle in err and "fix" in err
        assert not (tmp_path / "h.png").exists()


def test_memory_estimate_is_an_upper_bound_of_measured_rss() -> None:
    """Peak RSS of a real `sieveopt solve` (measured in its own process) stays below the guard's
    estimate, so the guard never lets through a run that needs more than it says."""
    from sieveopt.resources import estimate_run_bytes

    # VmHWM (this process image's peak), not ru_maxrss: Linux keeps ru_maxrss across exec, so a
    # child forked from a large pytest process would report the parent's size (675 MiB in CI).
    code = ("import sys\nfrom sieveopt.cli.main import main\n"
            "rc = main(['solve', '--batch', '50000', '--gpus', '8', '--json', '--ignore-capacity'])\n"
            "hwm = next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')).split()[1]\n"
            "print('PEAK', hwm, file=sys.stderr)\nsys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak_bytes = int(proc.stderr.rsplit("PEAK", 1)[1].split()[0]) * 1024  # VmHWM is in kB
    est = estimate_run_bytes(load_model("qwen3-30b-a3b"), 8, 50000)
    assert peak_bytes <= est, f"measured {peak_bytes / 2**20:.0f} MiB > estimate {est / 2**20:.0f} MiB"
