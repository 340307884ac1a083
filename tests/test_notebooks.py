"""Every notebook under notebooks/ executes top to bottom with few training steps, and is stored without
outputs. A cell that raises (a failed `assert` on a notebook's stated result included) fails the test."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CI_STEPS = {"02_subclass_a_method": 100, "04_inside_beats": 100, "05_contrastive_quant": 100}
"""`NOTEBOOK_STEPS` per notebook (20 for the others): the margins these notebooks assert (SimCLR's probes,
the trained tokenizer's) need 100 steps; each notebook still runs in about a minute."""
CELL_TIMEOUT_S = 300
"""The longest one cell may run (the BEATs quickstart's loop and probes, one cell, take about 90 s)."""


def test_every_notebook_is_found():
    assert [path.stem for path in NOTEBOOKS] == [
        "01_quickstart",
        "02_subclass_a_method",
        "03_evaluate_any_encoder",
        "04_inside_beats",
        "05_contrastive_quant",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    assert all(not cell.outputs and cell.execution_count is None for cell in code), (
        f"{path.name} holds outputs; clear them (Jupyter: Edit > Clear Outputs of All Cells) and commit"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    """Runs in a fresh kernel with one CPU thread (tiny models run faster on one thread than on two shared
    cores, and one-thread runs are bit-identical, so the asserted margins do not move between runs)."""
    monkeypatch.setenv("NOTEBOOK_STEPS", str(CI_STEPS.get(path.stem, 20)))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
