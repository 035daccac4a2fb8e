"""Whole-step energy: the work outside the MoE layers (embedding, LM head, dense layers, prefill
attention) as one item list behind the predicted times, its replay on the simulators, and the
whole-step energy block (components sum to totals; count components agree exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.e2e import extras
from sieveopt.models.catalog import load_model, load_system
from sieveopt.models.costmodel import make_cost_model
from sieveopt.validation.energy.layer import COMPONENTS, TOLERANCE_PCT


def _items(model_name="glm-4.5-air", gpus=2, mode="pim", prefill=(0, None)):
    model, system = load_model(model_name), load_system("sieve-b200-hbm3e-pim", gpus)
    cost = make_cost_model("roofline", system, model)
    tok, ctx, head = np.array([5, 3]), np.array([2048.0, 1024.0]), np.array([6, 3])
    items = extras.fixed_items(model, tok, ctx, head, mode, prefill[0], prefill[1])
    return model, system, cost, tok, ctx, head, items


@pytest.mark.parametrize("mode", ["gpu", "pim"])
def test_fixed_items_are_the_predicted_step_times(mode):
    model, _, cost, tok, ctx, head, items = _items(mode=mode, prefill=(512, [2, 1]))
    got = extras.items_ns(items, lambda it: extras.predicted_item_ns(cost, it))
    assert got["lm_head"] == pytest.approx(extras.lm_head_ns(model, cost, head), rel=1e-12)
    assert got["embed"] == pytest.approx(extras.embedding_ns(model, cost, head), rel=1e-12)
    n_dense = model.num_layers - model.num_moe_layers
    assert n_dense >= 1
    dense = sum(extras.dense_layer_ns(model, cost, tok, ctx, i, mode) for i in range(n_dense))
    assert got["dense"] == pytest.approx(dense, rel=1e-12) and dense > 0
    pre = sum(extras.prefill_attention_ns(model, cost, model.attention.layer_kind(i), 512, [2, 1])
              for i in range(n_dense))
    assert got["prefill"] == pytest.approx(pre, rel=1e-12) and pre > 0


def test_fixed_replay_and_energy_counts_agree():
    from sieveopt.validation.energy.layer import energy_model_for
    from sieveopt.validation.energy.step import fixed_energy_J
    from sieveopt.validation.replay import make_timer
    from sieveopt.validation.replay_fixed import replay_fixed

    model, system, cost, *_, items = _items(mode="pim")
    fr = replay_fixed(items, system, make_timer(system, model, "dram"), cost)
    assert fr.not_simulated == 0
    for part in ("embed", "lm_head", "dense"):
        assert fr.replayed_ns[part] > 0
        # the simulated HBM stream and PIM GEMV against the roofline: same order of magnitude
        assert 0.5 < fr.predicted_ns[part] / fr.replayed_ns[part] < 2.0, part
    em = energy_model_for(system, model)
    p = fixed_energy_J(em, items, fr.predicted_total_ns, 2, simulated=False)
    r = fixed_energy_J(em, items, fr.replayed_total_ns, 2, simulated=True)
    assert set(p) == set(r) == set(COMPONENTS)
    for k in ("dram_rd_wr", "dram_io", "pim_mac", "gpu_compute"):   # one count definition
        assert p[k] == pytest.approx(r[k], rel=1e-12)
    assert p["pim_mac"] > 0    # dense-layer attention on PIM
    ratio = fr.predicted_total_ns / fr.replayed_total_ns
    assert p["gpu_static"] / r["gpu_static"] == pytest.approx(ratio, rel=1e-12)


def test_step_energy_block_sums():
    from sieveopt.validation.energy.step import step_energy_block

    a = {k: 1.0 + i for i, k in enumerate(COMPONENTS)}
    b = {k: 2.0 * v for k, v in a.items()}
    blk = step_energy_block(a, b, a, a, batch=4, fixed_ns={})
    assert blk["predicted_total_J"] == pytest.approx(2 * sum(a.values()))
    assert blk["replayed_total_J"] == pytest.approx(3 * sum(a.values()))
    assert blk["J_per_token"] == pytest.approx(blk["replayed_total_J"] / 4)
    assert blk["error_pct"]["total"] == pytest.approx(100 * (2 / 3 - 1))
    assert blk["outside_moe"]["error_pct"]["gpu_static"] == 0.0
    assert blk["moe_layers"]["error_pct"]["nvlink"] == pytest.approx(-50.0)
    assert blk["within_tolerance"]["total"] is (abs(100 * (2 / 3 - 1)) <= TOLERANCE_PCT["total"])


def test_run_step_replays_the_rest_of_the_step():
    from sieveopt.e2e import StepSettings, prepare_step, run_step
    from sieveopt.e2e.policies import load_replay

    model, system = load_model("glm-4.5-air"), load_system("sieve-b200-hbm3e-pim", 2)
    p = prepare_step(model, system, 8, StepSettings(num_layers=1, seed=0))
    r = run_step(p, "sieve", replay=load_replay())
    assert r.error is None and r.check_ok
    assert 0 < r.replay_fixed_ns < r.replay_step_ns
    assert r.replay_fixed_ns == pytest.approx(r.energy_block["outside_moe"]["time_ns"]["replayed"])
    blk = r.energy_block
    assert blk is not None
    assert r.replay_step_energy_J == pytest.approx(blk["replayed_total_J"], rel=1e-9)
    assert r.step_energy_J == pytest.approx(blk["predicted_total_J"], rel=1e-9)
    assert sum(blk["replayed_J"].values()) == pytest.approx(blk["replayed_total_J"], rel=1e-12)
    out = blk["outside_moe"]
    assert out["replayed_total_J"] == pytest.approx(r.replay_fixed_energy_J, rel=1e-9)
    assert out["time_ns"]["replayed"] == pytest.approx(r.replay_fixed_ns)
    assert out["error_pct"]["gpu_compute"] == pytest.approx(0.0, abs=1e-9)
    row = r.row()
    assert row["replay_fixed_us"] == pytest.approx(r.replay_fixed_ns / 1e3)
    assert row["step_energy_error_pct"] == pytest.approx(blk["error_pct"]["total"])


def test_cli_replay_json_has_step_energy(capsys):
    import json

    from sieveopt.cli.main import main

    assert main(["replay", "--model", "glm-4.5-air", "--gpus", "2", "--batch", "8", "--scheduler-latency-ns", "0",
                 "--table-warmup", "0", "--ignore-capacity", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)["energy"]
    st = e["step"]
    n = load_model("glm-4.5-air").num_moe_layers
    for k in COMPONENTS:
        assert st["moe_layers"]["replayed_J"][k] == pytest.approx(n * e["replayed_J"][k], rel=1e-12)
        assert st["replayed_J"][k] == pytest.approx(st["moe_layers"]["replayed_J"][k]
                                                     + st["outside_moe"]["replayed_J"][k], rel=1e-12)
    assert sum(st["replayed_J"].values()) == pytest.approx(st["replayed_total_J"], rel=1e-12)
    assert st["outside_moe"]["time_ns"]["replayed_by_part"]["dense"] > 0
    assert set(st["error_pct"]) == set(st["within_tolerance"]) == {*COMPONENTS, "total"}
    assert st["J_per_token"] == pytest.approx(st["replayed_total_J"] / 8)


def test_study_rows_carry_the_whole_step_energy():
    from sieveopt.instance import sample_layers
    from sieveopt.study import energy_summary, run_study

    model, system = load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1)
    rows, _ = run_study(sample_layers(model, system, 8, 1, 0), ("sieve",), replay=True)
    (r,) = rows
    st = r.step_energy
    assert st["predicted_J"] > model.num_moe_layers * r.energy_J * 0.999
    assert st["replayed_J"] > model.num_moe_layers * r.replay_energy_J * 0.999
    assert st["error_pct"] == pytest.approx(100 * (st["predicted_J"] - st["replayed_J"]) / st["replayed_J"])
    (s,) = energy_summary(rows, ("sieve",), 8)
    assert s["replay_step_J_per_token"] == pytest.approx(st["replayed_J"] / 8)
    assert s["energy_mJ"] == pytest.approx(r.energy_J * 1e3)


def test_cli_run_says_energy_unavailable(tmp_path, capsys):
    import json

    from sieveopt.cli.main import main

    assert main(["run", "--system", "duplex-logic-pim", "--model", "qwen3-30b-a3b", "--gpus", "1", "--batch", "8",
                 "--layers", "1", "--policies", "sieve", "--no-replay", "--ignore-capacity",
                 "--out", str(tmp_path / "o"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["energy"]["available"] is False and "no energy file" in d["energy"]["reason"]
    assert all(r["energy_J"] is None for r in d["rows"])


def test_cli_pareto_says_energy_unavailable(tmp_path, capsys):
    import json

    from sieveopt.cli.main import main

    assert main(["pareto", "--system", "duplex-logic-pim", "--model", "qwen3-30b-a3b", "--gpus", "1",
                 "--batches", "8", "--layers", "1", "--policies", "sieve", "--ignore-capacity",
                 "--out", str(tmp_path / "o"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["energy"]["available"] is False and "no energy file" in d["energy"]["reason"]
    assert all(r["step_energy_mJ"] is None and r["tokens_per_J"] is None for r in d["rows"])
