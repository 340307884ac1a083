"""`ssl-lightning beats-quickstart`: the tiny BEATs loop and the probe table of random-init, iter1, iter2,
and the README's promise for the seeded default run: iter1 and iter2 beat random-init on the mean."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest

from ssl_lightning.orchestration.quickstart import main
from ssl_lightning.orchestration.stages import last_checkpoint


@pytest.mark.slow
def test_quickstart_runs_the_loop_and_probes_each_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    short = tmp_path / "short.yaml"
    short.write_text(
        "trainer:\n  max_steps: 2\ncheckpoint:\n  every_n_train_steps: 1\n"
        "data:\n  init_args:\n    batch_size: 4\n"
    )
    results = main(["--run-dir", "runs/q", "--tasks", "env_events", "--config", str(short)])
    for stage in ("iter1", "tokenizer_iter2", "iter2"):
        assert last_checkpoint(Path("runs/q"), stage).is_file()
    assert sorted(r.model for r in results) == ["iter1", "iter2", "random-init"]
    assert {r.task for r in results} == {"env_events"}
    assert all(0.0 <= r.value <= 1.0 for r in results)
    assert Path("runs/q/evaluate/results.md").is_file()
    again = main(["--run-dir", "runs/q", "--tasks", "env_events", "--config", str(short)])  # stages skipped
    assert [(r.model, r.value) for r in again] == [(r.model, r.value) for r in results]


def test_quickstart_needs_its_overlays(tmp_path):
    with pytest.raises(FileNotFoundError, match="quickstart overlays not found"):
        main(["--recipes-dir", str(tmp_path)])


@pytest.mark.slow
def test_the_seeded_default_quickstart_beats_random_init_as_the_readme_says(tmp_path, monkeypatch):
    """The README's main job as it runs on a fresh machine (about 5 minutes on 2 cores)."""
    monkeypatch.chdir(tmp_path)
    results = main(["--run-dir", "runs/q"])
    models = {r.model for r in results}
    means = {model: mean(r.value for r in results if r.model == model) for model in models}
    assert len(results) == 3 * 6, "every hares-mini task for each of the three encoders"
    assert means["iter1"] > means["random-init"], means
    assert means["iter2"] > means["random-init"], means
