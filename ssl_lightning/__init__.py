"""ssl_lightning: self-supervised audio representation learning on PyTorch Lightning."""

__version__ = "0.1.0"
