"""Memory times for replay from the cycle-level DRAM/PIM simulator, cached per shape.

System -> DRAM preset mapping (:func:`dram_preset_for`):

* by ``system.hbm_pim.generation``: ``HBM3E-PIM`` -> ``sieve_b200_hbm3e_pim``;
  ``HBM3-PIM`` and ``HBM3 Logic-PIM`` -> ``attacc_hbm3_pim``; ``HBM2-PIM`` ->
  ``samsung_hbm2_pim`` (``dram_preset=`` overrides the choice);
* timing: every ``system.hbm_pim.timing`` field that differs from the system's catalog preset
  (i.e. a user ``--set hbm_pim.timing.X=...`` or a user TOML) is written into the DRAM preset
  (``CL -> nCL``, ``tRCD -> nRCDRD/nRCDWR``, ``tREFI_ns -> nREFI`` cycles, ...); the catalog's
  own values are not pushed, because the DRAM presets carry their own sourced choices for
  the fields the paper leaves open (CWL, tRTP, tWTR, tRTW);
* PIM internal bandwidth: ``hbm_pim.pim.internal_bw_multiplier`` (x external pCH bandwidth)
  sets the preset's ``pim.nCCDMAC`` (cycles per all-bank MAC), rounded to whole cycles; the
  effective multiplier is reported in :attr:`DramTimer.pim_multiplier`;
* sharing: ``exclusive``/``dual_row_buffer`` are simulated as such; ``partitioned`` (banks
  split between GPU and PIM) is not a DRAM-simulator mode: it is replayed as no interference,
  with stream times divided by ``1 - pim_bank_fraction`` and PIM times by ``pim_bank_fraction``
  (what the spec's bandwidth split says).

Shapes: a routed expert on PIM is two all-bank GEMV jobs, gate+up (``2I x H``) then down
(``H x I``), each with its token writes and read-back; PIM attention is one all-bank GEMV
whose rows are the KV (or recurrent-state) rows read once (``tokens = 1``, columns = one KV
row). GPU streams are rounded up to one burst on every pseudo-channel. Results are cached per
(preset + overrides, shape) for the life of the process.
"""

from __future__ import annotations

import math
from typing import Any

from sieveopt.models.costmodel import Work
from sieveopt.models.specs import ModelSpec, SystemSpec

#: hbm_pim.generation -> DRAM preset name.
GENERATION_PRESETS = {
    "HBM3E-PIM": "sieve_b200_hbm3e_pim",
    "HBM3-PIM": "attacc_hbm3_pim",
    "HBM3 Logic-PIM": "attacc_hbm3_pim",
    "HBM2-PIM": "samsung_hbm2_pim",
}
#: SystemSpec timing field -> DRAM preset timing fields.
TIMING_FIELDS = {
    "CL": ("nCL",), "CWL": ("nCWL",), "tRCD": ("nRCDRD", "nRCDWR"), "tRP": ("nRP",), "tRAS": ("nRAS",),
    "tRC": ("nRC",), "tWR": ("nWR",), "tRTP": ("nRTP",), "tCCD_S": ("nCCDS",), "tCCD_L": ("nCCDL",),
    "tRRD_S": ("nRRDS",), "tRRD_L": ("nRRDL",), "tFAW": ("nFAW",), "tWTR_S": ("nWTRS",),
    "tWTR_L": ("nWTRL",), "tRTW": ("nRTW",),
}

_CACHE: dict[tuple, Any] = {}


def clear_cache() -> None:
    """Forget every cached simulator result (for cold-cache measurements)."""
    _CACHE.clear()


def _api():
    from sieveopt.validation.dram import api

    return api


def dram_preset_for(system: SystemSpec, preset: str | None = None) -> tuple[str, dict[str, Any]]:
    """(preset name, overrides) of the DRAM simulator for ``system`` (see module docstring)."""
    from sieveopt.errors import SpecError

    gen = system.hbm_pim.generation
    name = preset or GENERATION_PRESETS.get(gen)
    if name is None:
        raise SpecError(system.name, "hbm_pim.generation", f"no DRAM preset for generation {gen!r}",
                        f"pass dram_preset= (known generations: {', '.join(GENERATION_PRESETS)})")
    ov: dict[str, Any] = {}
    ref = _catalog_timing(system)
    t = system.hbm_pim.timing
    for fld, targets in TIMING_FIELDS.items():
        v = getattr(t, fld)
        if ref is None or getattr(ref, fld) != v:
            for tgt in targets:
                ov[f"timing.{tgt}"] = int(v)
    if ref is None or ref.tCK_ps != t.tCK_ps:
        ov["timing.tCK_ps"] = int(t.tCK_ps)
    for fld, tgt in (("tREFI_ns", "nREFI"), ("tRFC_ns", "nRFC")):
        if ref is None or getattr(ref, fld) != getattr(t, fld):
            ov[f"timing.{tgt}"] = int(round(getattr(t, fld) * 1000.0 / t.tCK_ps))
    return name, ov


def _catalog_timing(system: SystemSpec):
    """The timing of the catalog system of the same name (None for a user system)."""
    try:
        from sieveopt.models.catalog import list_systems, load_system

        if system.name in list_systems():
            return load_system(system.name).hbm_pim.timing
    except Exception:  # noqa: BLE001 - a broken catalog entry just means "push everything"
        return None
    return None


def _pim_override(cfg: Any, multiplier: float) -> tuple[int, float]:
    """nCCDMAC giving ``multiplier`` x external bandwidth per pCH on ``cfg``, and the effective value."""
    ext = cfg.peak_bw_GBps_per_pch()
    per_mac = cfg.org.banks / cfg.pim.banks_per_pu * cfg.pim.pu_bytes_per_access / cfg.tCK_ns
    n = max(1, int(round(per_mac / (multiplier * ext))))
    return n, per_mac / n / ext


class DramTimer:
    """Memory timer backed by :mod:`sieveopt.validation.dram.api` (see module docstring)."""

    name = "dram"

    def __init__(self, system: SystemSpec, model: ModelSpec, *, preset: str | None = None,
                 **overrides: Any) -> None:
        api = _api()
        self.system, self.model = system, model
        self.preset, ov = dram_preset_for(system, preset)
        ov.update(overrides)
        cfg = api.load_dram_preset(self.preset, **ov)
        if "pim.nCCDMAC" not in overrides and cfg.pim.enabled:
            n, _ = _pim_override(cfg, system.hbm_pim.pim.internal_bw_multiplier)
            if n != cfg.pim.nCCDMAC:
                ov["pim.nCCDMAC"] = n
                cfg = api.load_dram_preset(self.preset, **ov)
        self.cfg, self.overrides = cfg, ov
        self.pim_multiplier = (cfg.pim_bw_GBps_per_pch() / cfg.peak_bw_GBps_per_pch()) if cfg.pim.enabled else 0.0
        self.sharing = system.hbm_pim.sharing
        self.key = (self.preset, tuple(sorted((k, repr(v)) for k, v in ov.items())))
        frac = system.hbm_pim.pim_bank_fraction
        self._stream_scale = 1.0 / (1.0 - frac) if self.sharing == "partitioned" else 1.0
        self._pim_scale = 1.0 / frac if self.sharing == "partitioned" else 1.0
        self._granule = cfg.org.access_bytes * cfg.org.pseudo_channels
        self.bpe = float(model.expert_weight_bytes_per_param)

    def _cached(self, op: str, args: tuple, fn) -> Any:
        k = (self.key, op, args)
        v = _CACHE.get(k)
        if v is None:
            v = fn()
            _CACHE[k] = v
        return v

    def describe(self) -> dict[str, Any]:
        return {"preset": self.preset, "overrides": dict(self.overrides), "sharing": self.sharing,
                "pim_multiplier": self.pim_multiplier}

    # -- the four questions ----------------------------------------------------------------
    def stream_ns(self, nbytes: float) -> float:
        if nbytes <= 0:
            return 0.0
        b = int(math.ceil(nbytes / self._granule)) * self._granule
        ns = self._cached("stream", (b,), lambda: float(_api().weight_stream_ns(self.cfg, b)))
        return ns * self._stream_scale

    def gemv_ns(self, rows: int, cols: int, tokens: int, bytes_per_element: float) -> float:
        args = (int(rows), int(cols), int(tokens), float(bytes_per_element))
        return self._cached("gemv", args, lambda: float(_api().pim_gemv_ns(self.cfg, *args)))

    def pim_expert_ns(self, tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        H, Inter = self.model.hidden_size, self.model.expert_intermediate_size
        ns = self.gemv_ns(2 * Inter, H, tokens, self.bpe) + self.gemv_ns(H, Inter, tokens, self.bpe)
        return ns * self._pim_scale

    def _attention_shape(self, work: Work) -> tuple[int, int, float]:
        att = self.model.attention
        act = float(self.model.activation_bytes)
        cols = max(1, att.num_kv_heads * att.head_dim) if att.kind != "mla" else max(1, att.mla_cache_elems_per_token)
        rows = max(1, int(math.ceil(work.kv_bytes / (cols * act))))
        # 3 significant digits of rows: <0.1% time error, a bounded number of distinct shapes
        q = 10 ** max(0, int(math.log10(rows)) - 2)
        return int(math.ceil(rows / q) * q), cols, act

    def pim_attention_ns(self, work: Work) -> float:
        if work.kv_bytes <= 0:
            return 0.0
        rows, cols, act = self._attention_shape(work)
        return self.gemv_ns(rows, cols, 1, act) * self._pim_scale

    def interference(self, kind: str, tokens: int) -> tuple[float, float]:
        """(k_stream, k_pim): slow-downs while a GPU stream and a PIM job of ``kind`` share the
        stacks, from one concurrent simulation of equally long alone times (cached per
        power-of-two token bucket). From concurrent ends S', P' and alone times S, P:
        the one that ends first ran concurrently all along (k = end'/alone); the other ran
        ``first_end`` concurrently and the rest alone, which gives its rate."""
        if self.sharing != "dual_row_buffer":
            return (1.0, 1.0)
        bucket = 1 << max(0, int(tokens) - 1).bit_length()
        kind = "attn" if kind == "attn" else "expert"
        return self._cached("interf", (kind, bucket), lambda: self._measure_interference(kind, bucket))

    def _measure_interference(self, kind: str, bucket: int) -> tuple[float, float]:
        api = _api()
        if kind == "attn":
            rows, cols, act = 4096, max(1, self.model.attention.num_kv_heads * self.model.attention.head_dim), \
                float(self.model.activation_bytes)
            jobs = [(rows, cols, 1, act)]
        else:
            H, Inter = self.model.hidden_size, self.model.expert_intermediate_size
            jobs = [(2 * Inter, H, bucket, self.bpe), (H, Inter, bucket, self.bpe)]
        p_alone = sum(self.gemv_ns(*j) for j in jobs)
        # stream bytes so that the alone stream takes about as long as the PIM job
        probe = 1 << 24
        s_probe = self.stream_ns(probe)
        nbytes = max(self._granule, int(probe * p_alone / max(s_probe, 1.0)))
        nbytes = int(math.ceil(nbytes / self._granule)) * self._granule
        s_alone = self.stream_ns(nbytes)
        s_end, p_end = api.concurrent_ns(self.cfg, nbytes, jobs, sharing=self.sharing)
        return _slowdowns(float(s_alone), float(p_alone), float(s_end), float(p_end))


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
