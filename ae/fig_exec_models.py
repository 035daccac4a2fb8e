"""Every policy under the three execution models: serial, micro-batch pipelined (M = 2), ideal bound.

For the paper's configurations (Qwen3-30B-A3B on 1 GPU; GPT-OSS-120B on 4 GPUs with MXFP4 and
with bf16 experts; Qwen3.5-397B-A17B on 8 GPUs, ``--ignore-capacity`` as the paper runs it) at
B = 64 and 256, each point is one ``sieveopt compare --json`` call (run in-process; the exact
argv is stored in the CSV's ``command`` column):

* ``serial``: one batch through one layer DAG, phases in sequence (``--layers 2`` sampled layers;
  scheduler charged with the documented default of :mod:`sieveopt.solvers.sched_latency`);
* ``microbatch``: steady-state period of M = 2 micro-batches pipelined through one cyclic window
  of L = 2 consecutive layers (``--overlap microbatch --microbatches 2``; weights re-streamed per
  micro-batch, ``fusion=none``);
* ``ideal``: the busiest resource's load of each policy's modes (``--overlap ideal``), a bound,
  not a schedule; for ``cpsat`` the load-optimal modes.

Time per layer of the whole batch, predicted with the roofline cost model. Every policy is charged
its scheduler latency under every execution model (``compare``'s ``scheduler_latency_ns``, stamped
in the ``sched_charge`` column); ``execution_model_label`` is ``compare``'s full label (M, L, fusion,
and the runtime's order descent, ``runtime_descent=N|off``). Output: ``exec_models.csv`` and ``exec_models.md`` (a
table per configuration) and ``exec_models.png`` in ``--out`` (default ``ae/out/exec_models``; the
committed copy in ``docs/figures`` was made with ``--out docs/figures``).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

from _common import SYSTEM, group_bars, parse_args, pyplot, save_figure, write_csv

from sieveopt.cli.main import main as cli_main
from sieveopt.fileio import atomic_write_text
from sieveopt.models.catalog import load_model

POLICIES = ("gpu_only", "noexp", "allexp", "pimoe", "duplex", "sieve", "sieve-plus", "sieve-pipe", "cpsat")
#: (model, GPUs, extra CLI flags)
CONFIGS = (("qwen3-30b-a3b", 1, ("--ignore-capacity",)), ("gpt-oss-120b", 4, ()), ("gpt-oss-120b-bf16", 4, ()),
           ("qwen3.5-397b-a17b", 8, ("--ignore-capacity",)))
#: modes of the table: ``serial-window`` / ``serial-window-0`` are the serial layer DAG of the *same*
#: two consecutive layers (same routing) as the micro-batch window, charged the default / 0;
#: ``serial`` (the plain ``compare`` call, 2 independently sampled layers) stays in the CSV only.
MODES = ("serial-window", "serial-window-0", "microbatch", "ideal")
CLI_MODES = ("serial", "microbatch", "ideal")


def argv_for(model: str, gpus: int, extra: tuple[str, ...], batch: int, mode: str, time_limit_s: float,
             seed: int) -> list[str]:
    """The ``sieveopt compare`` argv of one (configuration, batch, execution model) point."""
    a = ["compare", "--model", model, "--system", SYSTEM, "--gpus", str(gpus), "--batch", str(batch),
         "--seed", str(seed), "--policies", ",".join(POLICIES), "--time-limit", str(time_limit_s), *extra]
    if mode == "serial":
        return [*a, "--layers", "2", "--json"]
    return [*a, "--layers", "1", "--overlap", mode, "--microbatches", "2", "--json"]


def run_point(argv: list[str]) -> tuple[int, dict | None, float]:
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(argv)
    wall = time.perf_counter() - t0
    try:
        return rc, json.loads(buf.getvalue()), wall
    except json.JSONDecodeError:
        return rc, None, wall


def serial_window_point(model: str, gpus: int, batch: int, time_limit_s: float, seed: int,
                        charge: str | int) -> tuple[int, dict, float]:
    """Serial layer DAGs of the micro-batch window's layers (``sample_window`` with M = 1: the same
    first layer and routing as ``compare --overlap microbatch --seed S``), each policy charged
    ``charge``; mean over the layers = time per layer, as the period is superperiod / L."""
    from sieveopt.models.catalog import load_system
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers.sched_latency import resolve, with_scheduler_latency
    from sieveopt.window import sample_window

    t0 = time.perf_counter()
    m, system = load_model(model), load_system(SYSTEM, gpus)
    insts = [row[0] for row in sample_window(m, system, batch, 2, 1, seed)]
    per: dict[str, list[float]] = {p: [] for p in POLICIES}
    ok = {p: True for p in POLICIES}
    ch: dict[str, set[int]] = {p: set() for p in POLICIES}
    for inst in insts:
        dag, cost = build_dag(inst, "roofline")
        for p in POLICIES:
            lat = resolve(p, charge)
            kw = {"time_limit_s": time_limit_s, "seed": seed} if p == "cpsat" else {}
            run = run_layer(inst, p, dag=with_scheduler_latency(dag, lat.ns), cost=cost, **kw)
            per[p].append(run.result.makespan_ns)
            ok[p] &= run.check.ok
            ch[p].add(lat.ns)
    d = {"summary": {p: {"mean_ns": sum(v) / len(v), "check_ok": ok[p], "charges": sorted(ch[p])}
                     for p, v in per.items()}, "moe_layers": [i.moe_layer for i in insts]}
    return (0 if all(ok.values()) else 1), d, time.perf_counter() - t0


def rows_of(model: str, gpus: int, batch: int, mode: str, argv: list[str], rc: int, d: dict | None,
            wall: float) -> list[dict]:
    m = load_model(model)
    base = {"model": model, "gpus": gpus, "batch": batch, "execution_model": mode,
            "precision": m.expert_precision, "expert_bytes_per_param": m.expert_weight_bytes_per_param,
            "cost_model": "roofline", "rc": rc, "wall_s": round(wall, 1), "command": "sieveopt " + " ".join(argv)}
    if d is None:
        return [{**base, "policy": p, "time_per_layer_ns": None, "sched_charge": "", "check_ok": None}
                for p in POLICIES]
    out = []
    for p in POLICIES:
        s = d["summary"][p]
        if mode.startswith("serial-window"):
            charge = set(s["charges"])
            t = s["mean_ns"]
            ok = s["check_ok"]
        elif mode == "serial":
            charge = {r["policies"][p]["scheduler_latency_ns"] for r in d["per_layer"]}
            t = s["median_ns"]
            ok = s["checks_ok"] == d["layers"]
        else:
            charge = {s["scheduler_latency_ns"]}
            t = s["median_period_ns"]
            ok = s["checks_ok"] == d["windows"]
        label = d["execution_model"]["label"] if isinstance(d.get("execution_model"), dict) else mode
        out.append({**base, "execution_model_label": label, "policy": p, "time_per_layer_ns": t,
                    "sched_charge": "/".join(f"{c / 1e3:g}us" for c in sorted(charge)), "check_ok": ok})
    return out


def charges(rows: list[dict]) -> str:
    """The serial scheduler charge of each policy, as measured (``sched_charge`` column)."""
    seen = {r["policy"]: r["sched_charge"] for r in rows if r["execution_model"] == "serial-window" and r["sched_charge"]}
    return ", ".join(f"{p} {c}" for p, c in seen.items())


def read_csv(path: Path) -> list[dict]:
    import csv

    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            r["gpus"], r["batch"], r["rc"] = int(r["gpus"]), int(r["batch"]), int(r["rc"])
            r["expert_bytes_per_param"] = float(r["expert_bytes_per_param"])
            r["time_per_layer_ns"] = float(r["time_per_layer_ns"]) if r["time_per_layer_ns"] else None
            rows.append(r)
    return rows


def time_limit_of(rows: list[dict]) -> float:
    """The CP-SAT limit the rows were measured with (from their commands)."""
    for r in rows:
        for tok in ("--time-limit ", "time_limit_s="):
            if tok in r["command"]:
                return float(r["command"].split(tok)[1].split()[0])
    raise ValueError("no CP-SAT time limit in the rows' commands")


def markdown(rows: list[dict], time_limit_s: float) -> str:
    lines = ["<!-- generated by ae/fig_exec_models.py; do not edit by hand -->"]
    keys = sorted({(r["model"], r["gpus"], r["batch"]) for r in rows},
                  key=lambda k: ([c[0] for c in CONFIGS].index(k[0]), k[2]))
    by = {(r["model"], r["gpus"], r["batch"], r["execution_model"], r["policy"]): r for r in rows}
    head = "| config, B | execution model | " + " | ".join(POLICIES) + " | best heuristic (ties) |"
    lines += [f"Time per layer of the whole batch, us (roofline cost model, predicted; CP-SAT {time_limit_s:g} s; "
              "every row of a configuration uses the same two consecutive MoE layers and routing (seed 0). "
              "serial-window: one batch through one layer DAG, phases in sequence, mean of the two layers, "
              f"scheduler charged the documented default ({charges(rows)}); serial-window-0: the same, "
              "charge 0; microbatch: steady-state period of M = 2 micro-batches pipelined through the "
              "2-layer cyclic window, weights re-streamed per micro-batch (fusion none), scheduler charge 0 "
              "(the periodic path builds no scheduler latency); ideal: busiest resource's load of each "
              "policy's M = 2 modes, a bound, not a schedule).", "",
              head, "|" + "---|" * (len(POLICIES) + 3)]
    for model, gpus, batch in keys:
        for mode in MODES:
            rs = [by.get((model, gpus, batch, mode, p)) for p in POLICIES]
            if not any(rs):
                continue
            r0 = next(r for r in rs if r)
            vals = [r["time_per_layer_ns"] if r else None for r in rs]
            good = [(v, p) for v, p in zip(vals, POLICIES, strict=True) if v is not None and p != "cpsat"]
            best = " = ".join(p for v, p in good if v <= min(good)[0] + 50) if good else "-"  # ties within 0.05 us
            cells = ["-" if v is None else f"{v / 1e3:.1f}" for v in vals]
            fail = "" if r0["rc"] == 0 else f" (rc {r0['rc']})"
            lines.append(f"| {model} ({r0['precision']}, {r0['expert_bytes_per_param']:g} B/param) x{gpus}, "
                         f"B={batch} | {mode}{fail} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], stem: Path) -> None:
    plt = pyplot()
    keys = sorted({(r["model"], r["batch"]) for r in rows}, key=lambda k: ([c[0] for c in CONFIGS].index(k[0]), k[1]))
    ncol = min(4, len(keys))
    nrow = -(-len(keys) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 3.3 * nrow), squeeze=False)
    prec = {r["model"]: f"{r['precision']}, {float(r['expert_bytes_per_param']):g} B/param" for r in rows}
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(keys):]:
        ax.set_visible(False)
    for ax, (model, batch) in zip(flat, keys, strict=False):
        for i, mode in enumerate(MODES):
            vals = []
            for p in POLICIES:
                r = next((r for r in rows if (r["model"], r["batch"], r["execution_model"], r["policy"]) ==
                          (model, batch, mode, p)), None)
                vals.append(float("nan") if r is None or r["time_per_layer_ns"] is None else r["time_per_layer_ns"] / 1e3)
            x, width = group_bars(len(POLICIES), i, len(MODES))
            ax.bar(x, vals, width=width, label=mode)
        ax.set_xticks(range(len(POLICIES)), POLICIES, rotation=90, fontsize=7)
        ax.set_title(f"{model} ({prec[model]}), B={batch}", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for row in axes:
        row[0].set_ylabel("time per layer, us (roofline)", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem)


def main(argv=None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    redraw = "--redraw" in argv  # rebuild the table and figure from an existing exec_models.csv, no runs
    only_window = "--serial-window-only" in argv  # rerun only the window-matched serial rows
    args = parse_args("exec_models", __doc__, [a for a in argv if a not in ("--redraw", "--serial-window-only")])
    if redraw:
        rows = read_csv(args.out / "exec_models.csv")
        atomic_write_text(args.out / "exec_models.md", markdown(rows, time_limit_of(rows)))
        figure(rows, args.out / "exec_models")
        return 0
    configs = CONFIGS[:1] if args.quick else CONFIGS
    batches = (64,) if args.quick else (64, 256)
    time_limit_s = 1.0 if args.quick else 3.0
    modes = CLI_MODES + MODES[:2]
    if only_window:  # add the window-matched serial rows to an existing CSV
        modes = MODES[:2]
    rows: list[dict] = [r for r in read_csv(args.out / "exec_models.csv") if r["execution_model"] not in modes] \
        if only_window else []
    worst = 0
    for model, gpus, extra in configs:
        for batch in batches:
            for mode in modes:
                if mode.startswith("serial-window"):
                    charge = 0 if mode.endswith("-0") else "default"
                    a = ["(python API)", "ae/fig_exec_models.serial_window_point", model, str(gpus), str(batch),
                         f"time_limit_s={time_limit_s:g}", f"seed={args.seed}", f"charge={charge}"]
                    rc, d, wall = serial_window_point(model, gpus, batch, time_limit_s, args.seed, charge)
                else:
                    a = argv_for(model, gpus, extra, batch, mode, time_limit_s, args.seed)
                    rc, d, wall = run_point(a)
                worst = max(worst, rc)
                print(f"{model} x{gpus} B={batch} {mode}: rc {rc}, {wall:.0f} s", flush=True)
                rows += rows_of(model, gpus, batch, mode, a, rc, d, wall)
                args.out.mkdir(parents=True, exist_ok=True)
                write_csv(args.out / "exec_models.csv", rows)  # partial results survive an interrupted run
                atomic_write_text(args.out / "exec_models.md", markdown(rows, time_limit_s))
    figure(rows, args.out / "exec_models")
    print(f"exec_models: {time.perf_counter() - args.t0:.0f} s, worst rc {worst}")
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
