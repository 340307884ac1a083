"""DABS datamodules (Tamkin et al. 2021): one per domain, serving DABS batches (`base.py`)."""
