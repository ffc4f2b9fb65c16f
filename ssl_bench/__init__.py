"""ssl-bench: a benchmark suite for self-supervised learning on Lightning + Hydra + W&B."""

__version__ = "0.1.0"
