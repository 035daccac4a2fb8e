"""Replay's network co-simulation (validation/replay_net.NetworkCosim) against the fixed point
it replaces: loop with message delays, NVLink simulator on the loop's releases, repeat until no
arrival moves (a Jacobi iteration, kept here as the oracle).

The co-simulation must give exactly the converged iteration's timeline, in one pass, also
where the iteration needs more than the 12 rounds replay used to allow.
"""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.dag import RES_EGRESS, DagOptions, build_layer_dag
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_system
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.overlap import solve_overlap
from sieveopt.periodic import unroll
from sieveopt.schedule import modes_from_experts
from sieveopt.testing import catalog_window, random_instance, tiny_model
from sieveopt.validation.replay import replay, task_times
from sieveopt.validation.replay_engine import run_loop
from sieveopt.validation.replay_memory import AnalyticTimer
from sieveopt.validation.replay_net import (
    egress_order,
    link_params,
    message_tids,
    simulate_messages,
)

OLD_MAX_ROUNDS = 12


def jacobi_fixed_point(sched, dag, system, timer, link: dict, max_rounds: int = 200):
    """The pre-round-10 method, without its round cap: (rounds to converge, loop, network)."""
    modes = tuple(sched.modes)
    order = sched.resource_order(dag)
    times = task_times(dag, modes, system, timer, None)
    msgs = message_tids(dag)
    lat = int(round(system.interconnect.latency_ns))
    delay = np.zeros(len(dag.tasks), dtype=np.int64)
    for t in msgs:
        delay[t] = dag.tasks[t].modes[modes[t]].duration_ns + lat
    params = link_params(system, dag.num_gpus, **link)
    eg = egress_order(dag, order)
    loop = run_loop(dag, modes, order, times, delay, None)
    for rounds in range(1, max_rounds + 1):
        net = simulate_messages(dag, msgs, loop.release_ns, eg, params)
        new = delay.copy()
        new[msgs] = net.arrival_ns[msgs] - loop.release_ns[msgs]
        if np.array_equal(new, delay):
            return rounds, loop, net
        delay = new
        loop = run_loop(dag, modes, order, times, delay, None)
    raise AssertionError(f"the Jacobi oracle did not converge in {max_rounds} rounds")


def assert_same_timeline(r, dag, loop, net, lat_ns: int) -> None:
    """Replay result == the converged iteration: compute tasks, releases, arrivals, port busy time."""
    msgs = message_tids(dag)
    compute = np.setdiff1d(np.arange(len(dag.tasks)), msgs)
    assert np.array_equal(r.schedule.start_ns[compute], loop.start_ns[compute])
    assert np.array_equal(r.schedule.end_ns[compute], loop.end_ns[compute])
    assert np.array_equal(r.message_release_ns[msgs], loop.release_ns[msgs])
    assert np.array_equal(r.message_arrival_ns[msgs], net.arrival_ns[msgs])
    assert np.array_equal(r.schedule.end_ns[msgs], np.maximum(r.schedule.start_ns[msgs], net.arrival_ns[msgs] - lat_ns))
    span = max(1, r.makespan_ns)
    for g in range(dag.num_gpus):
        assert r.utilisation[dag.resource(RES_EGRESS, g).name] == pytest.approx(float(net.egress_busy_ns[g]) / span, abs=0)


@pytest.fixture(scope="module")
def contended_window():
    """GPT-OSS x4, B = 32, 2 micro-batches, Sieve's periodic schedule unrolled 4 times."""
    prob = catalog_window("gpt-oss-120b", 4, 32)
    big, sched = unroll(prob, solve_overlap(prob, "sieve").schedule, 4)
    inst = prob.window[0][0]
    return big, sched, inst.system, AnalyticTimer(inst.system, inst.model), inst


def test_cosim_reaches_in_one_pass_the_fixed_point_12_rounds_did_not(contended_window):
    """A 20 GB/s link (incast-bound all-to-alls): the iteration moves one communication phase
    per round and needs more than 12 rounds; the co-simulation gives its fixed point exactly."""
    big, sched, system, timer, inst = contended_window
    link = {"bw_per_direction_GBps": 20.0}
    rounds, loop, net = jacobi_fixed_point(sched, big, system, timer, link)
    assert rounds > OLD_MAX_ROUNDS
    r = replay(sched, big, system, instance=inst, memory=timer, interference=False, link_overrides=link)
    assert r.converged
    assert_same_timeline(r, big, loop, net, int(round(system.interconnect.latency_ns)))
    # independent of the replay's own check: the simulator on the replayed releases reproduces it
    msgs = message_tids(big)
    again = simulate_messages(big, msgs, r.message_release_ns, egress_order(big, sched.resource_order(big)),
                              link_params(system, big.num_gpus, **link))
    assert np.array_equal(again.arrival_ns[msgs], r.message_arrival_ns[msgs])


@pytest.mark.parametrize("link", [{}, {"egress_policy": "round_robin"}, {"switching": "store_and_forward"},
                                  {"switch_bw_GBps": 1200.0}])
def test_cosim_equals_the_iteration_on_periodic_windows(contended_window, link):
    big, sched, system, timer, inst = contended_window
    _, loop, net = jacobi_fixed_point(sched, big, system, timer, link)
    r = replay(sched, big, system, instance=inst, memory=timer, interference=False, link_overrides=link)
    assert r.converged
    assert_same_timeline(r, big, loop, net, int(round(system.interconnect.latency_ns)))


@pytest.mark.parametrize(("gpus", "batch", "seed", "sharing"),
                         [(2, 16, 0, None), (4, 32, 1, None), (8, 64, 2, None), (4, 64, 3, "exclusive")])
def test_serial_layer_replay_is_unchanged(gpus, batch, seed, sharing):
    """Single layers (where the old 12 rounds converged): the same timeline, bit for bit."""
    model = tiny_model(num_experts=16, top_k=2, hidden=1024, inter=512)
    system = load_system("sieve-b200-hbm3e-pim", gpus)
    inst = random_instance(np.random.default_rng(seed), model, system, batch)
    dag = build_layer_dag(inst, RooflineCostModel(system, model), DagOptions(hbm_sharing=sharing))
    experts = sorted(dag.expert_task)
    modes = modes_from_experts(dag, {e: ("pim" if (i + seed) % 3 else "gpu") for i, e in enumerate(experts)})
    sched = list_schedule(dag, modes, None, policy="mixed")
    timer = AnalyticTimer(system, model)
    rounds, loop, net = jacobi_fixed_point(sched, dag, system, timer, {})
    assert rounds <= OLD_MAX_ROUNDS
    r = replay(sched, dag, system, instance=inst, memory=timer, interference=False)
    assert r.converged
    assert_same_timeline(r, dag, loop, net, int(round(system.interconnect.latency_ns)))
