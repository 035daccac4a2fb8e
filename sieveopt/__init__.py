"""sieveopt: design, solve and validate GPU/HBM-PIM schedulers for MoE LLM decode."""

__version__ = "0.1.0"
