"""Interconnect simulator: input validation, issue order, collectives helpers, result API."""

from __future__ import annotations

import orjson
import pytest

from sieveopt.errors import SieveoptError, SpecError
from sieveopt.validation.interconnect import (
    InterconnectError,
    LinkParams,
    Message,
    allgather_messages,
    alltoall_messages,
    simulate,
)

P = LinkParams(num_gpus=4, bw_per_direction_GBps=1000.0, latency_ns=500.0)


@pytest.mark.parametrize("msg, needle", [
    (Message(0, 0, 1, -5), "bytes=-5"),
    (Message(0, 0, 1, 2.5), "whole number"),
    (Message(0, 2, 2, 100), "src == dst == 2"),
    (Message(0, 0, 4, 100), "GPU out of range"),
    (Message(0, -1, 1, 100), "GPU out of range"),
    (Message(0, 0, 1, 100, release_ns=-1), "release_ns=-1"),
    (Message(0, 0, 1, 100, release_ns=float("nan")), "release_ns=nan"),
])
def test_bad_messages_raise_clear_errors(msg, needle):
    with pytest.raises(InterconnectError, match="message 0") as exc:
        simulate([Message(9, 1, 0, 10), msg], P)
    assert needle in str(exc.value)
    assert isinstance(exc.value, SieveoptError)


def test_duplicate_ids_and_non_messages_are_rejected():
    with pytest.raises(InterconnectError, match="duplicate msg_id 3"):
        simulate([Message(3, 0, 1, 10), Message(3, 1, 0, 10)], P)
    with pytest.raises(InterconnectError, match="Message"):
        simulate([(0, 0, 1, 10)], P)  # type: ignore[list-item]


@pytest.mark.parametrize("kw, field", [
    ({"num_gpus": 1}, "num_gpus"),
    ({"bw_per_direction_GBps": 0}, "bw_per_direction_GBps"),
    ({"latency_ns": -1}, "latency_ns"),
    ({"packet_bytes": 0}, "packet_bytes"),
    ({"header_bytes": -1}, "header_bytes"),
    ({"switching": "wormhole"}, "switching"),
    ({"egress_policy": "lifo"}, "egress_policy"),
    ({"switch_bw_GBps": -3}, "switch_bw_GBps"),
])
def test_bad_link_params_name_the_field(kw, field):
    with pytest.raises(SpecError, match=f"field '{field}'"):
        LinkParams(**{"num_gpus": 4, **kw})


def test_issue_order_changes_who_goes_first():
    msgs = [Message(1, 0, 1, 10_000), Message(2, 0, 2, 10_000)]
    default = simulate(msgs, P).arrival_ns_by_id()
    assert default[1] < default[2]
    flipped = simulate(msgs, P, order={0: [2, 1]}).arrival_ns_by_id()
    assert flipped[2] < flipped[1]
    assert flipped[1] == default[2] and flipped[2] == default[1]


def test_fifo_issue_order_holds_back_later_messages():
    """The schedule's order is obeyed even if the head of the queue is released later."""
    msgs = [Message(1, 0, 1, 1000, release_ns=100), Message(2, 0, 2, 1000, release_ns=0)]
    r = simulate(msgs, P, order={0: [1, 2]})
    assert r.message(2).first_tx_start_ns == 101  # after message 1 (100 ns + 1 ns)
    rr = simulate(msgs, LinkParams(**{**P.__dict__, "egress_policy": "round_robin"}),
                  order={0: [1, 2]})
    assert rr.message(2).first_tx_start_ns == 0  # round-robin serves what is released


@pytest.mark.parametrize("order, needle", [
    ({0: [1]}, r"missing \[2\]"),
    ({0: [1, 2, 2]}, "duplicates=True"),
    ({0: [1, 2, 3]}, r"not from this GPU \[3\]"),
    ({7: []}, "not a GPU id"),
])
def test_bad_orders_are_rejected(order, needle):
    msgs = [Message(1, 0, 1, 10), Message(2, 0, 2, 10), Message(3, 1, 0, 10)]
    with pytest.raises(InterconnectError, match=needle):
        simulate(msgs, P, order=order)


def test_allgather_messages_rotates_destinations():
    msgs = allgather_messages(4, [10, 20, 30, 40], release_ns_per_gpu=[0, 1, 2, 3])
    assert len(msgs) == 12
    assert [(m.src, m.dst) for m in msgs[:3]] == [(0, 1), (0, 2), (0, 3)]
    assert [(m.src, m.dst) for m in msgs[3:6]] == [(1, 2), (1, 3), (1, 0)]
    assert {m.bytes for m in msgs if m.src == 2} == {30}
    assert {m.release_ns for m in msgs if m.src == 3} == {3.0}
    assert len({m.msg_id for m in msgs}) == 12
    with pytest.raises(InterconnectError, match="release_ns_per_gpu: expected 4"):
        allgather_messages(4, 10, release_ns_per_gpu=[0, 1])


def test_alltoall_messages_skips_diagonal_and_empties():
    matrix = [[5, 0, 7], [1, 9, 2], [3, 4, 6]]
    msgs = alltoall_messages(matrix, release_ns_per_src=10, first_msg_id=100)
    assert sorted((m.src, m.dst, m.bytes) for m in msgs) == [
        (0, 2, 7), (1, 0, 1), (1, 2, 2), (2, 0, 3), (2, 1, 4)]
    assert msgs[0].msg_id == 100 and all(m.release_ns == 10 for m in msgs)
    assert len(alltoall_messages(matrix, skip_empty=False)) == 6
    with pytest.raises(InterconnectError, match="square"):
        alltoall_messages([[0, 1], [1]])
    with pytest.raises(InterconnectError, match=r"matrix_bytes\[0\]\[1\]"):
        alltoall_messages([[0, 1.5], [1, 0]])


def test_result_reports_and_serialises():
    msgs = alltoall_messages([[0, 3000, 0], [0, 0, 2000], [1000, 0, 0]])
    r = simulate(msgs, LinkParams(num_gpus=3, bw_per_direction_GBps=1000.0, latency_ns=500.0))
    d = orjson.loads(orjson.dumps(r.to_dict()))
    assert d["num_messages"] == 3 and d["makespan_ns"] == 503
    assert [m["arrival_ns"] for m in d["messages"]] == [503, 502, 501]
    assert d["egress_busy_ns"] == [3, 2, 1]
    assert d["ingress_busy_ns"] == [1, 3, 2]
    assert r.message(msgs[0].msg_id).last_tx_end_ns == 3
    with pytest.raises(InterconnectError, match="no message with msg_id 99"):
        r.message(99)
    empty = simulate([], P)
    assert empty.makespan_ns == 0 and empty.num_packets == 0
