"""Evaluation: frozen-feature extraction, linear/MLP probes, clip-level metrics, suites (hares-mini, HARES)
and reports."""

from ssl_lightning.eval.callback import HaresSuite, ProbeEvaluation
from ssl_lightning.eval.features import FeatureSet, extract_features
from ssl_lightning.eval.metrics import (
    METRICS,
    accuracy,
    aggregate_subclips,
    compute_metric,
    mean_average_precision,
)
from ssl_lightning.eval.probe import METRIC_LABEL_TYPE, LinearProbe, ProbeConfig
from ssl_lightning.eval.quantized import (
    FixedPrecision,
    evaluate_contrastive_quant,
    finetune_eval,
    fix_precision,
    linear_eval,
    method_at_precision,
)
from ssl_lightning.eval.report import TaskResult, format_table, plot_embeddings, write_report

__all__ = [
    "METRICS",
    "METRIC_LABEL_TYPE",
    "FeatureSet",
    "FixedPrecision",
    "HaresSuite",
    "LinearProbe",
    "ProbeConfig",
    "ProbeEvaluation",
    "TaskResult",
    "accuracy",
    "aggregate_subclips",
    "compute_metric",
    "evaluate_contrastive_quant",
    "extract_features",
    "finetune_eval",
    "fix_precision",
    "format_table",
    "linear_eval",
    "mean_average_precision",
    "method_at_precision",
    "plot_embeddings",
    "write_report",
]
