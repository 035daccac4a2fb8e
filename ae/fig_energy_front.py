"""Time/energy Pareto front per model and batch, and how far the published policies sit from it.

For the paper's three configurations (Qwen3-30B-A3B on 1 GPU, GPT-OSS-120B (MXFP4 experts) on 4,
Qwen3.5-397B-A17B on 8; B200 HBM3E-PIM) at B = 16, 64, 256, one sampled MoE layer each
(:func:`sieveopt.validation.energy.front.layer_front`):

* the front: CP-SAT's least cost-model energy under makespan limits T* x (1, 1.05, 1.1, 1.25,
  1.5, 2), T* = CP-SAT's minimum makespan; each point is what ``sieveopt compare --objective
  energy --latency-limit-us X --policies ...,cpsat`` computes (same solver, same DAG), with its
  status and certified lower bound;
* every policy (sieve, sieve-plus, duplex, pimoe, noexp, allexp): its (makespan, energy) and its
  energy gap to CP-SAT's least energy *at its own makespan* (and to the certified bound there).

CP-SAT runs with short deterministic limits (``--time-limit``, default 2 s of deterministic time,
one worker, seed 0): points are OPTIMAL or carry a bound. Execution model: serial (one batch
through one layer DAG); cost model: roofline; energy model: predicted side of
``validation/energy`` (IDD method; GPU static power 200 W per B200 is an open value, see
``sieveopt energy``); precision: each model's (BF16, GPT-OSS MXFP4 experts). Output in ``--out``
(default ``ae/out/energy_front``): ``energy_front.json``, ``energy_front.csv`` (one row per point),
``energy_front.md`` (tables) and ``energy_front.png`` (one panel per configuration and batch).

    .venv/bin/python ae/fig_energy_front.py [--quick] [--time-limit 2] [--static-W W]
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from _common import CONFIGS, SYSTEM, done, pyplot, save_figure, write_csv

from sieveopt.fileio import atomic_write_text

BATCHES = (16, 64, 256)
TITLE = "serial execution, roofline cost model, predicted energy (IDD); {prec}"


def _args(argv=None):
    import argparse
    import time
    from pathlib import Path

    from _common import AE_DIR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="GPT-OSS-120B at B=64 only, limits 1 and 1.25 T*")
    p.add_argument("--out", default=str(AE_DIR / "out" / "energy_front"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=2.0, help="CP-SAT deterministic time per solve (s)")
    p.add_argument("--configs", default=None, help="model:gpus:b1/b2,... (default: the paper's three, B=16/64/256)")
    p.add_argument("--static-W", type=float, default=None, help="override the GPU static power (an open value)")
    p.add_argument("--redraw", action="store_true", help="rebuild table and figure from --out's energy_front.json")
    p.add_argument("--factors", default=None, help="limits as multiples of T*, comma-separated (default 1,1.05,1.1,1.25,1.5,2)")
    a = p.parse_args(argv)
    a.out, a.t0 = Path(a.out), time.perf_counter()
    return a


def _configs(a) -> list[tuple[str, int, int]]:
    if a.configs:
        out = []
        for c in a.configs.split(","):
            m, g, bs = c.split(":")
            out += [(m, int(g), int(b)) for b in bs.split("/")]
        return out
    if a.quick:
        return [("gpt-oss-120b", 4, 64)]
    return [(m, g, b) for m, g in CONFIGS for b in BATCHES]


def energy_model(system, model, static_w: float | None):
    from sieveopt.validation.energy.layer import energy_model_for
    from sieveopt.validation.energy.spec import Sourced

    em = energy_model_for(system, model)
    if static_w is not None:   # sensitivity: the GPU static power is an open value
        vals = dict(em.sys_spec.values)
        vals["gpu.static_W"] = Sourced(float(static_w), "W", "--static-W (study override)", True)
        em.sys_spec = dataclasses.replace(em.sys_spec, values=vals)
    return em


def run(a) -> list[dict[str, Any]]:
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.validation.energy.front import LIMIT_FACTORS, layer_front

    factors = (tuple(float(x) for x in a.factors.split(",")) if a.factors
               else (1.0, 1.25) if a.quick else LIMIT_FACTORS)
    out = []
    for name, gpus, batch in _configs(a):
        model, system = load_model(name), load_system(SYSTEM, gpus)
        em = energy_model(system, model, a.static_W)
        inst = sample_layers(model, system, batch, 1, a.seed)[0]
        r = layer_front(inst, em, factors=factors, time_limit_s=a.time_limit, seed=a.seed)
        r.update({"model": name, "gpus": gpus, "batch": batch, "precision": model.expert_precision,
                  "static_W": em.sys_spec["gpu.static_W"], "time_limit_s": a.time_limit,
                  "execution_model": "serial", "cost_model": "roofline"})
        print(f"{name} x{gpus} B={batch}: T* {r['tstar_ns'] / 1e3:.2f} us, {r['wall_s']:.0f} s", file=sys.stderr)
        out.append(r)
    return out


def csv_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        base = {k: r[k] for k in ("model", "gpus", "batch", "precision", "moe_layer", "static_W", "time_limit_s")}
        for f in r["front"]:
            rows.append({**base, "point": f"front {f['factor']:.2f} T*", "limit_us": f["limit_ns"] / 1e3,
                         "makespan_us": None if f["makespan_ns"] is None else f["makespan_ns"] / 1e3,
                         "energy_mJ": None if f["energy_J"] is None else f["energy_J"] * 1e3,
                         "bound_mJ": None if f["bound_J"] is None else f["bound_J"] * 1e3, "status": f["status"],
                         "gap_pct": None, "gap_vs_bound_pct": None})
        for p, v in r["policies"].items():
            o = v["front_at_makespan"]
            rows.append({**base, "point": p, "limit_us": v["makespan_ns"] / 1e3, "makespan_us": v["makespan_ns"] / 1e3,
                         "energy_mJ": v["energy_J"] * 1e3,
                         "bound_mJ": None if o["bound_J"] is None else o["bound_J"] * 1e3, "status": o["status"],
                         "gap_pct": None if v["gap"] is None else 100 * v["gap"],
                         "gap_vs_bound_pct": None if v["gap_vs_bound"] is None else 100 * v["gap_vs_bound"]})
    return rows


def _f(x, scale=1.0, d=2) -> str:
    return "-" if x is None else f"{x * scale:.{d}f}"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines += [f"### {r['model']} ({r['precision']}), {r['gpus']} GPU(s), B = {r['batch']}, MoE layer "
                  f"{r['moe_layer']}", "",
                  f"T* = {r['tstar_ns'] / 1e3:.2f} us ({r['tstar_status']}), energy at T* "
                  f"{r['tstar_energy_J'] * 1e3:.3f} mJ; GPU static {r['static_W']:g} W; CP-SAT "
                  f"{r['time_limit_s']:g} s deterministic per solve; {r['wall_s']:.0f} s wall.", "",
                  "| limit | status | makespan us | energy mJ | bound mJ |", "|---|---|---|---|---|"]
        for f in r["front"]:
            lines.append(f"| {f['factor']:.2f} T* | {f['status']} | {_f(f['makespan_ns'], 1e-3)} | "
                         f"{_f(f['energy_J'], 1e3, 3)} | {_f(f['bound_J'], 1e3, 3)} |")
        lines += ["", "| policy | makespan us | energy mJ | CP-SAT at that makespan mJ (status) | gap | gap vs bound |",
                  "|---|---|---|---|---|---|"]
        for p, v in r["policies"].items():
            o = v["front_at_makespan"]
            lines.append(f"| {p}{' (own DAG)' if v['own_dag'] else ''} | {v['makespan_ns'] / 1e3:.2f} | "
                         f"{v['energy_J'] * 1e3:.3f} | {_f(o['energy_J'], 1e3, 3)} ({o['status']}) | "
                         f"{_f(v['gap'], 100)} % | {_f(v['gap_vs_bound'], 100)} % |")
        lines.append("")
    return "\n".join(lines)


def front_curve(r: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The least energy found within a latency limit L, as a step function of L: every CP-SAT
    point (front limits and the policies' own makespans on the same DAG); a schedule found under
    one limit is feasible under every larger one, so the curve is the running minimum."""
    pts = [(f["limit_ns"], f["energy_J"]) for f in r["front"] if f["energy_J"] is not None]
    pts += [(v["makespan_ns"], v["front_at_makespan"]["energy_J"]) for v in r["policies"].values()
            if not v["own_dag"] and v["front_at_makespan"]["energy_J"] is not None]
    xs, ys, best = [], [], None
    for x, y in sorted(pts):
        best = y if best is None else min(best, y)
        xs.append(x)
        ys.append(best)
    return xs, ys


def plot(results: list[dict[str, Any]], stem) -> None:
    plt = pyplot()
    models = list(dict.fromkeys(r["model"] for r in results))
    batches = sorted({r["batch"] for r in results})
    fig, axes = plt.subplots(len(models), len(batches), figsize=(4.2 * len(batches), 3.4 * len(models)),
                             squeeze=False)
    marks = dict(zip(("sieve", "sieve-plus", "duplex", "pimoe", "noexp", "allexp"), "o^sDvX", strict=True))
    for r in results:
        ax = axes[models.index(r["model"])][batches.index(r["batch"])]
        xs, ys = front_curve(r)
        ax.step([x / 1e3 for x in xs], [y * 1e3 for y in ys], where="post", color="k",
                label="CP-SAT least energy within the limit")
        fr = [f for f in r["front"] if f["energy_J"] is not None]
        ax.plot([f["limit_ns"] / 1e3 for f in fr if f["bound_J"]], [f["bound_J"] * 1e3 for f in fr if f["bound_J"]],
                "k_", ms=10, label="certified bound")
        for p, v in r["policies"].items():
            ax.plot(v["makespan_ns"] / 1e3, v["energy_J"] * 1e3, marks.get(p, "o"), ms=6, alpha=0.85,
                    label=p + (" (own DAG)" if v["own_dag"] else ""))
            o = v["front_at_makespan"]
            if o["energy_J"] is not None:
                ax.plot(o["makespan_ns"] / 1e3, o["energy_J"] * 1e3, "k.", ms=3)
        ax.set_title(f"{r['model']} x{r['gpus']}, B={r['batch']} ({r['precision']})", fontsize=8)
        ax.set_xlabel("layer makespan (us, roofline)", fontsize=7)
        ax.set_ylabel("layer energy (mJ, predicted)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    precs = ", ".join(sorted({f"{r['model']}: {r['precision']}" for r in results}))
    static = "/".join(sorted({f"{r['static_W']:g}" for r in results}))
    fig.suptitle("Time/energy front per MoE layer: " + TITLE.format(prec=precs)
                 + f"; GPU static {static} W per GPU; CP-SAT {results[0]['time_limit_s']:g} s deterministic per point",
                 fontsize=8)
    fig.tight_layout()
    save_figure(fig, stem)


def main(argv=None) -> None:
    a = _args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.redraw:
        results = json.loads((a.out / "energy_front.json").read_text())
    else:
        results = run(a)
        atomic_write_text(a.out / "energy_front.json", json.dumps(results, indent=1, default=str))
    write_csv(a.out / "energy_front.csv", csv_rows(results))
    atomic_write_text(a.out / "energy_front.md", markdown(results))
    plot(results, a.out / "energy_front")
    done(a, "energy_front")


if __name__ == "__main__":
    main()
