"""Per-DIMM NDP placement (``DagOptions.ndp_placement = "home"``): the ``ndp`` target's layout.

TriMoE's NDP time is "NDP on DIMM d: max(f_calc_ndp(L), T_Internal(W))" for the DIMM holding the
expert in the *localized* layout ("the whole expert in one DIMM, which NDP needs", trimoe_gem.md
§1.3 items 2-3), and "NDP can run an expert only on the DIMM that stores it" (§1.4 item 3, [I]).
The default layout (``"any"``) lets an NDP job take any free DIMM -- one resource of capacity D,
a relaxation. Under ``"home"``:

* every DIMM of a GPU's host is its own capacity-1 resource (kind :data:`RES_NDP_DIMM`, declared
  by the ``ndp`` target's ``part_owns``), and an expert's NDP job holds only its home DIMM;
* the home of routed expert e is ``DagOptions.dimm_homes[e]`` (e.g. a rebalanced layout from
  :mod:`sieveopt.trimoe_relayout`), by default ``e mod D`` (round-robin: the relayout
  evaluator's starting layout).

The TriMoE planner reads the homes from the DAG (:func:`sieveopt.solvers.trimoe.trimoe_inputs`)
and places each NDP job on its home engine; ``check()``, the list scheduler, CP-SAT (NoOverlap
per DIMM) and replay (resources in the schedule's order) need nothing else.
"""

from __future__ import annotations

from typing import Any

#: Resource kind of one DIMM's NDP engine.
RES_NDP_DIMM = "ndp_dimm"


class DimmHomes:
    """The DIMMs of every GPU's host in one DAG and each routed expert's home."""

    def __init__(self, builder: Any, num_experts: int) -> None:
        from sieveopt.dag import Resource

        self.num_dimms = int(builder.system.offload.ndp.num_dimms)
        homes = tuple(builder.opts.dimm_homes)
        if homes and (len(homes) != num_experts or not all(0 <= h < self.num_dimms for h in homes)):
            raise ValueError(f"DagOptions.dimm_homes: need one DIMM in [0, {self.num_dimms}) per routed expert "
                             f"({num_experts}), got {len(homes)} values in [{min(homes)}, {max(homes)}]")
        self.home = homes or tuple(e % self.num_dimms for e in range(num_experts))
        self.rids: dict[int, list[int]] = {}
        for g in range(builder.system.num_gpus):
            self.rids[g] = []
            for d in range(self.num_dimms):
                rid = len(builder.resources)
                builder.resources.append(Resource(rid, f"{RES_NDP_DIMM}[{g}.{d}]", RES_NDP_DIMM, g))
                self.rids[g].append(rid)

    @classmethod
    def for_builder(cls, builder: Any, inst: Any) -> DimmHomes:
        """The ``ndp`` target's ``"home"`` layout hook."""
        return cls(builder, int(inst.model.num_routed_experts))

    def bind(self, inst: Any) -> None:
        """Nothing per layer: homes are static."""

    def mode_cost(self, builder: Any, kind: str, gpu: int, expert: int, work: Any, base: Any) -> Any:
        """An expert's NDP job holds its home DIMM in place of the pooled NDP units."""
        from sieveopt.dag import EXPERT, ModeCost

        if kind != EXPERT:
            return base
        pooled = builder.res[("ndp", gpu)]
        return ModeCost(base.duration_ns, (*(r for r in base.resources if r != pooled),
                                           self.rids[gpu][self.home[expert]]))

    def meta(self) -> dict[str, Any]:
        return {"ndp_placement": "home", "dimm_homes": list(self.home)}


def task_home(dag: Any, task: Any, mode: str) -> int:
    """The home DIMM of an expert task's NDP mode in a ``"home"`` DAG, else -1 (any engine)."""
    for rid in task.modes[mode].resources:
        r = dag.resources[rid]
        if r.kind == RES_NDP_DIMM:
            return int(r.name.rsplit(".", 1)[1].rstrip("]"))
    return -1
