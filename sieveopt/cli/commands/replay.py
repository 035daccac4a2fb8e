"""``sieveopt replay``: schedule one layer with a policy and replay it on the simulators.

Prints predicted vs replayed makespan, the cost model's error per task kind, resource
utilisation, a critical-path summary and the scheduler's charged latency (from
:mod:`sieveopt.solvers.sched_latency`; the call's measured decision time is shown beside it;
policies declaring an offline or static decision are charged 0).
"""

from __future__ import annotations

import argparse

from sieveopt.cli.common import add_json, int_in, load_instance, nonneg_int
from sieveopt.cli.one_policy import add_one_policy_args, load_one_policy
from sieveopt.cli.output import emit, print_table
from sieveopt.cli.overlap_cli import replay_overlap_cmd
from sieveopt.errors import SieveoptError
from sieveopt.validation.replay_periodic import DEFAULT_REPLAY_ITERATIONS as DEFAULT_ITERATIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay one policy's schedule on the DRAM/PIM + NVLink simulators")
    add_one_policy_args(p, policy_help="registered solver (sieve, sieve-plus, cpsat, baselines)",
                        cost_model_help="cost model the DAG and the policy use", time_limit=5.0,
                        time_limit_what="(cpsat)")
    p.add_argument("--memory", default="dram", choices=("dram", "analytic"),
                   help="memory-side timing: the cycle-level DRAM/PIM simulator or roofline formulas")
    p.add_argument("--dram-preset", default=None, help="DRAM preset name or .toml (default: mapped from the system)")
    p.add_argument("--table-warmup", type=nonneg_int, default=3, metavar="STEPS",
                   help="Sieve planners (sieve, sieve-plus) with the roofline cost model: replay this many "
                        "earlier decode steps of the layer first and plan on the runtime PIM cost table they "
                        "fed (EMA of observed PIM job times, roofline for unseen counts); 0 = roofline table")
    p.add_argument("--no-interference", action="store_true", help="ignore GPU-stream/PIM interference")
    p.add_argument("--iterations", type=int_in(4, what="an iteration count"), default=None,
                   help="--overlap microbatch: iterations of the cyclic window replayed, >= 4 (first and last "
                        f"dropped; default {DEFAULT_ITERATIONS})")
    add_json(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sieveopt.dag import DagOptions
    from sieveopt.pim_groups import group_utilisation
    from sieveopt.pipeline import run_layer
    from sieveopt.solvers import policy_info
    from sieveopt.solvers.sched_latency import resolve
    from sieveopt.validation.replay import replay

    run_args = load_one_policy(args)  # every shared option checked before any work
    model, system, params = run_args.model, run_args.system, run_args.params
    _check_dram_preset(args.dram_preset)
    if args.overlap != "serial":
        if args.iterations is None:
            args.iterations = DEFAULT_ITERATIONS
        return replay_overlap_cmd(args, model, system)
    if args.iterations is not None:
        raise SieveoptError("--iterations counts replayed iterations of --overlap microbatch, a serial layer "
                            "is replayed once (fix: add --overlap microbatch, or drop --iterations)")
    inst = load_instance(args, model, system)
    # The scheduler task's charge is modelled (never this call's wall clock), so the schedule and
    # its replay both carry it and identical inputs replay to identical numbers.
    lat = resolve(args.policy, run_args.scheduler_latency,
                  calibration={"model": model, "system": system, "batch": inst.batch})
    opts = DagOptions.for_system(system, scheduler_latency_ns=lat.ns)
    cost_model, table_info = args.cost_model, None
    if args.table_warmup and args.cost_model == "roofline" and policy_info(args.policy).reads_cost_table:
        cost_model, table_info = _warm_table(args, model, system, inst, opts, params)
    run = run_layer(inst, args.policy, cost_model=cost_model, options=opts, **params)
    if run.result.schedule is None:
        raise SieveoptError(f"policy {args.policy!r} returned no schedule (status {run.result.status})")
    rep = replay(run.result.schedule, run.dag, system, instance=inst,
                 dram_preset=args.dram_preset, memory=args.memory, interference=not args.no_interference)
    data = rep.summary(run.dag)
    data.update({"execution_model": "serial", "model": model.name, "precision": model.expert_precision, "system": system.name, "gpus": system.num_gpus, "batch": inst.batch,
                 "moe_layer": inst.moe_layer,
                 "cost_model": args.cost_model if table_info is None else "table (observed)", "status": run.result.status,
                 "decision_ns": run.result.decision_ns, "solve_wall_s": run.result.wall_s,
                 "scheduler_latency_source": lat.source,
                 "observed_table": table_info,
                 "dispatch_end_ns": _dispatch_window(rep, run.dag)})
    groups = group_utilisation(rep.schedule, run.dag)
    if groups:   # expert-parallel PIM (pimoe): busy fraction of every channel group
        data["pim_group_utilisation"] = {str(g): u for g, u in groups.items()}
        data["pim_group_channels"] = run.dag.meta["pim_group_channels"]
    data["energy"] = _energy(rep, run.dag, system, inst, run.cost)

    # one resource per GPU and kind (a target's partition, e.g. PIM channel groups, has its own table)
    resource_kinds = [k for k in run.dag.resource_kinds if f"{k}[0]" in data["utilisation"]]

    def render(d: dict) -> None:
        print_table(f"replay: {d['policy']} on {d['model']} ({d['precision']} experts), {d['gpus']} x {d['system']}, B={d['batch']}, "
                    f"MoE layer {d['moe_layer']}",
                    ["predicted us", "replayed us", "error", "sched latency us", "decision us", "solve s",
                     "fixed-point its"],
                    [(f"{d['predicted_makespan_ns'] / 1e3:.2f}", f"{d['replayed_makespan_ns'] / 1e3:.2f}",
                      f"{d['makespan_error_pct']:+.1f}%", f"{d['scheduler_latency_ns'] / 1e3:.2f} ({d['scheduler_latency_source']})",
                      "-" if d["decision_ns"] is None else f"{d['decision_ns'] / 1e3:.2f}",
                      f"{d['solve_wall_s']:.3f}", f"{d['iterations']}{'' if d['converged'] else ' (!)'}")])
        print_table(f"cost model '{d['cost_model']}' vs replay, per task kind",
                    ["kind", "tasks", "median |err|", "mean |err|", "mean signed", "predicted us", "replayed us"],
                    [(k, v["count"], f"{v['median_abs_pct']:.1f}%", f"{v['mean_abs_pct']:.1f}%",
                      f"{v['mean_signed_pct']:+.1f}%", f"{v['predicted_ns'] / 1e3:.1f}", f"{v['replayed_ns'] / 1e3:.1f}")
                     for k, v in d["kind_error"].items()])
        util = d["utilisation"]
        kinds = resource_kinds
        print_table("utilisation of the replayed makespan",
                    ["gpu", *kinds],
                    [(g, *(f"{100 * util.get(f'{k}[{g}]', 0.0):.0f}%" for k in kinds)) for g in range(d["gpus"])])
        if d.get("pim_group_utilisation"):
            print_table(f"PIM channel groups (expert-parallel, {len(d['pim_group_channels'])} groups per GPU)",
                        ["gpu", "min", "median", "max", "groups at min"],
                        [(g, f"{100 * min(u):.0f}%", f"{100 * sorted(u)[len(u) // 2]:.0f}%", f"{100 * max(u):.0f}%",
                          sum(1 for x in u if x <= min(u) + 1e-9)) for g, u in d["pim_group_utilisation"].items()])
        cp = d["critical_path_ns_by_kind"]
        print_table(f"critical path: {len(d['critical_path'])} tasks",
                    ["kind", "us on path"], [(k, f"{v / 1e3:.2f}") for k, v in sorted(cp.items(), key=lambda x: -x[1])])
        print("path: " + " -> ".join(d["critical_path"][:12]) + (" ..." if len(d["critical_path"]) > 12 else ""))
        obs = d.get("observed_table")
        if obs:
            errs = ", ".join(f"{100 * h['mean_abs_err']:.1f}%" for h in obs["history"])
            print(f"runtime PIM cost table: fed by {obs['warmup_steps']} replayed warm-up steps "
                  f"(table error on each step's PIM jobs before the update: {errs}); --table-warmup 0: roofline")
        _render_energy(d["energy"])

    return emit(args, data, render)


def _check_dram_preset(name: str | None) -> None:
    """``--dram-preset`` loads (else exit 2 naming the option) before any schedule is computed."""
    if name is None:
        return
    from sieveopt.errors import SpecError
    from sieveopt.validation.dram.config import load_dram_config

    try:
        load_dram_config(name)
    except SpecError as exc:
        raise SpecError(f"--dram-preset {exc.source}", exc.field, exc.problem, exc.fix) from None


def _warm_table(args: argparse.Namespace, model, system, inst, opts, params):
    """Sieve's runtime table after ``--table-warmup`` earlier decode steps of the same MoE layer
    (an independent routing trace, seed + 1), each planned on the table so far, replayed, and
    its PIM job times observed (:class:`sieveopt.models.table.ObservedTables`)."""
    import numpy as np

    from sieveopt.instance import DEFAULT_CONTEXT_LEN_TOKENS, LayerInstance
    from sieveopt.models.table import ObservedTables
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.validation.replay import replay
    from sieveopt.workload import generate_for_model

    tables = ObservedTables(system, model)
    table = tables.table(args.policy)
    trace = generate_for_model(model, inst.batch, args.table_warmup, args.seed + 1, layers=[inst.moe_layer])
    for step in range(args.table_warmup):
        w = LayerInstance.from_expert_ids(model, system, trace.expert_ids[step, 0], moe_layer=inst.moe_layer,
                                          context_lens=np.full(inst.batch, args.context_len or DEFAULT_CONTEXT_LEN_TOKENS),
                                          meta={"seed": args.seed + 1})
        dag, _ = build_dag(w, table, opts)
        run = run_layer(w, args.policy, dag=dag, cost=table, **params)
        rep = replay(run.result.schedule, run.dag, system, instance=w, dram_preset=args.dram_preset,
                     memory=args.memory, interference=not args.no_interference)
        tables.observe(args.policy, rep, run.dag)
    return table, {"warmup_steps": args.table_warmup, "history": tables.history}


def _dispatch_window(rep, dag) -> int:
    """Latest dispatch arrival in the replay (what the scheduler runs in parallel with)."""
    from sieveopt.dag import DISPATCH

    arr = [int(rep.message_arrival_ns[t.tid]) for t in dag.tasks if t.kind == DISPATCH]
    return max(arr, default=0)


# -- energy (validation/energy/layer.py): a separate hook so other replay changes merge cleanly --
def _energy(rep, dag, system, inst, cost) -> dict:
    from sieveopt.validation.energy.layer import replay_energy_block
    from sieveopt.validation.energy.step import replay_step_block

    e = replay_energy_block(rep, dag, system, inst)
    if e.get("available"):   # the whole decode step: every MoE layer like this one + the rest, replayed
        e["step"] = replay_step_block(e, rep, dag, system, inst, cost)
    return e


def _energy_rows(e: dict) -> list[tuple[str, ...]]:
    """Table rows (component, predicted mJ, replayed mJ, error, tolerance, within) of an energy
    block (the layer's or the step's: both carry the same fields), the total last."""
    def row(name: str, pred_J: float, rep_J: float, k: str) -> tuple[str, ...]:
        err = e["error_pct"][k]
        return (name, f"{pred_J * 1e3:.4g}", f"{rep_J * 1e3:.4g}", "-" if err is None else f"{err:+.1f}%",
                f"{e['tolerance_pct'][k]:.0f}%", "yes" if e["within_tolerance"][k] else "NO")
    rows = [row(k, e["predicted_J"][k], e["replayed_J"][k], k) for k in e["replayed_J"]]
    rows.append(row("total", e["predicted_total_J"], e["replayed_total_J"], "total"))
    return rows


def _render_energy(e: dict) -> None:
    if not e.get("available"):
        print(e.get("reason", "energy unavailable"))
        return
    rows = _energy_rows(e)
    print_table(f"energy per layer (mJ), DRAM preset {e['dram_preset']}, counts {e['counts']}",
                ["component", "predicted mJ", "replayed mJ", "error", "tolerance", "within"], rows)
    if e.get("J_per_token") is not None:
        print(f"energy per generated token: {e['J_per_token']:.4g} J replayed "
              f"({e['predicted_J_per_token']:.4g} J predicted; {e['J_per_token_layer'] * 1e3:.4g} mJ "
              f"per token per MoE layer); {len(e['open_values'])} open energy values")
    st = e.get("step")
    if st:
        rows = _energy_rows(st)
        t = st["outside_moe"]["time_ns"]
        print_table(f"energy per decode step (mJ): every MoE layer like this one + embedding, LM head, dense layers "
                    f"replayed ({t['predicted'] / 1e3:.1f} us predicted, {t['replayed'] / 1e3:.1f} us replayed)",
                    ["component", "predicted mJ", "replayed mJ", "error", "tolerance", "within"], rows)
