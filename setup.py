"""Package discovery for the top-level ``models/``, ``solvers/`` and ``validation/`` folders.

They install *inside* the ``sieveopt`` namespace (``sieveopt.models`` ...), never as top-level
packages; pyproject.toml cannot express a recursive find over mapped folders, so it lives here.
"""

from setuptools import find_namespace_packages, find_packages, setup

MAPPED = {"models": "sieveopt.models", "solvers": "sieveopt.solvers", "validation": "sieveopt.validation"}

packages = find_packages(include=["sieveopt", "sieveopt.*"])
package_dir = {"sieveopt": "sieveopt"}
for folder, name in MAPPED.items():
    package_dir[name] = folder
    packages.append(name)
    # Namespace discovery also lists the data folders (catalog TOMLs, DRAM presets, energy
    # data) as packages, so package-data ships them without setuptools' "absent from the
    # packages configuration" warning.
    subs = find_namespace_packages(where=folder, exclude=["*__pycache__*"])
    packages += [f"{name}.{sub}" for sub in subs]

setup(packages=packages, package_dir=package_dir)
