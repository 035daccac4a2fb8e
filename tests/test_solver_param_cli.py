"""``--solver-param KEY=VALUE``: validated against the policies' declared parameters."""

from __future__ import annotations

import json

from sieveopt.cli.main import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_key_exits_2_naming_the_key_and_the_known_ones(capsys):
    code, _, err = _run(capsys, "solve", "--gpus", "1", "--batch", "8", "--policy", "cpsat",
                        "--solver-param", "bogus=1")
    assert code == 2
    assert "'bogus'" in err and "time_limit_s" in err and "workers" in err


def test_a_key_the_policy_does_not_declare_is_rejected(capsys):
    code, _, err = _run(capsys, "solve", "--gpus", "1", "--batch", "8", "--policy", "sieve",
                        "--solver-param", "workers=2")
    assert code == 2 and "'workers'" in err and "impl" in err


def test_bad_value_and_missing_equals_exit_2(capsys):
    code, _, err = _run(capsys, "solve", "--gpus", "1", "--batch", "8", "--policy", "cpsat",
                        "--solver-param", "workers=many")
    assert code == 2 and "workers" in err
    code, _, err = _run(capsys, "solve", "--gpus", "1", "--batch", "8", "--policy", "cpsat",
                        "--solver-param", "workers")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = _run(capsys, "solve", "--gpus", "1", "--batch", "8", "--policy", "sieve",
                        "--solver-param", "impl=python")
    assert code == 2 and "numba" in err


def test_declared_params_reach_the_solver(capsys):
    code, out, _ = _run(capsys, "solve", "--gpus", "1", "--batch", "8", "--policy", "cpsat", "--time-limit", "2",
                        "--solver-param", "deterministic=true", "--solver-param", "workers=1",
                        "--solver-param", "levers=cuts,partition", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["check_ok"]


def test_compare_applies_a_key_to_the_policies_that_declare_it(capsys):
    code, out, _ = _run(capsys, "compare", "--gpus", "1", "--batch", "8", "--layers", "1",
                        "--policies", "sieve,cpsat", "--time-limit", "1",
                        "--solver-param", "deterministic=true", "--solver-param", "impl=ref", "--json")
    assert code == 0
    assert json.loads(out)["all_checks_ok"]
