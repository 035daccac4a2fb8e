"""Curve-level Pareto comparison: frontier, log-log interpolation, matched-level ratios."""

from __future__ import annotations

import json
import math

import pytest

from sieveopt.cli.main import main
from sieveopt.e2e.curves import compare_pair, frontier, pick_pair, x_at_y, y_at_x


def _rows(policy, pts):
    return [{"policy": policy, "batch": b, "throughput_tok_s_per_gpu": x, "interactivity_tok_s_per_user": y}
            for b, x, y in pts]


def test_frontier_drops_dominated_points_and_sorts():
    f = frontier([(10, 100), (20, 50), (15, 40), (40, 10), (5, 90), (float("nan"), 1)])
    assert f == [(10, 100), (20, 50), (40, 10)]


def test_loglog_interpolation():
    f = [(100.0, 1000.0), (10000.0, 10.0)]      # a straight line in log-log: x * y = 1e5
    assert x_at_y(f, 100.0) == pytest.approx(1000.0)
    assert y_at_x(f, 1000.0) == pytest.approx(100.0)
    assert x_at_y(f, 5000.0) is None and y_at_x(f, 50.0) is None      # no extrapolation


def test_matched_ratios_differ_from_per_batch_ratio():
    # A is 2x faster per step at every batch -> per-batch ratio 2 everywhere. B's curve is the
    # line x*y = 1e6 (B = x / y), A's the line x*y = 4e6: at matched interactivity A gets
    # 4x B's throughput, at matched throughput 4x its interactivity.
    batches = [1, 4, 16, 64]
    b_pts = [(bs, 1000.0 * bs ** 0.5, 1000.0 / bs ** 0.5) for bs in batches]
    a_pts = [(bs, 2 * x, 2 * y) for bs, x, y in b_pts]
    rows = _rows("a", a_pts) + _rows("b", b_pts)
    c = compare_pair(rows, "a", "b")
    assert all(p["ratio"] == pytest.approx(2.0) for p in c["per_batch"])
    thr = c["throughput_at_matched_interactivity_summary"]
    inter = c["interactivity_at_matched_throughput_summary"]
    assert thr["n"] >= 2 and thr["geomean"] == pytest.approx(4.0) and thr["min"] == pytest.approx(4.0)
    assert inter["n"] >= 2 and inter["geomean"] == pytest.approx(4.0)
    assert math.isclose(compare_pair(rows, "b", "a")["throughput_at_matched_interactivity_summary"]["geomean"], 0.25)


def test_pick_pair_orients_the_focus_first():
    pts = [(1, 100.0, 1000.0), (64, 10000.0, 10.0)]
    rows = _rows("noexp", [(b, x / 2, y) for b, x, y in pts]) + _rows("sieve", pts) + \
        _rows("pimoe", [(b, x * 0.9, y) for b, x, y in pts])
    from sieveopt.e2e.curves import compare_curves

    pair = pick_pair(rows, compare_curves(rows))
    assert (pair["a"], pair["b"]) == ("sieve", "pimoe")


def test_pareto_cli_writes_the_comparison(tmp_path, capsys):
    out = tmp_path / "p"
    args = ["pareto", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batches", "1,16,64", "--layers", "1",
            "--policies", "noexp,sieve", "--out", str(out), "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["marked_pair"] == ["sieve", "noexp"]
    comp = json.loads((out / "pareto_compare.json").read_text())
    assert comp["pairs"][0]["a"] == "noexp" and comp["pairs"][0]["per_batch"]
    assert (out / "pareto_compare.csv").read_text().startswith("a,b,")
    assert main([*args[:-3], "--out", str(tmp_path / "q"), "--compare", "sieve,allexp"]) == 2
    assert not (tmp_path / "q").exists()
