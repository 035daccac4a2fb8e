"""Argument blocks and instance sets shared by the benchmark scripts, one definition each (a
script keeps its own defaults where they differ). Scripts import it as ``from _args import ...``:
this folder is on ``sys.path`` when a script runs as ``python benchmarks/NAME.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable

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


def placement_headline_items(history_steps: int = 32, steps: int = 200):
    """The exact optimiser's item model of the headline window (its first ``history_steps``
    steps): every expert's single item plus the replica pairs of the 32 most loaded experts,
    with the GEM start and each replica's twin, as the studies of the search classes use it.
    Returns a namespace: ``L`` (token counts ``[T, E]``), ``sur``, ``prob``, ``it`` (items),
    ``cap`` (slots per GPU), ``table`` (the annealing's ``(tokens, level_ns)``), ``cost``
    (``[T, items, G, K]``), ``start`` (GEM's placement, -1 = unused), ``twin`` (-1 = none),
    ``single`` (mask of the single items)."""
    from types import SimpleNamespace

    import numpy as np

    from sieveopt.placement.exact import _items, replica_candidates
    from sieveopt.placement.policies import PlacementProblem, gem
    from sieveopt.placement.surrogate import Surrogate

    model, system, cap, counts = placement_headline_window(history_steps, steps)
    L = counts[:history_steps].astype(np.int64)
    sur = Surrogate(model, system, 256)
    prob = PlacementProblem(L.shape[1], system.num_gpus, cap, 32, sur)
    it = _items(L, replica_candidates(L, sur.level_ns, 32))
    n = it.expert.size
    g = gem(L.astype(float), prob)
    start = np.full(n, -1, dtype=np.int64)
    start[g.slots] = g.slot_gpu
    twin = np.full(n, -1)
    for a, b in it.pair.values():
        twin[a], twin[b] = b, a
    single = np.zeros(n, dtype=bool)
    single[it.single] = True
    return SimpleNamespace(L=L, sur=sur, prob=prob, it=it, cap=cap, table=(it.tokens, sur.level_ns),
                           cost=np.ascontiguousarray(sur.level_ns[:, it.tokens].transpose(1, 2, 0, 3)),
                           start=start, twin=twin, single=single)


def timed(f, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201
    """``(f(*a, **kw), seconds)``: one call and its wall time."""
    t0 = time.perf_counter()
    out = f(*a, **kw)
    return out, time.perf_counter() - t0


def excess_pct(opt: float) -> Callable[[float], str]:
    """Formatter of a value's excess over ``opt`` (a planted optimum), ``"+0.123 %"``."""
    return lambda v: f"+{100 * (v / opt - 1):.3f} %"


def anneal_polish(table, cost, a0, cap: int, twin, iters: int, seed: int):  # noqa: ANN001, ANN201
    """The exact placement optimiser's stage 1 from ``a0``: the annealing (``iters`` steps on the
    token table ``table``, seed ``seed``), then the 30 s polish on the dense ``cost``. Returns
    the placement, the annealed value and the polished value."""
    from sieveopt.placement.anneal import anneal
    from sieveopt.placement.local_search import polish

    a, v_anneal, _ = anneal(table, a0, cap, twin, iters=iters, seed=seed)
    a, v_polish, _ = polish(cost, a, cap, twin, time_limit_s=30.0)
    return a, v_anneal, v_polish


def microbatch_rows(config_value: str | list[str], batches: str, window_layers: int):
    """``(name, gpus, batch, problem)`` for every ``--configs`` entry and comma-separated batch:
    the periodic problem of the gap benchmarks (``microbatch``, M = 2, the given window, roofline
    cost model, sampled layers of seed 0)."""
    from sieveopt.execution_model import make_execution_model
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.models.costmodel import make_cost_model
    from sieveopt.overlap import sample_problem

    for name, gpus in configs(config_value):
        model, system = load_model(name), load_system(SYSTEM, gpus)
        cost = make_cost_model("roofline", system, model)
        for b in map(int, batches.split(",")):
            ex = make_execution_model("microbatch", 2, window_layers=window_layers, batch=b, num_gpus=gpus)
            yield name, gpus, b, sample_problem(model, system, b, ex, 0, cost)


__all__ = ["PAPER_CONFIGS", "SYSTEM", "add_configs", "add_paper_instance", "add_timing", "anneal_polish", "configs", "excess_pct", "microbatch_rows", "placement_headline_items", "split_config", "timed"]


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
