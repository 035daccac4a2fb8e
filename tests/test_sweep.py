"""Sweeps: strict spec validation, config hashing, caching/resume, failures, executors, CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sieveopt.errors import SpecError
from sieveopt.sweep import expand, load_sweep, parse_sweep, resolve, resolve_all, run_sweep

SMALL = """
[sweep]
name = "t"
layers = 1
[grid]
model = "gpt-oss-120b"
gpus = [1, 2]
batch = 8
policy = ["gpu_only", "allexp"]
"""


def _spec(tmp_path: Path, text: str = SMALL, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_sweep(path)


@pytest.mark.parametrize("text, field", [
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[bogus]\nx=1", "bogus"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\ncolour=1", "grid.colour"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[sweep]\nlayer=2", "sweep.layer"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[dag]\nkernel='x'", "dag.kernel"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[dag]\ngpu_kernel=3", "dag.gpu_kernel"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='no-such-policy'", "grid.policy"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[solver.cpsat]\ntime_limit_s=1", "solver.cpsat"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=[8, 0]\npolicy='sieve'", "grid.batch"),
    ("[grid]\nmodel='gpt-oss-120b'\npolicy='sieve'", "grid.batch"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[sweep]\nlayers='two'", "sweep.layers"),
    ("[grid]\nmodel='gpt-oss-120b'\nbatch=8\npolicy='sieve'\n[sweep]\ncost_model='nope'", "sweep.cost_model"),
])
def test_spec_errors_name_the_key_and_the_fix(tmp_path, text, field):
    with pytest.raises(SpecError) as exc:
        _spec(tmp_path, text)
    assert exc.value.field == field and exc.value.fix and str(tmp_path / "s.toml") in str(exc.value)


def test_unknown_model_fails_before_running(tmp_path):
    spec = _spec(tmp_path, SMALL.replace("gpt-oss-120b", "gpt-9"))
    with pytest.raises(SpecError, match="gpt-9"):
        resolve_all(spec)


def test_expand_crosses_axes_and_scopes_solver_params():
    spec = parse_sweep({"grid": {"model": ["gpt-oss-120b", "qwen3-30b-a3b"], "gpus": [1, 2], "batch": [8, 16],
                                 "policy": ["sieve", "cpsat"], "seed": [0, 1]},
                        "dag": {"gpu_kernel": ["grouped", "per_expert"], "attention_modes": [["gpu"], ["pim", "gpu"]]},
                        "solver": {"cpsat": {"time_limit_s": [1.0, 2.0, 3.0]}}})
    points = expand(spec)
    per_policy = 2 * 2 * 2 * 2 * 2 * 2  # model gpus batch seed gpu_kernel attention_modes
    assert len(points) == per_policy * (1 + 3)
    assert {p["solver"].get("time_limit_s") for p in points if p["policy"] == "cpsat"} == {1.0, 2.0, 3.0}
    assert all(p["solver"] == {} for p in points if p["policy"] == "sieve")
    assert {tuple(p["dag"]["attention_modes"]) for p in points} == {("gpu",), ("pim", "gpu")}
    scalar = parse_sweep({"grid": {"model": "gpt-oss-120b", "batch": 8, "policy": "sieve"},
                          "dag": {"attention_modes": ["gpu"]}})
    assert [p["dag"]["attention_modes"] for p in expand(scalar)] == [["gpu"]]


def test_hash_covers_resolved_specs_but_not_output_switches():
    base = {"model": "gpt-oss-120b", "system": "sieve-b200-hbm3e-pim", "gpus": 2, "batch": 8, "policy": "sieve",
            "seed": 0, "layers": 1, "cost_model": "roofline", "context_len": None, "dag": {}, "set": {}, "solver": {},
            "trace": False, "gantt": False}
    h = resolve(base)["hash"]
    assert resolve(dict(base))["hash"] == h
    assert resolve({**base, "trace": True, "gantt": True})["hash"] == h
    assert resolve({**base, "set": {"gpu.kernel_overhead_ns": 1234}})["hash"] != h
    assert resolve({**base, "gpus": 4})["hash"] != h
    assert resolve({**base, "solver": {"impl": "reference"}})["hash"] != h
    cfg = resolve(base)
    assert cfg["system_spec"]["num_gpus"] == 2 and cfg["model_spec"]["name"] == "gpt-oss-120b"


def _mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "points").glob("*/metrics.json")}


@pytest.mark.slow
def test_sweep_runs_caches_and_collects(tmp_path):
    spec = _spec(tmp_path, SMALL.replace('name = "t"', 'name = "t"\ntrace = true\ngantt = true'))
    out = tmp_path / "out"
    rep = run_sweep(spec, out, workers=1, progress=False)
    assert (rep.total, rep.done, rep.failed, rep.cached) == (4, 4, 0, 0)
    for cfg in resolve_all(spec):
        d = out / "points" / cfg["hash"]
        metrics = json.loads((d / "metrics.json").read_text())
        assert json.loads((d / "config.json").read_text())["hash"] == cfg["hash"]
        assert metrics["summary"]["all_checks_ok"] and metrics["layers"][0]["makespan_ns"] > 0
        assert metrics["summary"]["mean_energy_J"] == metrics["layers"][0]["energy_J"] > 0   # one layer
        assert (d / "trace.json.gz").read_bytes()[:2] == b"\x1f\x8b"
        assert (d / "gantt.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and {r["policy"] for r in rows} == {"gpu_only", "allexp"}
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(out / "results.parquet").num_rows == 4
    before = _mtimes(out)
    again = run_sweep(spec, out, workers=1, progress=False)
    assert (again.done, again.cached, again.failed) == (0, 4, 0)
    assert _mtimes(out) == before
    assert list(csv.DictReader((out / "results.csv").open())) == rows


def test_failed_point_is_recorded_reported_and_retried(tmp_path):
    text = SMALL.replace('policy = ["gpu_only", "allexp"]', 'policy = ["gpu_only", "sieve"]') + \
        "[solver.sieve]\nno_such_param = 1\nimpl = 'bogus'\n"
    spec = _spec(tmp_path, text)
    out = tmp_path / "out"
    rep = run_sweep(spec, out, workers=1, progress=False)
    assert (rep.done, rep.failed) == (2, 2)
    for h in rep.errors:
        err = json.loads((out / "points" / h / "error.json").read_text())
        assert "Traceback" in err["traceback"] and err["type"]
        assert not (out / "points" / h / "metrics.json").exists()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(r["point_status"] for r in rows) == ["error", "error", "ok", "ok"]
    again = run_sweep(spec, out, workers=1, progress=False)
    assert (again.cached, again.done, again.failed) == (2, 0, 2)  # failures are retried, not cached


@pytest.mark.slow
def test_process_pool_matches_serial(tmp_path):
    spec = _spec(tmp_path, SMALL)
    a = run_sweep(spec, tmp_path / "serial", workers=1, progress=False)
    b = run_sweep(spec, tmp_path / "pool", workers=2, progress=False)
    assert b.done == a.done == 4
    key = {p["hash"]: p["mean_makespan_ns"] for p in a.points}
    assert {p["hash"]: p["mean_makespan_ns"] for p in b.points} == key


KILL_SWEEP = """
[sweep]
name = "kill"
layers = 2
[grid]
model = "gpt-oss-120b"
gpus = [1, 2]
batch = [8, 16]
policy = ["gpu_only", "allexp", "noexp"]
seed = [0, 1, 2, 3, 4, 5, 6, 7]
"""


def _cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sieveopt", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_points(out: Path, n: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    t0 = time.monotonic()
    while len(_mtimes(out)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout_s
        time.sleep(0.01)


@pytest.mark.slow
def test_interrupted_and_killed_sweeps_resume_without_losing_or_recomputing(tmp_path):
    sweep = tmp_path / "kill.toml"
    sweep.write_text(KILL_SWEEP)
    out = tmp_path / "out"
    total = len(resolve_all(load_sweep(sweep)))
    args = ["sweep", str(sweep), "--out", str(out), "--workers", "1", "--json"]
    # 1) Ctrl-C: a clean stop (exit 130) that still writes the results of the finished points.
    proc = _cli(args)
    _wait_for_points(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    rep = json.loads(stdout)
    assert rep["interrupted"] and rep["done"] >= 1 and (out / "results.csv").exists()
    # 2) SIGKILL mid-run: no clean-up at all.
    proc = _cli(args)
    _wait_for_points(out, len(_mtimes(out)) + 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    finished = _mtimes(out)
    assert 0 < len(finished) < total, "the sweep finished before it could be killed; make it bigger"
    assert not list(out.glob("points/*/metrics.json.*"))  # no half-written finished markers visible
    # 3) Resume: every finished point reused exactly once, the rest computed.
    rep = run_sweep(load_sweep(sweep), out, workers=1, progress=False)
    assert (rep.cached, rep.done, rep.failed) == (len(finished), total - len(finished), 0)
    after = _mtimes(out)
    assert {h: after[h] for h in finished} == finished
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 2 * total and len({r["hash"] for r in rows}) == total


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_on_a_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    spec = _spec(tmp_path, SMALL)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rep = run_sweep(spec, tmp_path / "ray", executor="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    assert (rep.done, rep.failed) == (4, 0)
    serial = run_sweep(spec, tmp_path / "serial", workers=1, progress=False)
    assert {p["hash"]: p["mean_makespan_ns"] for p in rep.points} == \
        {p["hash"]: p["mean_makespan_ns"] for p in serial.points}


def test_cli_sweep_dry_run_and_bad_file(tmp_path, capsys):
    from sieveopt.cli.main import main

    sweep = tmp_path / "s.toml"
    sweep.write_text(SMALL)
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["points"]) == 4 and not any(p["cached"] for p in d["points"])
    sweep.write_text(SMALL + "\n[grid2]\n")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o")]) == 2
    assert "grid2" in capsys.readouterr().err


def test_example_sweep_file_is_valid():
    spec = load_sweep(Path(__file__).parent.parent / "docs" / "examples" / "sweep_small.toml")
    assert len(resolve_all(spec)) == len(expand(spec)) == 16
    ov = load_sweep(Path(__file__).parent.parent / "docs" / "examples" / "sweep_overlap.toml")
    assert len(resolve_all(ov)) == 2 * 3 * (1 + 2 + 2)  # batches x policies x (serial + 2 M x 2 models)


OVERLAP = """
[sweep]
name = "ov"
layers = 1
window_layers = 1
[grid]
model = "gpt-oss-120b"
gpus = 2
batch = 16
policy = ["sieve", "noexp"]
overlap = ["serial", "microbatch", "ideal"]
microbatches = [2, 4]
"""


def test_overlap_axes_expand_collapse_serial_and_keep_serial_hashes(tmp_path):
    spec = _spec(tmp_path, OVERLAP)
    pts = expand(spec)
    ex = {(p["policy"], p.get("overlap", "serial"), p.get("microbatches")) for p in pts}
    assert ("sieve", "serial", None) in ex and ("sieve", "microbatch", 4) in ex and ("noexp", "ideal", 2) in ex
    configs = resolve_all(spec)
    assert len(configs) == 2 * (1 + 2 + 2)  # serial x M collapses to one point per policy
    serial = [c for c in configs if "overlap" not in c["point"]]
    plain = resolve_all(_spec(tmp_path, OVERLAP.replace('overlap = ["serial", "microbatch", "ideal"]\n'
                                                        "microbatches = [2, 4]\n", ""), "plain.toml"))
    assert sorted(c["hash"] for c in serial) == sorted(c["hash"] for c in plain)


@pytest.mark.parametrize("grid, field", [
    ('overlap = "pipelined"', "grid.overlap"),
    ('overlap = "serial"\nmicrobatches = 2', "grid.microbatches"),
    ('overlap = "microbatch"\nmicrobatches = [1, 2]', "grid.microbatches"),
    ('overlap = "microbatch"\nmicrobatches = 0', "grid.microbatches"),
])
def test_overlap_axis_errors_name_the_key(tmp_path, grid, field):
    with pytest.raises(SpecError) as exc:
        _spec(tmp_path, SMALL + grid + "\n")
    assert exc.value.field == field and exc.value.fix


def test_overlap_points_run_on_the_engine_and_bad_m_exits_2(tmp_path, capsys):
    from sieveopt.cli.main import main

    text = OVERLAP.replace('policy = ["sieve", "noexp"]', 'policy = "sieve"').replace(
        'overlap = ["serial", "microbatch", "ideal"]', 'overlap = ["serial", "microbatch"]').replace(
        "microbatches = [2, 4]", "microbatches = 2")
    rep = run_sweep(_spec(tmp_path, text), tmp_path / "o", workers=1, progress=False)
    assert rep.done == 2 and rep.failed == 0
    by = {p["execution_model"]: p for p in rep.points}
    assert set(by) == {"serial", "microbatch(M=2,L=1,fusion=none,runtime_descent=1000)"}
    assert all(p["all_checks_ok"] and p["mean_time_per_layer_ns"] > 0 for p in rep.points)
    rows = list(csv.DictReader((tmp_path / "o" / "results.csv").open()))
    mb = [r for r in rows if r["overlap"] == "microbatch"]
    assert len(mb) == 1 and float(mb[0]["period_ns"]) == float(mb[0]["time_per_layer_ns"]) > 0
    assert int(mb[0]["scheduler_latency_ns"]) == 1000  # sieve's default charge, as in compare
    # M = 3 does not divide the 8 requests per GPU: exit 2, naming the field, before any point runs.
    sweep = tmp_path / "bad.toml"
    sweep.write_text(text.replace("microbatches = 2", "microbatches = 3"))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "grid.microbatches 3 does not divide" in err and not (tmp_path / "o2" / "points").exists()


def test_overlap_sweep_rejects_serial_only_solver_params_up_front(tmp_path):
    from sieveopt.sweep.validate import validate_sweep

    spec = _spec(tmp_path, OVERLAP.replace('policy = ["sieve", "noexp"]', 'policy = ["sieve", "cpsat"]')
                 + "[solver.cpsat]\ntime_limit_s = 1.0\ndeterministic = true\n")
    with pytest.raises(SpecError) as exc:
        validate_sweep(spec, resolve_all(spec))
    assert exc.value.field == "solver.cpsat.deterministic" and "overlap" in exc.value.fix
