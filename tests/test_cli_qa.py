"""A newcomer's bad inputs (session 9 QA pass): every one exits 2 with a message naming the
option and the fix, before any work, without a traceback and without writing files."""

from __future__ import annotations

import pytest

from sieveopt.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# A placement run small enough that, were the bad value accepted, the test would finish fast.
_PLACE = ["place", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8", "--steps", "2", "--history", "2",
          "--policies", "round-robin", "--eval", "surrogate", "--json"]


@pytest.mark.parametrize("extra, needle", [
    (["--seed", "-1"], "--seed"),                       # was a numpy ValueError traceback
    (["--redundant-experts", "-1"], "--redundant-experts"),  # was clamped to 0 silently
    (["--drift-segments", "0"], "--drift-segments"),    # was treated as 1 silently
    (["--time-limit", "nan"], "--time-limit"),          # NaN passed the `<= 0` check
    (["--variability-seed", "-2"], "--variability-seed"),
    (["--workers", "0"], "--workers"),
    (["--layer-policy", "nosuch"], "--layer-policy"),   # was "unknown solver", after the work
])
def test_place_bad_option_exit_2(capsys, tmp_path, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *_PLACE, *extra)
    assert code == 2, out[:200]
    assert needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra, needle", [
    (["--seed", "-1"], "--seed"),
    (["--cache-experts", "-1"], "--cache-experts"),
    (["--max-moves", "-3"], "--max-moves"),
])
def test_trimoe_relayout_bad_option_exit_2(capsys, extra, needle):
    code, _, err = run(capsys, "trimoe", "relayout", "--steps", "2", "--history", "2", *extra)
    assert code == 2 and needle in err and "Traceback" not in err
