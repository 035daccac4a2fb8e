"""Argument blocks and instance sets shared by the benchmark scripts, one definition each (a
script keeps its own defaults where they differ). Scripts import it as ``from _args import ...``:
this folder is on ``sys.path`` when a script runs as ``python benchmarks/NAME.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

#: The system every paper-configuration benchmark runs on (the Sieve B200 + HBM3E-PIM preset).
SYSTEM = "sieve-b200-hbm3e-pim"
#: The paper's three configurations as ``MODEL:GPUS`` (Qwen3-30B-A3B on 1 GPU, GPT-OSS-120B on 4,
#: Qwen3.5-397B-A17B on 8; ``sieveopt.study.PAPER_GPUS``).
PAPER_CONFIGS = ("qwen3-30b-a3b:1", "gpt-oss-120b:4", "qwen3.5-397b-a17b:8")


def split_config(cfg: str) -> tuple[str, int]:
    """``"MODEL:GPUS"`` -> (model, GPUs); a malformed one is an argparse error (exit 2)."""
    name, sep, gpus = cfg.partition(":")
    if not (name and sep and gpus.isdigit() and int(gpus) >= 1):
        raise argparse.ArgumentTypeError(f"{cfg!r}: expected MODEL:GPUS, e.g. gpt-oss-120b:4")
    return name, int(gpus)


def _config(text: str) -> str:
    split_config(text)
    return text


def _config_list(text: str) -> str:
    for cfg in text.split(","):
        split_config(cfg)
    return text


def add_configs(ap: argparse.ArgumentParser, *, listed: bool = False,
                default: Iterable[str] = PAPER_CONFIGS) -> None:
    """``--configs``: ``MODEL:GPUS`` pairs, comma-separated (``listed``: space-separated words),
    the paper's three by default. Read them back with :func:`configs`."""
    if listed:
        ap.add_argument("--configs", nargs="+", type=_config, default=list(default), help="MODEL:GPUS pairs")
    else:
        ap.add_argument("--configs", type=_config_list, default=",".join(default),
                        help="comma-separated MODEL:GPUS pairs")


def configs(value: str | list[str]) -> list[tuple[str, int]]:
    """(model, GPUs) of each ``--configs`` entry, in order (either form of :func:`add_configs`)."""
    return [split_config(c) for c in (value.split(",") if isinstance(value, str) else value)]


def add_paper_instance(ap: argparse.ArgumentParser) -> None:
    """``--model`` / ``--gpus`` / ``--batch``, by default the paper's decision-latency and replay
    setup: Qwen3.5-397B-A17B on 8 GPUs, B = 256."""
    ap.add_argument("--model", default="qwen3.5-397b-a17b")
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--batch", type=int, default=256)


def add_timing(ap: argparse.ArgumentParser) -> None:
    """Options of the decision-latency harnesses: timed calls, warm-up calls, CPU pinning and
    JSON output."""
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--pin-cpu", type=int, default=None, help="pin the process to this CPU")
    ap.add_argument("--json", action="store_true")


__all__ = ["PAPER_CONFIGS", "SYSTEM", "add_configs", "add_paper_instance", "add_timing", "configs", "split_config"]


def placement_headline_window(history_steps: int, steps: int):
    """The placement headline's instance (``sieveopt place --model deepseek-v3 --gpus 8 --steps
    200 --variability 0.1``, seed 0): the model, the system with its GPU speed draws, the HBM
    slots per GPU and the routing counts ``[history_steps + steps, E]`` of its sampled layer."""
    import numpy as np

    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.placement.core import slots_per_gpu
    from sieveopt.placement.evaluate import drifting_trace
    from sieveopt.variability import variability_spec, with_variability

    model = load_model("deepseek-v3")
    system = with_variability(load_system(SYSTEM, 8), variability_spec(0.1, seed=0))
    lids = sorted(int(x) for x in np.random.default_rng(0).choice(model.num_moe_layers, 1, replace=False))
    counts = drifting_trace(model, 256, history_steps + steps, 0, lids).counts()[:, 0, :]
    return model, system, slots_per_gpu(model, system), counts
