"""Per-model parameters of the latent-factor routing generator (moe_models.md §5.2-5.3).

A :class:`RoutingProfile` holds the logit-scale knobs of the generator. The §5.3 values are
the defaults; the two heavy-tail knobs (``hot_frac``, ``hot_boost``) were added and
calibrated here to close the B=256 one-token gap that §5.4 reports; three §5.3 values were
re-fitted (see the comment above ``PROFILES`` and docs/design-notes/workload.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sieveopt.errors import SpecError


@dataclass(frozen=True)
class RoutingProfile:
    """Knobs of the generator ``z = mu + <W, h> + eps`` (moe_models.md §5.2).

    name:        profile name (``qwen512``, ``qwen128``, ``gptoss``, ...).
    d:           latent dimension of the token state ``h``.
    sg:          std of the static per-layer expert popularity ``mu[l, e]`` (global skew).
    kappa:       norm scale of the expert directions ``W[l, e] ~ N(0, kappa^2/d I)``:
                 how strongly the token state steers routing (locality, domain skew).
    sx:          std of the per-layer perturbation ``xi`` (larger -> less cross-layer corr.).
    sd:          scale of the domain centre in the request topic (workload breadth).
    sr:          std of the per-request offset (request individuality).
    phi:         AR(1) persistence of the drift ``g`` across decode steps.
    n_dom:       number of task/language domains in the batch mix (1 = one benchmark).
    n_group:     expert groups for group-limited top-k (DeepSeek: 8; 1 = no group limit).
    topk_group:  groups kept per token, scored by the sum of each group's top-2 logits.
    hot_frac:    share of experts per layer that are "consistent" hot experts (GEM-style);
                 ``round(hot_frac * E)`` experts, drawn per layer.
    hot_boost:   mean extra bias of a hot expert's logit, added to ``mu[l, e]``; each hot
                 expert draws its own boost ``hot_boost * s``.
    hot_dist:    law of ``s``: ``"uniform"`` (U(0.5, 1.5), bounded: keeps max/mean moderate)
                 or ``"exponential"`` (Exp(1), heavier tail: a few very hot experts).
    noise_sigma: std of the i.i.d. logit noise ``eps``.
    decode_len_mean: mean decode length in tokens of a request; lengths are geometric
                 (constant completion hazard 1/mean per step, minimum 1), which makes a
                 continuously batched population stationary from the first step.
    """

    name: str
    d: int = 16
    sg: float = 1.0
    kappa: float = 1.0
    sx: float = 0.3
    sd: float = 1.0
    sr: float = 0.5
    phi: float = 0.9
    n_dom: int = 4
    n_group: int = 1
    topk_group: int = 1
    hot_frac: float = 0.0
    hot_boost: float = 0.0
    hot_dist: str = "uniform"
    noise_sigma: float = 1.0
    decode_len_mean: float = 192.0

    def __post_init__(self) -> None:
        from sieveopt.tomlspec import require_finite

        require_finite(self)
        src = f"routing profile '{self.name}'"
        checks = [
            ("d", self.d >= 1, "must be >= 1"),
            ("sg", self.sg >= 0, "must be >= 0"),
            ("kappa", self.kappa >= 0, "must be >= 0"),
            ("sx", self.sx >= 0, "must be >= 0"),
            ("sd", self.sd >= 0, "must be >= 0"),
            ("sr", self.sr >= 0, "must be >= 0"),
            ("phi", 0.0 <= self.phi < 1.0, "must be in [0, 1)"),
            ("n_dom", self.n_dom >= 1, "must be >= 1"),
            ("n_group", self.n_group >= 1, "must be >= 1"),
            ("topk_group", 1 <= self.topk_group <= self.n_group, "must be in [1, n_group]"),
            ("hot_frac", 0.0 <= self.hot_frac <= 1.0, "must be in [0, 1]"),
            ("hot_boost", self.hot_boost >= 0, "must be >= 0"),
            ("hot_dist", self.hot_dist in ("uniform", "exponential"),
             "must be 'uniform' or 'exponential'"),
            ("noise_sigma", self.noise_sigma > 0, "must be > 0"),
            ("decode_len_mean", self.decode_len_mean >= 1, "must be >= 1 token"),
        ]
        for field, ok, problem in checks:
            if not ok:
                raise SpecError(src, field, f"{problem}, got {getattr(self, field)!r}")

    def replace(self, **changes: object) -> RoutingProfile:
        """A copy with some knobs changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# The §5.3 table lives as TOML beside the model catalog (models/catalog/profiles/*.toml, one
# file per profile, with its calibration note), so a user defines a profile for a new model the
# same way: a TOML file, named by path in the model's ``routing_profile``.
# Calibrated against Sieve §3.3 here (calibration.py, docs/design-notes/workload.md):
#   qwen512: 3% hot experts (boost 1.75 x U(0.5, 1.5)) close the B=256 N=1 gap (18% -> 22.5%);
#   qwen128: sg 3.0 -> 4.0, kappa 3.5 -> 2.0 bring N<=4 @B=64 from 54% to 48% (target 47.6%);
#   gptoss:  12% hot experts (boost 2.5 x Exp(1)) and kappa 1.0 -> 1.15 lift N=1 @B=256 from 20% to
#            23.5% while keeping N<=4 @B=64 at 66%.
# deepseek / kimi / llama4 / mixtral keep the §5.3 values (no batch-histogram anchor).
def load_profile_file(path: str | Path) -> RoutingProfile:
    """A routing profile from a TOML file (keys = :class:`RoutingProfile` fields; strict)."""
    from sieveopt.tomlspec import from_dict, read_toml

    return from_dict(RoutingProfile, read_toml(path), str(path))


def _catalog_profiles() -> dict[str, RoutingProfile]:
    root = resources.files("sieveopt.models") / "catalog" / "profiles"
    out = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            with resources.as_file(entry) as real:
                prof = load_profile_file(real)
            if prof.name != entry.name[:-5]:
                raise SpecError(entry.name, "name", f"profile name {prof.name!r} differs from the file name",
                                "make name = the file name without .toml")
            out[prof.name] = prof
    return out


PROFILES: dict[str, RoutingProfile] = _catalog_profiles()


def get_profile(profile: RoutingProfile | str) -> RoutingProfile:
    """Resolve a catalog profile name or a path to a profile ``.toml`` (or pass a profile
    through); unknown names list the choices."""
    if isinstance(profile, RoutingProfile):
        return profile
    if isinstance(profile, str) and profile.endswith(".toml"):
        return load_profile_file(profile)
    try:
        return PROFILES[profile]
    except (KeyError, TypeError):
        raise SpecError(
            "routing profile", "routing_profile", f"unknown profile {profile!r}",
            f"use one of {', '.join(sorted(PROFILES))}, or a path to a profile .toml (docs/models.md)",
        ) from None
