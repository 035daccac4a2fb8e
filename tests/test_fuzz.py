"""Fuzzing the boundary (issue 15): property tests over the spec schema and the CLI options,
plus a sample of the hostile-input driver (benchmarks/bad_inputs.py, which runs all of them).

A traceback (any exception other than SpecError/SieveoptError) or a silent acceptance of an
out-of-domain value fails the test.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sieveopt.errors import SieveoptError, SpecError
from sieveopt.models.capacity import gpu_memory, param_counts
from sieveopt.models.dram import fill_from_preset
from sieveopt.models.specs import ModelSpec, SystemSpec
from sieveopt.tomlspec import from_dict

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _driver():
    spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "benchmarks" / "bad_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = mod
    spec.loader.exec_module(mod)
    return mod


def _catalog(kind: str, name: str) -> dict:
    return tomllib.loads((resources.files("sieveopt.models") / "catalog" / kind / f"{name}.toml").read_text())


def _numeric_paths(data: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in data.items():
        if isinstance(v, dict):
            out += _numeric_paths(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(prefix + k)
    return out


def _with(data: dict, dotted: str, value: object) -> dict:
    import copy

    data = copy.deepcopy(data)
    node = data
    *head, last = dotted.split(".")
    for p in head:
        node = node[p]
    node[last] = value
    return data


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2, 0.0, -0.0, 1e-300, 1e300, 2**40, 2**62]),
)
MODEL = _catalog("models", "deepseek-v3")
MODEL_FIELDS = _numeric_paths(MODEL)
# The catalog file leaves organisation/timing/PIM fields to its DRAM preset: fuzz the full set.
SYSTEM = fill_from_preset(_catalog("systems", "sieve-b200-hbm3e-pim"), "sieve-b200-hbm3e-pim")
SYSTEM_FIELDS = _numeric_paths(SYSTEM)
_INF_OK = {"interconnect.bw_per_direction_GBps"}


def _all_finite(obj: object, path: str = "") -> list[str]:
    import dataclasses

    bad = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            bad += _all_finite(v, f"{path}{f.name}.")
        elif isinstance(v, float) and not math.isfinite(v) and f"{path}{f.name}" not in _INF_OK:
            bad.append(path + f.name)
    return bad


@FAST
@given(field=st.sampled_from(MODEL_FIELDS), value=NUMBERS)
def test_model_schema_rejects_or_yields_a_sane_spec(field: str, value: object) -> None:
    try:
        spec = from_dict(ModelSpec, _with(MODEL, field, value), "fuzz.toml")
    except SpecError as exc:
        assert exc.field.split(".")[-1] and "fuzz.toml" in str(exc) and exc.fix, str(exc)
        return
    assert not _all_finite(spec)
    pc = param_counts(spec)
    assert pc.total > 0 and pc.active > 0 and pc.active <= pc.total
    system = from_dict(SystemSpec, SYSTEM, "s")
    mem = gpu_memory(spec, system, batch=64, context_len_tokens=2048)
    assert math.isfinite(mem.total) and mem.total > 0


@FAST
@given(field=st.sampled_from(SYSTEM_FIELDS), value=NUMBERS)
def test_system_schema_rejects_or_yields_a_sane_spec(field: str, value: object) -> None:
    try:
        spec = from_dict(SystemSpec, _with(SYSTEM, field, value), "fuzz.toml")
    except SpecError as exc:
        assert "fuzz.toml" in str(exc) and exc.fix, str(exc)
        return
    assert not _all_finite(spec)
    assert spec.gpu_hbm_bw_GBps > 0 and spec.pim_bw_GBps > 0 and 1 <= spec.num_gpus <= 1024
    assert spec.hbm_pim.timing.tRFC_ns < spec.hbm_pim.timing.tREFI_ns


OPTION_DOMAINS = {
    # option: (command argv prefix, predicate on the parsed value)
    "--seed": (["solve"], lambda v: 0 <= v < 2**31),
    "--context-len": (["solve"], lambda v: v is None or v >= 1),
    "--gpus": (["solve"], lambda v: v is None or 1 <= v <= 1024),
    "--batch": (["solve"], lambda v: v >= 1),
    "--layer": (["solve"], lambda v: v is None or v >= 0),
    "--time-limit": (["solve"], lambda v: v is None or (math.isfinite(v) and v > 0)),
    "--deterministic-time": (["window"], lambda v: v is None or (math.isfinite(v) and v > 0)),
    "--max-memory": (["solve"], lambda v: math.isfinite(v) and v > 0),
    "--microbatches": (["window"], lambda v: v >= 1),
    "--tokens": (["dram", "gemv", "--config", "x", "--rows", "1", "--cols", "1"], lambda v: v >= 1),
    "--bytes-per-element": (["dram", "gemv", "--config", "x", "--rows", "1", "--cols", "1"],
                            lambda v: math.isfinite(v) and 0 < v <= 8),
}
TEXTS = st.one_of(st.integers(min_value=-(2**40), max_value=2**40).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-0", "", "x", "0x10", "1_000"]))


@FAST
@given(option=st.sampled_from(sorted(OPTION_DOMAINS)), text=TEXTS)
def test_cli_options_accept_only_their_domain(option: str, text: str) -> None:
    """Parse only (no run): an accepted value is in the option's domain, a rejected one exits 2
    naming the option."""
    from sieveopt.cli.main import build_parser

    prefix, ok = OPTION_DOMAINS[option]
    err = io.StringIO()
    try:
        with redirect_stderr(err):
            args = build_parser().parse_args([*prefix, f"{option}={text}"])
    except SystemExit as exc:
        assert exc.code == 2 and option in err.getvalue()
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    assert ok(value), f"{option}={text!r} accepted as {value!r}"


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    from sieveopt.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@settings(max_examples=25, deadline=None)
@given(field=st.sampled_from(MODEL_FIELDS), value=NUMBERS)
def test_show_model_never_crashes(tmp_path_factory, field: str, value: object) -> None:
    drv = sys.modules.get("bad_inputs") or _driver()
    d = tmp_path_factory.mktemp("m")
    (d / "m.toml").write_text(drv.dump_toml(_with(MODEL, field, value)))
    rc, out, err = _run_cli(["show", "model", str(d / "m.toml"), "--json"])
    assert rc in (0, 2), err
    if rc == 0:
        json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    else:
        assert "fix" in err


def test_bad_input_driver_sample() -> None:
    """Every 10th generated bad input (all categories): exit 2, names the field/option, gives a
    fix, leaves nothing behind, never a traceback. The full set: benchmarks/bad_inputs.py."""
    drv = _driver()
    cases = drv.all_cases()
    assert len(cases) >= 300
    assert {c.category for c in cases} >= {"model TOML", "system TOML", "presets/paths", "--set", "CLI options",
                                            "DRAM", "routing traces", "sweep files", "output paths"}
    sample = cases[::10]
    bad = [o for o in (drv.run_case(c) for c in sample) if o.verdict != "ok"]
    assert not bad, [(o.verdict, o.case.category, o.case.name, o.detail, o.stderr) for o in bad]


def test_strict_json_writes_null_for_undefined_statistics() -> None:
    import numpy as np

    from sieveopt.fileio import dumps_json

    text = dumps_json({"a": float("nan"), "b": [np.float64("inf"), 1.5], "c": np.array([np.nan, 2.0])})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": [None, 2.0]}


def test_workload_stats_json_is_strict() -> None:
    rc, out, err = _run_cli(["workload", "stats", "--batch", "1", "--steps", "2", "--layers", "2", "--json"])
    assert rc == 0, err
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_sieveopt_error_is_the_base_of_spec_error() -> None:
    assert issubclass(SpecError, SieveoptError)
