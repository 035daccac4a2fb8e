"""Import a script of ``ae/`` (the artefact-evaluation folder is not a package) for its tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

AE = Path(__file__).resolve().parent.parent / "ae"


def load_ae_module(name: str) -> ModuleType:
    """``ae/<name>.py`` as a module, with ``ae/`` on the path only while it is imported."""
    sys.path.insert(0, str(AE))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(AE))
