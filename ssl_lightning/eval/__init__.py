"""Evaluation: frozen-feature extraction, linear/MLP probes, clip-level metrics and reports."""

from ssl_lightning.eval.features import FeatureSet, extract_features
from ssl_lightning.eval.metrics import (
    METRICS,
    accuracy,
    aggregate_subclips,
    compute_metric,
    mean_average_precision,
)
from ssl_lightning.eval.probe import METRIC_LABEL_TYPE, LinearProbe, ProbeConfig
from ssl_lightning.eval.report import TaskResult, format_table, plot_embeddings, write_report

__all__ = [
    "METRICS",
    "METRIC_LABEL_TYPE",
    "FeatureSet",
    "LinearProbe",
    "ProbeConfig",
    "TaskResult",
    "accuracy",
    "aggregate_subclips",
    "compute_metric",
    "extract_features",
    "format_table",
    "mean_average_precision",
    "plot_embeddings",
    "write_report",
]
