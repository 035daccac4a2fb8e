"""sieve-pipe's compiled sweep, its hedge, its per-execution-model charge, and the pipeline
runtime every heuristic's modes are executed by (issue 11, round 4)."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.execution_model import make_execution_model
from sieveopt.models.catalog import load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.overlap import (
    charged_problem,
    pipeline_schedule,
    plan_modes,
    solve_overlap,
)
from sieveopt.periodic import (
    build_periodic_problem,
    check_periodic,
    check_unrolled,
    modulo_list_schedule,
)
from sieveopt.solvers.sched_latency import default_ns, describe, resolve
from sieveopt.solvers.sieve_pipe import _sweep, plan_split, split_args
from sieveopt.testing import catalog_window, random_periodic_problem

TERMS = ("other", "attn_pim", "launch", "pre", "reduce")


def _reference_k(tokens, gpu_ns, pim_ns, terms, t_comm, M, excl, carried, prior_slots, hedge) -> int:
    """The sweep's objective written out in plain Python: the first k minimising it."""
    order = sorted(range(len(tokens)), key=lambda i: -int(tokens[i]))   # stable, descending
    slots = prior_slots + 1
    best, best_k = None, 0
    for k in range(len(tokens) + 1):
        lg = sum(gpu_ns[order[i]] for i in range(k)) + (terms["launch"] if k else 0.0)
        ps = sum(pim_ns[order[i]] for i in range(k, len(tokens)))
        t_gpu, t_pim = terms["other"] + lg, terms["attn_pim"] + ps
        t_hbm = t_gpu + t_pim if excl else t_gpu
        load = max(carried[0] + t_gpu, carried[1] + t_hbm, carried[2] + t_pim) / slots
        if hedge:
            load = max(load, t_gpu, t_hbm, t_pim)
        obj = max(M * load, terms["pre"] + t_comm + terms["reduce"] + max(lg, ps))
        if best is None or obj < best:
            best, best_k = obj, k
    return best_k


def test_sweep_matches_its_objective_and_sorts_like_sieve():
    from sieveopt.solvers._sieve_numba import make_workspace, sort_desc

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        tokens = rng.integers(0, 30, n)
        gpu_ns = rng.uniform(1, 80, n)
        pim_ns = rng.uniform(1, 50, n) * (tokens + 1)
        terms = {k: float(rng.uniform(0, 200)) for k in TERMS}
        carried = tuple(rng.uniform(0, 400, 3)) if rng.random() < 0.7 else (0.0, 0.0, 0.0)
        prior, M, excl, hedge = int(rng.integers(0, 4)), int(rng.integers(1, 5)), bool(rng.random() < 0.3), bool(rng.random() < 0.5)
        t_comm = float(rng.uniform(0, 40))
        args = split_args(tokens, gpu_ns, pim_ns, terms, t_comm, M, excl, carried, prior, hedge)
        k = _sweep(*args)
        assert k == _reference_k(tokens, gpu_ns, pim_ns, terms, t_comm, M, excl, carried, prior, hedge)
        order = args[4][:n].tolist()
        assert order == np.argsort(-tokens, kind="stable").tolist()
        ws, sieve_order = make_workspace(n, int(tokens.max()) + 1)
        sort_desc(tokens.astype(np.int32), int(tokens.max()) + 1, ws, sieve_order)
        assert sieve_order[:n].tolist() == order
        on_gpu, dt = plan_split(tokens, gpu_ns, pim_ns, terms, t_comm, M, excl, carried, prior, hedge)
        assert sorted(np.flatnonzero(on_gpu).tolist()) == sorted(order[:k]) and dt >= 0


def test_hedge_keeps_a_slot_off_the_far_side():
    """A window already GPU-heavy: the carry alone sends this slot's experts to PIM until the
    window balances; hedged, the slot's own load never exceeds the projected window load."""
    terms = {"other": 10, "attn_pim": 5, "launch": 1, "pre": 0, "reduce": 0}
    tokens, gpu_ns, pim_ns = np.array([8, 4, 2, 1]), np.full(4, 10.0), np.array([40.0, 20.0, 10.0, 5.0])
    base, _ = plan_split(tokens, gpu_ns, pim_ns, terms, 0.0, 2, False)
    carry, _ = plan_split(tokens, gpu_ns, pim_ns, terms, 0.0, 2, False, (60.0, 60.0, 0.0), 1)
    hedged, _ = plan_split(tokens, gpu_ns, pim_ns, terms, 0.0, 2, False, (60.0, 60.0, 0.0), 1, True)
    assert carry.sum() < hedged.sum() <= base.sum()
    # With no carried load the hedge changes nothing (the first slot of a window).
    assert (plan_split(tokens, gpu_ns, pim_ns, terms, 0.0, 2, False, hedge=True)[0] == base).all()


def _problem(seed: int, gpus: int, M: int, L: int = 2, per_mb: int = 4):
    return random_periodic_problem(seed, gpus, M, L, per_mb)


def test_sieve_pipe_hedges_only_under_microbatch():
    prob = _problem(2, 2, 2)
    from sieveopt.dag import build_layer_dag
    from sieveopt.solvers import solve

    inst = prob.window[0][0]
    dag = build_layer_dag(inst, prob.cost)
    for overlap, hedged in (("microbatch", True), ("ideal", False)):
        r = solve("sieve-pipe", dag, inst, prob.cost, overlap=overlap, microbatches=2)
        assert r.meta["hedge"] is hedged
    modes = {h: plan_modes(prob, "sieve-pipe", hedge=h)[0] for h in (False, True)}
    assert all(len(m) == len(prob.dag.tasks) for m in modes.values())


def test_declared_charge_per_execution_model():
    # serial: sieve-plus's decision on its own Sieve-shaped kernel; microbatch/ideal: its sweep;
    # both measured at Sieve's cost side by side (BENCHMARKS.md §16c): Sieve's figure everywhere
    assert default_ns("sieve-pipe") == default_ns("sieve-pipe", "serial") == default_ns("sieve") == 1000
    assert default_ns("sieve-plus") == 1500
    assert default_ns("sieve-pipe", "microbatch") == default_ns("sieve-pipe", "ideal") == default_ns("sieve") == 1000
    assert resolve("sieve-pipe", overlap="microbatch").ns == 1000 and resolve("sieve-pipe").ns == 1000
    assert resolve("sieve-pipe", 700, overlap="microbatch").ns == 700      # a fixed figure still wins
    assert resolve("sieve", overlap="microbatch").ns == default_ns("sieve")  # no override: the same figure
    assert resolve("cpsat", overlap="microbatch").ns == 0
    # no policy declares a per-model figure, so the one table is the charge under every model
    text = describe("default")
    assert "sieve-pipe 1000 ns" in text and "sieve-plus 1500 ns" in text
    assert "the same under every execution model" in text and " under microbatch" not in text
    for p in ("sieve", "sieve-plus", "sieve-pipe", "duplex", "pimoe"):
        assert default_ns(p, "microbatch") == default_ns(p, "ideal") == default_ns(p)
    prob, lat = charged_problem(_problem(3, 2, 2), "sieve-pipe")
    sched = [t for t in prob.dag.tasks if t.kind == "sched"]
    assert lat.ns == 1000 and sched and all(c.duration_ns == 1000 for t in sched for c in t.modes.values())


@pytest.mark.parametrize("seed,gpus,M,L", [(0, 1, 2, 2), (1, 2, 2, 1), (2, 2, 3, 2), (3, 4, 2, 2), (4, 1, 4, 1)])
def test_pipeline_runtime_never_worse_than_modulo_list_and_checks(seed, gpus, M, L):
    prob = _problem(seed, gpus, M, L, per_mb=2)
    for policy in ("sieve", "sieve-pipe", "duplex"):
        modes, _ = plan_modes(prob, policy)
        ml = modulo_list_schedule(prob, modes, policy=policy)
        ps = pipeline_schedule(prob, modes, policy=policy)
        assert ps.superperiod_ns <= ml.superperiod_ns and ps.modes == tuple(modes)
        assert check_periodic(ps, prob).ok and check_unrolled(prob, ps, 4).ok


def test_staggered_slots_beat_lock_step_on_a_paper_configuration():
    """GPT-OSS-120B x4, B = 16, M = 2 (the study's window): the runtime's staggered slots are
    shorter than modulo list scheduling for the same modes, and the schedules check."""
    prob, _ = charged_problem(catalog_window("gpt-oss-120b", 4, 16), "sieve-pipe")
    modes, _ = plan_modes(prob, "sieve-pipe")
    ps = pipeline_schedule(prob, modes, policy="sieve-pipe")
    from sieveopt.overlap import RUNTIME_PHASE_FRACTIONS
    from sieveopt.periodic_search import phase_order_schedule

    # the staggered slots alone (the runtime's repairs of round 6 may shorten them further)
    slots = phase_order_schedule(prob, modes, fractions=RUNTIME_PHASE_FRACTIONS)
    assert slots.meta["method"] == "cycle-ratio" and slots.meta.get("phase_style")
    assert ps.superperiod_ns <= slots.superperiod_ns < modulo_list_schedule(prob, modes).superperiod_ns
    r = solve_overlap(prob, "sieve-pipe")
    assert r.check_ok and r.period_ns == ps.period_ns


def test_pimoe_runs_on_its_channel_group_layout_under_overlap():
    """PIMoE declares expert-parallel PIM channel groups (``dag_options``); under microbatch and
    ideal its slots are planned and its pipeline scheduled on that layout, like one layer."""
    from sieveopt.pim_groups import RES_PIM_GROUP
    from sieveopt.validation.replay_periodic import replay_periodic

    base = _problem(5, 2, 2)
    prob, _ = charged_problem(base, "pimoe")
    assert prob.options.pim_parallelism == "ep" and base.options.pim_parallelism == "tp"
    assert any(r.kind == RES_PIM_GROUP for r in prob.dag.resources)
    assert charged_problem(base, "sieve")[0].dag.resources == charged_problem(base, "sieve")[0].dag.resources
    assert not any(r.kind == RES_PIM_GROUP for r in charged_problem(base, "sieve")[0].dag.resources)
    r = solve_overlap(prob, "pimoe")
    assert r.check_ok and r.schedule is not None
    used = {prob.dag.resources[rid].kind for t in prob.dag.tasks if r.schedule.modes[t.tid] == "pim" and t.kind == "expert"
            for rid in t.modes["pim"].resources}
    assert RES_PIM_GROUP in used
    rep = replay_periodic(prob, r.schedule, iterations=4, memory="analytic", interference=False)
    assert rep["converged"] and rep["replayed_period_ns"] > 0
    ideal = _problem(5, 2, 2)
    ideal = build_periodic_problem(ideal.window, ideal.cost, make_execution_model("ideal", 2, window_layers=2))
    ri = solve_overlap(charged_problem(ideal, "pimoe")[0], "pimoe")
    assert ri.status == "BOUND" and ri.period_ns > 0
    # CP-SAT (standard layout) takes PIMoE's schedule as a hint only where it is valid there
    cp = solve_overlap(charged_problem(base, "cpsat")[0], "cpsat", time_limit_s=2, hints={"pimoe": r})
    assert cp.check_ok


def test_calibrated_charge_times_the_planner_of_the_execution_model(tmp_path, monkeypatch):
    import json

    from sieveopt.models.catalog import load_model
    from sieveopt.solvers.sched_latency import cache_path

    monkeypatch.setenv("SIEVEOPT_CACHE_DIR", str(tmp_path))
    cal = {"model": load_model("qwen3-30b-a3b"), "system": load_system("sieve-b200-hbm3e-pim", 1), "batch": 8}
    mb = resolve("sieve-pipe", "calibrated", calibration=cal, overlap="microbatch")
    serial = resolve("sieve-pipe", "calibrated", calibration=cal)
    assert mb.source == serial.source == "calibrated" and mb.ns > 0 and serial.ns > 0
    keys = list(json.loads(cache_path().read_text()))
    assert len(keys) == 2 and sum(k.endswith("|microbatch") for k in keys) == 1


def test_concurrent_slot_sets_the_balance_under_microbatch():
    """Under microbatch a slot's experts run beside the next slot's dense chain (staggered
    pipeline), so sieve-pipe balances them against that slot's dense work: beside a long
    attention on PIM it keeps more experts on the GPU than beside a short one."""
    from sieveopt.dag import build_layer_dag
    from sieveopt.instance import LayerInstance
    from sieveopt.models.catalog import load_model
    from sieveopt.solvers import solve

    model, system = load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1)
    cost = make_cost_model("roofline", system, model)
    ids = np.random.default_rng(5).integers(0, model.num_routed_experts, size=(32, model.top_k))
    inst = LayerInstance.from_expert_ids(model, system, ids, context_lens=np.full(32, 2048))
    dag = build_layer_dag(inst, cost)
    beside = {ctx: build_layer_dag(LayerInstance.from_expert_ids(model, system, ids, context_lens=np.full(32, ctx)),
                                   cost) for ctx in (64, 32768)}
    on_gpu = {}
    for ctx, other in beside.items():
        r = solve("sieve-pipe", dag, inst, cost, overlap="microbatch", microbatches=2, concurrent_dag=other)
        assert r.meta["concurrent"]
        on_gpu[ctx] = sum(m == "gpu" for t, m in zip(dag.tasks, r.schedule.modes, strict=True) if t.kind == "expert")
    assert on_gpu[32768] > on_gpu[64]
    off = solve("sieve-pipe", dag, inst, cost, overlap="microbatch", microbatches=2, concurrent=False,
                concurrent_dag=beside[64])
    assert not off.meta["concurrent"]
    assert not solve("sieve-pipe", dag, inst, cost, overlap="ideal", concurrent_dag=beside[64]).meta["concurrent"]


def test_plan_modes_passes_the_next_slot_cyclically(monkeypatch):
    import sieveopt.solvers as solvers

    real, calls = solvers.solve, []

    def spy(policy, dag, inst, cost, **kw):
        c = kw.get("concurrent_dag")
        calls.append((policy, (dag.options.layer, dag.options.microbatch),
                      None if c is None else (c.options.layer, c.options.microbatch)))
        return real(policy, dag, inst, cost, **kw)

    monkeypatch.setattr(solvers, "solve", spy)
    prob = _problem(6, 2, 2)
    plan_modes(prob, "sieve-pipe")
    assert [c[1:] for c in calls] == [((0, 0), (0, 1)), ((0, 1), (1, 0)), ((1, 0), (1, 1)), ((1, 1), (0, 0))]
    calls.clear()
    plan_modes(prob, "sieve")  # declares no concurrent planning
    assert calls and all(c[2] is None for c in calls)
    calls.clear()
    ideal = build_periodic_problem(prob.window, prob.cost, make_execution_model("ideal", 2, window_layers=2))
    plan_modes(ideal, "sieve-pipe")
    assert calls and all(c[2] is None for c in calls)


@pytest.mark.parametrize("seed,gpus,M", [(0, 1, 2), (3, 4, 2), (2, 2, 3)])
def test_runtime_order_descent_keeps_the_modes_and_never_lengthens(seed, gpus, M):
    """The runtime's order-only descent executes the policy's modes as decided, is never longer
    than the constructions it starts from, is deterministic, and its schedule checks."""
    from sieveopt.overlap import fixed_modes_problem, runtime_order_evaluations

    # the budget is set by the window's size and the cap, never by a clock
    assert runtime_order_evaluations(250) == 1000 and runtime_order_evaluations(2214) == 51
    assert runtime_order_evaluations(10**5) == 50
    assert runtime_order_evaluations(250, 0) == 0 and runtime_order_evaluations(250, 20) == 20
    assert runtime_order_evaluations(10**5, 20) == 20

    prob = _problem(seed, gpus, M, per_mb=2)
    modes, _ = plan_modes(prob, "sieve-pipe")
    fixed = fixed_modes_problem(prob, modes)
    assert all(len(t.modes) == 1 for t in fixed.dag.tasks) and len(fixed.dag.tasks) == len(prob.dag.tasks)
    a, b = pipeline_schedule(prob, modes), pipeline_schedule(prob, modes)
    plain = pipeline_schedule(prob, modes, order_evaluations=0)
    assert a.modes == plain.modes == tuple(modes)
    assert a.superperiod_ns <= plain.superperiod_ns
    assert a.superperiod_ns == b.superperiod_ns and np.array_equal(a.start_ns, b.start_ns)
    assert check_periodic(a, prob).ok and check_unrolled(prob, a, 4).ok
