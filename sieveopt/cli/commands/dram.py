"""``sieveopt dram``: cycle-level HBM / HBM-PIM simulation (run a trace, time a PIM GEMV, list presets)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from sieveopt.cli.common import float_in, positive_int
from sieveopt.cli.output import emit, print_table
from sieveopt.errors import SpecError


def _parse_sets(items: list[str] | None) -> dict[str, Any]:
    import tomllib

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SpecError("--set", item, "expected KEY=VALUE", "e.g. --set timing.nCL=30")
        if not key_ok(item):
            raise SpecError("--set", item, "empty KEY", "e.g. --set timing.nCL=30")
        key, val = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {val.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = val.strip()
    return out


def key_ok(item: str) -> bool:
    return bool(item.split("=", 1)[0].strip())


def _config(args: argparse.Namespace):
    from sieveopt.validation.dram.api import load_dram_preset

    sets = _parse_sets(args.set)
    if not sets:
        return load_dram_preset(args.config)
    load_dram_preset(args.config)  # the preset alone (its own errors name the file)
    try:
        return load_dram_preset(args.config, **sets)
    except SpecError as exc:  # blame the option, not the preset file
        raise SpecError(f"--set (on {exc.source})", exc.field, exc.problem,
                        (exc.fix + "; " if exc.fix else "") + "check the --set KEY=VALUE option") from None


def _stats_rows(d: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = ("cycles", "time_ns", "requests", "reads", "writes", "bandwidth_GBps", "row_hits",
            "row_misses", "row_conflicts", "act", "pre", "ref", "avg_read_latency_cycles",
            "avg_read_latency_ns")
    return [(k, d[k]) for k in keys if k in d]


def _run(args: argparse.Namespace) -> int:
    from sieveopt.fileio import check_input_file
    from sieveopt.validation.dram.trace import simulate_trace

    check_input_file(args.trace, "--trace")
    cfg = _config(args)
    t0 = time.perf_counter()
    st = simulate_trace(cfg, args.trace, fmt=args.format, channels=args.channels)
    data = {"config": cfg.name, "trace": str(args.trace), **st.to_dict(),
            "wall_s": round(time.perf_counter() - t0, 3)}
    return emit(args, data, lambda d: print_table(
        f"DRAM run: {d['trace']} on {d['config']}", ["stat", "value"],
        _stats_rows(d) + [("commands", d["commands"]), ("wall_s", d["wall_s"])]))


def _gemv(args: argparse.Namespace) -> int:
    from sieveopt.validation.dram.api import pim_gemv_ns
    from sieveopt.validation.dram.pim import gemv_layout

    cfg = _config(args)
    ns = pim_gemv_ns(cfg, args.rows, args.cols, args.tokens,
                     bytes_per_element=args.bytes_per_element, act_bytes=args.act_bytes)
    lay = gemv_layout(cfg, args.rows, args.cols, args.bytes_per_element, act_bytes=args.act_bytes)
    weight_bytes = args.rows * args.cols * args.bytes_per_element
    data = {"config": cfg.name, "rows": args.rows, "cols": args.cols, "tokens": args.tokens,
            "time_ns": ns, "weight_bytes": weight_bytes,
            "effective_GBps": weight_bytes * args.tokens / ns if ns else 0.0,
            "pim_peak_GBps": cfg.pim_bw_GBps_per_pch() * cfg.org.pseudo_channels,
            "mac_bytes_per_pu": lay.mac_bytes,
            "per_pch_per_token": {"gwr": lay.gwr, "actab": lay.dram_rows,
                                  "mac": lay.total_macs, "rdres": lay.rdres}}
    return emit(args, data, lambda d: print_table(
        f"PIM GEMV {d['rows']}x{d['cols']} x {d['tokens']} tokens on {d['config']}",
        ["stat", "value"], [(k, v) for k, v in d.items() if k not in ("rows", "cols")]))


def _presets(args: argparse.Namespace) -> int:
    from sieveopt.validation.dram.api import list_dram_presets, load_dram_preset

    rows = []
    for name in list_dram_presets():
        c = load_dram_preset(name)
        rows.append({"name": name, "pseudo_channels": c.org.pseudo_channels,
                     "banks_per_pch": c.org.banks, "tCK_ps": c.timing.tCK_ps,
                     "external_GBps": round(c.peak_bw_GBps_per_pch() * c.org.pseudo_channels, 1),
                     "pim_GBps": round(c.pim_bw_GBps_per_pch() * c.org.pseudo_channels, 1)
                     if c.pim.enabled else 0.0,
                     "description": c.description})
    cols = ["name", "pseudo_channels", "banks_per_pch", "tCK_ps", "external_GBps", "pim_GBps"]
    return emit(args, rows, lambda rs: print_table(
        "DRAM presets", cols, [[r[c] for c in cols] for r in rs]))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dram", help="cycle-level HBM3/HBM3E/HBM-PIM simulator")
    sub = p.add_subparsers(dest="dram_command", metavar="SUBCOMMAND")
    p.set_defaults(handler=lambda a: (p.print_help(), 2)[1])

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", required=True, help="preset name or path to a .toml")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config value, e.g. timing.nCL=30 (repeatable)")
        sp.add_argument("--json", action="store_true", help="print JSON")

    r = sub.add_parser("run", help="simulate a Ramulator 2.0 LoadStore/ReadWrite trace")
    r.add_argument("--trace", required=True, help="trace file (LD/ST or R/W lines)")
    r.add_argument("--format", choices=["loadstore", "readwrite"], help="default: detect")
    r.add_argument("--channels", type=positive_int, help="simulate only this many channels")
    common(r)
    r.set_defaults(handler=_run)

    g = sub.add_parser("gemv", help="time an all-bank PIM GEMV job")
    g.add_argument("--rows", type=positive_int, required=True, help="matrix rows (output dim)")
    g.add_argument("--cols", type=positive_int, required=True, help="matrix columns (input dim)")
    g.add_argument("--tokens", type=positive_int, default=1, help="sequential GEMVs")
    g.add_argument("--bytes-per-element", type=float_in(gt=0, le=8, unit="bytes"), default=2.0, help="weight bytes per element")
    g.add_argument("--act-bytes", type=float_in(gt=0, le=8, unit="bytes"), default=2.0,
                   help="activation bytes per element (token write / read-back; BF16 = 2)")
    common(g)
    g.set_defaults(handler=_gemv)

    ps = sub.add_parser("presets", help="list the shipped DRAM presets")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(handler=_presets)
