"""Runs made of fits: the library's LightningCLI, multi-stage runs into one run directory
(`stages.py`), the BEATs iteration loop and the quickstart built on them. This layer sits above
methods, data and eval; only `cli.py` imports it."""
