"""``sieveopt compare --objective energy``: each policy's cost-model energy per layer, and
CP-SAT's minimum energy under ``--latency-limit-us`` with its certified bound and gap.

Execution model: serialized layer (one batch, one MoE layer); precision: the model's
(weights at ``expert_weight_bytes_per_param``); cost model: ``--cost-model`` durations plus
the energy model of :mod:`sieveopt.validation.energy.layer` (predicted side). A policy whose
makespan exceeds the limit is reported infeasible; gaps compare the objective (energy, or
energy + ``--time-price-W`` x makespan) of feasible ones.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from typing import Any

import numpy as np

from sieveopt.cli.output import emit, print_table
from sieveopt.errors import SieveoptError


def _energy_solver_params(policy: str, solver: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The policy's parameters (``--time-limit``, ``--solver-param``) its energy solver takes
    (default time limit 10 s); one it cannot honour is an error naming it, never silently dropped."""
    accepted = set(inspect.signature(solver).parameters) - {"dag", "em", "latency_limit_ns", "hints",
                                                           "time_price_W"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise SieveoptError(f"--solver-param {', '.join(unknown)}: {policy}'s energy objective "
                            f"({solver.__module__}.{solver.__name__}) does not take "
                            f"{'it' if len(unknown) == 1 else 'them'} (it takes: {', '.join(sorted(accepted))})")
    return {"time_limit_s": 10.0, **params}


def compare_energy(args: argparse.Namespace) -> int:
    from sieveopt.cli.commands.solve import _cost
    from sieveopt.cli.common import cpsat_params, load_problem, policy_names, solver_params_for
    from sieveopt.instance import sample_layers
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers import policy_info
    from sieveopt.solvers.cpsat_energy import schedule_energy_J
    from sieveopt.validation.energy.layer import energy_model_for

    if args.latency_limit_us is None or args.latency_limit_us <= 0:
        raise SieveoptError("--objective energy needs --latency-limit-us X with X > 0, the makespan limit per "
                            "layer (fix: e.g. --latency-limit-us 60)")
    policies = policy_names(args.policies)
    model, system = load_problem(args)
    em = energy_model_for(system, model)
    if em.unavailable:
        raise SieveoptError(f"--objective energy: energy unavailable: {em.unavailable} "
                            "(add one under validation/energy/data/)")
    limit_ns = int(round(args.latency_limit_us * 1e3))
    price = float(getattr(args, "time_price_W", 0.0) or 0.0)
    if price < 0:
        raise SieveoptError(f"--time-price-W must be >= 0, got {price}")
    params = solver_params_for(args, policies, **cpsat_params(args))   # bad --solver-param fails here
    cost = _cost(args.cost_model, model, system)
    kw = {"context_len_tokens": args.context_len} if args.context_len else {}
    insts = sample_layers(model, system, args.batch, args.layers, args.seed, **kw)
    # A policy with an energy-objective solver (PolicyInfo.energy) solves it exactly, hinted by
    # the others' schedules; every other policy is run as usual and its schedule's energy priced.
    exact = [p for p in policies if policy_info(p).energy]
    heur = [p for p in policies if p not in exact]
    energy_solvers, energy_params = {}, {}
    for pol in exact:
        mod, _, attr = policy_info(pol).energy.partition(":")
        energy_solvers[pol] = solver = getattr(importlib.import_module(mod), attr)
        energy_params[pol] = _energy_solver_params(pol, solver, params[pol])
    ref_name = exact[0] if exact else None
    layers: list[dict[str, Any]] = []
    all_ok = True
    for inst in insts:
        dag, cost = build_dag(inst, cost)
        row: dict[str, Any] = {"moe_layer": inst.moe_layer, "step": inst.step, "policies": {}}
        scheds = []
        for pol in heur:
            run = run_layer(inst, pol, dag=dag, cost=cost, **params[pol])
            all_ok &= run.check.ok
            s = run.result.schedule
            scheds.append(s)
            e = schedule_energy_J(dag, s, em)
            row["policies"][pol] = {"energy_J": e, "objective_J": e + price * s.makespan_ns * 1e-9,
                                    "makespan_ns": s.makespan_ns, "feasible": s.makespan_ns <= limit_ns,
                                    "check_ok": run.check.ok}
        for pol in exact:
            from sieveopt.check import check

            r = energy_solvers[pol](dag, em, latency_limit_ns=limit_ns, hints=scheds, time_price_W=price,
                                    **energy_params[pol])
            ok = r.schedule is None or check(r.schedule, dag).ok
            all_ok &= ok
            row["policies"][pol] = {"energy_J": r.meta["energy_J"], "objective_J": r.meta["objective_J"],
                                        "makespan_ns": r.makespan_ns,
                                        "feasible": r.schedule is not None, "check_ok": ok,
                                        "status": r.status, "bound_J": r.meta["bound_J"], "gap": r.meta["gap"],
                                        "wall_s": r.wall_s}
        ref = row["policies"].get(ref_name, {}) if ref_name else {}
        for v in row["policies"].values():
            v["gap_vs_cpsat"] = (v["objective_J"] / ref["objective_J"] - 1.0
                                 if v["feasible"] and ref.get("objective_J") else None)
            v["gap_vs_bound"] = (v["objective_J"] / ref["bound_J"] - 1.0
                                 if v["feasible"] and ref.get("bound_J") else None)
        layers.append(row)
    data = {"model": model.name, "system": system.name, "gpus": system.num_gpus, "batch": args.batch,
            "layers": len(layers), "seed": args.seed, "cost_model": args.cost_model, "objective": "energy",
            "latency_limit_us": args.latency_limit_us, "time_price_W": price,
            "objective_J": "energy" if price == 0 else "energy + time_price_W x makespan",
            "execution_model": "serial",
            "precision": {"expert_weight_bytes_per_param": float(model.expert_weight_bytes_per_param),
                          "activation_bytes": float(model.activation_bytes)},
            "energy_model": "predicted (validation/energy/layer.py, residency=sum)",
            "dram_preset": em.dram_preset, "energy_solver_params": energy_params, "summary": _summary(policies, layers), "per_layer": layers,
            "all_checks_ok": all_ok}

    def render(d: dict) -> None:
        def f(x, scale=1.0, fmt="{:.4g}"):
            return "-" if x is None else fmt.format(x * scale)

        print_table(f"{d['model']} on {d['gpus']} GPU(s), B={d['batch']}, {d['layers']} layers: energy per layer, "
                    f"makespan <= {d['latency_limit_us']} us",
                    ["policy", "median mJ", "median us", "feasible", "median gap vs cpsat", "median gap vs bound"],
                    [(p, f(s["median_energy_J"], 1e3), f(s["median_makespan_ns"], 1e-3), s["feasible"],
                      f(s["median_gap_vs_cpsat"], 100, "{:+.2f}%"), f(s["median_gap_vs_bound"], 100, "{:+.2f}%"))
                     for p, s in d["summary"].items()])
        if ref_name is not None:
            print_table(f"{ref_name} per layer", ["layer", "status", "energy mJ", "bound mJ", "gap"],
                        [(f"{r['moe_layer']}/{r['step']}", r["policies"][ref_name]["status"],
                          f(r["policies"][ref_name]["energy_J"], 1e3), f(r["policies"][ref_name]["bound_J"], 1e3),
                          f(r["policies"][ref_name]["gap"], 100, "{:.3f}%")) for r in d["per_layer"]])

    emit(args, data, render)
    return 0 if all_ok else 1


def _med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _summary(policies: list[str], layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for p in policies:
        vs = [r["policies"][p] for r in layers]
        out[p] = {"median_energy_J": _med([v["energy_J"] for v in vs]),
                  "median_makespan_ns": _med([v["makespan_ns"] for v in vs]),
                  "feasible": f"{sum(v['feasible'] for v in vs)}/{len(vs)}",
                  "median_objective_J": _med([v["objective_J"] for v in vs]),
                  "median_gap_vs_cpsat": _med([v["gap_vs_cpsat"] for v in vs]),
                  "median_gap_vs_bound": _med([v["gap_vs_bound"] for v in vs])}
    return out
