"""The wheel installs models/solvers/validation inside the sieveopt namespace only."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_layout(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    if res.returncode != 0 and "No module named" in res.stderr:
        pytest.skip(f"cannot build a wheel here: {res.stderr[-200:]}")
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next(tmp_path.glob("sieveopt-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"models", "solvers", "validation", "tests", "benchmarks"}
    for must in ["sieveopt/models/__init__.py", "sieveopt/solvers/__init__.py", "sieveopt/validation/__init__.py",
                 "sieveopt/models/catalog/models/qwen3-30b-a3b.toml",
                 "sieveopt/models/catalog/systems/sieve-b200-hbm3e-pim.toml"]:
        assert must in names, must


def test_editable_install_imports_mapped_packages():
    import sieveopt.models
    import sieveopt.solvers
    import sieveopt.validation

    assert Path(sieveopt.models.__file__).parent.name == "models"
    assert sieveopt.solvers.SOLVERS.names()
    assert sieveopt.validation.__name__ == "sieveopt.validation"
