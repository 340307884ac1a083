"""Report files, the markdown table and the embedding plot."""

import csv
import json

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from ssl_lightning.eval.report import TaskResult, format_table, plot_embeddings, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _results() -> list[TaskResult]:
    values = {
        ("esc50-mini", "accuracy"): {"random-init": 0.1234, "supervised": 0.8, "my-method": 0.76},
        ("mtat-mini", "mAP"): {"random-init": 0.2, "supervised": 0.4321, "my-method": 0.5},
    }
    return [
        TaskResult("hares-mini", task, model, metric, value, 40, 20, 1.5, {"best_step": 300})
        for (task, metric), per_model in values.items()
        for model, value in per_model.items()
    ]


def test_format_table_rows_tasks_columns_models_percent_and_mean():
    expected = (
        "| task | metric | random-init | supervised | my-method |\n"
        "|:--|:--|--:|--:|--:|\n"
        "| esc50-mini | accuracy | 12.3 | 80.0 | 76.0 |\n"
        "| mtat-mini | mAP | 20.0 | 43.2 | 50.0 |\n"
        "| mean |  | 16.2 | 61.6 | 63.0 |\n"
    )
    assert format_table(_results()) == expected


def test_format_table_marks_missing_cells_and_prefixes_suites():
    results = [
        TaskResult("hares-mini", "esc50-mini", "a", "accuracy", 0.5, 1, 1, 0.0),
        TaskResult("hares-mini", "esc50-mini", "b", "accuracy", 0.25, 1, 1, 0.0),
        TaskResult("dabs", "cifar", "a", "accuracy", 0.75, 1, 1, 0.0),
    ]
    lines = format_table(results).splitlines()
    assert lines[2] == "| hares-mini/esc50-mini | accuracy | 50.0 | 25.0 |"
    assert lines[3] == "| dabs/cifar | accuracy | 75.0 | – |"
    assert lines[4] == "| mean |  | 62.5 | – |"


def test_format_table_rejects_duplicates_and_empty():
    results = _results()
    with pytest.raises(ValueError, match="two results for task 'esc50-mini' and model 'supervised'"):
        format_table([*results, results[1]])
    with pytest.raises(ValueError, match="no results"):
        format_table([])


def test_write_report_writes_md_csv_json_png(tmp_path):
    results = _results()
    results[0].extra["scores"] = torch.tensor([0.5, 0.25])
    paths = write_report(results, tmp_path / "report", title="hares-mini probes")
    assert set(paths) == {"md", "csv", "json", "png"}
    assert paths["md"].read_text() == "# hares-mini probes\n\n" + format_table(results)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 6
    assert rows[0]["task"] == "esc50-mini" and rows[0]["model"] == "random-init"
    assert float(rows[0]["value"]) == pytest.approx(0.1234)
    assert json.loads(rows[0]["extra"]) == {"best_step": 300, "scores": [0.5, 0.25]}
    report = json.loads(paths["json"].read_text())
    assert report["title"] == "hares-mini probes"
    assert report["results"][4] == {
        "suite": "hares-mini",
        "task": "mtat-mini",
        "model": "supervised",
        "metric": "mAP",
        "value": 0.4321,
        "num_train": 40,
        "num_test": 20,
        "seconds": 1.5,
        "extra": {"best_step": 300},
    }
    assert paths["png"].read_bytes()[:8] == PNG_SIGNATURE
    image = imread(paths["png"])
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert np.ptp(image[..., :3]) > 0.5  # something was drawn


def test_write_report_rejects_unserialisable_extra(tmp_path):
    results = _results()
    results[0].extra["model"] = object()
    with pytest.raises(TypeError, match="extra holds a object"):
        write_report(results, tmp_path)


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_plot_embeddings_writes_a_png(tmp_path, method):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (150,), generator=g)
    features = torch.randn(150, 64, generator=g) + 4 * torch.eye(3, 64)[labels]
    path = plot_embeddings(
        features, labels, ["dog", "rain", "siren"], tmp_path / "emb.png", method, max_points=90
    )
    assert path == tmp_path / "emb.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert imread(path).shape[0] > 300


def test_plot_embeddings_rejects_bad_inputs(tmp_path):
    features = torch.randn(10, 4)
    with pytest.raises(ValueError, match="integer class ids"):
        plot_embeddings(features, torch.zeros(10, 3), ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 class names"):
        plot_embeddings(features, torch.arange(10) % 3, ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown method 'umap'"):
        plot_embeddings(features, torch.arange(10) % 2, ["a", "b"], tmp_path / "x.png", method="umap")
