"""Time/energy Pareto front of one decode layer (cost model), and where the policies sit.

For each configuration and sampled layer: CP-SAT's minimum makespan T* (the makespan objective,
``solvers/cpsat.py``), then CP-SAT's minimum energy under the limits T* x (1.00, 1.05, 1.10,
1.25, 1.5, 2.0) (``solvers/cpsat_energy.py``; status and certified bound per point): the front.
Every policy's (makespan, energy) is printed beside it with its energy gap to CP-SAT's least
energy within its own makespan (:func:`sieveopt.validation.energy.front.layer_front`). Execution model: serialized
layer; cost model: roofline; energy model: ``validation/energy/layer.py`` (predicted side).
Writes a Markdown table (stdout) and, with ``--out``, a PNG per configuration.

    .venv/bin/python benchmarks/energy_front.py --configs gpt-oss-120b:4:64 --layers 1 --time-limit 5
"""

from __future__ import annotations

import argparse

from sieveopt.validation.energy.front import LIMIT_FACTORS

POLICIES = ("sieve", "duplex", "noexp", "allexp", "gpu_only")


def run(config: str, layers: int, time_limit: float, seed: int, static_w: float | None = None) -> list[dict]:
    """One :func:`sieveopt.validation.energy.front.layer_front` per sampled layer (the one
    definition of the front; ``ae/fig_energy_front.py`` is the per-model study on it)."""
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.validation.energy.front import layer_front
    from sieveopt.validation.energy.layer import energy_model_for

    name, gpus, batch = config.split(":")
    model, system = load_model(name), load_system("sieve-b200-hbm3e-pim", int(gpus))
    em = energy_model_for(system, model)
    if static_w is not None:   # sensitivity: the GPU static power is an open value
        import dataclasses

        from sieveopt.validation.energy.spec import Sourced

        vals = dict(em.sys_spec.values)
        vals["gpu.static_W"] = Sourced(float(static_w), "W", "--static-W (benchmark override)", True)
        em.sys_spec = dataclasses.replace(em.sys_spec, values=vals)
    out = []
    for inst in sample_layers(model, system, int(batch), layers, seed):
        r = layer_front(inst, em, policies=POLICIES, factors=LIMIT_FACTORS, time_limit_s=time_limit, seed=seed)
        r["config"] = config
        r["policies"] = {p: (v["makespan_ns"], v["energy_J"], v["gap"]) for p, v in r["policies"].items()}
        out.append(r)
    return out


def _f(x: float | None, scale: float, digits: int) -> str:
    return "-" if x is None else f"{x * scale:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="qwen3-30b-a3b:1:64,gpt-oss-120b:4:64")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="directory for PNGs")
    ap.add_argument("--static-W", type=float, default=None, help="override the GPU static power (open value)")
    a = ap.parse_args()
    for cfg in a.configs.split(","):
        for r in run(cfg, a.layers, a.time_limit, a.seed, a.static_W):
            print(f"\n### {cfg}{'' if a.static_W is None else f', static {a.static_W:g} W'}, MoE layer "
                  f"{r['moe_layer']}: T* = {r['tstar_ns'] / 1e3:.2f} us "
                  f"({r['tstar_status']}), {r['wall_s']:.0f} s\n")
            print("| limit | status | makespan us | energy mJ | bound mJ |\n|---|---|---|---|---|")
            for p in r["front"]:
                print(f"| {p['factor']:.2f} T* | {p['status']} | {_f(p['makespan_ns'], 1e-3, 2)} | "
                      f"{_f(p['energy_J'], 1e3, 3)} | {_f(p['bound_J'], 1e3, 3)} |")
            print("\n| policy | makespan us | energy mJ | energy gap to the front |\n|---|---|---|---|")
            for p, (ms, e, g) in r["policies"].items():
                print(f"| {p} | {ms / 1e3:.2f} | {e * 1e3:.3f} | {_f(g, 100, 2)}{'' if g is None else '%'} |")
            if a.out:
                _plot(r, a.out)


def _plot(r: dict, out: str) -> None:
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    fr = [p for p in r["front"] if p["energy_J"] is not None]
    ax.step([p["makespan_ns"] / 1e3 for p in fr], [p["energy_J"] * 1e3 for p in fr], where="post",
            color="k", label="CP-SAT min energy under a limit")
    for p, (ms, e, _) in r["policies"].items():
        ax.plot(ms / 1e3, e * 1e3, "o", label=p)
    ax.set_xlabel("makespan (us, cost model)")
    ax.set_ylabel("energy per layer (mJ, cost model)")
    ax.set_title(f"{r['config']}, MoE layer {r['moe_layer']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    Path(out).mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(Path(out) / f"energy_front_{r['config'].replace(':', '_')}_{r['moe_layer']}.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
