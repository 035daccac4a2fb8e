"""``sieveopt place --exact-alpha``: the cvar objective's level reaches the exact optimiser and
the report; out-of-range values, a tail shorter than one step and the option outside its mode
exit 2 naming the option and the fix, before any work."""

from __future__ import annotations

import json

import pytest

from sieveopt.cli.main import main
from sieveopt.placement.exact import POLICY_ALPHA

# 8-step window (the window predictor over --history 8), 2 GPUs: solved in about a second.
_PLACE = ["place", "--model", "qwen3-30b-a3b", "--gpus", "2", "--batch", "8", "--steps", "2", "--history", "8",
          "--policies", "exact", "--eval", "surrogate", "--time-limit", "2", "--workers", "1"]


@pytest.mark.parametrize("alpha, worst", [(0.75, 2), (0.5, 4), (None, 1)])
def test_exact_alpha_reaches_the_optimiser_and_the_report(capsys, alpha, worst):
    extra = [] if alpha is None else ["--exact-alpha", str(alpha)]
    assert main([*_PLACE, *extra, "--json"]) == 0
    ex = json.loads(capsys.readouterr().out)["policies"][0]["exact"]
    want = POLICY_ALPHA if alpha is None else alpha
    assert ex["objective"] == "cvar" and ex["alpha"] == want
    for r in ex["runs"]:
        # worst_steps comes from the optimiser's own k (solve_exact's meta), not the CLI
        assert (r["alpha"], r["steps"], r["worst_steps"]) == (want, 8, worst)
    if alpha == 0.75:  # the table report names it too
        assert main([*_PLACE, *extra]) == 0
        assert "cvar at alpha 0.75 (the mean of the worst 2 of 8 window steps)" in capsys.readouterr().out


def test_mean_objective_reports_no_alpha(capsys):
    assert main([*_PLACE, "--exact-objective", "mean", "--json"]) == 0
    ex = json.loads(capsys.readouterr().out)["policies"][0]["exact"]
    assert ex["alpha"] is None and ex["runs"][0]["worst_steps"] is None


@pytest.mark.parametrize("extra, needle", [
    (["--exact-alpha", "0"], "> 0 and < 1"),
    (["--exact-alpha", "1"], "> 0 and < 1"),
    (["--exact-alpha", "-0.2"], "> 0 and < 1"),
    (["--exact-alpha", "nan"], "> 0 and < 1"),
    # 0.95 of 8 steps leaves 0.4 of a step: cvar would silently become the worst step
    (["--exact-alpha", "0.95"], "--exact-alpha <= 0.875, or a longer --history"),
    (["--exact-alpha", "0.5", "--predictor", "last"], "--predictor window"),
    (["--exact-alpha", "0.6", "--predictor", "oracle", "--replace-every", "2"], "--exact-alpha <= 0.5"),
    (["--exact-alpha", "0.9", "--exact-objective", "mean"], "--exact-objective cvar"),
    (["--exact-alpha", "0.9", "--policies", "gem"], "add exact to --policies"),
])
def test_bad_exact_alpha_exit_2(capsys, tmp_path, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    code = main([*_PLACE, *extra, "--json"])
    out = capsys.readouterr()
    assert code == 2, out.out[:200]
    assert "--exact-alpha" in out.err and "fix: " in out.err and needle in out.err
    assert "Traceback" not in out.err and not out.out and not list(tmp_path.iterdir())
