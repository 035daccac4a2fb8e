"""The pipeline runtime's order descent as a user option (``--runtime-order-evaluations``,
``make_execution_model(runtime_order_evaluations=)``): it changes the executed pipeline where the
descent finds shorter orders, never lengthens it, and every result names the setting."""

from __future__ import annotations

import json

import pytest

from sieveopt.cli.main import main
from sieveopt.errors import SieveoptError
from sieveopt.execution_model import DEFAULT_RUNTIME_ORDER_EVALUATIONS, make_execution_model
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.overlap import charged_problem, sample_problem, solve_overlap

BASE = ["--model", "gpt-oss-120b", "--gpus", "1", "--batch", "8"]


def test_execution_model_names_the_runtime_setting():
    on = make_execution_model("microbatch", 2)
    off = make_execution_model("microbatch", 2, runtime_order_evaluations=0)
    assert on.runtime_order_evaluations == DEFAULT_RUNTIME_ORDER_EVALUATIONS == 1000
    assert on.label.endswith(",runtime_descent=1000)") and off.label.endswith(",runtime_descent=off)")
    assert on.to_dict()["runtime_order_evaluations"] == 1000 and off.to_dict()["runtime_order_evaluations"] == 0
    assert make_execution_model("ideal", 2).to_dict()["runtime_order_evaluations"] is None  # a bound: no runtime
    for bad in (-1, 1.5, True):
        with pytest.raises(SieveoptError, match="--runtime-order-evaluations must be an integer >= 0"):
            make_execution_model("microbatch", 2, runtime_order_evaluations=bad)
    for overlap in ("serial", "ideal"):
        with pytest.raises(SieveoptError, match="--runtime-order-evaluations sets the pipeline runtime"):
            make_execution_model(overlap, None, runtime_order_evaluations=0)


def test_descent_is_never_worse_and_changes_results():
    """Same instances and decisions, descent on (default) vs off: never longer, shorter on some
    (GPT-OSS x1, B = 8, M = 2: 36.98 vs 37.30 us per layer on seed 0), modes unchanged."""
    model = load_model("gpt-oss-120b")
    system = load_system("sieve-b200-hbm3e-pim", 1)
    cost = make_cost_model("roofline", system, model)
    shorter = 0
    for seed in (0, 1):
        res = {}
        for evals in (None, 0):
            ex = make_execution_model("microbatch", 2, batch=8, num_gpus=1, runtime_order_evaluations=evals)
            prob, _ = charged_problem(sample_problem(model, system, 8, ex, seed, cost), "sieve")
            res[evals] = solve_overlap(prob, "sieve")
            assert res[evals].check_ok and prob.dag.meta["execution_model"] == ex.label
        assert res[None].schedule.modes == res[0].schedule.modes
        assert res[None].period_ns <= res[0].period_ns
        shorter += res[None].period_ns < res[0].period_ns
        assert res[None].to_dict()["execution_model"].endswith("runtime_descent=1000)")
        assert res[0].to_dict()["execution_model"].endswith("runtime_descent=off)")
    assert shorter >= 1


def test_cli_compare_names_the_runtime_and_rejects_bad_values(capsys):
    argv = ["compare", *BASE, "--layers", "1", "--overlap", "microbatch", "--policies", "sieve,noexp", "--json"]
    periods = {}
    for extra, want in (([], 1000), (["--runtime-order-evaluations", "0"], 0)):
        assert main([*argv, *extra]) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["execution_model"]["runtime_order_evaluations"] == want
        assert d["execution_model"]["label"].endswith(f"runtime_descent={want or 'off'})")
        periods[want] = d["summary"]["sieve"]["median_period_ns"]
    assert periods[1000] < periods[0]  # seed 0 of this instance: the descent shortens the pipeline
    for cmd in (["compare", *BASE, "--overlap", "microbatch", "--runtime-order-evaluations", "-1"],
                ["solve", *BASE, "--overlap", "microbatch", "--runtime-order-evaluations", "-5"],
                ["run", "--model", "gpt-oss-120b", "--overlap", "microbatch", "--runtime-order-evaluations", "-1"],
                ["compare", *BASE, "--runtime-order-evaluations", "10"],  # serial: no pipeline runtime
                ["compare", *BASE, "--overlap", "ideal", "--runtime-order-evaluations", "10"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "--runtime-order-evaluations" in err and ("drop" in err or ">= 0" in err)


def test_pareto_rejects_a_negative_runtime_setting(tmp_path, capsys):
    rc = main(["pareto", "--model", "gpt-oss-120b", "--gpus", "1", "--batches", "8", "--policies", "sieve",
               "--overlap", "microbatch", "--runtime-order-evaluations", "-2", "--out", str(tmp_path / "p")])
    assert rc == 2 and "--runtime-order-evaluations" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()  # nothing half-written
    rc = main(["pareto", "--model", "gpt-oss-120b", "--gpus", "1", "--batches", "8", "--policies", "sieve",
               "--runtime-order-evaluations", "5", "--out", str(tmp_path / "q")])  # serial: no pipeline runtime
    assert rc == 2 and "add --overlap microbatch or drop the option" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_sweep_field_is_validated_and_carried(tmp_path):
    from sieveopt.errors import SpecError
    from sieveopt.sweep.spec import expand, parse_sweep

    grid = {"model": "gpt-oss-120b", "gpus": 1, "batch": 8, "policy": "sieve", "overlap": ["serial", "microbatch"]}
    spec = parse_sweep({"sweep": {"layers": 1, "runtime_order_evaluations": 0}, "grid": grid}, "s.toml")
    pts = expand(spec)
    assert [p.get("runtime_order_evaluations") for p in pts] == [None, 0]  # serial points carry no overlap keys
    with pytest.raises(SpecError, match="sweep.runtime_order_evaluations"):
        parse_sweep({"sweep": {"layers": 1, "runtime_order_evaluations": -1}, "grid": grid}, "s.toml")
    with pytest.raises(SpecError, match="sweep.runtime_order_evaluations"):
        parse_sweep({"sweep": {"layers": 1, "runtime_order_evaluations": 5}, "grid": {**grid, "overlap": "serial"}},
                    "s.toml")


def test_sweep_points_run_with_the_runtime_setting(tmp_path):
    from sieveopt.sweep.runner import run_sweep
    from sieveopt.sweep.spec import load_sweep

    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nname = "rt"\nlayers = 1\nwindow_layers = 1\nruntime_order_evaluations = 0\n'
                    '[grid]\nmodel = "gpt-oss-120b"\ngpus = 1\nbatch = 8\npolicy = "noexp"\n'
                    'overlap = ["microbatch", "ideal"]\nmicrobatches = 2\n')
    rep = run_sweep(load_sweep(path), tmp_path / "o", workers=1, progress=False)
    assert rep.done == 2 and rep.failed == 0
    assert sorted(p["execution_model"] for p in rep.points) == ["ideal(M=2,L=1,fusion=none)",
                                                                "microbatch(M=2,L=1,fusion=none,runtime_descent=off)"]
