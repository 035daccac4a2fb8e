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
    # the config module alone (not the DRAM API, which imports the PIM kernel generator):
    # `dram run` start-up; load_dram_preset(name, **sets) is this call
    from sieveopt.validation.dram.config import load_dram_config

    sets = _parse_sets(args.set)
    if not sets:
        return load_dram_config(args.config)
    load_dram_config(args.config)  # the preset alone (its own errors name the file)
    try:
        return load_dram_config(args.config, sets)
    except SpecError as exc:  # blame the option, not the preset file
        raise SpecError(f"--set (on {exc.source})", exc.field, exc.problem,
                        (exc.fix + "; " if exc.fix else "") + "check the --set KEY=VALUE option") from None


def _stats_rows(d: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = ("cycles", "time_ns", "requests", "reads", "writes", "bandwidth_GBps", "row_hits",
            "row_misses", "row_conflicts", "act", "pre", "ref", "avg_read_latency_cycles",
            "avg_read_latency_ns")
    return [(k, d[k]) for k in keys if k in d]


def _run(args: argparse.Namespace) -> int:
    from sieveopt.cli import main
    from sieveopt.validation.dram.native import kernels

    with main.gc_paused():  # numba's start-up objects; the run itself makes no reference cycles
        # the ahead-of-time kernels need no numba at all; the JIT fallback starts numba's target
        if main.WHOLE_PROCESS and kernels().backend == "jit":
            _numba_target_without_blas()
        return _run_trace(args)


def _numba_target_without_blas() -> None:
    """Initialise numba's CPU target with ``scipy.linalg`` hidden. numba probes
    ``scipy.linalg.cython_blas`` once per process when its target starts (numba.np.arraymath,
    ``_HAVE_BLAS``), and importing scipy.linalg costs ~0.4 s CPU here (scipy's array-API layer
    clones numpy, importing numpy.f2py and numpy.testing) -- a third of ``dram run``'s
    start-up. The trace parser and the DRAM engine use no BLAS. Only for a ``sieveopt dram
    run`` process (nothing runs in it afterwards): numba's BLAS-backed functions (np.dot,
    np.linalg in jitted code) are then unavailable in that process; scipy.linalg itself stays
    importable. A no-op when numba's target or scipy.linalg is already loaded."""
    import sys

    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    sys.modules["scipy.linalg"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        del sys.modules["scipy.linalg"]


def _run_trace(args: argparse.Namespace) -> int:
    from sieveopt.fileio import check_input_file
    from sieveopt.validation.dram.trace import simulate_trace

    check_input_file(args.trace, "--trace")
    cfg = _config(args)
    t0 = time.perf_counter()
    obs = _energy_observer(args, cfg)
    tm: dict[str, float] = {}
    st = simulate_trace(cfg, args.trace, fmt=args.format, channels=args.channels, observer=obs, timings=tm)
    data = {"config": cfg.name, "trace": str(args.trace), **st.to_dict(),
            "wall_s": round(time.perf_counter() - t0, 3),
            "parse_s": round(tm["parse_s"], 3), "simulate_s": round(tm["simulate_s"], 3)}
    if getattr(args, "energy", None):
        data["energy"] = _run_energy(args, cfg, st, obs)
    return emit(args, data, lambda d: print_table(
        f"DRAM run: {d['trace']} on {d['config']}", ["stat", "value"],
        _stats_rows(d) + [("commands", d["commands"]), ("wall_s", d["wall_s"]),
                          ("parse_s", d["parse_s"]), ("simulate_s", d["simulate_s"])]
        + _energy_rows(d.get("energy"))))


# -- energy (validation/energy): opt-in, separate from the timing path --------------------------
def _energy_observer(args: argparse.Namespace, cfg):
    if not getattr(args, "energy", None):
        return None
    from sieveopt.validation.energy.idd import ResidencyObserver

    ch = args.channels or cfg.org.channels
    return ResidencyObserver(ch * cfg.org.pseudo_channels_per_channel)


def _run_energy(args: argparse.Namespace, cfg, st, obs) -> dict[str, Any]:
    from sieveopt.validation.energy.idd import energy_of_run
    from sieveopt.validation.energy.spec import dram_energy_spec

    spec = dram_energy_spec(args.energy if args.energy != "preset" else cfg.name)
    if spec is None:
        return {"available": False,
                "reason": f"energy unavailable: DRAM preset {cfg.name!r} has no energy file "
                          "(pass --energy FILE.toml; see validation/energy/data/dram/)"}
    comp = {k: v * 1e-12 for k, v in energy_of_run(cfg, spec, st, obs.finish(st.cycles)).items()}
    total = sum(comp.values())
    bits = 8 * st.bytes
    return {"available": True, "unit": "J", "source": spec.path, "components_J": comp,
            "total_J": total, "pJ_per_bit": total * 1e12 / bits if bits else None,
            "avg_power_W": total / (st.time_ns * 1e-9) if st.cycles else None,
            "method": "IDD (DRAMPower) per pseudo-channel; currents in the energy file"}


def _energy_rows(e: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not e:
        return []
    if not e["available"]:
        return [("energy", e["reason"])]
    extra = [(k.replace("_", " "), e[k]) for k in ("pJ_per_bit", "pJ_per_op") if k in e]
    return ([(f"energy {k} (uJ)", v * 1e6) for k, v in e["components_J"].items()]
            + [("energy total (uJ)", e["total_J"] * 1e6), *extra, ("average power W", e["avg_power_W"])])


def _gemv(args: argparse.Namespace) -> int:
    from sieveopt.validation.dram.api import pim_gemv_ns
    from sieveopt.validation.dram.pim import gemv_layout, pim_program
    from sieveopt.validation.dram.timing import CMD

    cfg = _config(args)
    ns = pim_gemv_ns(cfg, args.rows, args.cols, args.tokens,
                     bytes_per_element=args.bytes_per_element, act_bytes=args.act_bytes)
    lay = gemv_layout(cfg, args.rows, args.cols, args.bytes_per_element, act_bytes=args.act_bytes)
    prog = pim_program(cfg, [(args.rows, args.cols)], 1, bytes_per_element=args.bytes_per_element,
                       act_bytes=args.act_bytes)
    weight_bytes = args.rows * args.cols * args.bytes_per_element
    data = {"config": cfg.name, "rows": args.rows, "cols": args.cols, "tokens": args.tokens,
            "time_ns": ns, "weight_bytes": weight_bytes,
            "effective_GBps": weight_bytes * args.tokens / ns if ns else 0.0,
            "pim_peak_GBps": cfg.pim_bw_GBps_per_pch() * cfg.org.pseudo_channels,
            "mac_bytes_per_pu": lay.mac_bytes,
            # counted on the program the simulator runs (register-row and per-bank-parity
            # activations included), one token, one pCH
            "per_pch_per_token": {c.lower(): int((prog.cmd == CMD[c]).sum())
                                  for c in ("GWR", "ACTAB", "MAC", "RDRES")}}
    if getattr(args, "energy", None):
        data["energy"] = _gemv_energy(args, cfg)
    return emit(args, data, lambda d: print_table(
        f"PIM GEMV {d['rows']}x{d['cols']} x {d['tokens']} tokens on {d['config']}",
        ["stat", "value"], [(k, v) for k, v in d.items() if k not in ("rows", "cols", "energy")]
        + _energy_rows(d.get("energy"))))


def _gemv_energy(args: argparse.Namespace, cfg) -> dict[str, Any]:
    """Energy of the GEMV job: one representative channel simulated with a residency observer
    (refresh as configured), scaled to every channel of the GPU (the DRAM API's symmetry)."""
    from sieveopt.validation.dram.pim import pim_program
    from sieveopt.validation.dram.sim import DramSim
    from sieveopt.validation.energy.idd import ResidencyObserver, energy_of_run
    from sieveopt.validation.energy.spec import dram_energy_spec

    spec = dram_energy_spec(args.energy if args.energy != "preset" else cfg.name)
    if spec is None:
        return {"available": False,
                "reason": f"energy unavailable: DRAM preset {cfg.name!r} has no energy file "
                          "(pass --energy FILE.toml; see validation/energy/data/dram/)"}
    obs = ResidencyObserver(cfg.org.pseudo_channels_per_channel)
    prog = pim_program(cfg, [(args.rows, args.cols)], args.tokens, bytes_per_element=args.bytes_per_element,
                       pseudo_channels=cfg.org.pseudo_channels, act_bytes=args.act_bytes)
    st = DramSim(cfg, channels=1, pim=prog, observer=obs).finish()
    ch = cfg.org.channels
    ops = 2.0 * args.rows * args.cols * args.tokens / ch
    comp = energy_of_run(cfg, spec, st, obs.finish(st.cycles), pim_bytes_per_element=args.bytes_per_element,
                         pim_ops=ops)
    comp = {k: v * ch * 1e-12 for k, v in comp.items()}
    total = sum(comp.values())
    return {"available": True, "unit": "J", "source": spec.path, "components_J": comp, "total_J": total,
            "pJ_per_op": total * 1e12 / (2.0 * args.rows * args.cols * args.tokens),
            "avg_power_W": total / (st.time_ns * 1e-9) if st.cycles else None,
            "method": "IDD (DRAMPower) per pseudo-channel, one channel simulated x channels"}


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
    r.add_argument("--energy", nargs="?", const="preset", default=None, metavar="FILE.toml",
                   help="also report energy by the IDD method (the preset's energy file, or FILE.toml)")
    common(r)
    r.set_defaults(handler=_run)

    g = sub.add_parser("gemv", help="time an all-bank PIM GEMV job")
    g.add_argument("--rows", type=positive_int, required=True, help="matrix rows (output dim)")
    g.add_argument("--cols", type=positive_int, required=True, help="matrix columns (input dim)")
    g.add_argument("--tokens", type=positive_int, default=1, help="sequential GEMVs")
    g.add_argument("--bytes-per-element", type=float_in(gt=0, le=8, unit="bytes"), default=2.0, help="weight bytes per element")
    g.add_argument("--act-bytes", type=float_in(gt=0, le=8, unit="bytes"), default=2.0,
                   help="activation bytes per element (token write / read-back; BF16 = 2)")
    g.add_argument("--energy", nargs="?", const="preset", default=None, metavar="FILE.toml",
                   help="also report the job's energy (IDD method; the preset's energy file, or FILE.toml)")
    common(g)
    g.set_defaults(handler=_gemv)

    ps = sub.add_parser("presets", help="list the shipped DRAM presets")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(handler=_presets)
