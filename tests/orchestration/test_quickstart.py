"""`ssl-lightning beats-quickstart`: the tiny BEATs loop and the probe table of random-init, iter1, iter2,
and the README's promise for the seeded default run: iter1 and iter2 beat random-init on the mean."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest

from ssl_lightning.orchestration.quickstart import main
from ssl_lightning.orchestration.stages import last_checkpoint


def test_quickstart_needs_its_overlays(tmp_path):
    with pytest.raises(FileNotFoundError, match="quickstart overlays not found"):
        main(["--recipes-dir", str(tmp_path)])


@pytest.mark.slow
def test_the_seeded_default_quickstart_beats_random_init_as_the_readme_says(tmp_path, monkeypatch):
    """The README's main job as it runs on a fresh machine (about 5 minutes on 2 cores); a restart skips
    the finished stages and probes the same checkpoints to the same numbers."""
    monkeypatch.chdir(tmp_path)
    results = main(["--run-dir", "runs/q"])
    for stage in ("iter1", "tokenizer_iter2", "iter2"):
        assert last_checkpoint(Path("runs/q"), stage).is_file()
    assert Path("runs/q/evaluate/results.md").is_file()
    assert len(results) == 3 * 6, "every hares-mini task for each of the three encoders"
    models = {r.model for r in results}
    means = {model: mean(r.value for r in results if r.model == model) for model in models}
    assert means["iter1"] > means["random-init"], means
    assert means["iter2"] > means["random-init"], means

    again = main(["--run-dir", "runs/q", "--tasks", "env_events"])  # stages skipped, one task probed
    first = [(r.model, r.value) for r in results if r.task == "env_events"]
    assert sorted((r.model, r.value) for r in again) == sorted(first)
