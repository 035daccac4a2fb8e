"""Expert-parallel PIM execution (``DagOptions.pim_parallelism = "ep"``), the layout PIMoE uses.

Sieve shards every expert over all of a GPU's PIM channels (tensor parallelism) and rejects
channel-level expert parallelism because "all PUs of a channel must share one vector operand and
hot/cold experts leave channels idle" (papers.md §1.1); its Fig. 10 shows PIMoE's expert
parallelism over PIM channels leaving "some channels heavily loaded and others idle" while
Sieve's tensor parallelism is uniform. PIMoE is "expert-parallel over PIM channels" (papers.md
§1.7). This module makes that layout a DAG option so PIMoE's decision and its execution use the
same model:

* the GPU's ``C`` pseudo-channels are split into ``K`` contiguous **channel groups** that cover
  all of them (``K = DagOptions.pim_channel_groups``, default ``min(experts the GPU holds, C)``,
  so each expert the GPU holds owns ``C / K`` channels); group ``k`` has
  ``C*(k+1)//K - C*k//K`` channels;
* routed expert ``e`` is bound (statically, by placement, not by routing) to group
  ``rank(e) mod K``, where ``rank`` is its rank in expert-id order among the experts its GPU holds;
* each group is a resource (kind :data:`RES_PIM_GROUP`) in place of the one GPU-wide ``pim``
  resource: an expert's PIM job holds only its group, for the time of ``tokens`` GEMVs over its
  group's channels (the cost model's ``pim_gemv_ns(..., channels=c)``, roofline by default:
  :func:`sieveopt.models.costmodel.pim_expert_ns_on`; replay: the DRAM simulator's job on the
  same per-channel rows);
* decode attention keeps its KV cache spread over all channels ("decode attention on PIM, KV
  cache spread over PIM channels" for every baseline, papers.md §1.7), so a PIM attention job
  holds the GPU-wide ``pim`` resource and every group.

Per-group utilisation is the busy time of the group resources (``Schedule.utilisation`` and
the replay's ``utilisation`` list them as ``pim_group[g.k]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sieveopt.targets import MODE_PIM

#: Resource kind of one channel group of one GPU's PIM units (declared by the PIM target's
#: ``part_owns``; this module is its ``"ep"`` layout, :data:`sieveopt.targets.Target.layouts`).
RES_PIM_GROUP = "pim_group"


def group_channels(num_channels: int, num_groups: int) -> list[int]:
    """Channels of each of ``num_groups`` contiguous groups covering ``num_channels``."""
    if not 1 <= num_groups <= num_channels:
        raise ValueError(f"pim_channel_groups: need 1 <= groups <= {num_channels} pseudo-channels, got {num_groups}")
    return [num_channels * (k + 1) // num_groups - num_channels * k // num_groups for k in range(num_groups)]


def default_groups(experts_per_gpu: int, num_channels: int) -> int:
    """One group per expert the GPU holds, at most one per pseudo-channel."""
    return max(1, min(int(experts_per_gpu), int(num_channels)))


def expert_groups(expert_gpu: Sequence[int], num_groups: int) -> list[int]:
    """Group of every routed expert: its rank among its GPU's experts (id order) mod ``num_groups``."""
    seen: dict[int, int] = {}
    out = []
    for g in expert_gpu:
        r = seen.get(int(g), 0)
        seen[int(g)] = r + 1
        out.append(r % num_groups)
    return out


def ep_pim_expert_ns(cost: Any, system: Any, model: Any, weight_bytes: float, tokens: int, channels: int) -> float:
    """PIM time of one expert on ``tokens`` tokens over ``channels`` pseudo-channels, read through
    the cost-model protocol (:func:`sieveopt.models.costmodel.pim_expert_ns_on`)."""
    from sieveopt.models.costmodel import pim_expert_ns_on

    return pim_expert_ns_on(cost, system, model, weight_bytes, tokens, channels)


class PimGroups:
    """The channel groups of every GPU of one DAG (built by :class:`sieveopt.dag._Builder`)."""

    def __init__(self, builder: Any, num_groups: int) -> None:
        self.num_channels = int(builder.system.hbm_pim.pseudo_channels_per_gpu)
        self.channels = group_channels(self.num_channels, num_groups)
        self.rids: dict[int, list[int]] = {}
        from sieveopt.dag import Resource

        for g in range(builder.system.num_gpus):
            self.rids[g] = []
            for k in range(num_groups):
                rid = len(builder.resources)
                builder.resources.append(Resource(rid, f"{RES_PIM_GROUP}[{g}.{k}]", RES_PIM_GROUP, g))
                self.rids[g].append(rid)
        self.group_of: list[int] = []

    @classmethod
    def for_builder(cls, builder: Any, inst: Any) -> PimGroups:
        """The PIM target's ``"ep"`` layout hook (:data:`sieveopt.targets.Target.layouts`)."""
        opts = builder.opts
        if opts.pim_channel_groups < 0:
            raise ValueError(f"DagOptions.pim_channel_groups: must be >= 0 (0 = one group per expert "
                             f"a GPU holds), got {opts.pim_channel_groups}")
        n = opts.pim_channel_groups or default_groups(
            max(int((inst.expert_gpu == g).sum()) for g in range(inst.num_gpus)),
            inst.system.hbm_pim.pseudo_channels_per_gpu)
        return cls(builder, n)

    def bind(self, inst: Any) -> None:
        """Bind this layer's experts to groups (static: by placement)."""
        self.group_of = expert_groups(inst.expert_gpu.tolist(), len(self.channels))

    def mode_cost(self, builder: Any, kind: str, gpu: int, expert: int, work: Any, base: Any) -> Any:
        """The PIM ``ModeCost`` of a task under expert parallelism (``base``: the TP one): an
        expert holds its channel group in place of the GPU-wide PIM resource (other holds, e.g.
        the HBM bus under ``exclusive`` sharing, are kept)."""
        from sieveopt.dag import ATTN, EXPERT, ModeCost, _ns
        from sieveopt.targets import get_target

        if kind == EXPERT:
            k = self.group_of[expert]
            whole = {builder.res[(r, gpu)] for r in get_target(MODE_PIM).owns}
            dur = _ns(ep_pim_expert_ns(builder.cost, builder.system, builder.inst.model, work.weight_bytes,
                                       work.tokens, self.channels[k]))
            return ModeCost(dur, (self.rids[gpu][k], *(r for r in base.resources if r not in whole)))
        if kind == ATTN:
            return ModeCost(base.duration_ns, (*base.resources, *self.rids[gpu]))
        return base

    def meta(self) -> dict[str, Any]:
        return {"pim_parallelism": "ep", "pim_group_channels": list(self.channels),
                "expert_pim_group": list(self.group_of)}


# -- reading an EP DAG ----------------------------------------------------------------------------
def is_ep(dag: Any) -> bool:
    return getattr(dag.options, "pim_parallelism", "tp") == "ep"


def task_group(dag: Any, tid: int) -> tuple[int, int] | None:
    """(group index, channels) of an expert task's PIM mode in an EP DAG, else None."""
    t = dag.tasks[tid]
    if MODE_PIM not in t.modes:
        return None
    for rid in t.modes[MODE_PIM].resources:
        r = dag.resources[rid]
        if r.kind == RES_PIM_GROUP:
            k = int(r.name.rsplit(".", 1)[1].rstrip("]"))
            return k, int(dag.meta["pim_group_channels"][k])
    return None


def group_utilisation(schedule: Any, dag: Any) -> dict[int, list[float]]:
    """GPU -> busy fraction of the makespan of each channel group (EP DAGs; empty otherwise)."""
    util = schedule.utilisation(dag)
    out: dict[int, list[float]] = {}
    for r in dag.resources:
        if r.kind == RES_PIM_GROUP:
            out.setdefault(r.gpu, []).append(util[r.name])
    return out


def pim_busy_equivalent_ns(busy: dict[tuple[str, int], int], dag: Any, gpu: int) -> float:
    """PIM busy time of one GPU in whole-PIM units: the ``pim`` resource under TP; under EP the
    mean busy time of its channel groups (``busy`` from :func:`sieveopt.e2e.breakdown.busy_ns`)."""
    if not is_ep(dag):
        return float(busy.get(("pim", gpu), 0))
    return float(busy.get((RES_PIM_GROUP, gpu), 0)) / len(dag.meta["pim_group_channels"])
