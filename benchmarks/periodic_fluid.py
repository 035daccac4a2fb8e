"""Fluid-guided constructions vs the phase construction on the multi-GPU rows (issue 11, round 9).

Per (config, B), M = 2, one cyclic window of ``--window-layers`` sampled layers (seed 0): the
load bound (``load_bound_ns``); for each mode set (``--mode-sets``: ``sieve`` = Sieve's plan,
``load`` = the load optimum's modes, ``phase`` = ``phase_balanced_modes``) the joint-phase path
LP at those modes (min over the 140 paths; ``periodic_phase_bound.path_lp``), the best fluid
construction (``periodic_fluid.fluid_constructions``: the ``--best-paths`` lowest paths x
target rules x spacings, each at its exact shortest superperiod, ``check_periodic``) and
``local_search`` from it for ``--descent-s`` s or ``--descent-evals`` evaluations (seed 0;
deterministic with evaluations); last the phase construction (``staggered_schedule`` at the
phase-balanced modes) with the same descent. ``--own-path``: that descended phase schedule's own
path, the path LP on it, and the fluid rounding of its own timeline (``schedule_timeline``). ``--variants``
prints every construction's value, ``--why`` the cycle that binds each construction and each
descent (``cycle_breakdown``; stderr).

Execution model ``microbatch``, roofline cost model, catalog precisions (BF16 dense, GPT-OSS
MXFP4 experts). Values are superperiods (ns); percentages over the load bound. With
``--descent-s`` the descent is clock-bound: its evaluation count depends on the machine's load
(printed).

    nice .venv/bin/python benchmarks/periodic_fluid.py --configs gpt-oss-120b:4 --batches 64 --descent-s 30
    nice .venv/bin/python benchmarks/periodic_fluid.py --configs gpt-oss-120b:4 --batches 64 --descent-evals 40000 --why --own-path
"""

from __future__ import annotations

import argparse
import sys
import time

from _args import add_configs, microbatch_rows

from sieveopt.overlap import plan_modes
from sieveopt.periodic import check_periodic, resource_loads_ns
from sieveopt.periodic_fluid import fluid_constructions, fluid_plan
from sieveopt.periodic_search import local_search, phase_balanced_modes, staggered_schedule
from sieveopt.solvers.cpsat_periodic import load_bound_ns


def cycle_breakdown(prob, ps) -> str:
    """What the cycle that binds ``ps`` at Lambda - 1 is made of (``_critical_tasks``): its tasks,
    their work by resource kind (a task's first resource), the arcs between consecutive tasks
    (``edge``: a precedence of the DAG or a recurrence; ``order:K``: the next task on a kind-K
    resource's cyclic order) and how often it changes micro-batch."""
    from sieveopt.periodic_search import _critical_tasks

    dag = prob.dag
    cyc = _critical_tasks(prob, ps)
    if not cyc:
        return "no binding cycle found"
    kind = {r.rid: r.name.split("[")[0] for r in dag.resources}
    edges = {(e.src, e.dst) for e in dag.edges} | {(r.src, r.dst) for r in prob.recurrences}
    work: dict[str, int] = {}
    arcs: dict[str, int] = {}
    for i, t in enumerate(cyc):
        c = dag.tasks[t].modes[ps.modes[t]]
        if c.resources:
            k = kind[c.resources[0]]
            work[k] = work.get(k, 0) + c.duration_ns
        nxt = cyc[(i + 1) % len(cyc)]
        if (t, nxt) in edges:
            a = "edge"
        else:
            shared = set(c.resources) & set(dag.tasks[nxt].modes[ps.modes[nxt]].resources)
            a = "order:" + (kind[min(shared)] if shared else "?")
        arcs[a] = arcs.get(a, 0) + 1
    switches = sum(dag.tasks[cyc[i]].microbatch != dag.tasks[cyc[i - 1]].microbatch for i in range(len(cyc)))
    return (f"{len(cyc)} tasks, work {dict(sorted(work.items()))}, arcs {dict(sorted(arcs.items()))}, "
            f"{switches} micro-batch switches")


def timeline_violations(prob, modes, plan) -> str:
    """How far the best path's fluid timeline (``prop-start`` targets) is from respecting the
    DAG: the edges u -> v (both with a target) whose target of v is before u's target plus its
    duration and lag, by (kind of u, kind of v), and the mean shortfall (us)."""
    from sieveopt.periodic_fluid import fluid_targets_ns

    key = fluid_targets_ns(prob, modes, plan.pm, plan.primals[0], "prop-start")
    dag = prob.dag
    total, bad, short = 0, {}, 0.0
    for e in dag.edges:
        if not dag.edge_active(e, modes) or key[e.src] < 0 or key[e.dst] < 0:
            continue
        total += 1
        gap = key[e.src] + dag.tasks[e.src].modes[modes[e.src]].duration_ns + e.lag_ns - key[e.dst]
        if gap > 0:
            k = f"{dag.tasks[e.src].kind}->{dag.tasks[e.dst].kind}"
            bad[k] = bad.get(k, 0) + 1
            short += gap
    nbad = sum(bad.values())
    top = ", ".join(f"{k} {v}" for k, v in sorted(bad.items(), key=lambda x: -x[1])[:5])
    return (f"{nbad} of {total} edges violated by the fluid timeline (mean shortfall "
            f"{short / max(nbad, 1) / 1e3:.2f} us): {top}")


def own_path(prob, st, seconds: float, tag: str) -> None:
    """The phase construction after the descent: the path LP on its own path at its modes, and
    the fluid rounding of (a) that LP's timeline and (b) the schedule's own timeline
    (``schedule_primal``): what the rounding alone loses from a feasible timeline (stderr)."""
    from sieveopt.periodic_fluid import FluidPlan, schedule_primal, schedule_timeline
    from sieveopt.periodic_phase_bound import phase_map, phase_path_bound, schedule_path

    ds = descend(prob, st)
    pm, _ = phase_map(prob)
    path, _ = schedule_path(pm, ds)
    lp, _ = phase_path_bound(prob, modes=ds.modes, paths=[path])
    own, _ = fluid_constructions(prob, ds.modes, plan=FluidPlan(pm, (ds.superperiod_ns * 1e-3,),
                                                                (schedule_primal(prob, ds.modes, pm, ds),)),
                                 task_primals=([(tl := schedule_timeline(prob, ds.modes, pm, ds, True))[0]], tl[1]))
    lp_cons, _ = fluid_constructions(prob, ds.modes, paths=[path], best_paths=1)
    print(f"  {tag} own path: descended phase schedule {ds.superperiod_ns}, path LP on its path {lp}, "
          f"rounding of its own timeline {own[0].superperiod_ns if own else '-'} "
          f"({own[0].meta.get('fluid_target')}/{own[0].meta.get('fluid_spacing') or own[0].meta.get('fluid_release')}), "
          f"rounding of the LP's timeline on that path {lp_cons[0].superperiod_ns if lp_cons else '-'}",
          file=sys.stderr, flush=True)


def _pct(v: int, load: int) -> str:
    return f"{v} ({100 * (v / load - 1):+.2f} %)"


#: Descent budget: (seconds, evaluations); evaluations > 0 makes it deterministic (no clock).
BUDGET = [30.0, 0]


def descend(prob, ps):
    """``local_search`` (seed 0) under :data:`BUDGET`: a fixed number of evaluations, or the clock."""
    seconds, evals = BUDGET
    if evals > 0:
        return local_search(prob, ps, max_evaluations=evals, seed=0)
    return local_search(prob, ps, max_evaluations=10**9, seed=0, deadline=time.perf_counter() + seconds)


def _descend(prob, ps, seconds: float, why: str = "") -> str:
    if why:
        print(f"  {why} construction {ps.superperiod_ns}: {cycle_breakdown(prob, ps)}", file=sys.stderr)
    if seconds <= 0 and BUDGET[1] <= 0:
        return "-"
    t0 = time.perf_counter()
    ds = descend(prob, ps)
    wall = time.perf_counter() - t0
    if not check_periodic(ds, prob).ok:
        raise RuntimeError("descent result fails check_periodic (a bug)")
    if why:
        print(f"  {why} descent {ds.superperiod_ns}: {cycle_breakdown(prob, ds)}", file=sys.stderr)
    return f"{ds.superperiod_ns} ({ds.meta.get('local_search_evaluations')} ev., {wall:.0f} s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs(ap, default=("gpt-oss-120b:4", "qwen3.5-397b-a17b:8"))
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--window-layers", type=int, default=2)
    ap.add_argument("--mode-sets", default="sieve,load,phase")
    ap.add_argument("--best-paths", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds for the load bound and phase model")
    ap.add_argument("--descent-s", type=float, default=30.0, help="descent from each best construction (s; 0: none)")
    ap.add_argument("--descent-evals", type=int, default=0,
                    help="descent budget in evaluations instead of seconds (deterministic; 0: use --descent-s)")
    ap.add_argument("--variants", action="store_true", help="every construction's value (stderr)")
    ap.add_argument("--own-path", action="store_true", help="the descended phase schedule's own path (stderr)")
    ap.add_argument("--why", action="store_true", help="the binding cycle of each construction and descent (stderr)")
    args = ap.parse_args(argv)
    BUDGET[:] = [args.descent_s, args.descent_evals]
    sets = args.mode_sets.split(",")
    print("| config | B | load bound | mode set | its busiest load | path LP | fluid construction (best variant) "
          "| after descent | phase construction | its descent |")
    print("|" + "---|" * 10)
    for name, gpus, b, prob in microbatch_rows(args.configs, args.batches, args.window_layers):
        load, _, load_modes = load_bound_ns(prob, time_limit_s=args.time_limit)
        pb = phase_balanced_modes(prob, time_limit_s=args.time_limit, deterministic=True)
        phase_modes = None if pb is None else pb[0]
        st = None if phase_modes is None else staggered_schedule(prob, phase_modes)
        phase_cell = "-" if st is None else _pct(st.superperiod_ns, load)
        tag = f"{name} x{gpus} B={b}" if args.why else ""
        phase_ds = "-" if st is None else _descend(prob, st, args.descent_s, tag and tag + " phase-structure")
        if args.own_path and st is not None:
            own_path(prob, st, args.descent_s, f"{name} x{gpus} B={b}")
        for ms in sets:
            modes = plan_modes(prob, "sieve")[0] if ms == "sieve" else load_modes if ms == "load" else phase_modes
            if modes is None:
                continue
            t0 = time.perf_counter()
            plan, _why = fluid_plan(prob, modes, best_paths=args.best_paths)
            cons, info = fluid_constructions(prob, modes, plan=plan) if plan else ([], {"reason": _why})
            wall = time.perf_counter() - t0
            if args.why and plan and plan.primals:
                print(f"  {tag} {ms}: {timeline_violations(prob, modes, plan)}", file=sys.stderr)
            if args.variants:
                print(f"  {name} x{gpus} B={b} {ms}: {wall:.1f} s; {info.get('variants_ns')}", file=sys.stderr)
            busiest = int(resource_loads_ns(prob.dag, modes).max())
            lp = info.get("path_lp_ns")
            if not cons:
                print(f"| {name} x{gpus} | {b} | {load} | {ms} | {busiest} | {lp} | - ({info.get('reason')}) | - "
                      f"| {phase_cell} | {phase_ds} |", flush=True)
                continue
            best = cons[0]
            if not check_periodic(best, prob).ok:
                raise RuntimeError("fluid construction fails check_periodic (a bug)")
            var = f"path{best.meta['fluid_path_rank']}/{best.meta['fluid_target']}/{best.meta.get('fluid_spacing') or 'list-' + best.meta['fluid_release']}"
            print(f"| {name} x{gpus} | {b} | {load} | {ms} | {busiest} | {lp} | {_pct(best.superperiod_ns, load)} "
                  f"{var} | {_descend(prob, best, args.descent_s, tag and f'{tag} fluid@{ms}')} | {phase_cell} | {phase_ds} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
