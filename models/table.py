"""The ``table`` cost model: Sieve's runtime PIM cost table (papers.md §1.5).

PIM time of one routed expert is keyed by its token count. Each entry is an exponential moving
average (EMA) of observed PIM GEMV times; a token count never observed falls back to the
roofline estimate. The first observation of a count replaces the fallback outright (the paper
falls back "once"); later ones update ``ema <- alpha * measured + (1 - alpha) * ema``, so after
``k`` observations of a stationary time ``x`` the error is ``(1 - alpha)^(k-1)`` of the first
sample's error.

Everything that is not a routed-expert PIM job (GPU kernels, attention, messages, shared
experts) delegates to :class:`~sieveopt.models.roofline.RooflineCostModel`. The compiled Sieve
planner reads the table as a dense float64 array (``export``), PIM ns by token count 0..N.
"""

from __future__ import annotations

import math

import numpy as np

from sieveopt.models.costmodel import MODE_PIM, TaskKind, Work
from sieveopt.models.roofline import RooflineCostModel
from sieveopt.models.specs import ModelSpec, SystemSpec

#: Initial table size (token counts 0..N); grows on demand.
_DEFAULT_MAX_TOKENS = 1024


class TableCostModel:
    """Runtime PIM cost table (EMA of observed times per token count) over a roofline fallback."""

    name = "table"

    def __init__(self, system: SystemSpec, model: ModelSpec, *, smoothing: float = 0.25,
                 max_tokens: int = _DEFAULT_MAX_TOKENS, include_kernel_overhead: bool = True) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"table cost model: smoothing must be in (0, 1], got {smoothing}")
        if max_tokens < 1:
            raise ValueError(f"table cost model: max_tokens must be >= 1, got {max_tokens}")
        self.system, self.model = system, model
        self.smoothing = float(smoothing)
        self.roofline = RooflineCostModel(system, model, include_kernel_overhead=include_kernel_overhead)
        self._ema_ns = np.full(max_tokens + 1, np.nan)
        self._ema_ns[0] = 0.0                  # no tokens, no job
        self._observations = np.zeros(max_tokens + 1, dtype=np.int64)

    # -- the table -------------------------------------------------------------------------
    def fallback_ns(self, tokens: int) -> float:
        """Roofline PIM time of one routed expert on ``tokens`` tokens."""
        return self.roofline.pim_gemv_ns(self.model.expert_weight_bytes, tokens)

    def _grow(self, tokens: int) -> None:
        if tokens < len(self._ema_ns):
            return
        size = max(tokens + 1, 2 * len(self._ema_ns))
        ema = np.full(size, np.nan)
        ema[: len(self._ema_ns)] = self._ema_ns
        obs = np.zeros(size, dtype=np.int64)
        obs[: len(self._observations)] = self._observations
        self._ema_ns, self._observations = ema, obs

    def observe(self, tokens: int, measured_ns: float) -> float:
        """Fold one measured PIM expert time into the table; returns the new entry."""
        tokens = int(tokens)
        if tokens < 1:
            raise ValueError(f"table cost model: observe() needs tokens >= 1, got {tokens}")
        if not (measured_ns >= 0.0 and math.isfinite(measured_ns)):
            raise ValueError(f"table cost model: measured_ns must be finite and >= 0, got {measured_ns}")
        self._grow(tokens)
        if self._observations[tokens] == 0:
            self._ema_ns[tokens] = float(measured_ns)
        else:
            a = self.smoothing
            self._ema_ns[tokens] = a * float(measured_ns) + (1.0 - a) * self._ema_ns[tokens]
        self._observations[tokens] += 1
        return float(self._ema_ns[tokens])

    def observations(self, tokens: int) -> int:
        """How many times ``tokens`` has been observed."""
        return int(self._observations[tokens]) if 0 <= tokens < len(self._observations) else 0

    def pim_expert_ns(self, tokens: int) -> float:
        """Table entry: the EMA when observed, else the roofline fallback."""
        tokens = int(tokens)
        if tokens <= 0:
            return 0.0
        if tokens < len(self._ema_ns) and self._observations[tokens]:
            return float(self._ema_ns[tokens])
        return self.fallback_ns(tokens)

    def export(self, max_tokens: int, out: np.ndarray | None = None) -> np.ndarray:
        """PIM ns by token count ``0..max_tokens`` as float64 (fallback filled in), for the
        compiled planner. Writes into ``out`` (length >= max_tokens + 1) when given."""
        n = int(max_tokens) + 1
        arr = np.empty(n) if out is None else out
        if len(arr) < n:
            raise ValueError(f"export: out has {len(arr)} entries, need {n}")
        for t in range(n):
            arr[t] = self.pim_expert_ns(t)
        return arr

    # -- CostModel protocol ------------------------------------------------------------------
    def duration_ns(self, work: Work, mode: str) -> float:
        if (mode == MODE_PIM and work.kind == TaskKind.EXPERT
                and work.weight_bytes == self.model.expert_weight_bytes):
            return self.pim_expert_ns(work.tokens)
        return self.roofline.duration_ns(work, mode)



# -- fed by observation: one table per planner, updated from replayed PIM jobs ---------------------
def table_planners() -> tuple[str, ...]:
    """Policies declaring that they plan on the runtime cost table (``PolicyInfo.reads_cost_table``:
    Sieve's T_PIM term; sieve-plus plans on the DAG's durations, which come from the table when the
    DAG is built with it)."""
    from sieveopt.solvers import SOLVERS, policy_info

    return tuple(p for p in SOLVERS.ordered() if policy_info(p).reads_cost_table)


class ObservedTables:
    """Sieve's runtime cost table as the runtime keeps it: "an exponential moving average of the
    observed PIM GEMV execution times", with the roofline "only as a one-time fallback" for token
    counts not seen yet (papers.md §1.5; the table "converges within the first few iterations").

    One :class:`TableCostModel` per planner (each runtime observes its own PIM jobs), living
    across the layers and steps of a run: a planner's layer DAG is built with its table (so the
    planner, and the list schedule, read the table's PIM expert times; everything else is the
    roofline), the schedule is replayed on the simulators, and every PIM expert job's replayed
    time is folded into the table (:meth:`observe`) before the next layer is planned.
    ``history`` records, per observed layer, the table's error on that layer's jobs *before*
    folding them in (the convergence curve)."""

    def __init__(self, system: SystemSpec, model: ModelSpec, *, smoothing: float = 0.25,
                 planners: tuple[str, ...] | None = None) -> None:
        self.system, self.model, self.smoothing = system, model, smoothing
        self.planners = table_planners() if planners is None else tuple(planners)
        self.tables: dict[str, TableCostModel] = {}
        self.history: list[dict] = []

    def uses_table(self, policy: str) -> bool:
        return policy in self.planners

    def table(self, policy: str) -> TableCostModel:
        if policy not in self.tables:
            self.tables[policy] = TableCostModel(self.system, self.model, smoothing=self.smoothing)
        return self.tables[policy]

    def observe(self, policy: str, replay_result, dag) -> dict:
        """Fold the replayed PIM expert jobs of one layer into ``policy``'s table; returns (and
        records) the table's error on them before the update."""
        from sieveopt.dag import EXPERT

        table = self.table(policy)
        jobs = []
        for t in dag.tasks:
            if t.kind != EXPERT or replay_result.schedule.modes[t.tid] != MODE_PIM or t.tokens <= 0:
                continue
            measured = float(replay_result.replayed_duration_ns[t.tid])
            if measured > 0:
                jobs.append((int(t.tokens), measured))
        errs = [abs(table.pim_expert_ns(n) - m) / m for n, m in jobs]      # the table the layer was planned on
        roof = [abs(table.fallback_ns(n) - m) / m for n, m in jobs]
        for n, m in jobs:
            table.observe(n, m)
        rec = {"policy": policy, "layer": len([h for h in self.history if h["policy"] == policy]),
               "jobs": len(jobs), "mean_abs_err": float(np.mean(errs)) if errs else float("nan"),
               "median_abs_err": float(np.median(errs)) if errs else float("nan"),
               "roofline_mean_abs_err": float(np.mean(roof)) if roof else float("nan"),
               "seen_counts": int(np.count_nonzero(table._observations))}
        self.history.append(rec)
        return rec
