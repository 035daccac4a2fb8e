"""One critical path: the e2e breakdown charges exactly the tasks the Perfetto/Chrome trace marks,
and its charges sum to the makespan (list schedules and replay-like schedules with idle gaps)."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.critpath import critical_path
from sieveopt.e2e.breakdown import CATEGORIES, critical_path_breakdown, critical_path_charges
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.schedule import Schedule, modes_from_experts
from sieveopt.testing import random_instance
from sieveopt.viz.chrome_trace import chrome_trace_events


def _cases():
    model, system = load_model("gpt-oss-120b"), load_system("sieve-b200-hbm3e-pim", 4)
    for seed in (1, 2, 3):
        inst = random_instance(np.random.default_rng(seed), model, system, 64)
        dag, _ = build_dag(inst)
        experts = sorted(dag.expert_task)
        for k, default in ((0, "gpu"), (2, "gpu"), (0, "pim")):
            em = {e: "pim" for e in experts[::k]} if k else None
            s = list_schedule(dag, modes_from_experts(dag, em, default_expert=default))
            yield dag, s
            # a replay-like copy: every task shifted by a per-task delay (idle gaps, slack links)
            rng = np.random.default_rng(seed)
            order = np.argsort(s.start_ns, kind="stable")
            shift = np.zeros(len(dag.tasks), dtype=np.int64)
            shift[order] = np.cumsum(rng.integers(0, 50, len(dag.tasks)))
            yield dag, Schedule(modes=s.modes, start_ns=s.start_ns + shift, end_ns=s.end_ns + shift,
                                policy="shifted")


@pytest.mark.parametrize("case", range(18))
def test_breakdown_charges_the_path_the_trace_marks_and_sums_to_the_makespan(case):
    dag, sched = list(_cases())[case]
    charges = critical_path_charges(sched, dag)
    bd = critical_path_breakdown(sched, dag)
    assert set(bd) == set(CATEGORIES)
    assert sum(bd.values()) == sched.makespan_ns
    assert all(ns >= 0 for _, _, ns in charges)
    charged = [tid for tid, _, _ in charges if tid >= 0]
    assert charged == critical_path(sched, dag)
    flagged = {e["args"]["task"] for e in chrome_trace_events(sched, dag)
               if e["ph"] in ("X", "i") and e["args"].get("critical")}
    assert set(charged) == flagged
    if sched.policy != "shifted":
        assert bd["idle"] == 0       # list schedules start every task at a binding dependency
