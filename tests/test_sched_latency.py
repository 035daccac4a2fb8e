"""Charged scheduler latency: a model, never one call's wall clock (issue 12, item 5)."""

from __future__ import annotations

import json

import pytest

from sieveopt.cli.main import main
from sieveopt.dag import SCHED
from sieveopt.errors import SieveoptError
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers.sched_latency import (
    calibrate,
    default_ns,
    parse_spec,
    resolve,
    with_scheduler_latency,
)
from sieveopt.validation.replay import replay


@pytest.fixture(scope="module")
def small():
    model = load_model("qwen3-30b-a3b")
    system = load_system("sieve-b200-hbm3e-pim", 1)
    inst = sample_layers(model, system, 16, 1, 0)[0]
    return model, system, inst


def test_resolve_sources():
    assert resolve("sieve").ns == default_ns("sieve") and resolve("sieve").source == "default"
    assert resolve("cpsat", 5000).ns == 0 and resolve("cpsat", 5000).source == "offline"
    assert resolve("noexp").ns == 0 and resolve("noexp").source == "static"
    assert resolve("pimoe", "2500").ns == 2500 and resolve("pimoe", "2500").source == "fixed"
    with pytest.raises(SieveoptError, match="scheduler-latency-ns"):
        parse_spec("-3")
    with pytest.raises(SieveoptError, match="scheduler-latency-ns"):
        parse_spec("fast")


def test_with_scheduler_latency_only_touches_sched(small):
    _, _, inst = small
    dag, _ = build_dag(inst)
    d2 = with_scheduler_latency(dag, 777)
    assert with_scheduler_latency(d2, 777) is d2
    for a, b in zip(dag.tasks, d2.tasks, strict=True):
        if a.kind == SCHED:
            assert all(c.duration_ns == 777 for c in b.modes.values())
        else:
            assert a is b
    assert d2.options.scheduler_latency_ns == 777


def test_three_replays_identical_in_process(small):
    _, system, inst = small
    spans = []
    for _ in range(3):
        dag, cost = build_dag(inst)
        lat = resolve("sieve")
        run = run_layer(inst, "sieve", dag=with_scheduler_latency(dag, lat.ns), cost=cost)
        rep = replay(run.result.schedule, run.dag, system, instance=inst)
        spans.append((rep.makespan_ns, rep.predicted_makespan_ns, rep.scheduler_latency_ns,
                      tuple(rep.replayed_duration_ns.tolist())))
    assert spans[0] == spans[1] == spans[2]
    assert spans[0][2] == default_ns("sieve")


def test_three_replays_identical_cli(capsys):
    args = ["replay", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "16", "--policy", "sieve", "--json"]
    outs = []
    for _ in range(3):
        assert main(args) == 0
        d = json.loads(capsys.readouterr().out)
        outs.append((d["replayed_makespan_ns"], d["predicted_makespan_ns"], d["scheduler_latency_ns"]))
    assert outs[0] == outs[1] == outs[2]
    assert outs[0][2] == default_ns("sieve")


def test_replay_cli_fixed_latency_is_on_the_path(capsys):
    base = ["replay", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "16", "--policy", "sieve", "--json"]
    assert main([*base, "--scheduler-latency-ns", "0"]) == 0
    d0 = json.loads(capsys.readouterr().out)
    assert main([*base, "--scheduler-latency-ns", "200000"]) == 0
    d1 = json.loads(capsys.readouterr().out)
    assert d1["scheduler_latency_ns"] == 200000 and d0["scheduler_latency_ns"] == 0
    # 200 us of planning cannot hide behind a ~1 us dispatch: the replayed layer gets longer.
    assert d1["replayed_makespan_ns"] > d0["replayed_makespan_ns"] + 100_000


def test_calibration_is_cached_per_machine(small, tmp_path, monkeypatch):
    model, system, _ = small
    monkeypatch.setenv("SIEVEOPT_CACHE_DIR", str(tmp_path))
    a = calibrate("sieve", model, system, 16, layers=1, repeats=2)
    assert a > 0
    assert (tmp_path / "scheduler_latency.json").exists()
    # Second call reads the cache: identical, whatever the machine's load now.
    assert calibrate("sieve", model, system, 16, layers=1, repeats=2) == a
    assert resolve("sieve", "calibrated", calibration={"model": model, "system": system, "batch": 16}).ns == a


def test_charge_follows_the_declared_decision_kind():
    """No name lists: a plugin declaring an offline/static decision is charged 0 under that
    label; one declaring a figure is charged it; one declaring none gets the documented figure."""
    from sieveopt.solvers import PolicyInfo, register_policy, unregister_policy
    from sieveopt.solvers.sched_latency import UNKNOWN_POLICY_NS

    def fn(*_a, **_k):
        raise AssertionError("not called")

    decls = {"toy-offline": PolicyInfo("offline"), "toy-static": PolicyInfo("static"),
             "toy-compiled": PolicyInfo("compiled", scheduler_latency_ns=4321), "toy-plain": PolicyInfo()}
    for name, info in decls.items():
        register_policy(name, fn, info)
    try:
        assert (resolve("toy-offline", 5000).ns, resolve("toy-offline", 5000).source) == (0, "offline")
        assert (resolve("toy-static").ns, resolve("toy-static").source) == (0, "static")
        assert (resolve("toy-compiled").ns, resolve("toy-compiled").source) == (4321, "default")
        assert resolve("toy-compiled", 7).ns == 7
        assert resolve("toy-plain").ns == UNKNOWN_POLICY_NS
    finally:
        for name in decls:
            unregister_policy(name)
