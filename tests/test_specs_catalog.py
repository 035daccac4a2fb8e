"""Catalog presets load with the reference numbers; bad TOML gives one clear error."""

from __future__ import annotations

import pytest

from sieveopt.errors import SpecError
from sieveopt.models.catalog import check_fits, list_models, list_systems, load_model, load_system


def test_every_preset_loads():
    assert {"qwen3.5-397b-a17b", "qwen3-30b-a3b", "gpt-oss-120b", "qwen3-next-80b-a3b", "deepseek-v3",
            "mixtral-8x7b"} <= set(list_models())
    assert {"sieve-b200-hbm3e-pim", "h100-hbm3-pim", "duplex-logic-pim"} <= set(list_systems())
    for name in list_models():
        assert load_model(name).name == name
    for name in list_systems():
        assert load_system(name).name == name


@pytest.mark.parametrize("name, experts, top_k, expert_MB", [
    ("qwen3.5-397b-a17b", 512, 10, 25.17),
    ("qwen3-30b-a3b", 128, 8, 9.44),
    ("gpt-oss-120b", 128, 4, 13.22),
    ("qwen3-next-80b-a3b", 512, 10, 6.29),
    ("deepseek-v3", 256, 8, 44.04),
    ("mixtral-8x7b", 8, 2, 352.32),
])
def test_model_numbers_match_reference(name, experts, top_k, expert_MB):
    m = load_model(name)
    assert (m.num_routed_experts, m.top_k) == (experts, top_k)
    assert m.expert_weight_bytes / 1e6 == pytest.approx(expert_MB, abs=0.01)


def test_sieve_system_matches_table1():
    s = load_system("sieve-b200-hbm3e-pim", 4)
    assert s.num_gpus == 4
    assert s.gpu.peak_TFLOPS == 2250 and s.gpu.hbm_bw_GBps == 8000
    assert s.hbm_pim.stacks_per_gpu == 8 and s.hbm_pim.pseudo_channels_per_stack == 32
    assert s.hbm_pim.banks_per_pseudo_channel == 24 and s.hbm_pim.page_size_bytes == 1024
    t = s.hbm_pim.timing
    assert (t.tCK_ps, t.tRCD, t.tRP, t.tRAS, t.tRC, t.CL, t.tWR) == (500, 28, 28, 68, 96, 28, 32)
    assert (t.tCCD_S, t.tCCD_L, t.tRRD_S, t.tRRD_L, t.tFAW) == (2, 4, 6, 6, 12)
    assert s.interconnect.bw_per_direction_GBps == 900 and s.interconnect.latency_ns == 800
    # 8 stacks x 32 pCH x 32 bit x 8 Gb/s = 8.19 TB/s of pins for the 8 TB/s of Table 1.
    assert s.hbm_pim.peak_bw_GBps == pytest.approx(8192)


def test_overrides_and_partitioned_bandwidth():
    s = load_system("sieve-b200-hbm3e-pim", overrides={"hbm_pim.sharing": "partitioned",
                                                        "hbm_pim.pim_bank_fraction": 0.25})
    assert s.gpu_hbm_bw_GBps == pytest.approx(8000 * 0.75)
    # 12x the 8192 GB/s pin peak (the DRAM preset's PIM peak, issue 14: was 12 x Table 1's 8000)
    assert s.pim_bw_GBps == pytest.approx(8192 * 12 * 0.25)


def _write(tmp_path, text):
    p = tmp_path / "m.toml"
    p.write_text(text)
    return str(p)


BASE = """
name = "x"
num_layers = 2
num_moe_layers = 2
hidden_size = 64
num_routed_experts = 8
top_k = 2
expert_intermediate_size = 32
expert_weight_bytes_per_param = 2.0
routing_profile = "qwen128"
"""


def test_user_model_toml(tmp_path):
    assert load_model(_write(tmp_path, BASE)).num_routed_experts == 8


@pytest.mark.parametrize("edit, field", [
    (BASE + "bogus = 1\n", "bogus"),
    (BASE.replace("top_k = 2", "top_k = 9"), "top_k"),
    (BASE.replace("hidden_size = 64\n", ""), "hidden_size"),
    (BASE.replace("hidden_size = 64", 'hidden_size = "64"'), "hidden_size"),
    (BASE.replace("expert_weight_bytes_per_param = 2.0", "expert_weight_bytes_per_param = -1"),
     "expert_weight_bytes_per_param"),
    (BASE + "[attention]\nnum_q_heads = 0\n", "attention.num_q_heads"),
    ("name = \n", "<file>"),
])
def test_bad_model_toml_names_file_and_field(tmp_path, edit, field):
    path = _write(tmp_path, edit)
    with pytest.raises(SpecError) as info:
        load_model(path)
    assert info.value.field == field
    assert path in str(info.value)
    assert "fix:" in str(info.value)


def test_negative_bandwidth_rejected():
    with pytest.raises(SpecError) as info:
        load_system("sieve-b200-hbm3e-pim", overrides={"gpu.hbm_bw_GBps": -5.0})
    assert info.value.field == "gpu.hbm_bw_GBps"


def test_unknown_preset_lists_known_names():
    with pytest.raises(SpecError, match="qwen3-30b-a3b"):
        load_model("no-such-model")


def test_everything_on_the_gpu_must_fit_hbm():
    """Routed experts alone fit Qwen3.5-397B (BF16) on 8 x 96 GiB (90.0 GiB), but data-parallel
    attention replicates 18 GiB more per GPU: it needs 10 GPUs (the Sieve paper uses 8)."""
    q35 = load_model("qwen3.5-397b-a17b")
    with pytest.raises(SpecError, match=r"--gpus 10 or more") as info:
        check_fits(q35, load_system("sieve-b200-hbm3e-pim", 8))
    assert "routed experts 90.00" in str(info.value) and "attention 12.77" in str(info.value)
    check_fits(q35, load_system("sieve-b200-hbm3e-pim", 10), batch=256, context_len_tokens=2048)
    with pytest.raises(SpecError, match="--gpus"):
        check_fits(q35, load_system("sieve-b200-hbm3e-pim", 4))
