"""TriMoE relayout (sieveopt/trimoe_relayout.py): the unit-load layer time, rebalancing, the
movement charge, and the ``sieveopt trimoe relayout`` command."""

from __future__ import annotations

import json

import numpy as np

from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import make_cost_model
from sieveopt.trimoe_relayout import TierCosts, rebalance, run_layer, step_time, tier_costs

SYSTEM = "trimoe-h100-xeon-ndp"


def _costs(dimms: int = 2) -> TierCosts:
    a = np.arange(8, dtype=np.int64)
    return TierCosts(hit=10 * a, fetch=1000 + 0 * a, cpu=300 + 0 * a, ndp=100 * a, read_ns=50, pcie_move_ns=900,
                     dimm_move_ns=700, num_dimms=dimms, expert_bytes=1e6)


def test_step_time_by_hand() -> None:
    c = _costs()
    tok = np.array([5, 3, 1, 0])
    home = np.array([0, 0, 1, 1])
    # expert 0 (5 tokens): GPU fetch 1000, CPU 300 (+50 read on DIMM 0), NDP 500 -> CPU (300)
    # expert 1 (3): GPU 1000, CPU 600, NDP on DIMM 0: 50 + 300 = 350 -> NDP, max 350
    # expert 2 (1): GPU 1000, CPU 600, NDP on DIMM 1: 100 -> NDP; makespan stays 350
    assert step_time(tok, np.zeros(4, bool), home, c) == 350
    # cached expert 0: GPU hit 50 beats the CPU; expert 1 ties at 300 (CPU or NDP), expert 2 on NDP 1
    assert step_time(tok, np.array([1, 0, 0, 0], bool), home, c) == 300
    assert step_time(tok, np.zeros(4, bool), home, c, base_gpu_ns=77) == 350   # GPU unused


def test_rebalance_evens_the_predicted_ndp_load_within_the_move_cap() -> None:
    c = _costs(dimms=2)
    tok = np.array([4, 4, 4, 4, 0, 0])
    home = np.zeros(6, dtype=np.int64)                 # everything on DIMM 0
    assert (rebalance(tok, np.zeros(6, bool), home, c, max_moves=0) == home).all()
    new = rebalance(tok, np.zeros(6, bool), home, c, max_moves=8)
    assert np.bincount(new[:4], minlength=2).tolist() == [2, 2]
    assert (home == 0).all()                           # input untouched


def test_relayout_pays_off_when_the_hot_set_moves_and_is_charged_for_it() -> None:
    """Two phases with different hot experts: relayout from the last step recaches the new hot set
    (a PCIe charge) and beats the static layout; with nothing to move it never relayouts."""
    c = _costs(dimms=2)
    E, phase = 8, 40
    a = np.zeros((phase, E), dtype=np.int64)
    a[:, :2], a[:, 2:] = 7, 1
    b = np.zeros((phase, E), dtype=np.int64)
    b[:, 6:], b[:, :6] = 7, 1
    counts = np.concatenate([a, a, b])                 # history 40 steps of phase a, then a, then b
    static = run_layer(counts, phase, c, policy="static", every=8, slots=2, max_moves=4)
    last = run_layer(counts, phase, c, policy="last", every=8, slots=2, max_moves=4)
    assert last[3] >= 1 and last[1].sum() > 0 and last[2] > 0          # relayouts, charged, bytes moved
    assert (last[0] + last[1]).sum() < static[0].sum()
    assert static[1].sum() == 0 and static[3] == 0
    frozen = run_layer(counts, phase, c, policy="oracle", every=8, slots=0, max_moves=0)
    assert frozen[3] == 0 and (frozen[0] == run_layer(counts, phase, c, policy="static", every=8, slots=0,
                                                       max_moves=0)[0]).all()


def test_tier_costs_come_from_the_registered_targets() -> None:
    from sieveopt.models.work import expert_work
    from sieveopt.targets import get_target

    m, s = load_model("deepseek-v2"), load_system(SYSTEM)
    cost = make_cost_model("roofline", s, m)
    c = tier_costs(m, s, cost, 8)
    w = expert_work(m, 5, launches=0)
    assert c.ndp[5] == round(get_target("ndp").duration_ns(cost, w))
    assert c.fetch[5] == round(get_target("gpu_fetch").duration_ns(cost, w))
    assert c.hit[5] < c.cpu[5] < c.fetch[5]
    assert c.num_dimms == 16 and c.dimm_move_ns == round(m.expert_weight_bytes / 38.4)


def test_cli_reports_static_and_relayout_and_rejects_bad_input(capsys) -> None:
    from sieveopt.cli.main import main

    rc = main(["trimoe", "relayout", "--model", "qwen3-235b-a22b", "--steps", "24", "--history", "8",
               "--every", "8", "--predictors", "ema,oracle", "--per-step", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in d["policies"]] == ["static", "relayout-ema", "relayout-oracle"]
    assert d["policies"][0]["speedup_vs_static"] == 1.0
    assert len(d["per_step"]["static"]["layer_ns"]) == 24
    assert "unit-load" in d["execution_model"] and d["cost_model"] == "roofline"
    for bad, field in ((["--predictors", "nope"], "predictors"), (["--system", "h100-hbm3-pim"], "offload"),
                       (["--cache-experts", "-1"], "--cache-experts"), (["--history", "40", "--steps", "1",
                                                                          "--trace", "/nonexistent.npz"], "--trace")):
        assert main(["trimoe", "relayout", "--steps", "4", *bad]) == 2
        assert field in capsys.readouterr().err
