"""Power over time of a schedule (W per GPU, piecewise constant) for Perfetto counter tracks:
each task spreads its mode-dependent energy evenly over its duration, DRAM tasks add the
open-row background power while they run, and every GPU draws the constant power (static,
precharge standby, refresh) throughout. The integral over the makespan is the cost-model
energy (``residency="sum"``) of :meth:`.layer.LayerEnergyModel.energy`."""

from __future__ import annotations

from typing import Any

from sieveopt.dag import TaskDAG


def power_series(dag: TaskDAG, schedule: Any, em: Any, *, simulated: bool = False) -> dict[int, list[tuple[int, float]]]:
    """GPU -> [(t_ns, W)], a step function starting at 0 and ending at the makespan (value 0)."""
    end_all = int(max(schedule.end_ns)) if len(schedule.end_ns) else 0
    const_w = em.constant_pJ_per_ns(1) * 1e-3
    deltas: dict[int, dict[int, float]] = {g: {0: const_w, end_all: -const_w} for g in range(dag.num_gpus)}
    for t in dag.tasks:
        m = schedule.modes[t.tid]
        e_pj = sum(em.task_energy_pJ(t, m, simulated=simulated, dag=dag).values())
        s, e = int(schedule.start_ns[t.tid]), int(schedule.end_ns[t.tid])
        e = max(e, s + 1)
        w = e_pj / (e - s) * 1e-3
        if em.uses_dram(t, m):
            w += em.open_row_pJ_per_ns() * 1e-3
        if w == 0.0:
            continue
        d = deltas[t.gpu]
        d[s] = d.get(s, 0.0) + w
        d[e] = d.get(e, 0.0) - w
    out = {}
    for g, d in deltas.items():
        level, pts = 0.0, []
        for ts in sorted(d):
            level += d[ts]
            v = level if abs(level) > 1e-9 else 0.0
            if pts and pts[-1][0] == ts:
                pts[-1] = (ts, v)
            else:
                pts.append((ts, v))
        out[g] = pts
    return out


def energy_of_series(series: dict[int, list[tuple[int, float]]]) -> float:
    """Joules under the step functions (for tests)."""
    tot = 0.0
    for pts in series.values():
        for (t0, v), (t1, _) in zip(pts, pts[1:], strict=False):
            tot += v * (t1 - t0) * 1e-9
    return tot
