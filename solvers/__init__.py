"""Solvers and policies, registered by name in :data:`SOLVERS` (entry-point group
``sieveopt.solvers``). Built-ins load lazily so importing the package stays cheap.

Each policy declares its capabilities (:class:`PolicyInfo`): where it decides (on the serving
path, in reference Python, nothing, or offline), the parameters it accepts (what
``--solver-param key=value`` may set), whether it is in the default comparison, its plot style,
the expert modes it needs (a two-sided GPU/PIM heuristic needs both) and its role (the paper's
policy, the exact reference). Commands read these instead of special-casing names.

Use :func:`solve` to run one: ``solve("sieve", dag, instance, cost)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sieveopt.errors import SieveoptError
from sieveopt.offload_tiers import TRIMOE_MODES
from sieveopt.registry import Registry, lazy
from sieveopt.solvers.base import SolveResult
from sieveopt.targets import MODE_GPU, MODE_PIM

SOLVERS = Registry("sieveopt.solvers", "solver")

#: How a policy decides: ``compiled`` (allocation-free serving-path planner, its measured
#: decision latency is charged), ``reference`` (a Python re-implementation of a published
#: planner, latency shown but not charged), ``static`` (decides nothing), ``offline`` (a
#: solver that runs ahead of time: no serving-path latency).
Decision = Literal["compiled", "reference", "static", "offline"]


def _csv_set(value: str) -> frozenset[str]:
    return frozenset(x.strip() for x in value.split(",") if x.strip())


def _choice(*allowed: str) -> Any:
    """A parser accepting only ``allowed`` values."""

    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {value!r}")


@dataclass(frozen=True)
class PolicyInfo:
    """What a registered policy declares about itself (defaults fit a third-party plugin)."""

    decision: Decision = "reference"
    #: Parameters it accepts: name -> parser of a command-line string (int, float, str, ...).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: In the default comparison set of ``run``/``pareto`` (built-ins, in registration order).
    default: bool = False
    color: str = ""
    marker: str = "o"
    #: Modes every routed expert must offer (a GPU/PIM split needs both); checked by :func:`solve`.
    needs_modes: tuple[str, ...] = ()
    #: ``paper`` (the policy the paper proposes), ``reference`` (exact solver others are
    #: compared against; solves windows jointly), or ``""``.
    role: str = ""
    #: Solves a multi-layer window DAG jointly (with a hint); else per slot + list scheduling.
    joint_window: bool = False
    #: ``"module:attr"`` of its solver for the periodic (pipelined) problem, which then solves it
    #: jointly (:func:`sieveopt.overlap.solve_overlap`); "" = plan every slot, modulo-schedule.
    periodic: str = ""
    #: ``"module:attr"`` of its exact solver of the energy objective (``compare --objective
    #: energy``): ``(dag, energy_model, *, latency_limit_ns, time_limit_s, hints, time_price_W)``.
    energy: str = ""
    #: Rank of its per-slot window schedule among the hint candidates of joint window solvers
    #: (1 first; ties between equal makespans go to the lower rank); 0: not a candidate.
    window_hint: int = 0
    #: Rank among CP-SAT's warm starts on DAGs where no Sieve heuristic applies (1 first; its
    #: ``needs_modes`` must be offered); 0: not a warm start. How a new tier gets a good hint.
    cpsat_hint: int = 0
    #: Scheduler latency charged per layer under ``--scheduler-latency-ns default`` (ns; None:
    #: the unknown-policy figure). Ignored for ``static``/``offline`` decisions, which are
    #: charged 0 (:mod:`sieveopt.solvers.sched_latency`, where the figures are sourced).
    scheduler_latency_ns: int | None = None
    #: Per execution model (``serial``, ``microbatch``, ``ideal``), a figure that replaces
    #: ``scheduler_latency_ns`` there: a policy that plans with another compiled planner under
    #: that model (sieve-pipe) declares that planner's figure.
    scheduler_latency_by_overlap: Mapping[str, int] = field(default_factory=dict)
    #: ``DagOptions`` fields the policy executes under (its decision and its execution then use
    #: the same model; ``run_layer`` rebuilds a single-layer DAG that differs), e.g. PIMoE's
    #: ``{"pim_parallelism": "ep"}`` (expert-parallel PIM channel groups, papers.md §1.7).
    dag_options: Mapping[str, Any] = field(default_factory=dict)
    #: Plans on Sieve's runtime PIM cost table (``ObservedTables`` feeds it from replays).
    reads_cost_table: bool = False

    @property
    def serving(self) -> bool:
        """True when its measured decision latency belongs on the serving path."""
        return self.decision == "compiled"

    @property
    def offline(self) -> bool:
        return self.decision == "offline"


_TWO_SIDED = (MODE_GPU, MODE_PIM)
_TRIMOE = TRIMOE_MODES
_CPSAT_PARAMS = {"time_limit_s": float, "workers": int, "seed": int, "time_quantum_ns": int,
                 "deterministic": _bool, "hint": str, "export_path": str, "levers": _csv_set, "log": _bool}

_BUILTIN: dict[str, tuple[str, str, str, PolicyInfo]] = {
    "gpu_only": ("sieveopt.solvers.baselines", "solve_gpu_only", "No PIM at all (attention and experts on the GPU)",
                 PolicyInfo("static", default=True, color="#7f7f7f", marker="x", needs_modes=(MODE_GPU,))),
    "noexp": ("sieveopt.solvers.baselines", "solve_noexp", "Attention on PIM, every expert on the GPU (NeuPIMs/PAISE)",
              PolicyInfo("static", default=True, color="#1f77b4", marker="s", needs_modes=(MODE_GPU,),
                         window_hint=4)),
    "allexp": ("sieveopt.solvers.baselines", "solve_allexp", "Every expert on PIM (PAPI/Stratum)",
               PolicyInfo("static", default=True, color="#ff7f0e", marker="v", needs_modes=(MODE_PIM,),
                          window_hint=5)),
    "pimoe": ("sieveopt.solvers.baselines", "solve_pimoe",
              "PIMoE: expert-parallel PIM channel groups; busiest group's hottest expert to GPU until T_GPU > T_PIM",
              PolicyInfo("reference", {"threshold": int}, default=True, color="#9467bd", marker="D",
                         needs_modes=_TWO_SIDED, scheduler_latency_ns=1000,
                         dag_options={"pim_parallelism": "ep"})),
    "duplex": ("sieveopt.solvers.baselines", "solve_duplex",
               "Duplex: all on GPU, move fewest-token experts to PIM while max improves",
               PolicyInfo("reference", default=True, color="#8c564b", marker="^", needs_modes=_TWO_SIDED,
                          window_hint=3, scheduler_latency_ns=1000)),
    "sieve": ("sieveopt.solvers.sieve", "solve_sieve",
              "Sieve greedy (paper §5): all on PIM, move hottest to GPU while max(T) drops",
              PolicyInfo("compiled", {"impl": _choice("numba", "ref"), "other_gpu_work": _bool,
                                      "estimate": _choice("implemented", "literal")}, default=True, color="#d62728",
                         marker="o", needs_modes=_TWO_SIDED, role="paper", window_hint=1,
                         scheduler_latency_ns=1000, reads_cost_table=True)),
    "sieve-plus": ("sieveopt.solvers.sieve_plus", "solve_sieve_plus",
                   "Improved fast heuristic closing the gap to CP-SAT",
                   PolicyInfo("compiled", {"max_passes": int, "compiled": _bool, "attention": str, "order": str},
                              default=True, color="#2ca02c", marker="P", needs_modes=_TWO_SIDED,
                              window_hint=2, scheduler_latency_ns=1500, reads_cost_table=True)),
    "sieve-pipe": ("sieveopt.solvers.sieve_pipe", "solve_sieve_pipe",
                   "Plans for the execution model it runs under: serial -> sieve-plus's decision (own kernel); microbatch -> "
                   "Sieve's sweep with the pipeline's period (M x load vs one micro-batch's chain); ideal -> load",
                   PolicyInfo("compiled", {"microbatches": int, "overlap": _choice("serial", "microbatch", "ideal"),
                                              "carry": _bool, "hedge": _bool, "concurrent": _bool},
                              color="#17becf", marker="p", needs_modes=_TWO_SIDED,
                              scheduler_latency_ns=1000)),  # every execution model (sched_latency docstring)
    "cpsat": ("sieveopt.solvers.cpsat", "solve_cpsat", "Exact CP-SAT over the layer DAG (OR-Tools)",
              PolicyInfo("offline", _CPSAT_PARAMS, default=True, color="#000000", marker="*", role="reference",
                         joint_window=True, periodic="sieveopt.solvers.cpsat_periodic:solve_overlap_cpsat",
                         energy="sieveopt.solvers.cpsat_energy:solve_cpsat_energy")),
    # TriMoE's offloading tier (modes from sieveopt.offload_tiers; DAG of an [offload] system)
    "trimoe": ("sieveopt.solvers.trimoe", "solve_trimoe",
               "TriMoE: hot/warm/cold classes + bottleneck-aware greedy over GPU(+PCIe fetch)/AMX CPU/DIMM-NDP",
               PolicyInfo("compiled", {"impl": _choice("numba", "ref"), "refine": _bool}, color="#e377c2", marker="h",
                          needs_modes=_TRIMOE, cpsat_hint=1)),
    "gpu-cpu": ("sieveopt.solvers.trimoe", "solve_gpu_cpu", "GPU-CPU offloading: cold experts on the AMX CPU",
                PolicyInfo("static", color="#bcbd22", marker="<", needs_modes=(_TRIMOE[0], _TRIMOE[1]))),
    "gpu-ndp": ("sieveopt.solvers.trimoe", "solve_gpu_ndp", "GPU-NDP offloading: non-hot experts on DIMM-NDP",
                PolicyInfo("static", color="#aec7e8", marker=">", needs_modes=(_TRIMOE[0], _TRIMOE[2]))),
    "gpu-fetch": ("sieveopt.solvers.trimoe", "solve_gpu_fetch", "GPU only, every expert fetched over PCIe",
                  PolicyInfo("static", color="#c7c7c7", marker="1", needs_modes=(_TRIMOE[0],))),
}
_INFO: dict[str, PolicyInfo] = {}


def register_policy(name: str, factory: Any, info: PolicyInfo | None = None, *, doc: str = "") -> None:
    """Register a policy with its declared capabilities."""
    SOLVERS.register(name, factory, doc=doc)
    _INFO[name] = info or PolicyInfo()


def unregister_policy(name: str) -> None:
    """Remove a registered policy and its capabilities (tests add temporary ones)."""
    if name in _BUILTIN:
        raise SieveoptError(f"cannot unregister the built-in policy {name!r}")
    SOLVERS.unregister(name)
    _INFO.pop(name, None)


for _name, (_mod, _attr, _doc, _info) in _BUILTIN.items():
    register_policy(_name, lazy(_mod, _attr), _info, doc=_doc)


def policy_info(name: str) -> PolicyInfo:
    """Declared capabilities of ``name``: from :func:`register_policy`, else a ``policy_info``
    attribute of an entry-point plugin's solver function, else the defaults."""
    fn = SOLVERS.get(name)  # unknown names fail here, naming the known ones
    info = _INFO.get(name) or getattr(fn, "policy_info", None)
    return info if isinstance(info, PolicyInfo) else PolicyInfo()


def default_policies() -> tuple[str, ...]:
    """The default comparison set, in registration (plotting) order."""
    return tuple(n for n in SOLVERS.ordered() if policy_info(n).default)


def policy_with_role(role: str) -> str | None:
    """The registered policy declaring ``role`` ("paper", "reference"), if any."""
    return next((n for n in SOLVERS.ordered() if policy_info(n).role == role), None)


def window_hint_policies() -> tuple[str, ...]:
    """Policies whose per-slot window schedules hint a joint window solver, by declared rank."""
    ranked = [(i.window_hint, n) for n in SOLVERS.ordered() if (i := policy_info(n)).window_hint]
    return tuple(n for _, n in sorted(ranked))


def cpsat_hint_policies() -> tuple[str, ...]:
    """Policies declaring a CP-SAT warm-start rank, by rank."""
    ranked = [(i.cpsat_hint, n) for n in SOLVERS.ordered() if (i := policy_info(n)).cpsat_hint]
    return tuple(n for _, n in sorted(ranked))


def common_params(name: str, **knobs: Any) -> dict[str, Any]:
    """The generic knobs a command offers (``time_limit_s``, ``seed``, ...) that ``name``
    declares; ``None`` values are dropped."""
    declared = policy_info(name).params
    return {k: v for k, v in knobs.items() if k in declared and v is not None}


def parse_solver_params(pairs: list[str], policies: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--solver-param key=value`` strings -> per-policy parameter dicts.

    A key applies to every listed policy that declares it; a key no listed policy declares (or
    a value its parser rejects) raises a :class:`SieveoptError` naming the key and the known ones."""
    out: dict[str, dict[str, Any]] = {p: {} for p in policies}
    known = sorted({k for p in policies for k in policy_info(p).params})
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SieveoptError(f"--solver-param {pair!r}: expected KEY=VALUE (known keys for "
                                f"{', '.join(policies)}: {', '.join(known) or 'none'})")
        takers = [p for p in policies if key in policy_info(p).params]
        if not takers:
            raise SieveoptError(f"--solver-param: unknown key {key!r} for {', '.join(policies)} "
                                f"(known: {', '.join(known) or 'none'})")
        for p in takers:
            try:
                out[p][key] = policy_info(p).params[key](raw)
            except (TypeError, ValueError) as exc:
                raise SieveoptError(f"--solver-param {key}={raw!r} for {p}: {exc}") from exc
    return out


def check_target_needs(name: str, dag: Any) -> None:
    """Fail clearly when ``name`` needs expert modes some routed expert of ``dag`` lacks."""
    needs = policy_info(name).needs_modes
    if not needs:
        return
    for t in dag.tasks:
        if t.expert >= 0 and not set(needs) <= set(t.modes):
            raise SieveoptError(f"policy {name!r} needs every routed expert to offer modes {list(needs)}; "
                                f"{t.name} offers {list(t.modes)} (set DagOptions.expert_modes, or use a "
                                f"policy that takes any targets, e.g. {policy_with_role('reference')})")


def solve(name: str, dag: Any, instance: Any, cost: Any, **params: Any) -> SolveResult:
    """Run the registered solver ``name`` on one layer."""
    fn = SOLVERS.get(name)
    check_target_needs(name, dag)
    return fn(dag, instance, cost, **params)


__all__ = ["SOLVERS", "PolicyInfo", "SolveResult", "check_target_needs", "common_params", "cpsat_hint_policies",
           "default_policies", "parse_solver_params", "policy_info", "policy_with_role", "register_policy", "solve",
           "unregister_policy", "window_hint_policies"]
