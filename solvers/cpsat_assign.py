"""The n-way assignment relaxation of a layer DAG: a bound independent of the sequencing, solved
exactly, and the assignment that attains it (stage one of the two-stage approach of issue 16).

For a fixed mode choice the makespan is at least every resource's load inside the window its
tasks must run in, and every task's critical chain ``head + duration + tail``. Per GPU, the
n-way experts (modes other than the GPU/PIM pair, e.g. TriMoE's ``gpu_fetch``/``cpu``/``ndp``)
all run inside ``[H, M - Q]`` (H, Q: their smallest head and tail), so with the window length
``T = M - H - Q``:

* a unary resource (the CPU socket, the GPU, the PCIe link) holds at most T of their work;
* a resource of capacity ``c > 1`` with unit demands (TriMoE's D DIMM-NDP engines) colours into
  ``c`` machines (interval graphs are perfect: c colours suffice for any feasible schedule),
  each holding a multiset of tasks -- a *pattern* -- of total duration <= T;
* a mode whose own chain ``head - H + duration + tail - Q`` exceeds T is unusable.

Interchangeable experts (same GPU and, per mode, the same duration, resources, head and tail)
form *classes* counted as a whole, so identical experts and identical machines carry no
symmetry. Two solvers of that relaxation:

* :func:`configuration_bound`: its Gilmore-Gomory LP (column generation, bounded-knapsack
  pricing) under a binary search on T. Strong and fast (seconds), but fractional in the number
  of machines per pattern.
* :func:`pattern_search`: the exact IP at fixed T (every pattern enumerated; CP-SAT), probing
  upward from the LP bound and then bisecting; infeasible proves ``M > H + Q + T``, feasible gives
  an assignment whose every machine fits T. :func:`assignment_schedule` turns it into a checked
  schedule (the list scheduler, machines filled in the relaxation's order).

What was found on DeepSeek-V2 (design note trimoe.md): the plain energy LP bound was ~3 % low,
and the TriMoE greedy's schedule -- CP-SAT's incumbent -- ~10-15 % above the optimum of this
relaxation, which the list schedule of the exact assignment attains within 0.05 %. A CP-SAT model
of the same relaxation with per-machine counts (tried first) found no better assignment and no
better bound in 10-30 s: the LP of per-machine counts is the plain energy LP.

Everything here relaxes the scheduling problem (it forgets the order on each resource and the
precedences between the experts), so every bound is a valid makespan bound; tests hold them
against :func:`sieveopt.validation.bruteforce.brute_force` on tiny instances.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ortools.sat.python import cp_model

from sieveopt.dag import TaskDAG
from sieveopt.schedule import Schedule
from sieveopt.solvers._interval_model import make_solver
from sieveopt.solvers.cpsat_bounds import EnergyCut, HeadsTails
from sieveopt.solvers.cpsat_run import solve_by
from sieveopt.solvers.interruptible import run_interruptible


def task_classes(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails,
                 tasks: set[int] | None = None) -> list[list[int]]:
    """Choice tasks (of ``tasks``, default all) grouped into interchangeable classes: same GPU and,
    per mode, the same duration, resources, head and tail."""
    groups: dict[tuple, list[int]] = {}
    for t in dag.tasks:
        if not t.has_choice or (tasks is not None and t.tid not in tasks):
            continue
        key = (t.gpu, tuple(sorted((m, durations[t.tid][m], mc.resources, ht.head[(t.tid, m)], ht.tail[(t.tid, m)])
                                   for m, mc in t.modes.items())))
        groups.setdefault(key, []).append(t.tid)
    return list(groups.values())


def _knapsack(values: list[float], weights: list[int], counts: list[int], cap: int, cells: int) -> tuple[float, list[int]]:
    """Best ``sum values * a`` with ``sum weights * a <= cap``, ``0 <= a <= counts`` (integers).

    Weights are rounded *down* to ``cap / cells`` units, so the answer may use a slightly
    over-full pattern: a relaxation (more patterns than really fit), which keeps the bound valid."""
    import numpy as np

    unit = max(1, cap // cells)
    capu = cap // unit
    best = np.zeros(capu + 1)
    choice: list[np.ndarray] = []
    items: list[tuple[int, int]] = []           # (type, multiplicity) by binary splitting
    for k, (v, n) in enumerate(zip(values, counts, strict=True)):
        if v <= 0 or n <= 0:
            continue
        q = 1
        while n > 0:
            take = min(q, n)
            items.append((k, take))
            n -= take
            q *= 2
    for k, mult in items:
        wu = (weights[k] // unit) * mult
        if wu > capu:
            choice.append(np.zeros(capu + 1, dtype=bool))
            continue
        cand = np.full(capu + 1, -1.0)
        cand[wu:] = best[:capu + 1 - wu] + values[k] * mult
        take = cand > best + 1e-12
        best = np.where(take, cand, best)
        choice.append(take)
    c = int(np.argmax(best))
    a = [0] * len(values)
    for (k, mult), take in zip(reversed(items), reversed(choice), strict=True):
        if take[c]:
            a[k] += mult
            c -= (weights[k] // unit) * mult
    return float(sum(values[k] * a[k] for k in range(len(values)))), a


def _patterns(items: list[tuple[tuple[int, str], int, int]], T: int, limit: int) -> list[dict] | None:
    """Every multiset of ``items`` ((key, duration, max count)) with total duration <= T, or None
    when there are more than ``limit``."""
    out: list[dict] = []
    items = sorted(items, key=lambda x: -x[1])

    def dfs(i: int, rem: int, cur: dict) -> bool:
        if i == len(items):
            if cur:
                out.append(dict(cur))
            return len(out) <= limit
        key, d, n = items[i]
        for a in range(min(n, rem // max(1, d)), -1, -1):
            if a:
                cur[key] = a
            elif key in cur:
                del cur[key]
            if not dfs(i + 1, rem - a * d, cur):
                return False
        cur.pop(key, None)
        return True

    return out if dfs(0, T, {}) else None


class _Group:
    """One energy-cut group (a GPU's n-way experts, ``const = H + Q``) as classes and resources
    (capacity 1: a load row; capacity c > 1: c machines of patterns), with the LP and IP tests
    of a window length T."""

    def __init__(self, dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, const: int,
                 cuts: list[EnergyCut]) -> None:
        self.dag, self.dur, self.ht, self.const = dag, durations, ht, const
        self.caps = {c.resource: c.capacity for c in cuts}
        tasks = {t for c in cuts for t, _m, _d in c.terms}
        self.members = {cl[0]: cl for cl in task_classes(dag, durations, ht, tasks)}
        self.rep = {k: len(v) for k, v in self.members.items()}
        self.km = [(k, m) for k in sorted(self.rep) for m in dag.tasks[k].modes]
        #: patterns priced out at earlier windows, per resource (reseed the LP at the next T)
        self.pool: dict[int, dict[tuple, int]] = {}

    def usable(self, T: int) -> list[tuple[int, str]]:
        """(class, mode) whose own chain ``head - H + duration + tail - Q`` fits the window T."""
        return [(k, m) for k, m in self.km
                if self.ht.head[(k, m)] + self.dur[k][m] + self.ht.tail[(k, m)] - self.const <= T]

    def held(self, k: int, m: str) -> list[int]:
        """The group's resources a (class, mode) holds; empty for a zero-length mode (free)."""
        if self.dur[k][m] <= 0:
            return []
        return [r for r in self.dag.tasks[k].modes[m].resources if r in self.caps]

    def primary(self, k: int, m: str) -> int | None:
        """The resource whose machines hold the mode's patterns (capacity > 1 first)."""
        rs = self.held(k, m)
        return max(rs, key=lambda r: (self.caps[r] > 1, -rs.index(r))) if rs else None

    def lp_feasible(self, T: int, cells: int, max_rounds: int) -> tuple[bool, int]:
        """Configuration LP at window T by column generation: (not proven infeasible, columns)."""
        from ortools.linear_solver import pywraplp

        lp = pywraplp.Solver.CreateSolver("GLOP")
        usable = self.usable(T)
        cover = {k: lp.Constraint(n, lp.infinity()) for k, n in self.rep.items()}
        slack = []
        for c in cover.values():
            s = lp.NumVar(0, lp.infinity(), "")
            c.SetCoefficient(s, 1)
            slack.append(s)
        lp.Minimize(sum(slack))
        prim = {km: self.primary(*km) for km in usable}
        for km, r in prim.items():
            if r is None:                         # a free mode covers its class at no cost
                cover[km[0]].SetCoefficient(lp.NumVar(0, lp.infinity(), ""), 1)
        mach = {r: lp.Constraint(-lp.infinity(), c) for r, c in self.caps.items() if r in prim.values()}
        rows = {r: lp.Constraint(-lp.infinity(), c * T) for r, c in self.caps.items()}
        on = {r: [km for km in usable if prim[km] == r] for r in mach}

        def add_column(r: int, a: list[int]) -> None:
            z = lp.NumVar(0, lp.infinity(), "")
            mach[r].SetCoefficient(z, 1)
            for (k, m), cnt in zip(on[r], a, strict=True):
                if cnt:
                    cover[k].SetCoefficient(z, cover[k].GetCoefficient(z) + cnt)
                    for x in self.held(k, m):
                        if x != r:
                            rows[x].SetCoefficient(z, rows[x].GetCoefficient(z) + cnt * self.dur[k][m])

        cols = 0
        for r in mach:                            # singleton patterns to start from
            for i in range(len(on[r])):
                add_column(r, [int(j == i) for j in range(len(on[r]))])
                cols += 1
            idx = {km: i for i, km in enumerate(on[r])}
            for pat, load in self.pool.get(r, {}).items():   # earlier windows' patterns that fit T
                if load <= T and all(km in idx for km, _ in pat):
                    a = [0] * len(on[r])
                    for km, cnt in pat:
                        a[idx[km]] = cnt
                    add_column(r, a)
                    cols += 1
        for _ in range(max_rounds):
            if (run_interruptible(lp.Solve, stop=lp.InterruptSolve) != pywraplp.Solver.OPTIMAL  # Ctrl-C
                    or lp.Objective().Value() <= 1e-7):
                return True, cols                 # covered (or numerical trouble: claim nothing)
            pi = {k: c.dual_value() for k, c in cover.items()}
            row_dual = {x: c.dual_value() for x, c in rows.items()}
            mu = {r: c.dual_value() for r, c in mach.items()}   # every dual read before adding
            new = []
            for r in mach:
                # a pattern's reduced cost: -(sum pi_k a_k + mu_r + the load-row duals of the
                # modes' other resources times their durations)
                vals = [pi[k] + sum(row_dual[x] * self.dur[k][m] for x in self.held(k, m) if x != r)
                        for k, m in on[r]]
                best, a = _knapsack(vals, [self.dur[k][m] for k, m in on[r]], [self.rep[k] for k, _ in on[r]],
                                    T, cells)
                if best + mu[r] > 1e-9:
                    new.append((r, a))
            for r, a in new:
                add_column(r, a)
                pat = tuple((km, cnt) for km, cnt in zip(on[r], a, strict=True) if cnt)
                self.pool.setdefault(r, {})[pat] = sum(self.dur[k][m] * cnt for (k, m), cnt in pat)
            cols += len(new)
            if not new:   # phase-1 optimum positive and no improving column: LP infeasible at T
                return lp.Objective().Value() <= 1e-6 * max(1, len(self.rep)), cols
        return True, cols                         # undecided: claim nothing

    def ip_test(self, T: int, limit_s: float, seed: int, deterministic: bool,
                max_patterns: int) -> tuple[str, dict | None]:
        """The relaxation at window T as an IP (every pattern enumerated): "feasible" (with the
        solution), "infeasible", "unknown" (limit reached) or "too_many" (patterns)."""
        usable = self.usable(T)
        model = cp_model.CpModel()
        cover: dict[int, list] = {k: [] for k in self.rep}
        rows: dict[int, list] = {r: [] for r in self.caps}
        y: dict[tuple[int, str], object] = {}
        pats: dict[int, list[tuple[dict, object]]] = {}
        for k, m in usable:
            r0 = self.primary(k, m)
            if r0 is not None and self.caps[r0] > 1:
                continue
            y[(k, m)] = v = model.new_int_var(0, self.rep[k], "")
            cover[k].append((1, v))
            for r in self.held(k, m):
                rows[r].append((self.dur[k][m], v))
        for r, c in self.caps.items():
            if c == 1:
                continue
            its = [((k, m), self.dur[k][m], self.rep[k]) for k, m in usable if self.primary(k, m) == r]
            ps = _patterns(its, T, max_patterns)
            if ps is None:
                return "too_many", None
            pats[r] = []
            for p in ps:
                v = model.new_int_var(0, c, "")
                pats[r].append((p, v))
                for (k, m), a in p.items():
                    cover[k].append((a, v))
                    for x in self.held(k, m):
                        if x != r:
                            rows[x].append((a * self.dur[k][m], v))
            model.add(sum(v for _p, v in pats[r]) <= c)
        for k, terms in cover.items():
            model.add(sum(a * v for a, v in terms) == self.rep[k])
        for r, terms in rows.items():
            if terms and r not in pats:
                model.add(sum(a * v for a, v in terms) <= self.caps[r] * T)
        solver = make_solver(workers=1, seed=seed, time_limit_s=limit_s, deterministic=deterministic)
        st = solve_by(solver, model)
        if st == cp_model.INFEASIBLE:
            return "infeasible", None
        if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return "unknown", None
        return "feasible", {"y": {km: solver.value(v) for km, v in y.items()},
                            "z": {r: [(pp, solver.value(v)) for pp, v in lst if solver.value(v)]
                                  for r, lst in pats.items()}}


def _groups(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, energy: list[EnergyCut]) -> list[_Group]:
    by: dict[int, list[EnergyCut]] = {}
    for c in energy:
        by.setdefault(c.const, []).append(c)
    return [_Group(dag, durations, ht, const, cuts) for const, cuts in sorted(by.items())]


@dataclass(frozen=True)
class ConfigurationBound:
    """Configuration-LP bound of the n-way assignment (see :func:`configuration_bound`)."""

    bound_ns: int
    per_group_ns: dict[int, int]        # energy-cut constant (one per GPU) -> bound
    columns: int                        # machine patterns generated, all groups


def configuration_bound(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails,
                        energy: list[EnergyCut], lo_ns: int, hi_ns: int, *, tol_ns: int = 200,
                        cells: int = 20000, max_rounds: int = 200,
                        time_limit_s: float | None = None) -> ConfigurationBound | None:
    """Gilmore-Gomory configuration LP of the relaxation (module docstring), per GPU.

    At a window length T the LP asks whether fractional pattern counts (at most c per resource
    of capacity c, c = 1 included) cover every class; patterns come from column generation
    (pricing: a bounded knapsack with weights rounded down, i.e. over a superset of the real
    patterns, so "no improving column" still proves infeasibility). LP-infeasible at T proves
    ``M > H + Q + T``; a binary search over T in ``[lo_ns, hi_ns]`` (makespans; ``lo_ns`` a known
    bound, ``hi_ns`` a feasible makespan) gives the bound to ``tol_ns``, rounded to the valid side
    (``time_limit_s`` stops the search early, still valid). None without n-way experts."""
    t_end = None if time_limit_s is None else time.perf_counter() + time_limit_s
    per: dict[int, int] = {}
    ncols = 0
    for g in _groups(dag, durations, ht, energy):
        lo, hi = max(0, lo_ns - g.const), max(0, hi_ns - g.const)   # window lengths
        ok, c = g.lp_feasible(lo, cells, max_rounds)
        ncols += c
        if ok:
            per[g.const] = g.const + lo
            continue
        tol = max(tol_ns, lo // 2000)             # 0.05 % of the window is close enough to stop
        while hi - lo > tol and (t_end is None or time.perf_counter() < t_end):
            mid = (lo + hi) // 2                  # invariant: lo infeasible, hi feasible
            ok, c = g.lp_feasible(mid, cells, max_rounds)
            ncols += c
            if ok:
                hi = mid
            else:
                lo = mid
        per[g.const] = g.const + lo + 1
    if not per:
        return None
    return ConfigurationBound(max(per.values()), per, ncols)


@dataclass(frozen=True)
class PatternSearch:
    """Exact assignment relaxation by pattern IPs (see :func:`pattern_search`)."""

    bound_ns: int                       # proven lower bound (all groups)
    window_ns: dict[int, int]           # group constant -> window length of the best assignment
    modes: dict[int, str]               # choice task -> mode of the best assignment
    place: dict[int, tuple[int, int]]   # choice task -> (resource, machine)
    tests: int                          # IP tests run


def _search_group(g: _Group, lo: int, hi: int, test, tol_ns: int, max_tests: int,  # noqa: ANN001
                  t_end: float) -> tuple[int, int, dict | None, int, bool]:
    """(lo proven infeasible, hi, best solution at hi or None, tests, too many patterns)."""
    best: dict | None = None
    step, tests = max(tol_ns, lo // 400), 0
    while best is None and lo + 1 < hi and tests < max_tests and time.perf_counter() < t_end:
        T = min(hi, lo + step)
        st, sol = test(T)
        tests += 1
        if st == "too_many":
            return lo, hi, None, tests, True
        if st == "feasible":
            hi, best = T, sol
        elif st == "infeasible":
            lo = T
        elif T >= hi:
            break
        else:
            step *= 2                             # undecided: look higher for an easy feasible T
    while best is not None and hi - lo > tol_ns and tests < max_tests and time.perf_counter() < t_end:
        mid = (lo + hi) // 2
        st, sol = test(mid)
        tests += 1
        if st == "feasible":
            hi, best = mid, sol
        elif st == "infeasible":
            lo = mid
        else:
            break
    return lo, hi, best, tests, False


def pattern_search(dag: TaskDAG, durations: list[dict[str, int]], ht: HeadsTails, energy: list[EnergyCut],
                   lo_ns: int, hi_ns: int, *, time_limit_s: float = 20.0, seed: int = 0,
                   deterministic: bool = False, max_patterns: int = 20000, tol_ns: int = 200,
                   max_tests: int = 24) -> PatternSearch | None:
    """Solve the relaxation exactly, per GPU, by IP tests of the window T between ``lo_ns`` (a
    proven makespan bound, e.g. :func:`configuration_bound`) and ``hi_ns`` (a feasible makespan).

    At a fixed T: integer counts per (class, mode) on unary resources (load <= T on each), and
    integer counts of every pattern of each capacity c > 1 resource (enumerated; at most c of
    them), CP-SAT deciding. The search probes just above the bound (widening when undecided),
    then bisects. Each test gets half of the time left (at least 0.5 s); with ``deterministic``
    it gets ``time_limit_s / 4`` of CP-SAT's deterministic time and the wall clock is never read (at most ``max_tests`` tests per GPU), so
    results are reproducible. None when some GPU has more than ``max_patterns`` patterns."""
    t_end = math.inf if deterministic else time.perf_counter() + time_limit_s
    per_test = max(0.5, time_limit_s / 4)      # deterministic time per test
    modes: dict[int, str] = {}
    place: dict[int, tuple[int, int]] = {}
    window: dict[int, int] = {}
    bound, tests = lo_ns, 0
    for g in _groups(dag, durations, ht, energy):
        def test(T: int, g: _Group = g) -> tuple[str, dict | None]:
            # wall clock: half of what is left (the first probes matter most), at least 0.5 s
            left = per_test if deterministic else min(t_end - time.perf_counter(),
                                                      max(0.5, (t_end - time.perf_counter()) / 2))
            if left <= 0.05:
                return "unknown", None
            return g.ip_test(T, left, seed, deterministic, max_patterns)

        lo, hi, best, n, too_many = _search_group(g, max(0, lo_ns - g.const - 1), max(0, hi_ns - g.const),
                                                  test, tol_ns, max_tests, t_end)
        tests += n
        if too_many:
            return None
        bound = max(bound, g.const + lo + 1)
        if best is None:
            continue
        window[g.const] = hi
        left = {k: list(mem) for k, mem in g.members.items()}
        for (k, m), cnt in best["y"].items():
            for _ in range(cnt):
                t = left[k].pop()
                modes[t] = m
                r = g.primary(k, m)
                if r is not None:
                    place[t] = (r, 0)
        for r, lst in best["z"].items():
            j = 0
            for pp, cnt in lst:
                for _ in range(cnt):
                    for (k, m), a in sorted(pp.items()):
                        for _ in range(a):
                            t = left[k].pop()
                            modes[t], place[t] = m, (r, j)
                    j += 1
    return PatternSearch(bound, window, modes, place, tests)


def assignment_schedule(dag: TaskDAG, ps: PatternSearch, policy: str = "assignment") -> Schedule:
    """A timed schedule of the pattern search's assignment: its modes (other choice tasks at their
    shortest mode) through the list scheduler, with each task's priority its virtual start on its
    machine (machine by machine, longest first), so the scheduler fills the machines as the
    relaxation packed them (every schedule it returns passes ``check``)."""
    import numpy as np

    from sieveopt.listsched import list_schedule

    modes = [min(t.modes, key=lambda m, t=t: t.modes[m].duration_ns) for t in dag.tasks]
    for t, m in ps.modes.items():
        modes[t] = m
    prio = np.zeros(len(dag.tasks))
    acc: dict[tuple[int, int], int] = {}
    for t in sorted(ps.place, key=lambda t: (-dag.tasks[t].modes[modes[t]].duration_ns, t)):
        key = ps.place[t]
        prio[t] = acc.get(key, 0)
        acc[key] = int(prio[t]) + dag.tasks[t].modes[modes[t]].duration_ns
    return list_schedule(dag, modes, prio, policy=policy, meta={"pattern_tests": ps.tests})
