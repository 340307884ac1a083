"""Benchmarks generated on first use (seeded, deterministic), so every recipe runs with no data."""

from ssl_lightning.data.embedded.hares_mini import HaresMiniDataModule

__all__ = ["HaresMiniDataModule"]
