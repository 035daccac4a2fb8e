"""Execution models on the end-to-end step (``pareto --overlap``) and its Python API."""

from __future__ import annotations

import json

import pytest

from sieveopt.cli.main import main
from sieveopt.e2e import StepSettings, prepare_step, run_step
from sieveopt.models.catalog import load_model, load_system


@pytest.fixture(scope="module")
def problems():
    model = load_model("gpt-oss-120b")
    system = load_system("sieve-b200-hbm3e-pim", 2)
    out = {}
    for ov in ("serial", "microbatch", "ideal"):
        st = StepSettings(num_layers=1, overlap=ov, microbatches=0 if ov == "serial" else 2, window_layers=1)
        out[ov] = prepare_step(model, system, 8, st)
    return out


def test_step_under_every_execution_model(problems):
    res = {ov: run_step(p, "sieve") for ov, p in problems.items()}
    assert res["serial"].execution_model == "serial"
    assert res["microbatch"].execution_model == "microbatch(M=2,L=1,fusion=none,runtime_descent=1000)"
    for r in res.values():
        assert r.check_ok and r.step_ns > r.lm_head_ns + r.dense_layers_ns
    fixed = {ov: r.step_ns - r.moe_layers_ns for ov, r in res.items()}
    assert fixed["microbatch"] == pytest.approx(fixed["ideal"])  # same serialized dense/LM-head charge
    # ideal is the busiest resource of the same modes: never above the pipeline's period
    assert res["ideal"].moe_layers_ns <= res["microbatch"].moe_layers_ns
    # a micro-batch's layer latency never exceeds the period (each period it advances one layer)
    mb = res["microbatch"]
    w = problems["microbatch"].model.num_moe_layers
    assert 0 < mb.layer_latency_ns <= mb.moe_layers_ns / w * (1 + 1e-9)
    row = mb.row()
    assert row["execution_model"].startswith("microbatch") and row["layer_latency_us"] > 0
    assert row["sched_charged_ns"] == 1000


def test_step_replay_under_microbatch(problems):
    from sieveopt.e2e import load_replay

    r = run_step(problems["microbatch"], "noexp", replay=load_replay())
    assert r.error is None and r.replay_step_ns > 0
    ri = run_step(problems["ideal"], "noexp", replay=load_replay())
    assert ri.replay_step_ns is None and "bound, not a schedule" in ri.error


def test_cli_pareto_overlap_and_bad_input(tmp_path, capsys):
    out = tmp_path / "p"
    rc = main(["pareto", "--model", "gpt-oss-120b", "--gpus", "2", "--batches", "4,8", "--policies", "sieve,noexp",
               "--layers", "1", "--overlap", "microbatch", "--microbatches", "2", "--window-layers", "1",
               "--out", str(out), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(d["rows"]) == 4
    assert all(r["execution_model"] == "microbatch(M=2,L=1,fusion=none,runtime_descent=1000)" and r["check"] == "ok" for r in d["rows"])
    meta = json.loads((out / "pareto.json").read_text())["meta"]
    assert meta["execution_model"]["overlap"] == "microbatch"
    assert meta["execution_model"]["runtime_order_evaluations"] == 1000
    off = tmp_path / "off"  # the constructive runtime only: every row and the meta say so
    assert main(["pareto", "--model", "gpt-oss-120b", "--gpus", "2", "--batches", "4", "--policies", "noexp",
                 "--layers", "1", "--overlap", "microbatch", "--window-layers", "1", "--runtime-order-evaluations",
                 "0", "--out", str(off), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["execution_model"] for r in d["rows"]] == ["microbatch(M=2,L=1,fusion=none,runtime_descent=off)"]
    assert json.loads((off / "pareto.json").read_text())["meta"]["execution_model"]["runtime_order_evaluations"] == 0
    base = ["pareto", "--model", "gpt-oss-120b", "--gpus", "2", "--layers", "1", "--policies", "sieve"]
    for extra, needle in [
        (["--batches", "2,4", "--overlap", "microbatch"], "--microbatches 2 does not divide"),
        (["--batches", "4", "--microbatches", "2"], "needs --overlap microbatch"),
        (["--batches", "4", "--overlap", "microbatch", "--prefill", "1", "--prefill-len", "8"], "--prefill with"),
    ]:
        bad = tmp_path / "bad"
        assert main([*base, *extra, "--out", str(bad)]) == 2
        assert needle in capsys.readouterr().err and not bad.exists()
