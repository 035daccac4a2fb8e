"""Pictures of schedules: critical path, Chrome JSON / Perfetto protobuf traces, Gantt, DAG drawings."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from sieveopt.check import check
from sieveopt.errors import SieveoptError
from sieveopt.listsched import list_schedule
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.schedule import Schedule, modes_from_experts
from sieveopt.testing import random_instance
from sieveopt.viz import (
    critical_links,
    critical_path,
    dag_dot,
    dot_available,
    gantt,
    gantt_compare,
    read_chrome_trace,
    read_perfetto_trace,
    write_chrome_trace,
    write_dag,
    write_perfetto_trace,
    write_trace,
)
from sieveopt.viz.layout import build_layout, task_bytes


@pytest.fixture(scope="module")
def problem():
    model, system = load_model("gpt-oss-120b"), load_system("sieve-b200-hbm3e-pim", 4)
    inst = random_instance(np.random.default_rng(7), model, system, 32)
    dag, _ = build_dag(inst)
    return dag, system


def _schedules(dag):
    experts = sorted(dag.expert_task)
    mixed = {e: ("pim" if i % 2 else "gpu") for i, e in enumerate(experts)}
    out = {name: list_schedule(dag, modes_from_experts(dag, em, default_expert=d), policy=name)
           for name, em, d in (("all-gpu", None, "gpu"), ("all-pim", None, "pim"), ("mixed", mixed, "gpu"))}
    for s in out.values():
        assert check(s, dag).ok
    return out


def _shares_resource(dag, sched, a, b):
    ra = set(dag.tasks[a].modes[sched.modes[a]].resources)
    return bool(ra & set(dag.tasks[b].modes[sched.modes[b]].resources))


def test_critical_path_is_a_tight_chain_from_zero_to_makespan(problem):
    dag, _ = problem
    for sched in _schedules(dag).values():
        path = critical_path(sched, dag)
        links = critical_links(sched, dag)
        assert sched.end_ns[path[-1]] == sched.makespan_ns
        assert sched.start_ns[path[0]] == 0  # list schedules have no idle gaps on the chain
        assert len(path) == len(set(path)) == len(links) + 1
        edges = {(e.src, e.dst): e for e in dag.active_edges(sched.modes)}
        for lk in links:
            assert lk.kind in ("precedence", "resource")
            if lk.kind == "precedence":
                e = edges[(lk.src, lk.dst)]
                assert sched.end_ns[lk.src] + e.lag_ns == sched.start_ns[lk.dst]
            else:
                assert sched.end_ns[lk.src] == sched.start_ns[lk.dst]
                assert _shares_resource(dag, sched, lk.src, lk.dst)


def test_critical_path_crosses_idle_gaps_of_a_replayed_like_schedule(problem):
    dag, _ = problem
    base = _schedules(dag)["mixed"]
    last = critical_path(base, dag)[-1]
    start, end = base.start_ns.copy(), base.end_ns.copy()
    start[last] += 500  # a replay that started the final task late
    end[last] += 500
    late = Schedule(base.modes, start, end, "late")
    links = critical_links(late, dag)
    assert links[-1].dst == last and links[-1].kind == "slack"
    assert critical_path(late, dag)[-1] == last


def _check_chrome(trace, dag, sched):
    ev = trace["traceEvents"]
    assert trace["displayTimeUnit"] == "ns"
    procs = {e["pid"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    slices = [e for e in ev if e["ph"] == "X"]
    assert slices
    per_track = defaultdict(list)
    for e in slices:
        for k in ("ts", "dur", "pid", "tid", "name"):
            assert k in e, (k, e)
        assert e["dur"] >= 0 and e["pid"] in procs and (e["pid"], e["tid"]) in threads
        per_track[(e["pid"], e["tid"])].append(e)
    for e in ev:
        if e["ph"] in ("i", "C"):
            assert e["pid"] in procs
        if e["ph"] == "i":
            assert (e["pid"], e["tid"]) in threads
    for track in per_track.values():  # never two overlapping slices on one track
        track.sort(key=lambda e: e["ts"])
        for a, b in zip(track, track[1:], strict=False):
            assert b["ts"] >= a["ts"] + a["dur"] - 1e-9, (a["name"], b["name"])
    # Every task exactly once as a primary slice (or an instant) on the resource tracks.
    crit_pid = dag.num_gpus + 1
    primary = Counter(e["args"]["task"] for e in ev if e["ph"] in ("X", "i") and e["pid"] != crit_pid
                      and e["args"]["primary"] == 1)
    assert primary == Counter(range(len(dag.tasks)))
    for e in slices:
        t = e["args"]["task"]
        assert e["args"]["start_ns"] == sched.start_ns[t] and e["args"]["end_ns"] == sched.end_ns[t]
    # Flows: matched ids, each end bound inside a slice of its own track.
    starts = {e["id"]: e for e in ev if e["ph"] == "s"}
    ends = {e["id"]: e for e in ev if e["ph"] == "f"}
    assert starts.keys() == ends.keys()
    assert len(starts) == sum(1 for e in ev if e["ph"] == "s")
    for f in list(starts.values()) + list(ends.values()):
        assert any(x["ts"] <= f["ts"] <= x["ts"] + x["dur"] for x in per_track[(f["pid"], f["tid"])])
    assert all(e["bp"] == "e" for e in ends.values())
    return ev


def test_chrome_trace_follows_the_trace_event_rules(problem, tmp_path):
    dag, system = problem
    for name, sched in _schedules(dag).items():
        path = write_chrome_trace(sched, dag, tmp_path / f"{name}.json", system=system, flows="all")
        ev = _check_chrome(read_chrome_trace(path), dag, sched)
        crit = set(critical_path(sched, dag))
        flagged = {e["args"]["task"] for e in ev if e["ph"] in ("X", "i") and e["args"].get("critical")}
        assert flagged == crit
        n_active = sum(1 for e in dag.active_edges(sched.modes)
                       if sched.end_ns[e.src] > sched.start_ns[e.src] and sched.end_ns[e.dst] > sched.start_ns[e.dst])
        assert sum(1 for e in ev if e["ph"] == "s") == n_active
        # HBM counter integrates to the bytes of the GPU-mode tasks of each GPU.
        for g in range(dag.num_gpus):
            pts = [(e["ts"] * 1000.0, e["args"]["GBps"]) for e in ev
                   if e["ph"] == "C" and e["pid"] == g + 1 and e["name"] == "HBM bus GB/s"]
            area = sum(v * (t1 - t0) for (t0, v), (t1, _) in zip(pts, pts[1:], strict=False))
            want = sum(task_bytes(dag, t.tid) for t in dag.tasks if t.gpu == g and sched.modes[t.tid] == "gpu"
                       and sched.end_ns[t.tid] > sched.start_ns[t.tid])
            assert area == pytest.approx(want, rel=1e-4)
            assert all(v >= 0 for _, v in pts)


def test_chrome_trace_flow_selection_and_gzip(problem, tmp_path):
    dag, system = problem
    sched = _schedules(dag)["mixed"]
    crit_only = read_chrome_trace(write_chrome_trace(sched, dag, tmp_path / "c.json.gz", flows="critical"))
    cats = {e["cat"] for e in crit_only["traceEvents"] if e["ph"] in ("s", "f")}
    assert cats == {"critical_path"}
    assert (tmp_path / "c.json.gz").read_bytes()[:2] == b"\x1f\x8b"
    none = read_chrome_trace(write_chrome_trace(sched, dag, tmp_path / "n.json", flows="none"))
    assert not [e for e in none["traceEvents"] if e["ph"] in ("s", "f")]
    big = write_chrome_trace(sched, dag, tmp_path / "big.json", gzip_above_bytes=1000)
    assert big.name == "big.json.gz" and json.loads(gzip.decompress(big.read_bytes()))["traceEvents"]


def test_perfetto_protobuf_parses_back_through_the_bundled_proto(problem, tmp_path):
    pytest.importorskip("perfetto")
    dag, system = problem
    sched = _schedules(dag)["mixed"]
    for name in ("t.pftrace", "t.pftrace.gz"):
        trace = read_perfetto_trace(write_perfetto_trace(sched, dag, tmp_path / name, flows="all", system=system))
        tracks, names, procs = {}, {}, set()
        for p in trace.packet:
            if p.HasField("track_descriptor"):
                td = p.track_descriptor
                tracks[td.uuid] = td
                if td.HasField("process"):
                    procs.add(td.uuid)
                    assert td.process.process_name
                else:
                    assert td.name and td.parent_uuid in procs
                    names[td.uuid] = td.name
        depth, begins, flows_out, flows_in, last_ts = Counter(), Counter(), Counter(), Counter(), -1
        for p in trace.packet:
            if not p.HasField("track_event"):
                continue
            te = p.track_event
            assert p.trusted_packet_sequence_id == 1 and te.track_uuid in tracks
            assert p.timestamp >= last_ts  # streamed in time order
            last_ts = p.timestamp
            if te.type == te.TYPE_SLICE_BEGIN:
                depth[te.track_uuid] += 1
                begins[te.track_uuid] += 1
                assert depth[te.track_uuid] == 1, names.get(te.track_uuid)  # no overlap on a track
                flows_out.update(te.flow_ids)
                flows_in.update(te.terminating_flow_ids)
            elif te.type == te.TYPE_SLICE_END:
                depth[te.track_uuid] -= 1
                assert depth[te.track_uuid] == 0
        assert not +depth and flows_out == flows_in and set(flows_out.values()) == {1}
        layout = build_layout(sched, dag)
        n_slices = sum(len(r.slices) for r in layout.rows) + sum(1 for t in critical_path(sched, dag)
                                                               if sched.end_ns[t] > sched.start_ns[t])
        assert sum(begins.values()) == n_slices
        assert {"GPU stream", "PIM units", "NVLink egress", "HBM bus GB/s", "critical chain"} <= set(names.values())


def test_write_trace_picks_the_format_from_the_name(problem, tmp_path):
    dag, _ = problem
    sched = _schedules(dag)["all-gpu"]
    assert read_chrome_trace(write_trace(sched, dag, tmp_path / "a.json"))["traceEvents"]
    pytest.importorskip("perfetto")
    assert len(read_perfetto_trace(write_trace(sched, dag, tmp_path / "a.pftrace")).packet) > 0


def test_overlapping_replay_gets_extra_lanes_not_overlaps(problem):
    dag, _ = problem
    base = _schedules(dag)["all-gpu"]
    start, end = base.start_ns.copy(), base.end_ns.copy()
    gpu_tasks = [t.tid for t in dag.tasks if t.kind == "expert"][:2]
    start[gpu_tasks[1]], end[gpu_tasks[1]] = start[gpu_tasks[0]], end[gpu_tasks[0]]  # collide
    layout = build_layout(Schedule(base.modes, start, end), dag)
    for row in layout.rows:
        sl = sorted(row.slices, key=lambda s: s.start_ns)
        assert all(b.start_ns >= a.end_ns for a, b in zip(sl, sl[1:], strict=False))
    assert any(r.lane > 0 for r in layout.rows)


@pytest.fixture(scope="module")
def small_problem():
    model, system = load_model("gpt-oss-120b"), load_system("sieve-b200-hbm3e-pim", 1)
    dag, _ = build_dag(random_instance(np.random.default_rng(3), model, system, 8))
    return dag


@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_gantt_formats(small_problem, tmp_path, ext):
    dag = small_problem
    s = _schedules(dag)
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[ext]
    assert gantt(s["mixed"], dag, tmp_path / f"g{ext}").read_bytes().startswith(magic)
    with pytest.raises(SieveoptError, match="extension"):
        gantt(s["mixed"], dag, tmp_path / "g.txt")


def test_gantt_compare_stacks_schedules_on_one_axis(small_problem, tmp_path):
    import matplotlib.image as mpimg

    dag = small_problem
    s = _schedules(dag)
    one = mpimg.imread(gantt(s["mixed"], dag, tmp_path / "one.png"))
    two = mpimg.imread(gantt_compare([("a", s["all-gpu"], dag), ("b", s["all-pim"], dag)], tmp_path / "two.png"))
    assert two.shape[0] > 1.6 * one.shape[0] and two.shape[1] == one.shape[1]


def test_dag_dot_colours_modes_and_highlights_the_critical_path(problem, tmp_path):
    dag, _ = problem
    sched = _schedules(dag)["mixed"]
    text = dag_dot(dag, sched)
    for t in dag.tasks:
        assert f"t{t.tid} [" in text
    crit = critical_path(sched, dag)
    assert text.count("penwidth=3") == len(crit) + 1  # + the legend entry
    assert "#c9a3e0" in text and "#8cd17d" in text  # PIM and GPU fills
    collapsed = dag_dot(dag, sched, collapse=True)
    n_nodes = len(re.findall(r"^\s*g\d+ \[label", collapsed, flags=re.M))
    assert n_nodes == len({(t.gpu, t.kind, sched.modes[t.tid]) for t in dag.tasks}) < len(dag.tasks)
    assert write_dag(dag, tmp_path / "d.dot", sched).read_text() == text
    with pytest.raises(SieveoptError, match="extension"):
        write_dag(dag, tmp_path / "d.txt", sched)


@pytest.mark.skipif(not dot_available(), reason="Graphviz 'dot' not installed")
def test_dag_renders_through_graphviz(problem, tmp_path):
    dag, _ = problem
    sched = _schedules(dag)["mixed"]
    assert b"<svg" in write_dag(dag, tmp_path / "d.svg", sched, collapse=True).read_bytes()
    assert write_dag(dag, tmp_path / "d.png", sched, collapse=True).read_bytes().startswith(b"\x89PNG")


def test_cli_viz_writes_each_picture(tmp_path):
    from sieveopt.cli.main import main

    base = ["--model", "gpt-oss-120b", "--gpus", "2", "--batch", "16", "--policy", "gpu_only"]
    assert main(["viz", "trace", *base, "--out", str(tmp_path / "t.json.gz"), "--json"]) == 0
    _ = read_chrome_trace(tmp_path / "t.json.gz")
    assert main(["viz", "gantt", *base, "--policy", "allexp", "--out", str(tmp_path / "g.png")]) == 0
    assert main(["viz", "dag", *base, "--collapse", "--out", str(tmp_path / "d.dot")]) == 0
    assert "digraph" in (tmp_path / "d.dot").read_text()
    assert main(["viz", "dag", *base, "--out", str(tmp_path / "d.txt")]) == 2
    assert main(["viz", "trace", *base, "--policy", "allexp", "--out", str(tmp_path / "x.json")]) == 2


def test_cli_viz_replay_is_clear_when_unavailable(tmp_path, capsys):
    import importlib.util

    from sieveopt.cli.main import main

    rc = main(["viz", "gantt", "--model", "gpt-oss-120b", "--gpus", "2", "--batch", "16", "--policy", "gpu_only",
               "--replay", "--out", str(tmp_path / "r.png")])
    if importlib.util.find_spec("sieveopt.validation.replay") is None:
        assert rc == 2 and "replay not available yet" in capsys.readouterr().err
    else:
        assert rc == 0 and (tmp_path / "r.png").exists()
