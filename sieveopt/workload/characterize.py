"""Trace characterisation for placement: the insights of Patterns behind Chaos and GEM, measured.

For a :class:`~sieveopt.workload.trace.RoutingTrace` (synthetic or a Patterns-behind-Chaos
trace) it reports, per layer and pooled:

* **temporal locality** (Orders in Chaos: "adjacent tokens in the same layer re-use a small
  set of experts", trimoe_gem.md §3 item 2): next-step reuse, T20 and hot-set Jaccard from
  :func:`~sieveopt.workload.locality.locality_stats`, plus the lag-1 correlation of per-expert
  batch loads;
* **spatial co-activation** (item 5, "a small fraction of expert pairs carries most
  co-activations"): pairs of experts chosen by the same token; the share of all pair
  co-occurrences carried by the top 1 % and top 10 % of pairs (uniform routing: ~1 % / ~10 %);
* **consistent vs temporal experts** (GEM: "consistent experts are used in most time steps",
  "temporal experts ... together, bursty"; trimoe_gem.md §2.3), with the thresholds of
  :func:`~sieveopt.placement.policies.classify_experts`: their counts, the share of steps a
  temporal expert is used, and its load when used relative to its mean (GEM's note: ~17 % of
  steps, ~3x the tokens);
* **per-layer skew** (item 4): max/mean and top-20 % share of long-window loads, CV.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sieveopt.workload.locality import locality_stats, top_share
from sieveopt.workload.trace import RoutingTrace


def pair_counts(ids_nk: np.ndarray, num_experts: int) -> np.ndarray:
    """Symmetric co-activation counts ``[E, E]``: tokens choosing both i and j (i != j)."""
    ids = np.asarray(ids_nk, dtype=np.int64)
    k = ids.shape[1]
    a, b = np.triu_indices(k, 1)
    flat = (ids[:, a] * num_experts + ids[:, b]).ravel()
    c = np.bincount(flat, minlength=num_experts * num_experts).reshape(num_experts, num_experts)
    return c + c.T


def coactivation_concentration(pairs: np.ndarray, shares: tuple[float, ...] = (0.01, 0.1)) -> dict[str, float]:
    """Share of co-activation mass in the top ``share`` of the E(E-1)/2 expert pairs."""
    iu = np.triu_indices(pairs.shape[0], 1)
    v = np.sort(pairs[iu])[::-1].astype(float)
    tot = max(v.sum(), 1e-12)
    return {f"coact_top{int(s * 100)}pct": float(v[: max(1, int(np.ceil(s * v.size)))].sum() / tot) for s in shares}


def characterize(trace: RoutingTrace) -> dict[str, Any]:
    """Per-layer and pooled characterisation (module docstring)."""
    from sieveopt.placement.policies import classify_experts

    cnt = trace.counts()                                 # [T, L, E]
    T, L, E = cnt.shape
    loc = locality_stats(trace)
    rows = []
    for j in range(L):
        c = cnt[:, j, :].astype(float)
        tot = c.sum(axis=0)
        mean = tot.mean()
        used, kind = classify_experts(c)
        temporal = np.flatnonzero(kind == 1)
        burst = []
        for e in temporal:
            if c[:, e].mean() > 0:
                burst.append(c[used[:, e], e].mean() / c[:, e].mean())
        x, y = c[:-1], c[1:]
        if T > 1:
            xm, ym = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
            den = np.sqrt((xm**2).sum(axis=1) * (ym**2).sum(axis=1))
            corr = float(np.mean(np.where(den > 0, (xm * ym).sum(axis=1) / np.where(den > 0, den, 1), 0.0)))
        else:
            corr = float("nan")
        pairs = pair_counts(trace.expert_ids[:, j].reshape(-1, trace.top_k), E)
        rows.append({
            "layer": int(trace.layer_ids[j]),
            "max_over_mean": float(tot.max() / mean) if mean > 0 else float("nan"),
            "top20_share": float(top_share(tot[None, None, :])[0]),
            "cv": float(tot.std() / mean) if mean > 0 else float("nan"),
            "load_corr_lag1": corr,
            "consistent": int((kind == 2).sum()), "temporal": int((kind == 1).sum()), "cold": int((kind == 0).sum()),
            "temporal_used_share": float(used[:, temporal].mean()) if temporal.size else float("nan"),
            "temporal_burst_x": float(np.mean(burst)) if burst else float("nan"),
            **coactivation_concentration(pairs),
        })
    keys = [k for k in rows[0] if k != "layer"]
    pooled = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    pooled.update(loc["summary"])
    return {"meta": {"model": trace.model, "source": trace.source, "steps": T, "layers": L, "batch": trace.batch,
                     "num_experts": E, "top_k": trace.top_k},
            "summary": pooled, "per_layer": rows}


def plot_characterization(trace: RoutingTrace, data: dict[str, Any], out_dir: str) -> list[str]:
    """Figures: per-layer skew, co-activation heatmap of the first layer, expert classes."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sieveopt.cli.output import atomic_path
    from sieveopt.placement.policies import classify_experts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = data["per_layer"]
    paths = []
    fig, ax = plt.subplots(1, 2, figsize=(9, 3))
    layers = [r["layer"] for r in rows]
    ax[0].bar(range(len(rows)), [r["max_over_mean"] for r in rows])
    ax[0].set_xticks(range(len(rows)), layers, fontsize=6)
    ax[0].set(title="skew: max / mean expert load", xlabel="layer")
    ax[1].bar(range(len(rows)), [r["coact_top1pct"] for r in rows])
    ax[1].set_xticks(range(len(rows)), layers, fontsize=6)
    ax[1].set(title="co-activation mass in top 1 % of pairs", xlabel="layer")
    fig.tight_layout()
    with atomic_path(out / "characterize_layers.png") as p:
        fig.savefig(p, format="png", dpi=120)
    plt.close(fig)
    paths.append(str(out / "characterize_layers.png"))

    E = trace.num_experts
    c = trace.counts()[:, 0, :].astype(float)
    pairs = pair_counts(trace.expert_ids[:, 0].reshape(-1, trace.top_k), E)
    used, kind = classify_experts(c)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    ax[0].imshow(np.log1p(pairs), cmap="viridis")
    ax[0].set(title=f"co-activation (log), layer {rows[0]['layer']}", xlabel="expert", ylabel="expert")
    mean = c.mean(axis=0)
    share = used.mean(axis=0)
    for k, lab, col in ((2, "consistent", "tab:blue"), (1, "temporal", "tab:orange"), (0, "cold", "tab:gray")):
        sel = kind == k
        ax[1].scatter(share[sel], mean[sel], s=6, label=lab, color=col)
    ax[1].set(title="GEM expert classes", xlabel="share of steps used", ylabel="mean tokens / step")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out / "characterize_experts.png") as p:
        fig.savefig(p, format="png", dpi=120)
    plt.close(fig)
    paths.append(str(out / "characterize_experts.png"))
    return paths
