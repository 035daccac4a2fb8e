"""Interconnect simulator against closed-form latency + size/bandwidth results."""

from __future__ import annotations

import math

import pytest

from sieveopt.validation.interconnect import (
    LinkParams,
    Message,
    allgather_messages,
    alltoall_messages,
    simulate,
)

# 1000 GB/s = exactly one byte per picosecond: closed forms hold to the picosecond.
EXACT = {"bw_per_direction_GBps": 1000.0, "latency_ns": 500.0, "packet_bytes": 256}
L_PS = 500_000
MODES = ["cut_through", "store_and_forward"]


def exact(num_gpus: int = 8, **kw) -> LinkParams:
    return LinkParams(num_gpus=num_gpus, **{**EXACT, **kw})


def saf_extra_ps(params: LinkParams) -> int:
    """One packet time: what store-and-forward adds to an uncontended path."""
    return 256 if params.store_and_forward else 0


@pytest.mark.parametrize("switching", MODES)
@pytest.mark.parametrize("nbytes", [1, 255, 256, 257, 4096, 262_144, 1_000_003])
def test_single_message_is_latency_plus_size_over_bw(switching, nbytes):
    p = exact(switching=switching)
    r = simulate([Message(7, 2, 5, nbytes, release_ns=1000)], p)
    # store-and-forward delays the stream by one packet: the largest one
    extra = min(nbytes, 256) if p.store_and_forward else 0
    assert r.arrival_ps[0] == 1_000_000 + L_PS + nbytes + extra
    assert r.first_tx_start_ps[0] == 1_000_000
    assert r.last_tx_end_ps[0] == 1_000_000 + nbytes
    assert r.egress_busy_ps[2] == nbytes and r.ingress_busy_ps[5] == nbytes
    assert r.egress_busy_ps.sum() == nbytes and r.ingress_busy_ps.sum() == nbytes


@pytest.mark.parametrize("switching", MODES)
def test_single_message_sieve_b200_in_ns(switching):
    """The paper's link: 900 GB/s per direction, 0.8 us. 256 KiB -> 800 + 291.27 ns."""
    p = LinkParams.sieve_b200(8, switching=switching)
    r = simulate([Message(0, 0, 1, 262_144)], p)
    expected_ns = 800 + 262_144 / 900 + (256 / 900 if p.store_and_forward else 0)
    assert abs(r.arrival_ps[0] / 1000 - expected_ns) < 0.005  # a few ps of per-packet rounding
    assert r.arrival_ns[0] == math.ceil(r.arrival_ps[0] / 1000)
    assert r.message(0).arrival_ns in (math.ceil(expected_ns), math.ceil(expected_ns) + 1)


@pytest.mark.parametrize("switching", MODES)
@pytest.mark.parametrize("k", [2, 3, 7])
def test_incast_serializes_on_the_ingress_port(switching, k):
    p = exact(switching=switching)
    nbytes = 64 * 256
    r = simulate([Message(i, i + 1, 0, nbytes) for i in range(k)], p)
    assert r.makespan_ps == L_PS + saf_extra_ps(p) + k * nbytes
    assert r.ingress_busy_ps[0] == k * nbytes
    # equal messages interleave packet by packet: the first finishes only in the last round
    assert r.arrival_ps.min() == L_PS + saf_extra_ps(p) + k * (nbytes - 256) + 256
    # the receiver's port was busy all the time after the first packet reached it
    span = r.makespan_ps
    assert r.ingress_utilisation[0] == pytest.approx(k * nbytes / span)


def test_incast_disappears_when_senders_are_staggered():
    p = exact()
    nbytes = 10_000
    msgs = [Message(i, i + 1, 0, nbytes, release_ns=i * nbytes / 1000) for i in range(4)]
    r = simulate(msgs, p)
    assert r.arrival_ps.tolist() == [L_PS + (i + 1) * nbytes for i in range(4)]


@pytest.mark.parametrize("switching", MODES)
def test_fan_out_serializes_on_the_egress_port_fifo(switching):
    p = exact(switching=switching)
    nbytes, k = 12_800, 5
    r = simulate([Message(i, 3, (4 + i) % 8, nbytes) for i in range(k)], p)
    assert r.arrival_ps.tolist() == [L_PS + saf_extra_ps(p) + (i + 1) * nbytes for i in range(k)]
    assert r.last_tx_end_ps.tolist() == [(i + 1) * nbytes for i in range(k)]
    assert r.egress_busy_ps[3] == k * nbytes


def test_fan_out_round_robin_interleaves_packets():
    p = exact(egress_policy="round_robin")
    n_pk, k = 10, 4
    r = simulate([Message(i, 0, i + 1, n_pk * 256) for i in range(k)], p)
    # all messages share the port: message i finishes in the last round, at slot i
    assert r.arrival_ps.tolist() == [L_PS + (k * (n_pk - 1) + i + 1) * 256 for i in range(k)]
    assert r.first_tx_start_ps.tolist() == [i * 256 for i in range(k)]
    assert r.makespan_ps == L_PS + k * n_pk * 256  # same work, same makespan as fifo


@pytest.mark.parametrize("switching", MODES)
def test_permutation_all_to_all_has_no_contention(switching):
    p = exact(switching=switching)
    nbytes = 100_000
    msgs = [Message(g, g, (g + 3) % 8, nbytes) for g in range(8)]
    r = simulate(msgs, p)
    assert set(r.arrival_ps.tolist()) == {L_PS + nbytes + saf_extra_ps(p)}


@pytest.mark.parametrize("switching", MODES)
def test_rotated_uniform_all_to_all_is_egress_bound(switching):
    """Each step of the rotated schedule is a permutation: makespan = L + (G-1) B / bw."""
    p = exact(switching=switching)
    nbytes = 256 * 40
    matrix = [[0 if s == d else nbytes for d in range(8)] for s in range(8)]
    r = simulate(alltoall_messages(matrix), p)
    assert r.makespan_ps == L_PS + saf_extra_ps(p) + 7 * nbytes
    assert r.ingress_busy_ps.tolist() == [7 * nbytes] * 8
    # the AllGather of equal blocks is the same traffic
    r2 = simulate(allgather_messages(8, nbytes), p)
    assert r2.makespan_ps == r.makespan_ps


def test_switch_fabric_cap_serializes_everything():
    nbytes = 25_600
    msgs = [Message(g, g, (g + 1) % 4, nbytes) for g in range(4)]
    free = simulate(msgs, exact(4))
    assert free.makespan_ps == L_PS + nbytes
    capped = simulate(msgs, exact(4, switch_bw_GBps=1000.0))  # one port's worth for all
    assert capped.makespan_ps == L_PS + 4 * nbytes
    assert capped.switch_busy_ps == 4 * nbytes
    fast = simulate(msgs, exact(4, switch_bw_GBps=1e6))  # 1 ps per packet: a few ps of queueing
    assert 0 <= fast.makespan_ps - free.makespan_ps <= 4


def test_header_bytes_add_per_packet_overhead():
    p = exact(header_bytes=16)
    nbytes = 256 * 10
    r = simulate([Message(0, 0, 1, nbytes)], p)
    # every packet carries a header; cut-through waits for the first header at the switch
    assert r.arrival_ps[0] == L_PS + 16 + nbytes + 10 * 16


def test_zero_byte_message_is_a_header_only_packet():
    r = simulate([Message(0, 0, 1, 0, release_ns=3)], exact())
    assert r.arrival_ps[0] == 3000 + L_PS
    assert r.num_packets == 1


def test_incast_of_unequal_messages_converges_to_fluid_sharing():
    """Smaller packets -> closer to processor sharing of the ingress port (the fluid limit)."""
    sizes = [30_000, 70_000, 120_000, 200_000]
    msgs = [Message(i, i + 1, 0, b) for i, b in enumerate(sizes)]
    fluid = [L_PS + sum(min(b, bj) for b in sizes) for bj in sizes]  # ps at 1 B/ps
    errors = []
    for pkt in [16_384, 4096, 1024, 256, 64]:
        for mode in MODES:
            r = simulate(msgs, exact(5, packet_bytes=pkt, switching=mode))
            err = max(abs(int(a) - f) for a, f in zip(r.arrival_ps, fluid, strict=True))
            assert err <= (len(sizes) + 1) * pkt
            if mode == "store_and_forward":
                errors.append(err)
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 100
