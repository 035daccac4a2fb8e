"""Link parameters of the NVLink model and the integer time conversions they imply.

Time inside the simulator is integer **picoseconds**: one 256-byte packet at 900 GB/s takes
284.4 ps, far below a nanosecond. Bandwidths are turned into an exact integer ratio so that
``bytes -> ps`` is an integer ceiling, never a float that drifts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from sieveopt.errors import SieveoptError, SpecError

SWITCHING_MODES = ("cut_through", "store_and_forward")
EGRESS_POLICIES = ("fifo", "round_robin")

#: Sieve's B200 system (papers.md §1.2, Table 1): NVLink 5, 900 GB/s per direction, 0.8 µs.
SIEVE_B200_BW_PER_DIRECTION_GBPS = 900.0
SIEVE_B200_LATENCY_NS = 800.0


class InterconnectError(SieveoptError):
    """A message, order or collective given to the interconnect simulator is invalid."""


def _spec_error(field: str, problem: str, fix: str) -> SpecError:
    return SpecError("LinkParams", field, problem, fix)


@dataclass(frozen=True)
class LinkParams:
    """NVLink ports of ``num_gpus`` GPUs on one switch.

    ``bw_per_direction_GBps`` is the bandwidth of each GPU port in each direction (egress and
    ingress are separate ports). ``latency_ns`` is the fixed end-to-end latency of a packet
    (wire + switch traversal), paid once per packet on top of serialization.
    ``packet_bytes`` is the payload per packet (256 B: the largest NVLink packet payload; a
    coarser value trades accuracy for speed, see the convergence test). ``header_bytes`` is
    the per-packet overhead serialized on every port (0 by default so that an uncontended
    message costs exactly latency + bytes/bw, as in the analytical cost model; 16 models one
    NVLink header flit per packet). ``switching``: ``"cut_through"`` forwards a packet once its
    header is in, ``"store_and_forward"`` once the whole packet is. ``switch_bw_GBps`` caps the
    aggregate throughput of the switch fabric (a shared stage every packet crosses); ``None``
    means non-blocking (the fabric is never a bottleneck).
    """

    num_gpus: int
    bw_per_direction_GBps: float = SIEVE_B200_BW_PER_DIRECTION_GBPS
    latency_ns: float = SIEVE_B200_LATENCY_NS
    packet_bytes: int = 256
    header_bytes: int = 0
    switching: str = "cut_through"
    switch_bw_GBps: float | None = None
    egress_policy: str = "fifo"

    def __post_init__(self) -> None:
        if not isinstance(self.num_gpus, int) or isinstance(self.num_gpus, bool) or self.num_gpus < 2:
            raise _spec_error("num_gpus", f"must be an integer >= 2, got {self.num_gpus!r}",
                              "an interconnect needs at least two GPUs")
        for name in ("bw_per_direction_GBps", "latency_ns"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise _spec_error(name, f"must be a finite number, got {value!r}", "give a number")
        if self.bw_per_direction_GBps <= 0:
            raise _spec_error("bw_per_direction_GBps", f"must be > 0, got {self.bw_per_direction_GBps}",
                              "e.g. 900 for NVLink 5 (B200)")
        if self.latency_ns < 0:
            raise _spec_error("latency_ns", f"must be >= 0, got {self.latency_ns}", "e.g. 800 (0.8 us)")
        if not isinstance(self.packet_bytes, int) or self.packet_bytes < 1:
            raise _spec_error("packet_bytes", f"must be an integer >= 1, got {self.packet_bytes!r}",
                              "e.g. 256 (NVLink max payload)")
        if not isinstance(self.header_bytes, int) or self.header_bytes < 0:
            raise _spec_error("header_bytes", f"must be an integer >= 0, got {self.header_bytes!r}",
                              "0 (ideal) or 16 (one NVLink header flit)")
        if self.switching not in SWITCHING_MODES:
            raise _spec_error("switching", f"unknown mode {self.switching!r}",
                              f"use one of {', '.join(SWITCHING_MODES)}")
        if self.egress_policy not in EGRESS_POLICIES:
            raise _spec_error("egress_policy", f"unknown policy {self.egress_policy!r}",
                              f"use one of {', '.join(EGRESS_POLICIES)}")
        sw = self.switch_bw_GBps
        if sw is not None and (not isinstance(sw, int | float) or not math.isfinite(sw) or sw <= 0):
            raise _spec_error("switch_bw_GBps", f"must be a number > 0 or None, got {sw!r}",
                              "omit it for a non-blocking switch")

    @classmethod
    def sieve_b200(cls, num_gpus: int = 8, **overrides: object) -> LinkParams:
        """The paper's B200 system: 900 GB/s per direction, 0.8 µs (papers.md §1.2)."""
        return cls(num_gpus=num_gpus, **overrides)  # type: ignore[arg-type]

    @property
    def latency_ps(self) -> int:
        return math.ceil(round(self.latency_ns * 1000, 3))

    @property
    def store_and_forward(self) -> bool:
        return self.switching == "store_and_forward"


class ByteClock:
    """Exact ``bytes -> ps`` conversion at a fixed bandwidth: ``ceil(bytes * 1000 / bw_GBps)``.

    1 GB/s is one byte per ns, so a byte takes ``1000 / bw`` ps. The bandwidth is held as an
    integer ratio (denominator <= 1000, i.e. exact for bandwidths given to 3 decimals).
    """

    def __init__(self, bw_GBps: float) -> None:
        frac = Fraction(bw_GBps).limit_denominator(1000)
        self.num, self.den = frac.numerator, frac.denominator

    def ps(self, nbytes: int) -> int:
        return -((-nbytes * 1000 * self.den) // self.num)

    def ps_array(self, nbytes):  # numpy int64 array in, int64 array out
        return -((-nbytes * (1000 * self.den)) // self.num)
