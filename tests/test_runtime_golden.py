"""The pipeline runtime's schedules, bit for bit (issue 11, round 7: the runtime's hot loops
were compiled; its schedules must not move). Golden values recorded with the code before that
change (commit bc70438): for each study window and policy, the superperiod and a hash of the
modes, starts, ends and superperiod of ``pipeline_schedule``'s result, descent off and on.
Evaluation budgets, never the clock, bound every step, so these values do not depend on
machine speed."""

from __future__ import annotations

import pytest

from sieveopt.overlap import charged_problem, pipeline_schedule, plan_modes
from sieveopt.periodic import check_periodic
from sieveopt.testing import catalog_window, schedule_digest

# (model, GPUs, B, M, policy, runtime order evaluations) -> (superperiod ns, schedule hash)
GOLDEN = {
    ("qwen3-30b-a3b", 1, 16, 2, "sieve", 0): (83736, "c22199b5418ce19f"),
    ("qwen3-30b-a3b", 1, 16, 2, "sieve", 300): (83208, "4295d6bc510a8143"),
    ("qwen3-30b-a3b", 1, 16, 2, "pimoe", 0): (137814, "ecc1866e77d9b0da"),
    ("qwen3-30b-a3b", 1, 16, 2, "allexp", 0): (111651, "a244de391f64af2e"),
    ("gpt-oss-120b", 4, 16, 2, "sieve", 0): (70851, "4d07cbf24fb82abd"),
    ("gpt-oss-120b", 4, 16, 2, "sieve", 300): (70651, "8a95a6e119fa578c"),
    ("gpt-oss-120b", 4, 16, 2, "pimoe", 0): (104900, "d8f6b39c01c56969"),
    ("gpt-oss-120b", 4, 16, 2, "allexp", 0): (70851, "2d022dd13f47d075"),
    ("gpt-oss-120b", 4, 16, 2, "allexp", 300): (70760, "1632e6fa9b976cf0"),
    ("gpt-oss-120b", 2, 12, 3, "sieve", 0): (105201, "7f6f8f1105af3b02"),
    ("gpt-oss-120b", 2, 12, 3, "pimoe", 0): (169314, "4e14c05fce7648d2"),
    ("gpt-oss-120b", 2, 12, 3, "allexp", 0): (104952, "b215499ad73a0524"),
}


@pytest.mark.parametrize("key", sorted(GOLDEN), ids=lambda k: "-".join(map(str, k)))
def test_runtime_schedule_is_bit_for_bit_the_recorded_one(key):
    name, gpus, batch, M, policy, evals = key
    prob, _ = charged_problem(catalog_window(name, gpus, batch, M), policy)
    modes, _ = plan_modes(prob, policy)
    ps = pipeline_schedule(prob, modes, policy=policy, order_evaluations=evals)
    assert check_periodic(ps, prob).ok
    assert (int(ps.superperiod_ns), schedule_digest(ps)) == GOLDEN[key]
