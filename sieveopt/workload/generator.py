"""Calibrated synthetic decode routing: latent-factor router logits + exact top-k.

Implements moe_models.md §5.2. For request r, decode step t, MoE layer l, expert e::

    z[r,t,l,e] = mu[l,e] + <W[l,e], h[r,t,l]> + eps        eps ~ N(0, noise_sigma^2)
    mu[l,e]    ~ N(0, sg^2)  (+ hot boost for the layer's "consistent" experts)
    W[l,e]     ~ N(0, kappa^2/d I_d)
    h[r,t,l]   = m[r] + g[r,t] + sx * xi[r,t,l],             xi ~ N(0, I_d)
    m[r]       = sd * C[dom(r)] + sr * N(0, I_d),            C[j] ~ N(0, I_d), j < n_dom
    g[r,t]     = phi * g[r,t-1] + sqrt(1-phi^2) * N(0, I_d)  (g starts stationary, N(0, I))

then the k largest logits (distinct experts). With ``n_group > 1`` (DeepSeek) only the
``topk_group`` groups with the largest sum of their top-2 logits are eligible.

Continuous batching: each of the B slots holds a request with a geometric decode length
(mean ``profile.decode_len_mean``); a finished request is replaced at the next step by a new
one whose domain is drawn from the mix (uniform over ``n_dom`` unless ``domain_mix``).

Random streams are derived from ``seed`` with :class:`numpy.random.SeedSequence` spawn keys:
model parameters and logit noise have one stream *per absolute layer id*, so generating a
subset of layers gives exactly the same ids for those layers as generating all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sieveopt.errors import SpecError
from sieveopt.workload.profiles import RoutingProfile, get_profile
from sieveopt.workload.trace import RoutingTrace

_PARAMS, _NOISE, _REQUESTS, _DOMAINS = 0, 1, 2, 3


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def layer_params(
    profile: RoutingProfile, num_experts: int, layer_id: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Static router parameters of one layer: ``mu`` [E] and ``W`` [E, d] (float32)."""
    rng = _rng(seed, _PARAMS, layer_id)
    mu = rng.normal(0.0, profile.sg, num_experts)
    w = rng.normal(0.0, profile.kappa / np.sqrt(profile.d), (num_experts, profile.d))
    n_hot = int(round(profile.hot_frac * num_experts))
    if n_hot and profile.hot_boost > 0:
        hot = rng.choice(num_experts, n_hot, replace=False)
        if profile.hot_dist == "exponential":
            scale = rng.exponential(1.0, n_hot)
        else:
            scale = rng.uniform(0.5, 1.5, n_hot)
        mu[hot] += profile.hot_boost * scale
    return mu.astype(np.float32), w.astype(np.float32)


def topk_ids(logits: np.ndarray, k: int, n_group: int = 1, topk_group: int = 1) -> np.ndarray:
    """Exact top-k of ``[B, E]`` logits -> int16 ``[B, k]`` ids, best first.

    With ``n_group > 1`` the experts are split into contiguous groups of ``E // n_group``;
    each group is scored by the sum of its two largest logits and only the best
    ``topk_group`` groups stay eligible (DeepSeek-V3 group-limited routing).
    """
    b, e = logits.shape
    if n_group > 1:
        gs = e // n_group
        grouped = logits.reshape(b, n_group, gs)
        top2 = min(2, gs)
        part = np.partition(grouped, gs - top2, axis=2)[:, :, gs - top2 :]
        score = part.sum(axis=2)
        drop = np.argpartition(-score, topk_group - 1, axis=1)[:, topk_group:]
        masked = grouped.copy()
        masked[np.arange(b)[:, None], drop, :] = -np.inf
        logits = masked.reshape(b, e)
    idx = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(logits, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1).astype(np.int16)


class _Requests:
    """The B request slots of a continuously batched decode (topics, drift, lengths)."""

    def __init__(
        self, profile: RoutingProfile, batch: int, seed: int, domain_mix: np.ndarray
    ) -> None:
        self.p = profile
        self.rng = _rng(seed, _REQUESTS)
        self.centres = _rng(seed, _DOMAINS).standard_normal((profile.n_dom, profile.d))
        self.mix = domain_mix
        self.m = np.empty((batch, profile.d))
        self.g = np.empty((batch, profile.d))
        self.left = np.empty(batch, dtype=np.int64)
        self.rid = np.empty(batch, dtype=np.int32)
        self.next_rid = 0
        self._admit(np.arange(batch))

    def _admit(self, slots: np.ndarray) -> None:
        n, p, rng = len(slots), self.p, self.rng
        dom = rng.choice(p.n_dom, n, p=self.mix)
        self.m[slots] = p.sd * self.centres[dom] + p.sr * rng.standard_normal((n, p.d))
        self.g[slots] = rng.standard_normal((n, p.d))
        self.left[slots] = rng.geometric(1.0 / p.decode_len_mean, n)
        self.rid[slots] = np.arange(self.next_rid, self.next_rid + n, dtype=np.int32)
        self.next_rid += n

    def state(self) -> np.ndarray:
        """Token state shared by all layers, ``m + g`` [B, d] (float32)."""
        return (self.m + self.g).astype(np.float32)

    def advance(self) -> None:
        """One decode step: drift survivors, replace finished requests."""
        p = self.p
        self.g = p.phi * self.g + np.sqrt(1.0 - p.phi**2) * self.rng.standard_normal(self.g.shape)
        self.left -= 1
        done = np.flatnonzero(self.left <= 0)
        if len(done):
            self._admit(done)


def _check_geometry(e: int, k: int, b: int, steps: int, n_group: int, topk_group: int) -> None:
    src = "generate_routing"
    if e < 1 or e > np.iinfo(np.int16).max:
        raise SpecError(src, "num_experts", f"must be in [1, 32767], got {e}")
    if not 1 <= k <= e:
        raise SpecError(src, "top_k", f"must be in [1, num_experts={e}], got {k}")
    if b < 1:
        raise SpecError(src, "batch", f"must be >= 1, got {b}")
    if steps < 1:
        raise SpecError(src, "steps", f"must be >= 1, got {steps}")
    if n_group < 1 or e % n_group:
        raise SpecError(src, "n_group", f"{n_group} must divide num_experts={e}")
    if not 1 <= topk_group <= n_group:
        raise SpecError(src, "topk_group", f"must be in [1, n_group={n_group}], got {topk_group}")
    if k > topk_group * (e // n_group):
        raise SpecError(
            src, "top_k", f"{k} > experts in the kept groups ({topk_group} x {e // n_group})",
            "raise topk_group or lower top_k",
        )


def generate_routing(
    num_experts: int,
    top_k: int,
    num_layers: int,
    batch: int,
    steps: int,
    profile: RoutingProfile | str,
    seed: int,
    *,
    num_shared_experts: int = 0,
    n_group: int | None = None,
    topk_group: int | None = None,
    warmup_steps: int = 16,
    layer_ids: Sequence[int] | None = None,
    n_dom: int | None = None,
    domain_mix: Sequence[float] | None = None,
    model: str = "",
) -> RoutingTrace:
    """Synthetic routing of ``steps`` decode steps of a batch of ``batch`` requests.

    ``layer_ids`` picks which absolute layers (each in ``[0, num_layers)``) to produce;
    default all. ``n_group``/``topk_group``/``n_dom`` default to the profile's values.
    ``warmup_steps`` advances the request population (not the logits) before recording.
    Cost: one ``[B, E]`` normal draw + top-k per produced layer and step.
    """
    prof = get_profile(profile)
    if n_dom is not None:
        prof = prof.replace(n_dom=n_dom)
    ng = prof.n_group if n_group is None else int(n_group)
    tg = prof.topk_group if topk_group is None else int(topk_group)
    if ng == 1:
        tg = 1
    _check_geometry(num_experts, top_k, batch, steps, ng, tg)
    if num_layers < 1:
        raise SpecError("generate_routing", "num_layers", f"must be >= 1, got {num_layers}")
    if warmup_steps < 0:
        raise SpecError("generate_routing", "warmup_steps", "must be >= 0")
    lids = tuple(range(num_layers)) if layer_ids is None else tuple(int(x) for x in layer_ids)
    if not lids or any(not 0 <= x < num_layers for x in lids):
        raise SpecError(
            "generate_routing", "layer_ids", f"need ids in [0, {num_layers}), got {lids!r}"
        )
    if domain_mix is None:
        mix = np.full(prof.n_dom, 1.0 / prof.n_dom)
    else:
        mix = np.asarray(domain_mix, dtype=float)
        if mix.shape != (prof.n_dom,) or (mix < 0).any() or mix.sum() <= 0:
            raise SpecError(
                "generate_routing", "domain_mix",
                f"need {prof.n_dom} non-negative weights with a positive sum",
            )
        mix = mix / mix.sum()

    params = [layer_params(prof, num_experts, lid, seed) for lid in lids]
    noise = [_rng(seed, _NOISE, lid) for lid in lids]
    reqs = _Requests(prof, batch, seed, mix)
    for _ in range(warmup_steps):
        reqs.advance()

    out = np.empty((steps, len(lids), batch, top_k), dtype=np.int16)
    rids = np.empty((steps, batch), dtype=np.int32)
    sx, sig = np.float32(prof.sx), np.float32(prof.noise_sigma)
    for t in range(steps):
        base = reqs.state()
        rids[t] = reqs.rid
        for j, ((mu, w), rng) in enumerate(zip(params, noise, strict=True)):
            h = base + sx * rng.standard_normal((batch, prof.d), dtype=np.float32)
            z = rng.standard_normal((batch, num_experts), dtype=np.float32)
            z *= sig
            z += mu
            z += h @ w.T
            out[t, j] = topk_ids(z, top_k, ng, tg)
        reqs.advance()
    return RoutingTrace(
        expert_ids=out, num_experts=num_experts, top_k=top_k,
        num_shared_experts=num_shared_experts, model=model, source="synthetic", seed=seed,
        profile=prof.name, layer_ids=lids, request_ids=rids,
    )


def generate_for_model(
    model: Any, batch: int, steps: int, seed: int, layers: int | Sequence[int] | None = None
) -> RoutingTrace:
    """Routing for a ModelSpec (reads only its name, expert geometry and routing profile).

    ``layers``: None = every MoE layer; an int n = the first n MoE layers; a sequence = those
    MoE-layer indices (e.g. a sample). Layer indices count MoE layers only.
    """
    n_layers = int(model.num_moe_layers)
    if layers is None:
        lids: Sequence[int] | None = None
    elif isinstance(layers, int | np.integer):
        if not 1 <= int(layers) <= n_layers:
            raise SpecError(model.name, "layers", f"must be in [1, {n_layers}], got {layers}")
        lids = range(int(layers))
    else:
        lids = list(layers)
    ng = int(getattr(model, "n_group", 1) or 1)
    tg = int(getattr(model, "topk_group", 1) or 1)
    return generate_routing(
        int(model.num_routed_experts), int(model.top_k), n_layers, batch, steps,
        model.routing_profile, seed, num_shared_experts=int(model.num_shared_experts or 0),
        n_group=ng, topk_group=tg, layer_ids=lids, model=str(model.name),
    )
