"""Energy-objective CP-SAT: equals brute force on tiny DAGs, respects the makespan limit, bound
below the energy, schedules pass check; CLI compare --objective energy and validate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.cli.main import main
from sieveopt.models.catalog import load_system
from sieveopt.pipeline import build_dag, run_layer
from sieveopt.solvers.base import INFEASIBLE, OPTIMAL
from sieveopt.solvers.cpsat_energy import mode_energy_pJ, schedule_energy_J, solve_cpsat_energy
from sieveopt.testing import random_instance, tiny_model
from sieveopt.validation.bruteforce import brute_force_energy_pJ
from sieveopt.validation.energy.layer import energy_model_for


def _tiny(seed, gpus, experts, batch):
    rng = np.random.default_rng(seed)
    model = tiny_model(num_experts=experts, top_k=2, shared=0)
    system = load_system("sieve-b200-hbm3e-pim", num_gpus=gpus)
    inst = random_instance(rng, model, system, batch, skew=0.5)
    dag, cost = build_dag(inst)
    hint = run_layer(inst, "sieve", dag=dag, cost=cost).result.schedule
    return dag, energy_model_for(system, model), hint, gpus


@pytest.mark.parametrize("case,slack", [((0, 1, 4, 6), 1.0), ((2, 1, 3, 5), 3.0), ((3, 2, 3, 4), 1.1)])
def test_energy_optimum_matches_brute_force(case, slack):
    dag, em, hint, gpus = _tiny(*case)
    limit = int(hint.makespan_ns * slack)
    r = solve_cpsat_energy(dag, em, latency_limit_ns=limit, hints=[hint])
    assert r.status == OPTIMAL
    assert check(r.schedule, dag).ok and r.makespan_ns <= limit
    ref = brute_force_energy_pJ(dag, mode_energy_pJ(dag, em), em.constant_pJ_per_ns(gpus), limit)
    assert r.meta["energy_J"] * 1e12 == pytest.approx(ref, rel=1e-9)
    assert r.meta["bound_J"] <= r.meta["energy_J"]
    assert r.meta["energy_J"] <= schedule_energy_J(dag, hint, em) + 1e-15
    assert r.meta["energy_J"] == pytest.approx(schedule_energy_J(dag, r.schedule, em))


def test_limit_below_critical_path_is_infeasible():
    dag, em, hint, _ = _tiny(0, 1, 4, 6)
    r = solve_cpsat_energy(dag, em, latency_limit_ns=10, hints=[hint])
    assert r.schedule is None and r.status == INFEASIBLE and r.meta["energy_J"] is None


def test_cli_compare_energy(capsys):
    rc = main(["compare", "--objective", "energy", "--latency-limit-us", "500", "--gpus", "1",
               "--batch", "8", "--layers", "1", "--policies", "sieve,gpu_only,cpsat", "--time-limit", "3",
               "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["all_checks_ok"]
    cp = d["per_layer"][0]["policies"]["cpsat"]
    assert cp["bound_J"] <= cp["energy_J"] + 1e-15
    for p in ("sieve", "gpu_only"):
        v = d["per_layer"][0]["policies"][p]
        assert v["feasible"] and v["energy_J"] >= cp["energy_J"] - 1e-15 and v["gap_vs_cpsat"] >= -1e-12


def test_cli_compare_energy_needs_a_limit(capsys):
    assert main(["compare", "--objective", "energy", "--layers", "1", "--policies", "sieve"]) == 2
    assert "--latency-limit-us" in capsys.readouterr().err


def test_cli_validate_energy_rows(capsys):
    rc = main(["validate", "--only", "energy", "--only", "parity", "--json"])
    d = json.loads(capsys.readouterr().out)
    # + 12 Ramulator 2.0 and 4 PIMSimulator fixture cases
    assert rc == 0 and d["failed"] == 0 and d["passed"] == 14 + 12 + 4
    ram = [r for r in d["rows"] if r["check"].startswith("Ramulator")]
    assert len(ram) == 12 and all(r["passed"] and r["expected"] > 0 for r in ram)
    pim = [r for r in d["rows"] if "PIMSimulator" in r["check"]]
    assert len(pim) == 4 and all(r["passed"] and r["expected"] > 0 for r in pim)


def test_time_price_weighted_sum_matches_brute_force():
    dag, em, hint, gpus = _tiny(1, 1, 4, 9)
    limit = 3 * hint.makespan_ns
    price = 5000.0   # W: a heavy price on latency pulls the optimum towards the shortest schedule
    r = solve_cpsat_energy(dag, em, latency_limit_ns=limit, hints=[hint], time_price_W=price)
    assert r.status == OPTIMAL and check(r.schedule, dag).ok
    ref = brute_force_energy_pJ(dag, mode_energy_pJ(dag, em), em.constant_pJ_per_ns(gpus) + price * 1e3, limit)
    assert r.meta["objective_J"] * 1e12 == pytest.approx(ref, rel=1e-9)
    assert r.meta["objective_J"] == pytest.approx(r.meta["energy_J"] + price * r.makespan_ns * 1e-9)
    with pytest.raises(ValueError, match="time_price_W"):
        solve_cpsat_energy(dag, em, latency_limit_ns=limit, time_price_W=-1.0)


def test_cli_compare_energy_honours_solver_params(capsys):
    base = ["compare", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8", "--layers", "1",
            "--objective", "energy", "--latency-limit-us", "200", "--policies", "sieve,cpsat"]
    assert main([*base, "--solver-param", "workers=2", "--solver-param", "seed=7", "--time-limit", "5",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["energy_solver_params"]["cpsat"] == {"workers": 2, "seed": 7, "time_limit_s": 5.0}
    # a parameter the makespan solver takes but the energy objective cannot honour: exit 2, named
    assert main([*base, "--solver-param", "levers=cuts"]) == 2
    assert "levers: cpsat's energy objective" in capsys.readouterr().err
