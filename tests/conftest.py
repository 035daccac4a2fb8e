"""Shared fixtures. Markers (slow, benchmark, ray) are registered in pyproject.toml."""

from __future__ import annotations

import numpy as np
import pytest

from sieveopt.models.catalog import load_model, load_system


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def sieve_system():
    return load_system("sieve-b200-hbm3e-pim")


@pytest.fixture(scope="session")
def paper_configs():
    """The paper's three (model, system) pairs."""
    return [
        (load_model("qwen3-30b-a3b"), load_system("sieve-b200-hbm3e-pim", 1)),
        (load_model("gpt-oss-120b"), load_system("sieve-b200-hbm3e-pim", 4)),
        (load_model("qwen3.5-397b-a17b"), load_system("sieve-b200-hbm3e-pim", 8)),
    ]
