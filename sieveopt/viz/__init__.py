"""Pictures of schedules: Perfetto/Chrome traces, Gantt charts, DAG drawings, critical paths.

Every function takes any schedule-like object (``modes``, ``start_ns``, ``end_ns`` per task: a
solver's :class:`~sieveopt.schedule.Schedule` or a replayed one) plus its :class:`TaskDAG`.
Heavy imports (matplotlib, perfetto) happen inside the functions that need them.
"""

from sieveopt.critpath import CriticalLink, critical_links, critical_path
from sieveopt.viz.chrome_trace import chrome_trace, read_chrome_trace, write_chrome_trace
from sieveopt.viz.dagdraw import dag_dot, dot_available, render_dot, write_dag
from sieveopt.viz.gantt import gantt, gantt_compare
from sieveopt.viz.layout import build_layout
from sieveopt.viz.perfetto_proto import read_perfetto_trace, write_perfetto_trace


def write_trace(schedule, dag, path, **kwargs):
    """Write a trace whose format follows the name: ``.pftrace[.gz]``/``.perfetto-trace`` ->
    Perfetto protobuf, anything else (``.json``, ``.json.gz``) -> Chrome trace-event JSON."""
    from pathlib import Path

    name = Path(path).name
    if name.endswith((".pftrace", ".pftrace.gz", ".perfetto-trace", ".pb")):
        return write_perfetto_trace(schedule, dag, path, **{k: v for k, v in kwargs.items() if k != "meta"})
    return write_chrome_trace(schedule, dag, path, **kwargs)


__all__ = ["CriticalLink", "build_layout", "chrome_trace", "critical_links", "critical_path", "dag_dot",
           "dot_available", "gantt", "gantt_compare", "read_chrome_trace", "read_perfetto_trace", "render_dot",
           "write_chrome_trace", "write_dag", "write_perfetto_trace", "write_trace"]
