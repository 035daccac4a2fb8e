"""The vectorised simulator against a plain event-by-event reference, plus determinism."""

from __future__ import annotations

import heapq
import math
import random
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sieveopt.validation.interconnect import (
    LinkParams,
    Message,
    alltoall_messages,
    simulate,
    stages,
)


def _ps(nbytes: int, bw_GBps: float) -> int:
    return math.ceil(Fraction(nbytes * 1000) / Fraction(bw_GBps))


def reference(messages: list[Message], p: LinkParams, order: dict[int, list[int]] | None):
    """One packet at a time, one port at a time, written for clarity not speed."""
    lat = math.ceil(Fraction(str(p.latency_ns)) * 1000)
    rel = {m.msg_id: math.ceil(Fraction(str(m.release_ns)) * 1000) for m in messages}
    by_id = {m.msg_id: m for m in messages}
    packets = []  # dicts
    for port in range(p.num_gpus):
        mine = [m for m in messages if m.src == port]
        if order and port in order:
            seq = [by_id[i] for i in order[port]]
        else:
            seq = sorted(mine, key=lambda m: (rel[m.msg_id], m.msg_id))
        queues = []
        for m in seq:
            n = max(1, math.ceil(m.bytes / p.packet_bytes))
            q, sent = [], 0
            for k in range(n):
                payload = min(p.packet_bytes, m.bytes - k * p.packet_bytes)
                wire_before = sent
                sent += payload + p.header_bytes
                q.append({"msg": m.msg_id, "src": m.src, "dst": m.dst, "before": wire_before,
                          "after": sent,
                          "s": _ps(sent, p.bw_per_direction_GBps)
                          - _ps(wire_before, p.bw_per_direction_GBps)})
            queues.append(q)
        t = 0
        if p.egress_policy == "fifo":
            for m, q in zip(seq, queues, strict=True):
                t = max(t, rel[m.msg_id])
                for pk in q:
                    pk["tx0"], t = t, t + pk["s"]
                    pk["tx1"] = t
        else:
            nxt = [0] * len(seq)
            last = -1
            while any(nxt[i] < len(q) for i, q in enumerate(queues)):
                live = [i for i, q in enumerate(queues) if nxt[i] < len(q)]
                ready = [i for i in live if rel[seq[i].msg_id] <= t]
                if not ready:
                    t = min(rel[seq[i].msg_id] for i in live)
                    continue
                after = [i for i in ready if i > last]
                i = min(after) if after else min(ready)
                pk = queues[i][nxt[i]]
                pk["tx0"], t = t, t + pk["s"]
                pk["tx1"] = t
                nxt[i] += 1
                last = i
        for q in queues:
            for seqno, pk in enumerate(q):
                pk["seq"] = seqno
            packets.extend(q)
    for n, pk in enumerate(packets):
        pk["seq"] = n  # packets listed per source in issue order: (src, seq) order
        saf = p.switching == "store_and_forward"
        hdr = _ps(p.header_bytes, p.bw_per_direction_GBps)
        pk["ready"] = pk["tx1"] + lat if saf else pk["tx0"] + lat + hdr
        pk["floor"] = None if saf else pk["tx1"] + lat
    switch_busy = 0
    if p.switch_bw_GBps is not None:
        heap = [(pk["ready"], pk["src"], pk["seq"], i) for i, pk in enumerate(packets)]
        heapq.heapify(heap)
        free = 0
        while heap:
            _, _, _, i = heapq.heappop(heap)
            pk = packets[i]
            s = _ps(pk["after"], p.switch_bw_GBps) - _ps(pk["before"], p.switch_bw_GBps)
            start = max(pk["ready"], free)
            free = start + s
            switch_busy += s
            pk["ready"] = start + _ps(p.header_bytes, p.switch_bw_GBps)
            pk["floor"] = free if pk["floor"] is None else max(pk["floor"], free)
    heap = [(pk["ready"], pk["src"], pk["seq"], i) for i, pk in enumerate(packets)]
    heapq.heapify(heap)
    free = [0] * p.num_gpus
    in_busy = [0] * p.num_gpus
    while heap:
        _, _, _, i = heapq.heappop(heap)
        pk = packets[i]
        start = max(pk["ready"], free[pk["dst"]])
        end = start + pk["s"]
        if pk["floor"] is not None:
            end = max(end, pk["floor"])
        free[pk["dst"]] = end
        in_busy[pk["dst"]] += end - start
        pk["rx1"] = end
    out = {}
    for m in messages:
        mine = [pk for pk in packets if pk["msg"] == m.msg_id]
        out[m.msg_id] = (min(pk["tx0"] for pk in mine), max(pk["tx1"] for pk in mine),
                         max(pk["rx1"] for pk in mine))
    return out, in_busy, switch_busy


@st.composite
def cases(draw):
    g = draw(st.integers(2, 5))
    p = LinkParams(
        num_gpus=g,
        bw_per_direction_GBps=draw(st.sampled_from([900.0, 1000.0, 450.5])),
        latency_ns=draw(st.sampled_from([0.0, 800.0, 123.4])),
        packet_bytes=draw(st.sampled_from([64, 100, 256, 1000])),
        header_bytes=draw(st.sampled_from([0, 16])),
        switching=draw(st.sampled_from(["cut_through", "store_and_forward"])),
        switch_bw_GBps=draw(st.sampled_from([None, 300.0, 2000.0])),
        egress_policy=draw(st.sampled_from(["fifo", "round_robin"])),
    )
    n = draw(st.integers(1, 12))
    msgs = []
    for i in range(n):
        src = draw(st.integers(0, g - 1))
        dst = (src + draw(st.integers(1, g - 1))) % g
        release = draw(st.sampled_from([0, 0, 1.5, 200, 999.999, 2500]))
        msgs.append(Message(100 + 7 * i, src, dst, draw(st.integers(0, 5000)), release))
    order = None
    if draw(st.booleans()):
        rng = random.Random(draw(st.integers(0, 10**6)))
        order = {}
        for port in range(g):
            ids = [m.msg_id for m in msgs if m.src == port]
            if ids and rng.random() < 0.7:
                rng.shuffle(ids)
                order[port] = ids
    return msgs, p, order


@settings(max_examples=150, deadline=None)
@given(cases())
def test_vectorised_simulator_matches_event_reference(case):
    msgs, p, order = case
    r = simulate(msgs, p, order=order)
    ref, in_busy, switch_busy = reference(msgs, p, order)
    for i, m in enumerate(msgs):
        got = (int(r.first_tx_start_ps[i]), int(r.last_tx_end_ps[i]), int(r.arrival_ps[i]))
        assert got == ref[m.msg_id], (m, got, ref[m.msg_id])
    assert r.ingress_busy_ps.tolist() == in_busy
    assert r.switch_busy_ps == switch_busy
    # nothing arrives before its release + latency + its own serialization
    for i, m in enumerate(msgs):
        assert r.arrival_ps[i] >= r.release_ps[i] + p.latency_ps + _ps(m.bytes, p.bw_per_direction_GBps)


def _dispatch_matrix(seed: int, g: int = 8) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    tokens = rng.binomial(32, 1 - (1 - 1 / 8) ** 10, size=(g, g))
    np.fill_diagonal(tokens, 0)
    return (tokens * 4096 * 2).tolist()


def test_deterministic_and_independent_of_input_order():
    msgs = alltoall_messages(_dispatch_matrix(1), release_ns_per_src=[0, 50, 10, 0, 300, 5, 5, 0])
    for policy in ("fifo", "round_robin"):
        p = LinkParams.sieve_b200(8, egress_policy=policy)
        a = simulate(msgs, p)
        b = simulate(msgs, p)
        shuffled = list(msgs)
        random.Random(3).shuffle(shuffled)
        c = simulate(shuffled, p)
        assert a.to_dict() == b.to_dict()
        assert a.arrival_ns_by_id() == c.arrival_ns_by_id()
        assert a.egress_busy_ps.tolist() == c.egress_busy_ps.tolist()


def test_dispatch_packet_size_convergence():
    """Coarser packets are a speed knob: the makespan converges as packets shrink."""
    msgs = alltoall_messages(_dispatch_matrix(2))
    ref = simulate(msgs, LinkParams.sieve_b200(8, packet_bytes=64)).makespan_ps
    prev = None
    for pkt in [65_536, 16_384, 4096, 1024, 256]:
        got = simulate(msgs, LinkParams.sieve_b200(8, packet_bytes=pkt)).makespan_ps
        err = abs(got - ref)
        assert err <= 8 * _ps(pkt, 900.0)
        if prev is not None:
            assert err <= prev
        prev = err
    assert prev / ref < 1e-3


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 400), st.integers(1, 6), st.booleans())
def test_compiled_port_stage_matches_numpy_closed_form(seed, n, ports, with_floor):
    rng = np.random.default_rng(seed)
    port = np.sort(rng.integers(0, ports, n))
    ready = rng.integers(0, 5000, n).astype(np.int64)
    service = rng.integers(0, 300, n).astype(np.int64)
    floor = ready + rng.integers(0, 900, n) if with_floor else None
    a = stages.serve_in_order(ready, service, floor, port)
    b = stages.serve_in_order_numpy(ready, service, floor, port)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
