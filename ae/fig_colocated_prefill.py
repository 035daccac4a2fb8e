"""The paper's colocated prefill + decode setting as a shipped sweep
(``docs/examples/colocated_prefill.toml``): decode throughput vs interactivity per policy with
prefill requests in every decode batch (Qwen3-30B-A3B, bf16 experts, 1 GPU; up to 2 prompts per
batch for B <= 32, up to 8 for B >= 64, 1024-token prompts: our choice, see the file). Roofline
cost model; serialized execution model (one layer DAG per MoE layer, no micro-batch overlap);
scheduler latency: the deterministic default charge (``sieveopt.solvers.sched_latency``)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from _common import AE_DIR, done, pyplot, save_figure, write_csv

from sieveopt.e2e import PrefillSpec, StepSettings, policy_params, prepare_step, run_step
from sieveopt.e2e.plot import pareto_axes
from sieveopt.errors import SpecError
from sieveopt.models.catalog import load_model, load_system

DEFAULT_SWEEP = AE_DIR.parent / "docs" / "examples" / "colocated_prefill.toml"


def load_sweep(path: Path) -> dict:
    """Read and check the sweep file (every field named in the error)."""
    data = tomllib.loads(path.read_text())
    head = data.get("colocated_prefill")
    if not isinstance(head, dict):
        raise SpecError(str(path), "colocated_prefill", "missing table", "add a [colocated_prefill] table")
    for key, typ in (("model", str), ("system", str), ("gpus", int), ("prompt_len_tokens", int), ("layers", int),
                     ("policies", list)):
        if not isinstance(head.get(key), typ):
            raise SpecError(str(path), f"colocated_prefill.{key}", f"expected {typ.__name__}", "see the shipped file")
    segs = data.get("segment")
    if not isinstance(segs, list) or not segs:
        raise SpecError(str(path), "segment", "no [[segment]] tables", "add [[segment]] batches=[...] prefill_requests=N")
    for i, s in enumerate(segs):
        if not (isinstance(s.get("batches"), list) and all(isinstance(b, int) and b >= 1 for b in s["batches"])
                and isinstance(s.get("prefill_requests"), int) and s["prefill_requests"] >= 0):
            raise SpecError(str(path), f"segment[{i}]", "needs batches = [ints >= 1] and prefill_requests = int >= 0",
                            "see the shipped file")
    return data


def main(argv=None) -> int:
    import argparse
    import time

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sweep", default=str(DEFAULT_SWEEP), help="sweep file (format: the shipped one)")
    p.add_argument("--quick", action="store_true", help="two batches, noexp and sieve, one layer")
    p.add_argument("--out", default=str(AE_DIR / "out" / "colocated_prefill"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.out, args.t0 = Path(args.out), time.perf_counter()
    try:
        data = load_sweep(Path(args.sweep))
    except (OSError, tomllib.TOMLDecodeError, SpecError) as exc:
        print(f"error: {args.sweep}: {exc}", file=sys.stderr)
        return 2
    head = data["colocated_prefill"]
    model, system = load_model(head["model"]), load_system(head["system"], head["gpus"])
    policies = ("noexp", "sieve") if args.quick else tuple(head["policies"])
    layers = 1 if args.quick else head["layers"]
    rows = []
    for seg in data["segment"]:
        batches = seg["batches"][:1] if args.quick else seg["batches"]
        pre = PrefillSpec(seg["prefill_requests"], head["prompt_len_tokens"] if seg["prefill_requests"] else 0)
        for b in batches:
            prob = prepare_step(model, system, b, StepSettings(num_layers=layers, seed=args.seed, prefill=pre))
            for pol in policies:
                r = run_step(prob, pol, solver_params=policy_params(pol)).row()
                rows.append({"model": model.name, "precision": model.expert_precision, "gpus": head["gpus"],
                             "prefill": pre.requests, "prefill_len": pre.len_tokens, "cost_model": "roofline",
                             "execution_model": "serialized", **r})
    write_csv(args.out / "colocated_prefill.csv", rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    pareto_axes(ax, rows, f"{model.name} ({model.expert_precision}), {head['gpus']} GPU, colocated prefill: "
                          f"{'/'.join(str(s['prefill_requests']) for s in data['segment'])} x "
                          f"{head['prompt_len_tokens']}-token prompts per batch")
    fig.tight_layout()
    save_figure(fig, args.out / "colocated_prefill")
    done(args, "colocated_prefill")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
