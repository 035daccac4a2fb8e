"""Cycle-level HBM3 / HBM3E / HBM-PIM simulator (command level, numba-compiled hot loop).

Entry points: :mod:`.api` (layer-level times for replay), :class:`.sim.DramSim` (requests,
streaming), :mod:`.trace` (Ramulator 2.0 traces), :mod:`.pim` (PIM kernel generator),
:mod:`.checker` (independent timing checker for command logs).
"""

from sieveopt.validation.dram.config import DramConfig, list_dram_presets, load_dram_config

__all__ = ["DramConfig", "list_dram_presets", "load_dram_config"]
