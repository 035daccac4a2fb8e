"""Execution targets: the places a task can run, one registry entry each (a *mode* of the DAG).

A :class:`Target` says everything the rest of the tool needs to know about a mode, so no module
branches on mode names:

* which per-GPU resources it creates (``owns``: resource kind -> track label) and which a task
  in this mode holds (``holds`` on its own GPU, ``peer_holds`` on the peer GPU of a message,
  ``exclusive_holds`` in addition when the system's HBM sharing is ``exclusive``);
* its cost hook (``cost``: ``(cost_model, work) -> ns``; default ``cost_model.duration_ns(work,
  mode)``), its replay timer hook (``replay``: ``(ctx, task, mode) -> TaskTime``, a callable or a
  lazily imported ``"module:attr"``) and its replay interference role (``replay_role``);
* its picture style (``color``; the track labels come from ``owns``) and its e2e booking
  (``expert_category``: where the e2e breakdown charges routed experts that run here).

GPU, PIM, link (NVLink ports) and scheduler are the built-in entries; a new tier (an AMX CPU,
a DIMM-NDP) is one :func:`register_target` call plus its cost and replay hooks (see
docs/design-notes/targets.md). Entry-point group: ``sieveopt.targets``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sieveopt.errors import SieveoptError
from sieveopt.registry import Registry

#: Built-in mode names (plain strings: they are dict keys and JSON values everywhere).
MODE_GPU = "gpu"
MODE_PIM = "pim"
MODE_LINK = "link"
MODE_SCHED = "sched"

#: Replay interference roles: a memory-streaming GPU kernel and an in-memory (PIM) job on the
#: same GPU's stacks slow each other down; other roles never interfere.
ROLE_STREAM = "stream"
ROLE_IN_MEMORY = "in_memory"


@dataclass(frozen=True)
class Target:
    """One execution target (see the module docstring for every field)."""

    mode: str
    label: str
    color: str
    owns: Mapping[str, str] = field(default_factory=dict)
    holds: tuple[str, ...] = ()
    peer_holds: tuple[str, ...] = ()
    exclusive_holds: tuple[str, ...] = ()
    cost: Callable[[Any, Any], float] | None = None
    replay: Callable[..., Any] | str | None = None
    replay_role: str = ""
    expert_category: str = ""
    #: Trace counter of this target's bytes/ns per GPU ("" = none) and its peak (system -> GB/s).
    counter_label: str = ""
    counter_peak_GBps: Callable[[Any], float | None] | None = None
    #: Created in every DAG (the built-in tiers); others only when DagOptions names them.
    always: bool = False
    #: Capacity of the resources it owns (system -> units held at once; None = 1), e.g. DIMMs.
    capacity: Callable[[Any], int] | None = None
    #: Resource layouts of this target, chosen by the ``DagOptions`` field named ``layout_option``:
    #: value -> hook ``(builder, first layer instance) -> layout`` (a callable or ``"module:attr"``;
    #: None = the plain one-resource-per-GPU layout of ``owns``). A layout splits the target's
    #: units into finer resources (kinds in ``part_owns``: kind -> track label), binds each
    #: layer's tasks to them (``bind(inst)``), gives a task's cost in this mode
    #: (``mode_cost(builder, kind, gpu, expert, work, base) -> ModeCost``) and stamps DAG
    #: metadata (``meta()``). The PIM target's expert-parallel channel groups are one
    #: (:mod:`sieveopt.pim_groups`).
    layout_option: str = ""
    layouts: Mapping[str, Callable[..., Any] | str | None] = field(default_factory=dict)
    part_owns: Mapping[str, str] = field(default_factory=dict)
    #: Weight caching of a target whose routed experts fetch their weights per use (e.g. a GPU
    #: behind PCIe): the mode an expert may also take when its weights are already resident
    #: (``DagOptions.resident_experts``), and the single-mode target of the copy tasks that bring
    #: the next layer's weights in (``DagOptions.prefetch_experts``); "" = no caching.
    resident_mode: str = ""
    prefetch_mode: str = ""
    doc: str = ""

    def duration_ns(self, cost_model: Any, work: Any) -> float:
        """This target's time of ``work`` under ``cost_model`` (the cost hook)."""
        if self.cost is not None:
            return float(self.cost(cost_model, work))
        return float(cost_model.duration_ns(work, self.mode))

    def resource_kinds(self, sharing: str) -> tuple[tuple[str, bool], ...]:
        """(resource kind, on the peer GPU?) a task in this mode holds under HBM ``sharing``."""
        own = self.holds + (self.exclusive_holds if sharing == "exclusive" else ())
        return tuple((k, False) for k in own) + tuple((k, True) for k in self.peer_holds)

    def layout_hook(self, value: str) -> Callable[..., Any] | None:
        """The layout hook of option value ``value`` (None: the plain layout); an unknown value
        raises, naming the option and the known values."""
        if value not in self.layouts:
            raise SieveoptError(f"DagOptions.{self.layout_option}: unknown layout {value!r} of execution target "
                                f"{self.mode!r} (known: {', '.join(map(repr, self.layouts))})")
        return _resolve(self.layouts[value])

    def replay_timer(self) -> Callable[..., Any]:
        """The replay timer hook, imported on first use."""
        hook = self.replay
        if hook is None:
            raise SieveoptError(f"execution target {self.mode!r} has no replay timer; give "
                                f"register_target(..., replay=...) a (ctx, task, mode) -> TaskTime hook")
        return _resolve(hook)


def _resolve(hook: Callable[..., Any] | str | None) -> Callable[..., Any] | None:
    """A hook given as ``"module:attr"`` (dotted attributes allowed), imported on first use."""
    if isinstance(hook, str):
        mod, _, attr = hook.partition(":")
        obj: Any = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return hook


TARGETS = Registry("sieveopt.targets", "execution target")


def register_target(target: Target) -> Target:
    """Register ``target`` under its mode name (replaces an entry of the same name)."""
    TARGETS.register(target.mode, target, doc=target.doc or target.label)
    return target


#: Targets the package itself registers (they cannot be unregistered).
_BUILTIN_MODES = {MODE_GPU, MODE_PIM, MODE_LINK, MODE_SCHED}


def register_builtin_target(target: Target) -> Target:
    """Register one of the package's own tiers (like :func:`register_target`, but permanent)."""
    _BUILTIN_MODES.add(target.mode)
    return register_target(target)


def unregister_target(mode: str) -> None:
    """Remove a registered target (tests add temporary tiers)."""
    if mode in _BUILTIN_MODES:
        raise SieveoptError(f"cannot unregister the built-in execution target {mode!r}")
    TARGETS.unregister(mode)


def get_target(mode: str) -> Target:
    """The registered target of ``mode`` (a clear error naming the known ones otherwise)."""
    return TARGETS.get(mode)


def targets_for(modes: Iterable[str]) -> list[Target]:
    """The always-present targets, then those of ``modes`` (registration order, no repeats)."""
    wanted = set(modes)
    for m in wanted:
        get_target(m)  # unknown modes fail here, naming the known ones
    return [TARGETS.get(m) for m in TARGETS.ordered() if TARGETS.get(m).always or m in wanted]


def resource_kinds_for(modes: Iterable[str]) -> tuple[str, ...]:
    """Per-GPU resource kinds a DAG using ``modes`` creates, in display order."""
    out: list[str] = []
    for t in targets_for(modes):
        out.extend(k for k in t.owns if k not in out)
    return tuple(out)


def resource_capacity(resource_kind: str, system: Any) -> int:
    """Capacity of a per-GPU resource of ``resource_kind`` on ``system`` (its owner's hook, else 1)."""
    for m in TARGETS.ordered():
        t = TARGETS.get(m)
        if resource_kind in t.owns and t.capacity is not None:
            return int(t.capacity(system))
    return 1


def track_label(resource_kind: str) -> str:
    """Human name of a resource kind's track (from the target that owns it)."""
    for m in TARGETS.ordered():
        t = TARGETS.get(m)
        lab = t.owns.get(resource_kind) or t.part_owns.get(resource_kind)
        if lab:
            return lab
    return resource_kind


def track_order(resource_kind: str) -> int:
    """Display rank of a resource kind (targets' registration order, then ``owns`` order)."""
    rank = 0
    for m in TARGETS.ordered():
        t = TARGETS.get(m)
        for k in (*t.owns, *t.part_owns):
            if k == resource_kind:
                return rank
            rank += 1
    return rank


def mode_color(mode: str, fallback: str = "#cccccc") -> str:
    """Picture colour of tasks in ``mode``."""
    try:
        return TARGETS.get(mode).color
    except SieveoptError:
        return fallback


def counter_targets() -> list[Target]:
    """Targets that draw a bandwidth counter per GPU in traces (registration order)."""
    return [TARGETS.get(m) for m in TARGETS.ordered() if TARGETS.get(m).counter_label]


def replay_role(mode: str) -> str:
    try:
        return TARGETS.get(mode).replay_role
    except SieveoptError:
        return ""


def expert_category(mode: str) -> str:
    """E2E breakdown category of a routed expert in ``mode`` (``experts_<mode>`` by default)."""
    try:
        return TARGETS.get(mode).expert_category or f"experts_{mode}"
    except SieveoptError:
        return f"experts_{mode}"


# -- built-in tiers -------------------------------------------------------------------------
_REPLAY = "sieveopt.validation.replay"

register_target(Target(
    MODE_GPU, "GPU", "#8cd17d", owns={"gpu": "GPU stream", "hbm": "HBM bus"}, holds=("gpu", "hbm"),
    replay=f"{_REPLAY}:gpu_task_time", replay_role=ROLE_STREAM, expert_category="experts_gpu", always=True,
    counter_label="HBM bus GB/s", counter_peak_GBps=lambda system: getattr(system, "gpu_hbm_bw_GBps", None),
    doc="GPU kernels: the GPU stream and the HBM bus (roofline of FLOPs and bytes)"))
register_target(Target(
    MODE_PIM, "HBM-PIM", "#c9a3e0", owns={"pim": "PIM units"}, holds=("pim",), exclusive_holds=("hbm",),
    replay=f"{_REPLAY}:pim_task_time", replay_role=ROLE_IN_MEMORY, expert_category="experts_pim", always=True,
    counter_label="PIM GB/s", counter_peak_GBps=lambda system: getattr(system, "pim_bw_GBps", None),
    layout_option="pim_parallelism",
    layouts={"tp": None, "ep": "sieveopt.pim_groups:PimGroups.for_builder"},
    part_owns={"pim_group": "PIM channel group"},
    doc="HBM-PIM all-bank jobs; hold the HBM bus too when sharing is 'exclusive'. Layouts "
        "(DagOptions.pim_parallelism): 'tp' every expert over all pseudo-channels (Sieve), 'ep' "
        "experts bound to channel groups (PIMoE, sieveopt.pim_groups)"))
register_target(Target(
    MODE_LINK, "NVLink", "#ffbe7d", owns={"egress": "NVLink egress", "ingress": "NVLink ingress"},
    holds=("egress",), peer_holds=("ingress",), always=True,
    doc="Messages: the source GPU's egress and the peer's ingress port (replayed by the NVLink simulator)"))
register_target(Target(
    MODE_SCHED, "scheduler", "#d7d7d7", owns={"sched": "scheduler"}, holds=("sched",),
    replay=f"{_REPLAY}:sched_task_time", always=True,
    doc="The scheduler's own processor (its decision latency)"))

# -- host-side tiers of offloading systems (TriMoE): registered by their own module -------------
import sieveopt.offload_tiers  # noqa: E402,F401
