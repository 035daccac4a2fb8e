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


# Small problems, so that a bad value that were accepted would finish fast (and fail the test).
_SMALL = ["--gpus", "1", "--batch", "8", "--json"]


@pytest.mark.parametrize("argv, needle", [
    (["solve", "--policy", "nosuch"], "--policy"),                # was "unknown solver 'nosuch'"
    (["solve", "--policy", "sieve,noexp"], "--policy"),
    (["solve", "--cost-model", "nosuch"], "--cost-model"),
    (["compare", "--policies", "sieve,nosuch"], "--policies"),
    (["compare", "--cost-model", "nosuch"], "--cost-model"),
    (["replay", "--policy", "nosuch"], "--policy"),
    (["replay", "--cost-model", "nosuch"], "--cost-model"),
    (["window", "--policies", "nosuch"], "--policies"),
    (["window", "--cost-model", "nosuch"], "--cost-model"),
    (["viz", "gantt", "--policy", "sieve,nosuch", "--out", "g.png"], "--policy"),
    (["viz", "trace", "--policy", "sieve,noexp", "--out", "t.json"], "--policy"),
    (["viz", "trace", "--cost-model", "nosuch", "--out", "t.json"], "--cost-model"),
    (["run", "--policies", "nosuch", "--out", "o"], "--policies"),
])
def test_unknown_policy_or_cost_model_names_the_option(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv, *_SMALL)
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"sieveopt: error: {needle}:") and "fix:" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, needle", [
    # options of another mode were silently ignored
    (["compare", "--policies", "noexp", "--layers", "1", "--latency-limit-us", "10"], "--latency-limit-us"),
    (["compare", "--policies", "noexp", "--layers", "1", "--time-price-W", "5"], "--time-price-W"),
    (["replay", "--policy", "noexp", "--memory", "analytic", "--iterations", "4"], "--iterations"),
    (["solve", "--policy", "noexp", "--trace", "t.json"], "--trace"),
    (["solve", "--policy", "noexp", "--gantt", "g.png"], "--gantt"),
    # out-of-range values were accepted
    (["replay", "--overlap", "microbatch", "--iterations", "2"], "--iterations"),
    (["solve", "--policy", "noexp", "--overlap", "microbatch", "--workers", "0"], "--workers"),
    (["solve", "--policy", "noexp", "--overlap", "microbatch", "--latency-weight", "nan"], "--latency-weight"),
    (["solve", "--policy", "noexp", "--overlap", "microbatch", "--latency-weight", "-1"], "--latency-weight"),
    # a bad picture path was found after the solve
    (["solve", "--policy", "noexp", "--overlap", "microbatch", "--gantt", "g.txt"], "--gantt"),
    (["solve", "--policy", "noexp", "--overlap", "microbatch", "--trace", "d/t.json", "--gantt", "d"], "--gantt"),
])
def test_conflicting_or_out_of_range_option_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    if "d/t.json" in argv:
        (tmp_path / "d").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, *argv, *_SMALL)
    assert code == 2, out[:200]
    assert needle in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_readme_pareto_commands_pass_their_up_front_checks(tmp_path, monkeypatch):
    """The README's pareto lines passed `parse_args` but stopped at the capacity check (B = 256 on
    one GPU holds 48 GiB of KV cache): every check before the sweep, run without the sweep."""
    import re
    import shlex
    from pathlib import Path

    from sieveopt.cli.commands.pareto import spec_from_args
    from sieveopt.cli.main import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    tour = readme.split("## A tour of the CLI", 1)[1].split("\n## ", 1)[0]
    lines = [ln.split("#", 1)[0] for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S)
             for ln in block.strip().splitlines() if ln.startswith("sieveopt pareto")]
    assert lines
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line)[1:]
        spec = spec_from_args(build_parser(argv).parse_args(argv))
        assert spec.batches and spec.policies
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, needle", [
    # an output folder that is a file: FileExistsError traceback after the work
    (["workload", "characterize", "--model", "qwen3-30b-a3b", "--batch", "8", "--steps", "2", "--layers", "1",
      "--figures", "afile"], "--figures"),
    (["run", "--policies", "noexp", "--layers", "1", "--no-replay", "--gpus", "1", "--batch", "8",
      "--cache", "afile", "--out", "o"], "--cache"),
])
def test_output_folder_that_is_a_file_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("keep me")
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["afile"] and (tmp_path / "afile").read_text() == "keep me"


def test_table_never_cropped_when_wider_than_the_console(capsys):
    """`sieveopt run`'s energy table (7 columns, one long cell) came out cut at 100 characters
    when stdout was not a terminal: the last column lost its border and its text."""
    from sieveopt.cli.output import print_table

    print_table("energy, medians", ["policy", "layer mJ", "replayed mJ", "step J/token", "replayed J/token",
                                    "step error", "out of tolerance"],
                [("pimoe", 42.58, 52.17, 0.03276, 0.03996, "-18.0%", "dram_background, dram_refresh, gpu_static")])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(("┏", "┃", "│", "└"))]
    assert lines and all(ln.rstrip()[-1] in "┓┃│┘" for ln in lines)
    text = "\n".join(lines)
    assert "out of tolerance" in text and "dram_background," in text


def test_bench_latency_pin_cpu_out_of_range_exit_2(capsys):
    """An unusable --pin-cpu was an OSError traceback from sched_setaffinity, after start-up."""
    import os

    bad = max(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else None
    if bad is None:
        pytest.skip("no CPU affinity on this platform")
    code, _, err = run(capsys, "bench", "latency", "--gpus", "1", "--batch", "8", "--layers", "1", "--calls", "10",
                       "--warmup", "1", "--ref-calls", "0", "--pin-cpu", str(bad))
    assert code == 2 and "--pin-cpu" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["compare", "--policies", "noexp", "--layers", "1", "--layer", "3"],   # sampled other layers silently
    ["compare", "--policies", "noexp", "--layers", "1", "--layer", "3", "--objective", "energy",
     "--latency-limit-us", "100"],
    ["bench", "latency", "--layers", "1", "--calls", "10", "--warmup", "1", "--ref-calls", "0", "--layer", "3"],
])
def test_layer_option_that_would_be_ignored_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv, *_SMALL)
    assert code == 2, out[:200]
    assert "--layer 3" in err and "drop --layer" in err and "Traceback" not in err


@pytest.mark.parametrize("cmd", [["solve"], ["replay"], ["compare", "--layers", "1"], ["run", "--out", "o"],
                                 ["pareto", "--out", "p"]])
def test_bad_scheduler_latency_names_a_fix(capsys, tmp_path, monkeypatch, cmd):
    """Every command parses --scheduler-latency-ns with one argparse type whose error gives a fix
    (the parser's own message had none)."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *cmd, "--scheduler-latency-ns", "-1")
    assert code == 2 and "--scheduler-latency-ns" in err and "fix:" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_undefined_table_cells_print_as_dash(capsys):
    """`solve`'s bound_ns of a heuristic and `pareto --overlap microbatch`'s critical-path columns
    printed Python's `None`; tables show an undefined value as `-` (JSON keeps `null`)."""
    from sieveopt.cli.output import print_table

    print_table("t", ["field", "value", "nan"], [("bound_ns", None, float("nan"))])
    out = capsys.readouterr().out
    assert "None" not in out and out.count(" - ") >= 2


def _subparsers(parser, name="sieveopt"):
    import argparse

    yield name, parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for n, sp in a.choices.items():
                yield from _subparsers(sp, f"{name} {n}")


def test_every_option_is_documented_and_help_shows_defaults(capsys):
    """Options without help text (place --policies, window --cost-model, ...) printed nothing in
    --help, and no default was shown anywhere (compare --layers 8, pareto --layers 4, ...)."""
    from sieveopt.cli.main import build_parser

    parser = build_parser()
    undocumented = [f"{name} {a.option_strings[-1]}" for name, p in _subparsers(parser) for a in p._actions
                    if a.option_strings and a.dest != "help" and not (a.help or "").strip()]
    assert undocumented == []
    for _name, p in _subparsers(parser):
        p.format_help()   # every help renders (no stray % in a help string)
    assert main(["compare", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: 8)" in out and "(default: roofline)" in out


@pytest.mark.parametrize("argv", [
    ["solve", "--policy", "noexp"],
    ["compare", "--policies", "noexp", "--layers", "1"],
    ["replay", "--policy", "noexp", "--memory", "analytic"],          # had no execution_model
    ["compare", "--policies", "noexp", "--layers", "1", "--overlap", "microbatch"],  # "model catalog dtypes"
    ["window", "--policies", "noexp", "--layers", "1"],               # had none of the three
])
def test_json_names_execution_model_precision_and_cost_model(capsys, argv):
    import json

    code, out, _ = run(capsys, *argv, *_SMALL)
    d = json.loads(out)
    assert code == 0
    assert d["execution_model"] and d["cost_model"] == "roofline" and d["precision"] == "bf16"


def test_replay_unknown_dram_preset_named_before_the_solve(capsys):
    """An unknown --dram-preset was reported as 'nosuch: ...' after scheduling the layer."""
    code, _, err = run(capsys, "replay", "--policy", "noexp", "--dram-preset", "nosuch", *_SMALL)
    assert code == 2 and err.startswith("sieveopt: error: --dram-preset nosuch") and "fix:" in err


@pytest.mark.parametrize("name", ["nosuch", "ddr5_4800_rdimm"])   # unknown; a preset without energy data
def test_energy_unknown_or_without_data_gives_a_fix(capsys, name):
    code, _, err = run(capsys, "energy", name)
    assert code == 2 and name in err and "(fix: " in err and "Traceback" not in err


@pytest.mark.parametrize("argv, needle", [
    (["pareto", "--out", "p", "--batches", "1", "--policies", "sieve,noexp", "--compare", "sieve,sieve"], "--compare"),
    (["place", "--speed-factors", "a,b"], "--speed-factors"),
    (["place", "--gap-limit", "1.5"], "--gap-limit"),
    (["trimoe", "relayout", "--layers", "9999"], "--layers"),
    (["compare", "--layers", "1", "--objective", "energy"], "--latency-limit-us"),
])
def test_messages_give_the_fix(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and "(fix: " in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra, needle", [
    (["--no-observed-table"], "--no-observed-table"),      # without --replay: silently ignored
    (["--prefill-len", "100"], "--prefill-len"),           # without --prefill: silently ignored
    (["--prefill", "2"], "--prefill-len"),                 # the message had no fix
])
def test_pareto_option_without_its_partner_exit_2(capsys, tmp_path, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "pareto", "--out", "p", "--batches", "8", "--gpus", "1", "--policies", "noexp",
                         "--layers", "1", *extra, "--json")
    assert code == 2, out[:200]
    assert needle in err and "(fix: " in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra", [["--overlap", "microbatch"], ["--replay"], ["--overlap", "ideal"],
                                   ["--microbatches", "2"]])
def test_energy_objective_refuses_what_it_would_ignore(capsys, extra):
    """`compare --objective energy` ran serial, unreplayed layers whatever --overlap/--replay said."""
    code, out, err = run(capsys, "compare", "--policies", "noexp", "--layers", "1", "--objective", "energy",
                         "--latency-limit-us", "100", *extra, *_SMALL)
    assert code == 2, out[:200]
    assert extra[0] in err and "(fix: drop" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, needle", [
    (["solve", "--policy", "noexp", "--workers", "4"], "--workers"),               # serial: ignored before
    (["compare", "--policies", "noexp", "--layers", "1", "--latency-weight", "1"], "--latency-weight"),
    (["solve", "--policy", "noexp", "--overlap", "microbatch", "--deterministic-time", "1"], "--deterministic-time"),
    (["compare", "--policies", "noexp", "--layers", "1", "--objective", "energy", "--latency-limit-us", "100",
      "--workers", "4"], "--workers"),
])
def test_periodic_solver_options_outside_their_mode_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv, *_SMALL)
    assert code == 2, out[:200]
    assert needle in err and "(fix: " in err and "Traceback" not in err


def test_place_exact_objective_defaults_to_the_policys_own(capsys):
    """The CLI hard-coded --exact-objective mean while the exact policy's default (and the README /
    results.md headline command) had become cvar: one definition, POLICY_OBJECTIVE."""
    import json

    from sieveopt.placement.exact import POLICY_OBJECTIVE

    code, out, _ = run(capsys, "place", "--model", "qwen3-30b-a3b", "--gpus", "2", "--batch", "8", "--steps", "2",
                       "--history", "2", "--policies", "exact", "--eval", "surrogate", "--time-limit", "2",
                       "--workers", "1", "--json")
    assert code == 0
    run0 = json.loads(out)["policies"][0]["exact"]["runs"][0]
    assert run0["objective"] == POLICY_OBJECTIVE


def test_serial_run_points_at_the_regime_sieves_objective_assumes(capsys, tmp_path, monkeypatch):
    """The serial comparison names its execution model and says how to get the overlapped one."""
    from sieveopt.cli.commands.run import SERIAL_REGIME_NOTE

    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "run", "--policies", "noexp", "--layers", "1", "--no-replay", "--gpus", "1",
                       "--batch", "8", "--out", "o")
    assert code == 0 and "execution model: serial" in out
    assert SERIAL_REGIME_NOTE in out and "--overlap microbatch" in SERIAL_REGIME_NOTE
