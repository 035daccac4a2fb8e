"""Hostile-user driver: hundreds of generated bad inputs through the real CLI, in-process.

Categories (issue 15): model TOML fields, system TOML fields, presets/paths, ``--set``
overrides, CLI options, DRAM traces/options, routing traces, sweep files, output paths.
Each case runs ``sieveopt.cli.main.main(argv)`` in a fresh temporary directory and is judged:

* traceback  - an exception escaped ``main`` (any kind);
* silent     - exit 0: an out-of-domain value was accepted;
* wrong_code - an exit code other than 2;
* message    - stderr does not name the expected field/option or does not give a fix;
* leftover   - a file or directory that was not there before the run.

Usage: ``python benchmarks/bad_inputs.py [--limit N] [--out benchmarks/results/bad_inputs.md]``.
The test suite runs a sample of the same cases (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import signal
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

Setup = Callable[[Path], None]


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]             # "{d}" is replaced by the case's temporary directory
    expect: str                 # a field/option name the message must contain (case-insensitive)
    setup: Setup | None = None
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text, written first


@dataclass
class Outcome:
    case: Case
    rc: int | None
    stderr: str
    verdict: str                # ok | traceback | silent | wrong_code | message | leftover | timeout
    detail: str = ""
    wall_s: float = 0.0


# --- tiny TOML writer (enough for specs and sweeps) ------------------------------------------
def _val(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    raise TypeError(type(v))


def dump_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []

    def walk(prefix: str, node: dict[str, Any], out: list[str]) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                tables.append((f"{prefix}{k}", v))
            else:
                out.append(f"{json.dumps(k) if '.' in k else k} = {_val(v)}")

    walk("", data, lines)
    while tables:
        name, node = tables.pop(0)
        lines.append(f"\n[{name}]")
        walk(name + ".", node, lines)
    return "\n".join(lines) + "\n"


def _catalog(kind: str, name: str) -> dict[str, Any]:
    entry = resources.files("sieveopt.models") / "catalog" / kind / f"{name}.toml"
    return tomllib.loads(entry.read_text())


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(data)
    node = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})  # tables a system leaves to its DRAM preset are created
    if value is _DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return data


_DELETE = object()
NAN, INF = float("nan"), float("inf")


# --- the cases ---------------------------------------------------------------------------------
def model_cases() -> list[Case]:
    base = _catalog("models", "qwen3-30b-a3b")
    mla = _catalog("models", "deepseek-v3")
    out: list[Case] = []
    pos_ints = ["num_layers", "num_moe_layers", "hidden_size", "num_routed_experts", "top_k",
                "expert_intermediate_size", "attention.num_q_heads", "attention.num_kv_heads",
                "attention.head_dim"]
    nonneg_ints = ["num_shared_experts", "shared_expert_intermediate_size", "dense_ffn_intermediate_size",
                   "vocab_size", "attention.sliding_window_tokens", "attention.full_params_per_layer",
                   "attention.linear_params_per_layer", "attention.mla_cache_elems_per_token",
                   "attention.linear_num_key_heads", "attention.linear_num_value_heads",
                   "attention.linear_key_head_dim", "attention.linear_value_head_dim"]
    floats = ["expert_weight_bytes_per_param", "dense_weight_bytes_per_param", "activation_bytes"]
    for f in pos_ints:
        for v in (0, -1, 10**12, 1.5, "8"):
            out.append(_model_case(base, f, v))
    for f in nonneg_ints:
        for v in (-1, -5000, 10**15):
            out.append(_model_case(base, f, v))
    for f in floats:
        for v in (NAN, INF, -INF, -1.0, 0.0, 1e300, "2"):
            out.append(_model_case(base, f, v))
    for f, v in (("n_group", 0), ("n_group", 7), ("topk_group", 0), ("topk_group", 5),
                 ("routing_profile", "no-such-profile"), ("routing_profile", 3),
                 ("routing_profile", "missing-profile.toml"),
                 ("attention.kind", "mha"), ("attention.layer_pattern", []),
                 ("attention.layer_pattern", ["banana"]), ("attention.layer_pattern", ["sliding"]),
                 ("attention.layer_pattern", ["linear"]), ("attention.num_kv_heads", 64),
                 ("attention.num_kv_heads", 5), ("num_moe_layers", 49), ("top_k", 129),
                 ("colour", "red"), ("name", _DELETE), ("top_k", _DELETE), ("num_layers", True)):
        field_name = f.split(".")[-1] if f != "colour" else "colour"
        out.append(_model_case(base, f, v, expect=field_name))
    # MLA without its projection count; dense layers without an FFN size
    out.append(_model_case(mla, "attention.full_params_per_layer", 0, expect="full_params_per_layer"))
    out.append(_model_case(mla, "dense_ffn_intermediate_size", 0, expect="dense_ffn_intermediate_size"))
    out.append(_model_case(mla, "attention.mla_cache_elems_per_token", 0, expect="mla_cache_elems_per_token"))
    # some through commands that write files: the check must come before any output
    for i, (f, v) in enumerate((("hidden_size", -1), ("activation_bytes", NAN),
                                ("attention.num_kv_heads", 3), ("routing_profile", "nope"))):
        c = _model_case(base, f, v, expect=f.split(".")[-1])
        c.argv = ["dag", "--model", "{d}/m.toml", "--out", f"{{d}}/out{i}.dot"]
        c.name = "dag/" + c.name
        out.append(c)
    return out


def _model_case(base: dict[str, Any], f: str, v: Any, expect: str | None = None) -> Case:
    text = dump_toml(_set(base, f, v))
    return Case("model TOML", f"{f}={v!r}", ["show", "model", "{d}/m.toml"], expect or f.split(".")[-1],
                files={"m.toml": text})


def system_cases() -> list[Case]:
    base = _catalog("systems", "sieve-b200-hbm3e-pim")
    out: list[Case] = []
    fields = {
        "gpu.peak_TFLOPS": (NAN, INF, 0.0, -1.0, 1e300),
        "gpu.hbm_bw_GBps": (NAN, INF, 0.0, -5.0, 1e300),
        "gpu.hbm_capacity_GiB": (NAN, INF, 0.0, -96.0),
        "gpu.kernel_overhead_ns": (NAN, INF, -1.0, 1e300),
        "gpu.compute_efficiency": (NAN, 0.0, 1.5, -0.2),
        "gpu.bandwidth_efficiency": (NAN, 0.0, 2.0),
        "hbm_pim.stacks_per_gpu": (0, -1, 10**9),
        "hbm_pim.pseudo_channels_per_stack": (0, -3),
        "hbm_pim.banks_per_pseudo_channel": (0, 25),
        "hbm_pim.page_size_bytes": (0, -1024),
        "hbm_pim.pin_rate_Gbps": (NAN, INF, 0.0),
        "hbm_pim.pim_bank_fraction": (0.0, 1.0, NAN),
        "hbm_pim.sharing": ("shared",),
        "hbm_pim.timing.tCK_ps": (0, -500),
        "hbm_pim.timing.tRFC_ns": (NAN, INF, 5000.0, 0.0),
        "hbm_pim.timing.tREFI_ns": (NAN, -1.0, 100.0),
        "hbm_pim.timing.tRC": (10,),
        "hbm_pim.timing.BL": (0,),
        "hbm_pim.pim.internal_bw_multiplier": (NAN, INF, 0.0, -12.0),
        "hbm_pim.pim.ops_per_byte": (NAN, 0.0),
        "hbm_pim.pim.job_overhead_ns": (NAN, INF, -1.0),
        "hbm_pim.pim.per_token_overhead_ns": (NAN, INF, -40.0),
        "interconnect.bw_per_direction_GBps": (NAN, -INF, 0.0, -900.0),
        "interconnect.latency_ns": (NAN, INF, -1.0, 1e300),
        "num_gpus": (0, -3, 100000),
    }
    for f, values in fields.items():
        for v in values:
            text = dump_toml(_set(base, f, v))
            out.append(Case("system TOML", f"{f}={v!r}", ["show", "system", "{d}/s.toml"], f.split(".")[-1],
                            files={"s.toml": text}))
    return out


def preset_cases() -> list[Case]:
    out = []
    for cmd in (["show", "model"], ["show", "system"]):
        for name, files, expect in (("no-such-preset", {}, "no-such-preset"), ("{d}", {}, "{d}"),
                                    ("{d}/missing.toml", {}, "missing.toml"),
                                    ("{d}/bad.toml", {"bad.toml": "name = \n[[["}, "bad.toml"),
                                    ("{d}/bin.toml", {"bin.toml": "\udcff"}, "bin.toml"),
                                    ("{d}/empty.toml", {"empty.toml": ""}, "name")):
            out.append(Case("presets/paths", f"{' '.join(cmd)} {name}", [*cmd, name], expect, files=files))
    for opt in ("--model", "--system"):
        for name in ("nope", "{d}", "{d}/missing.toml"):
            out.append(Case("presets/paths", f"solve {opt} {name}", ["solve", opt, name], name.split("/")[-1]))
    return out


def set_cases() -> list[Case]:
    out = []
    sets = [("interconnect.latency_ns=inf", "latency_ns"), ("interconnect.latency_ns=nan", "latency_ns"),
            ("gpu.hbm_bw_GBps=nan", "hbm_bw_GBps"), ("gpu.hbm_bw_GBps=-1", "hbm_bw_GBps"),
            ("gpu.peak_TFLOPS=0", "peak_TFLOPS"), ("gpu.peak_TFLOPS=1e400", "peak_TFLOPS"),
            ("gpu.kernel_overhead_ns=-5", "kernel_overhead_ns"), ("gpu.compute_efficiency=2", "compute_efficiency"),
            ("gpu.nope=1", "nope"), ("nope.x=1", "nope.x"), ("=5", "--set"), ("gpu.hbm_bw_GBps", "--set"),
            ("hbm_pim.timing.tRFC_ns=1e9", "tRFC_ns"), ("num_gpus=0", "num_gpus"),
            ("gpu.hbm_capacity_GiB=abc", "hbm_capacity_GiB"), ("hbm_pim.sharing=3", "sharing"),
            ("hbm_pim.pim.internal_bw_multiplier=inf", "internal_bw_multiplier"),
            ("interconnect.bw_per_direction_GBps=nan", "bw_per_direction_GBps")]
    cmds = [["solve"], ["dag", "--out", "{d}/x.dot"], ["viz", "gantt", "--out", "{d}/g.png"],
            ["replay"], ["compare", "--layers", "1"]]
    for i, (s, expect) in enumerate(sets):
        for cmd in (cmds[i % len(cmds)], cmds[(i + 2) % len(cmds)]):
            out.append(Case("--set", f"{cmd[0]} --set {s}", [*cmd, "--set", s], expect))
    return out


def option_cases() -> list[Case]:
    out = []
    common = [("--seed", "-1"), ("--seed", str(2**31)), ("--seed", "x"), ("--context-len", "0"),
              ("--context-len", "-5"), ("--gpus", "0"), ("--gpus", "100000"), ("--gpus", "-128"),
              ("--batch", "0"), ("--batch", "1000000000"), ("--batch", "-4"), ("--layer", "-1"),
              ("--layer", "100000"), ("--max-memory", "0"), ("--max-memory", "nan")]
    cmds = [["solve"], ["compare", "--layers", "1"], ["dag", "--out", "{d}/x.json"], ["replay"],
            ["window"], ["viz", "trace", "--out", "{d}/t.json"], ["bench", "latency"]]
    for i, (opt, val) in enumerate(common):
        for cmd in (cmds[i % len(cmds)], cmds[(i + 3) % len(cmds)]):
            expect = "--max-memory|--batch" if opt == "--batch" and val == "1000000000" else opt
            out.append(Case("CLI options", f"{cmd[0]} {opt} {val}", [*cmd, f"{opt}={val}"], expect))
    for cmd in (["solve", "--policy", "cpsat"], ["compare", "--layers", "1", "--policies", "cpsat"],
                ["window"], ["replay", "--policy", "cpsat"], ["run"], ["pareto", "--out", "{d}/p"]):
        for val in ("0", "-1", "nan", "inf", "1e300"):
            out.append(Case("CLI options", f"{cmd[0]} --time-limit {val}", [*cmd, f"--time-limit={val}"],
                            "--time-limit"))
    for cmd in (["solve", "--policy", "cpsat"], ["window"], ["replay", "--policy", "cpsat"]):
        for val in ("0", "nan", "-inf"):
            out.append(Case("CLI options", f"{cmd[0]} --deterministic-time {val}",
                            [*cmd, f"--deterministic-time={val}"], "--deterministic-time"))
    for opt, val in (("--microbatches", "0"), ("--layers", "0"), ("--microbatches", "-2")):
        out.append(Case("CLI options", f"window {opt} {val}", ["window", opt, val], opt))
    for opt, val in (("--layers", "0"), ("--calls", "0"), ("--warmup", "-1"), ("--ref-calls", "-3"),
                     ("--pin-cpu", "-1")):
        out.append(Case("CLI options", f"bench latency {opt} {val}", ["bench", "latency", opt, val], opt))
    for opt, val in (("--batches", "0"), ("--batches", "a,b"), ("--batches", "8,4,...,1"), ("--layers", "0"),
                     ("--context-len", "0"), ("--prefill", "-1"), ("--prefill-len", "-1"), ("--seed", "-3"),
                     ("--scheduler-latency-ns", "-1"), ("--gpus", "0"), ("--policies", "nope"),
                     ("--cost-model", "nope"), ("--batches", "1000000000")):
        expect = "nope" if opt == "--cost-model" else opt
        out.append(Case("CLI options", f"pareto {opt} {val}", ["pareto", "--out", "{d}/p", f"{opt}={val}"], expect))
    for opt, val in (("--batch", "0"), ("--layers", "0"), ("--gpus", "0"), ("--seed", "-1"),
                     ("--policies", "nope"), ("--batch", "1000000000")):
        expect = "--max-memory|--batch" if val == "1000000000" else opt
        out.append(Case("CLI options", f"run {opt} {val}", ["run", "--out", "{d}/r", f"{opt}={val}"], expect))
    # run --overlap: the overlapped main job (round 10); every option honoured or refused
    small = ["run", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8", "--out", "{d}/r"]
    for extra, expect in ((["--overlap", "microbatch", "--solver-param", "nope=1"], "--solver-param"),
                          (["--overlap", "microbatch", "--solver-param", "workers=0"], "workers"),
                          (["--overlap", "microbatch", "--policies", "sieve", "--solver-param", "workers=2"],
                           "--solver-param"),
                          (["--overlap", "microbatch", "--microbatches", "3"], "--microbatches"),
                          (["--overlap", "ideal", "--runtime-order-evaluations", "3"], "--runtime-order-evaluations"),
                          (["--window-layers", "2"], "--window-layers"),
                          (["--overlap", "microbatch", "--window-layers", "0"], "--window-layers"),
                          (["--overlap", "microbatch", "--layers", "0"], "--layers"),
                          (["--overlap", "microbatch", "--workers", "0"], "--workers"),
                          (["--overlap", "microbatch", "--max-memory", "0.001"], "--max-memory")):
        out.append(Case("CLI options", f"run {' '.join(extra)}", [*small, *extra], expect))
    for opt, val in (("--gpus-shown", "9"), ("--gpus-shown", "x"), ("--gpus-shown", "3-1"), ("--resources", "foo"),
                     ("--resources", ",")):
        out.append(Case("CLI options", f"viz gantt {opt} {val}",
                        ["viz", "gantt", "--gpus", "2", "--out", "{d}/g.png", f"{opt}={val}"], "--gpus-shown"
                        if opt == "--gpus-shown" else opt))
    for opt, val in (("--policy", "nope"), ("--cost-model", "nope"), ("--scheduler-latency-ns", "-1")):
        out.append(Case("CLI options", f"replay {opt} {val}", ["replay", opt, val], val if opt != "--scheduler-latency-ns" else opt))
    return out


def dram_cases() -> list[Case]:
    out = []
    g = ["dram", "gemv", "--config", "sieve_b200_hbm3e_pim", "--rows", "64", "--cols", "64"]
    for opt, val in (("--tokens", "0"), ("--tokens", "-1"), ("--rows", "0"), ("--cols", "-1"),
                     ("--bytes-per-element", "nan"), ("--bytes-per-element", "0"), ("--bytes-per-element", "-1"),
                     ("--bytes-per-element", "inf"), ("--bytes-per-element", "100"), ("--act-bytes", "nan"),
                     ("--act-bytes", "0"), ("--config", "nope"), ("--set", "=3"), ("--set", "nope=3"),
                     ("--set", "pim.ops_per_byte=inf"), ("--set", "pim.ops_per_byte=nan"),
                     ("--set", "timing.nCL=nan"), ("--set", "timing.nREFI=1")):
        expect = {"--config": "nope", "--set": "--set"}.get(opt, opt)
        out.append(Case("DRAM", f"gemv {opt} {val}", [*g, opt, val], expect))
    r = ["dram", "run", "--config", "sieve_b200_hbm3e_pim"]
    for name, trace, files, expect in (
            ("trace is a dir", "{d}", {}, "--trace"), ("missing trace", "{d}/none.trace", {}, "--trace"),
            ("garbage trace", "{d}/g.trace", {"g.trace": "hello world\nfoo bar baz\n"}, "g.trace"),
            ("bad address", "{d}/a.trace", {"a.trace": "LD zz\n"}, "a.trace")):
        out.append(Case("DRAM", f"run: {name}", [*r, "--trace", trace], expect, files=files))
    out.append(Case("DRAM", "run --channels 0", [*r, "--trace", "{d}/ok.trace", "--channels", "0"], "--channels",
                    files={"ok.trace": "LD 0x0\n"}))
    return out


def routing_cases() -> list[Case]:
    out = []
    s = ["workload", "stats"]
    for name, trace, files, expect in (
            ("non-zip npz", "{d}/t.npz", {"t.npz": "not a zip"}, "t.npz"),
            ("missing npz", "{d}/none.npz", {}, "--trace"),
            ("empty dir", "{d}/empty", {"empty/.keep": ""}, "empty"),
            ("bad json", "{d}/j/0.json", {"j/0.json": "[[1, 2"}, "0.json"),
            ("wrong json", "{d}/k/0.json", {"k/0.json": '{"a": 1}'}, "0.json")):
        out.append(Case("routing traces", f"stats: {name}", [*s, "--trace", trace], expect, files=files))
    for opt, val in (("--batch", "0"), ("--steps", "0"), ("--layers", "0"), ("--layers", "99999"),
                     ("--seed", "-1"), ("--batch", "1000000000"), ("--batch", "1e9"), ("--max-memory", "-1")):
        expect = "--max-memory" if val == "1000000000" else opt
        out.append(Case("routing traces", f"stats {opt} {val}", [*s, f"{opt}={val}"], expect))
        out.append(Case("routing traces", f"generate {opt} {val}",
                        ["workload", "generate", "--out", "{d}/g.npz", f"{opt}={val}"], expect))
    for opt, val in (("--layers", "0"), ("--steps", "-1"), ("--seed", "-1")):
        out.append(Case("routing traces", f"calibrate {opt} {val}", ["workload", "calibrate", opt, val], opt))
    return out


_SWEEP = '[grid]\nmodel = "gpt-oss-120b"\ngpus = 4\nbatch = 8\npolicy = "{policy}"\n'


def sweep_cases() -> list[Case]:
    out = []
    bodies = [
        ("misspelt solver param", _SWEEP.format(policy="cpsat") + "[solver.cpsat]\ntime_limt_s = 1\n", "time_limt_s"),
        ("nan time limit", _SWEEP.format(policy="cpsat") + "[solver.cpsat]\ntime_limit_s = nan\n", "time_limit_s"),
        ("negative time limit", _SWEEP.format(policy="cpsat") + "[solver.cpsat]\ntime_limit_s = -1\n", "time_limit_s"),
        ("zero workers", _SWEEP.format(policy="cpsat") + "[solver.cpsat]\nworkers = 0\n", "workers"),
        ("bad seed param", _SWEEP.format(policy="cpsat") + "[solver.cpsat]\nseed = -4\n", "seed"),
        ("string deterministic", _SWEEP.format(policy="cpsat") + '[solver.cpsat]\ndeterministic = "yes"\n',
         "deterministic"),
        ("param for sieve", _SWEEP.format(policy="sieve") + "[solver.sieve]\nbogus = 1\n", "bogus"),
        ("unknown policy", _SWEEP.format(policy="nope"), "policy"),
        ("unknown model", _SWEEP.format(policy="sieve").replace("gpt-oss-120b", "nope"), "nope"),
        ("does not fit", _SWEEP.format(policy="sieve").replace("gpt-oss-120b", "qwen3.5-397b-a17b"), "gpus"),
        ("batch 0", _SWEEP.format(policy="sieve").replace("batch = 8", "batch = 0"), "batch"),
        ("gpus 0", _SWEEP.format(policy="sieve").replace("gpus = 4", "gpus = 0"), "gpus"),
        ("gpus 100000", _SWEEP.format(policy="sieve").replace("gpus = 4", "gpus = 100000"), "num_gpus"),
        ("seed -1", _SWEEP.format(policy="sieve") + "seed = -1\n", "seed"),
        ("context 0", "[sweep]\ncontext_len = 0\n" + _SWEEP.format(policy="sieve"), "context_len"),
        ("layers 0", "[sweep]\nlayers = 0\n" + _SWEEP.format(policy="sieve"), "layers"),
        ("bad set", _SWEEP.format(policy="sieve") + '[set]\n"interconnect.latency_ns" = inf\n', "latency_ns"),
        ("unknown set", _SWEEP.format(policy="sieve") + '[set]\n"gpu.nope" = 1\n', "nope"),
        ("unknown dag", _SWEEP.format(policy="sieve") + "[dag]\nkernel = 'x'\n", "kernel"),
        ("malformed", "[grid\nmodel=", "malformed"),
        ("huge batch", _SWEEP.format(policy="sieve").replace("batch = 8", "batch = 1000000000"), "batch"),
    ]
    for name, body, expect in bodies:
        out.append(Case("sweep files", name, ["sweep", "{d}/s.toml", "--out", "{d}/o"], expect, files={"s.toml": body}))
    out.append(Case("sweep files", "sweep file is a dir", ["sweep", "{d}", "--out", "{d}/o"], "sweep file"))
    out.append(Case("sweep files", "missing sweep file", ["sweep", "{d}/none.toml", "--out", "{d}/o"], "none.toml"))
    out.append(Case("sweep files", "--workers 0", ["sweep", "{d}/s.toml", "--out", "{d}/o", "--workers", "0"],
                    "--workers", files={"s.toml": _SWEEP.format(policy="sieve")}))
    return out


def output_cases() -> list[Case]:
    out = []
    file_cmds = [("dag", ["dag"], "x.dot"), ("viz gantt", ["viz", "gantt"], "g.png"),
                 ("viz trace", ["viz", "trace"], "t.json"), ("viz dag", ["viz", "dag"], "d.dot"),
                 ("workload generate", ["workload", "generate"], "w.npz")]
    for label, cmd, fname in file_cmds:
        for what, path, files in (("is a directory", "{d}/adir", {"adir/.keep": ""}),
                                  ("parent is a file", "{d}/afile/" + fname, {"afile": "x"}),
                                  ("grandparent is a file", "{d}/afile/sub/" + fname, {"afile": "x"}),
                                  ("special file", "/dev/null", {}),
                                  ("directory named like the file", "{d}/" + fname, {fname + "/.keep": ""}),
                                  ("wrong extension", "{d}/out.xyz", {})):
            expect = "--out"
            out.append(Case("output paths", f"{label}: --out {what}", [*cmd, "--out", path], expect, files=files))
    dir_cmds = [("run", ["run", "--layers", "1"]), ("pareto", ["pareto", "--batches", "1"]),
                ("sweep", ["sweep", "{d}/s.toml"])]
    for label, cmd in dir_cmds:
        for what, path, files in (("is a file", "{d}/afile", {"afile": "x"}),
                                  ("parent is a file", "{d}/afile/sub", {"afile": "x"}),
                                  ("special file", "/dev/null", {})):
            files = {**files, "s.toml": _SWEEP.format(policy="sieve")}
            out.append(Case("output paths", f"{label}: --out {what}", [*cmd, "--out", path], "--out", files=files))
    return out


def all_cases() -> list[Case]:
    return (model_cases() + system_cases() + preset_cases() + set_cases() + option_cases() + dram_cases()
            + routing_cases() + sweep_cases() + output_cases())


# --- running -----------------------------------------------------------------------------------
class _Timeout(Exception):
    pass


def _tree(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def run_case(case: Case, timeout_s: int = 120) -> Outcome:
    from sieveopt.cli.main import main

    with tempfile.TemporaryDirectory(prefix="sieveopt-bad-") as tmp:
        d = Path(tmp)
        for rel, text in case.files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if "\udcff" in text:
                p.write_bytes(b"\xff\xfe\x00garbage")
            else:
                p.write_text(text)
        if case.setup:
            case.setup(d)
        before = _tree(d)
        argv = [a.replace("{d}", str(d)) for a in case.argv]
        expect = case.expect.replace("{d}", str(d))
        err, outbuf = io.StringIO(), io.StringIO()
        old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(_Timeout()))
        signal.alarm(timeout_s)
        t0 = time.perf_counter()
        rc, verdict, detail = None, "ok", ""
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(outbuf):
                rc = main(argv)
        except _Timeout:
            verdict, detail = "timeout", f"still running after {timeout_s} s"
        except BaseException as exc:  # noqa: BLE001  (anything escaping main is a traceback)
            verdict, detail = "traceback", "".join(traceback.format_exception_only(exc)).strip()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        wall = time.perf_counter() - t0
        msg = err.getvalue()
        if verdict == "ok":
            low = msg.lower()
            if rc == 0:
                verdict, detail = "silent", "exit 0"
            elif rc != 2:
                verdict, detail = "wrong_code", f"exit {rc}"
            elif not any(e.lower() in low for e in expect.split("|")):
                verdict, detail = "message", f"does not name {expect!r}"
            elif not any(w in low for w in ("fix", "choose from", "use one of", "allowed", "known:")):
                verdict, detail = "message", "no fix given"
        left = sorted(_tree(d) - before)
        if verdict == "ok" and left:
            verdict, detail = "leftover", ", ".join(left[:5])
        return Outcome(case, rc, msg.strip().splitlines()[-1] if msg.strip() else "", verdict, detail, wall)


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    per_cat: dict[str, dict[str, int]] = {}
    for o in outcomes:
        counts[o.verdict] = counts.get(o.verdict, 0) + 1
        c = per_cat.setdefault(o.case.category, {})
        c[o.verdict] = c.get(o.verdict, 0) + 1
    return {"cases": len(outcomes), "verdicts": counts, "per_category": per_cat}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="run only every k-th case to reach about N cases")
    ap.add_argument("--out", default=None, help="write a Markdown report here")
    ap.add_argument("--category", default=None, help="only this category")
    a = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    cases = [c for c in all_cases() if a.category is None or c.category == a.category]
    if a.limit:
        step = max(1, len(cases) // a.limit)
        cases = cases[::step]
    t0 = time.perf_counter()
    outcomes = []
    for i, c in enumerate(cases):
        o = run_case(c)
        outcomes.append(o)
        if o.verdict != "ok":
            print(f"[{i}] {o.verdict}: {c.category} / {c.name}: {o.detail} | {o.stderr[:200]}", file=sys.stderr)
    wall = time.perf_counter() - t0
    s = summarise(outcomes)
    s["wall_s"] = round(wall, 1)
    print(json.dumps(s, indent=2))
    if a.out:
        lines = ["# Bad-input driver (issue 15)", "",
                 f"`python benchmarks/bad_inputs.py --out {a.out}` on {time.strftime('%Y-%m-%d')}, "
                 f"{len(outcomes)} generated bad inputs through `sieveopt.cli.main.main` in-process "
                 f"({wall:.0f} s on a shared 2-core machine).", "",
                 "| category | cases | ok (exit 2, names field/option, gives a fix, nothing left behind) | other |",
                 "|---|---|---|---|"]
        for cat, c in s["per_category"].items():
            other = ", ".join(f"{k} {v}" for k, v in c.items() if k != "ok") or "-"
            lines.append(f"| {cat} | {sum(c.values())} | {c.get('ok', 0)} | {other} |")
        tot = s["verdicts"]
        lines += ["", f"Total: {len(outcomes)} cases; tracebacks {tot.get('traceback', 0)}, silent acceptances "
                  f"{tot.get('silent', 0)}, other exit codes {tot.get('wrong_code', 0)}, messages without the "
                  f"field/option or a fix {tot.get('message', 0)}, files left behind {tot.get('leftover', 0)}, "
                  f"timeouts {tot.get('timeout', 0)}.", ""]
        bad = [o for o in outcomes if o.verdict != "ok"]
        if bad:
            lines += ["Not ok:", ""] + [f"- {o.verdict}: {o.case.category} / {o.case.name}: {o.detail}" for o in bad]
        Path(a.out).write_text("\n".join(lines) + "\n")
    return 0 if s["verdicts"].get("ok", 0) == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
