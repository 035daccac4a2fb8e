"""Time to simulate the dispatch all-to-all of one 8-GPU Qwen3.5 MoE layer at B = 256.

Message sizes from a simple uniform routing model: 32 tokens per GPU, hidden 4096, BF16;
each token goes to each other GPU with probability 1 - (1 - 1/8)^10 (top-10 experts spread
uniformly over 8 GPUs). Prints median / p99 wall time over ``--runs`` simulations per
configuration and the process's peak RSS.

    .venv/bin/python benchmarks/interconnect_speed.py [--runs 200] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from sieveopt.validation.interconnect import LinkParams, alltoall_messages, simulate

NUM_GPUS, TOKENS_PER_GPU, HIDDEN, BYTES_PER_ELEM, TOP_K = 8, 32, 4096, 2, 10


def dispatch_matrix(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    p_remote = 1 - (1 - 1 / NUM_GPUS) ** TOP_K
    tokens = rng.binomial(TOKENS_PER_GPU, p_remote, size=(NUM_GPUS, NUM_GPUS))
    np.fill_diagonal(tokens, 0)
    return (tokens * HIDDEN * BYTES_PER_ELEM).tolist()


def time_config(msgs, params: LinkParams, runs: int) -> dict:
    simulate(msgs, params)  # warm-up (numba compile / cache load for round-robin)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = simulate(msgs, params)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "packets": r.num_packets, "makespan_ns": r.makespan_ns}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    msgs = alltoall_messages(dispatch_matrix(args.seed))
    sizes = [m.bytes for m in msgs]
    configs = {
        "cut_through fifo 256B": LinkParams.sieve_b200(NUM_GPUS),
        "store_and_forward fifo 256B": LinkParams.sieve_b200(NUM_GPUS, switching="store_and_forward"),
        "cut_through round_robin 256B": LinkParams.sieve_b200(NUM_GPUS, egress_policy="round_robin"),
        "cut_through fifo 256B switch cap 3.6TB/s": LinkParams.sieve_b200(NUM_GPUS, switch_bw_GBps=3600.0),
        "cut_through fifo 4KiB": LinkParams.sieve_b200(NUM_GPUS, packet_bytes=4096),
    }
    rows = {name: time_config(msgs, p, args.runs) for name, p in configs.items()}
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"messages": len(msgs), "bytes_min": min(sizes), "bytes_max": max(sizes),
           "bytes_total": sum(sizes), "runs": args.runs, "seed": args.seed,
           "configs": rows, "peak_rss_MiB": round(peak_rss_mib, 1)}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"dispatch all-to-all: {len(msgs)} messages, {min(sizes)}..{max(sizes)} B "
          f"({sum(sizes) / 1e6:.2f} MB total), {args.runs} runs, seed {args.seed}")
    print(f"{'config':44s} {'packets':>8s} {'makespan_ns':>12s} {'median_ms':>10s} {'p99_ms':>8s}")
    for name, row in rows.items():
        print(f"{name:44s} {row['packets']:8d} {row['makespan_ns']:12d} "
              f"{row['median_ms']:10.3f} {row['p99_ms']:8.3f}")
    print(f"peak RSS: {peak_rss_mib:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
