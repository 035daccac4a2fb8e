"""Package discovery for the top-level ``models/``, ``solvers/`` and ``validation/`` folders.

They install *inside* the ``sieveopt`` namespace (``sieveopt.models`` ...), never as top-level
packages; pyproject.toml cannot express a recursive find over mapped folders, so it lives here.
"""

from setuptools import find_packages, setup

MAPPED = {"models": "sieveopt.models", "solvers": "sieveopt.solvers", "validation": "sieveopt.validation"}

packages = find_packages(include=["sieveopt", "sieveopt.*"])
package_dir = {"sieveopt": "sieveopt"}
for folder, name in MAPPED.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]

setup(packages=packages, package_dir=package_dir)
