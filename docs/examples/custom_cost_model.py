"""Plug in your own cost model (executed in CI).

A cost model is any object with ``name`` and ``duration_ns(work, mode)``. Register it under a
name (a third-party package would use the ``sieveopt.cost_models`` entry-point group instead)
and every DAG, policy and study can use it.
"""

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import COST_MODELS, MODE_PIM, Work, make_cost_model
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.pipeline import run_layer


class SlowPimCostModel(RooflineCostModel):
    """Roofline, but every PIM job pays an extra fixed cost (e.g. a mode switch you measured)."""

    name = "slow-pim"

    def __init__(self, system, model, *, extra_pim_ns: float = 500.0):
        super().__init__(system, model)
        self.extra_pim_ns = extra_pim_ns

    def duration_ns(self, work: Work, mode: str) -> float:
        base = super().duration_ns(work, mode)
        return base + self.extra_pim_ns if mode == MODE_PIM else base


COST_MODELS.register("slow-pim", SlowPimCostModel)

model = load_model("qwen3-30b-a3b")
system = load_system("sieve-b200-hbm3e-pim", num_gpus=1)
layer = sample_layers(model, system, batch=64, num_layers=1, seed=1)[0]
for name in ("roofline", "slow-pim"):
    run = run_layer(layer, "sieve", cost_model=make_cost_model(name, system, model))
    pim = sum(1 for m in run.result.schedule.expert_modes(run.dag).values() if m == "pim")
    assert run.check.ok
    print(f"{name:9s}: {pim} experts on PIM, makespan {run.makespan_ns / 1e3:.1f} us")
