"""``sieveopt sweep FILE.toml --out DIR``: run a grid of points, cached and resumable.

Exit status: 0 when every point is finished, 1 when some failed (see their ``error.json``;
re-running retries them), 130 when interrupted (re-run to resume), 2 for a bad sweep file.
"""

from __future__ import annotations

import argparse
import os

from sieveopt.cli.common import add_executor_args, add_json, add_max_memory
from sieveopt.cli.output import check_output_dir, emit, print_table

MAX_TABLE_ROWS = 60


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a sweep file (grid of points) with caching, resume, local pool or Ray")
    p.add_argument("file", help="sweep TOML file (see docs/examples/sweep_small.toml)")
    p.add_argument("--out", required=True, help="output directory (points/<hash>/, results.csv, results.parquet)")
    add_executor_args(p, cache_help=None, workers_default=None,
                      workers_help="parallel workers (local pool size / local Ray CPUs; default: CPU count)")
    p.add_argument("--dry-run", action="store_true", help="list the points and which are cached; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_max_memory(p)
    add_json(p)
    p.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from sieveopt.fileio import check_input_file
    from sieveopt.sweep import load_sweep, resolve_all, run_sweep
    from sieveopt.sweep.store import SweepStore

    check_input_file(args.file, "sweep file")
    check_output_dir(args.out)
    spec = load_sweep(args.file)
    from sieveopt.sweep.validate import validate_sweep

    validate_sweep(spec, resolve_all(spec), max_memory_gib=args.max_memory)  # exit 2 before any point
    workers = args.workers or os.cpu_count() or 1
    if args.dry_run:
        store = SweepStore(args.out)
        configs = resolve_all(spec)
        rows = [{"hash": c["hash"], **{k: c["point"][k] for k in ("model", "system", "gpus", "batch", "policy", "seed")},
                 "cached": store.is_finished(c["hash"])} for c in configs]
        return emit(args, {"name": spec.name, "points": rows},
                    lambda d: print_table(f"sweep {d['name']}: {len(rows)} points (dry run)", list(rows[0]) if rows else [],
                                          [list(r.values()) for r in rows]))
    report = run_sweep(spec, args.out, executor=args.executor, workers=workers, address=args.address,
                       progress=not args.no_progress and not args.json)
    data = report.to_dict()
    emit(args, data, _render)
    if report.interrupted:
        return 130
    return 1 if report.failed else 0


def _render(d: dict) -> None:
    def us(v: float | None) -> str:
        return "-" if v is None else f"{v / 1000:.2f}"

    rows = [(p["hash"][:10], p["model"], p["system"], p["gpus"] or "-", p["batch"], p["policy"], p["seed"],
             p["execution_model"], us(p["mean_time_per_layer_ns"]), {True: "yes", False: "NO", None: "-"}[p["all_checks_ok"]],
             us(p["mean_decision_ns"]), "-" if p["wall_s"] is None else f"{p['wall_s']:.2f}",
             p["status"] if not p["error"] else f"error: {p['error'][:60]}")
           for p in d["points"]]
    title = (f"sweep -> {d['out_dir']}: {d['total']} points, {d['done']} done, {d['cached']} cached, "
             f"{d['failed']} failed" + (" (INTERRUPTED: re-run to resume)" if d["interrupted"] else "")
             + f", {d['wall_s']:.1f} s")
    shown = rows[:MAX_TABLE_ROWS]
    print_table(title, ["point", "model", "system", "gpus", "batch", "policy", "seed", "execution model",
                        "time/layer us",
                        "checked", "decision us", "wall s", "status"], shown)
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more points in {d['outputs'].get('csv')}")
    print(f"results: {d['outputs'].get('csv')}" + (f", {d['outputs']['parquet']}" if d["outputs"].get("parquet") else ""))
    if d["outputs"].get("note"):
        print(d["outputs"]["note"])
    for h, err in d["errors"].items():
        print(f"FAILED {h}: {err} (traceback in points/{h}/error.json)")
