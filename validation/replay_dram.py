"""Memory times for replay from the cycle-level DRAM/PIM simulator (``sieveopt.validation.dram.api``).

The DRAM config is the system's own (:func:`sieveopt.models.dram.resolve_dram`, the one DRAM
description cost models read too): its preset (``hbm_pim.dram_preset``, else by generation:
``HBM3E-PIM`` -> ``sieve_b200_hbm3e_pim``; ``HBM3-PIM`` and ``HBM3 Logic-PIM`` ->
``attacc_hbm3_pim``, Logic-PIM approximated by bank-level PUs at the system's PIM bandwidth;
``HBM2-PIM`` -> ``samsung_hbm2_pim``) plus every system field that differs from what the preset
implies (organisation, bank grouping, timing, ``pim.ops_per_byte``), the GPU address mapping
``RoCoBaBgCh`` (bank groups fastest; the HBM3 presets' Ramulator default streams at half the
peak, the GPU's address hashing does not) and the PIM clock ``pim.nCCDMAC`` (and if needed
``pim.pu_bytes_per_access``) fitted in whole cycles to ``internal_bw_multiplier`` x the pin peak
(12x -> nCCDMAC 4 and 16x -> 3 on Sieve's preset, both exact). The system's name plays no part,
so the same hardware replays identically under any name. ``DramTimer(preset=..., **overrides)``
puts an experiment on top. :meth:`DramTimer.bandwidth_check` reports the agreement of peak and
simulated bandwidths with the spec.

* sharing: ``exclusive`` and ``dual_row_buffer`` are simulated as such (``concurrent_ns``);
  ``partitioned`` (banks split between GPU and PIM) is not a DRAM-simulator mode: it is
  replayed as no interference, stream times divided by ``1 - pim_bank_fraction`` and PIM times
  by ``pim_bank_fraction`` (the bandwidth split the cost model uses);
* the roofline's ``job_overhead_ns`` / ``per_token_overhead_ns`` are not added: the simulated
  job already contains its token writes (GWR), activations, MACs and read-back (RDRES).

Shapes: a routed expert on PIM is ``api.pim_expert_ns(cfg, hidden, intermediate, tokens,
bytes_per_element=model.expert_weight_bytes_per_param, act_bytes=model.activation_bytes)``
(gate|up then down; MXFP4 expert weights at 0.53125 B/param, token writes and read-backs at
the activation width); PIM attention is one all-bank GEMV whose rows
are the KV (or recurrent-state) rows, columns one KV row, rows rounded to 3 significant digits,
one pass (``tokens``) per query vector sharing the KV (GQA group size; from the DAG's FLOPs). Caching: PIM results per (config, shape, tokens); GPU
stream times are simulated on a geometric grid of per-pseudo-channel access counts (8 points
per octave, exact below 64 accesses) and interpolated linearly in between, linear beyond
2^15 accesses per pCH (256 MiB on Sieve's preset). The interpolation smooths the refresh
steps of one aligned refresh phase (a real kernel starts at a random refresh phase); the
error against a direct simulation is a few percent at most (tests check it).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from sieveopt.models.costmodel import Work
from sieveopt.models.dram import resolve_dram
from sieveopt.models.specs import ModelSpec, SystemSpec

#: stream grid: points per octave, exact below, linear above (accesses per pseudo-channel)
GRID_PER_OCTAVE = 8
GRID_EXACT_BELOW = 64
GRID_TOP = 1 << 15

_CACHE: dict[tuple, Any] = {}


def clear_cache() -> None:
    """Forget every cached simulator result, ours and the DRAM API's (for cold measurements)."""
    _CACHE.clear()
    _api().clear_caches()


def _api():
    """The DRAM API, imported on first use (it compiles the numba engine)."""
    from sieveopt.validation.dram import api

    return api


class DramTimer:
    """Memory timer backed by :mod:`sieveopt.validation.dram.api` (see module docstring)."""

    name = "dram"

    def __init__(self, system: SystemSpec, model: ModelSpec, *, preset: str | None = None,
                 **overrides: Any) -> None:
        self.system, self.model = system, model
        self.preset, cfg, ov = resolve_dram(system.hbm_pim, source=system.name, preset=preset,
                                            overrides=overrides)
        self.cfg, self.overrides = cfg, ov
        self.pim_multiplier = cfg.pim_bw_GBps_per_pch() / cfg.peak_bw_GBps_per_pch()
        self.sharing = system.hbm_pim.sharing
        self.key = (self.preset, tuple(sorted((k, repr(v)) for k, v in ov.items())))
        frac = system.hbm_pim.pim_bank_fraction
        self._stream_scale = 1.0 / (1.0 - frac) if self.sharing == "partitioned" else 1.0
        self._pim_scale = 1.0 / frac if self.sharing == "partitioned" else 1.0
        self._n_pch = cfg.org.pseudo_channels
        self._access = cfg.org.access_bytes
        self.bpe = float(model.expert_weight_bytes_per_param)
        self.act = float(model.activation_bytes)
        att = model.attention
        #: What model-dependent measurements (interference) depend on besides the preset.
        self.shape_key = (model.hidden_size, model.expert_intermediate_size, self.bpe, self.act,
                          att.num_q_heads, att.num_kv_heads, att.head_dim)

    # -- caching -----------------------------------------------------------------------------
    def _cached(self, op: str, args: tuple, fn) -> Any:
        k = (self.key, op, args)
        v = _CACHE.get(k)
        if v is None:
            v = fn()
            _CACHE[k] = v
        return v

    def _stream_exact(self, accesses_per_pch: int) -> float:
        """Simulated time of ``accesses_per_pch`` column reads on every pCH (cached)."""
        nbytes = int(accesses_per_pch) * self._n_pch * self._access
        return self._cached("stream", (int(accesses_per_pch),),
                            lambda: float(_api().weight_stream_ns(self.cfg, nbytes)))

    def describe(self) -> dict[str, Any]:
        return {"preset": self.preset, "overrides": dict(self.overrides), "sharing": self.sharing,
                "pim_multiplier": self.pim_multiplier}

    def bandwidth_check(self) -> dict[str, float]:
        """Preset and simulated bandwidths next to the system spec's (GB/s per GPU)."""
        cfg, s = self.cfg, self.system
        big = GRID_TOP * self._n_pch * self._access
        H, Inter = self.model.hidden_size, self.model.expert_intermediate_size
        return {
            "spec_hbm_GBps": s.gpu.hbm_bw_GBps,
            "preset_peak_GBps": cfg.peak_bw_GBps_per_pch() * self._n_pch,
            "spec_sustained_GBps": s.gpu_hbm_bw_GBps * s.gpu.bandwidth_efficiency,
            "simulated_stream_GBps": big / self.stream_ns(big),
            "spec_pim_GBps": s.pim_bw_GBps,
            "preset_pim_peak_GBps": cfg.pim_bw_GBps_per_pch() * self._n_pch / self._pim_scale,
            "simulated_pim_expert_GBps": 8 * self.model.expert_weight_bytes / self.pim_expert_ns(8),
            "expert_shape": float(3 * H * Inter),
        }

    # -- the four questions ------------------------------------------------------------------
    def stream_ns(self, nbytes: float) -> float:
        if nbytes <= 0:
            return 0.0
        a = nbytes / (self._n_pch * self._access)        # accesses per pCH (fractional)
        if a <= GRID_EXACT_BELOW:
            return self._stream_exact(math.ceil(a)) * self._stream_scale
        if a >= GRID_TOP:
            return self._stream_exact(GRID_TOP) * a / GRID_TOP * self._stream_scale
        grid = _grid()
        i = bisect.bisect_right(grid, a)
        lo, hi = grid[i - 1], grid[i]
        t_lo, t_hi = self._stream_exact(lo), self._stream_exact(hi)
        return (t_lo + (t_hi - t_lo) * (a - lo) / (hi - lo)) * self._stream_scale

    def gemv_ns(self, rows: int, cols: int, tokens: int, bytes_per_element: float) -> float:
        """One all-bank PIM GEMV job (``tokens`` passes over a ``rows x cols`` matrix)."""
        args = (int(rows), int(cols), int(tokens), float(bytes_per_element))
        return self._cached("gemv", args, lambda: float(_api().pim_gemv_ns(
            self.cfg, args[0], args[1], args[2], bytes_per_element=args[3], act_bytes=args[3])))

    def pim_expert_ns(self, tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        H, Inter, n = self.model.hidden_size, self.model.expert_intermediate_size, int(tokens)
        ns = self._cached("expert", (H, Inter, n, self.bpe, self.act), lambda: float(
            _api().pim_expert_ns(self.cfg, H, Inter, n, bytes_per_element=self.bpe,
                                 act_bytes=self.act)))
        return ns * self._pim_scale

    def pim_expert_ns_on(self, tokens: int, channels: int) -> float:
        """One routed expert bound to ``channels`` of the GPU's pseudo-channels (expert-parallel
        PIM, :mod:`sieveopt.pim_groups`): the simulator's expert job sharded over that many
        pseudo-channels (the API's ``channels``, in units of the preset's channels; rounded, at
        least one) instead of all of them."""
        C = self.system.hbm_pim.pseudo_channels_per_gpu
        if tokens <= 0:
            return 0.0
        if channels >= C:
            return self.pim_expert_ns(tokens)
        ppc = self.cfg.org.pseudo_channels_per_channel
        ch = max(1, round(channels * self._n_pch / C / ppc))
        H, Inter, n = self.model.hidden_size, self.model.expert_intermediate_size, int(tokens)
        ns = self._cached("expert_on", (H, Inter, n, self.bpe, self.act, ch), lambda: float(
            _api().pim_expert_ns(self.cfg, H, Inter, n, bytes_per_element=self.bpe, act_bytes=self.act,
                                 channels=ch)))
        return ns * self._pim_scale

    def _attention_shape(self, kv_bytes: float, flops: float = 0.0) -> tuple[int, int, float, int]:
        """(rows, cols, bytes/elem, passes) of PIM decode attention over ``kv_bytes``: one
        all-bank GEMV over the KV rows per query vector sharing them (``passes`` = MACs per
        cached element from the DAG's FLOPs: num_q_heads / num_kv_heads for GQA, 1 for a
        recurrent state, heads x head_dim / latent for MLA)."""
        att = self.model.attention
        act = float(self.model.activation_bytes)
        cols = max(1, att.mla_cache_elems_per_token if att.kind == "mla" else att.num_kv_heads * att.head_dim)
        elems = kv_bytes / act
        rows = max(1, int(math.ceil(elems / cols)))
        q = 10 ** max(0, int(math.log10(rows)) - 2)      # 3 significant digits: < 1 % time error
        passes = max(1, round(flops / (2.0 * elems))) if flops > 0 else 1
        return int(math.ceil(rows / q) * q), cols, act, passes

    def pim_attention_ns(self, work: Work) -> float:
        if work.kv_bytes <= 0:
            return 0.0
        rows, cols, act, passes = self._attention_shape(work.kv_bytes, work.flops)
        return self.gemv_ns(rows, cols, passes, act) * self._pim_scale

    def interference(self, kind: str, tokens: int) -> tuple[float, float]:
        """(k_stream, k_pim): slow-downs while a GPU stream and a PIM job of ``kind`` share the
        stacks, from one ``concurrent_ns`` run with about equally long alone times (cached per
        power-of-two token bucket). From concurrent ends S', P' and alone times S, P: the one
        that ends first ran concurrently all along (k = end'/alone); the other ran
        ``first_end`` concurrently and the rest alone, which gives its rate."""
        if self.sharing != "dual_row_buffer":
            return (1.0, 1.0)
        bucket = 1 << max(0, int(tokens) - 1).bit_length()
        kind = "attn" if kind == "attn" else "expert"
        return self._cached("interf", (kind, bucket, self.sharing, self.shape_key),
                            lambda: self._measure_interference(kind, bucket))

    def _measure_interference(self, kind: str, bucket: int) -> tuple[float, float]:
        api = _api()
        if kind == "attn":
            att = self.model.attention
            rows, cols, act, _ = self._attention_shape(4096 * att.num_kv_heads * att.head_dim * 2.0)
            passes = max(1, att.num_q_heads // att.num_kv_heads)
            job = api.PimJob(((rows, cols),), passes, 0, act, act)
            p_alone = float(api.pim_gemv_ns(self.cfg, rows, cols, passes, bytes_per_element=act,
                                            act_bytes=act))
        else:
            from sieveopt.validation.dram.pim import expert_matrices

            H, Inter = self.model.hidden_size, self.model.expert_intermediate_size
            job = api.PimJob(tuple(expert_matrices(H, Inter)), bucket, 0, self.bpe, self.act)
            p_alone = float(api.pim_expert_ns(self.cfg, H, Inter, bucket, bytes_per_element=self.bpe,
                                              act_bytes=self.act))
        # stream bytes so that the alone stream takes about as long as the PIM job
        gran = self._n_pch * self._access
        per_acc = self._stream_exact(GRID_EXACT_BELOW) / GRID_EXACT_BELOW
        acc = max(1, int(p_alone / per_acc))
        s_alone = float(api.weight_stream_ns(self.cfg, acc * gran))
        s_end, p_end = api.concurrent_ns(self.cfg, acc * gran, [job], sharing=self.sharing)
        return _slowdowns(s_alone, p_alone, float(s_end), float(p_end))


_GRID: list[int] = []


def _grid() -> list[int]:
    """Per-pCH access counts of the stream grid (geometric, GRID_PER_OCTAVE per octave)."""
    if not _GRID:
        pts = {GRID_EXACT_BELOW, GRID_TOP}
        k = 0
        while True:
            a = int(round(GRID_EXACT_BELOW * 2.0 ** (k / GRID_PER_OCTAVE)))
            if a >= GRID_TOP:
                break
            pts.add(a)
            k += 1
        _GRID.extend(sorted(pts))
    return _GRID


def _slowdowns(s: float, p: float, s2: float, p2: float) -> tuple[float, float]:
    """Rate slow-downs from alone (s, p) and concurrent (s2, p2) end times (fluid model)."""
    s2, p2 = max(s2, s), max(p2, p)
    if s2 <= p2:
        k_s = s2 / s
        done = p - (p2 - s2)                 # PIM work done while the stream ran
        k_p = s2 / done if done > 0 else p2 / p
    else:
        k_p = p2 / p
        done = s - (s2 - p2)
        k_s = p2 / done if done > 0 else s2 / s
    return (max(1.0, k_s), max(1.0, k_p))
