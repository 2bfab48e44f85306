"""Evaluation: FPR95 (both definitions), hand-crafted baselines, plots and results tables."""

from kglnet.evaluation.fpr95 import fpr95_descriptor, fpr95_metric, roc_points
from kglnet.evaluation.handcrafted import (
    HANDCRAFTED,
    ncc_distance,
    sift_descriptors,
    sift_descriptors_per_patch,
    sift_distance,
)
from kglnet.evaluation.plots import plot_roc, plot_training_curves
from kglnet.evaluation.tables import (
    build_table,
    load_records,
    mean_over_test_sets,
    validate_record,
    write_tables,
)

__all__ = [
    "HANDCRAFTED",
    "build_table",
    "fpr95_descriptor",
    "fpr95_metric",
    "load_records",
    "mean_over_test_sets",
    "ncc_distance",
    "plot_roc",
    "plot_training_curves",
    "roc_points",
    "sift_descriptors",
    "sift_descriptors_per_patch",
    "sift_distance",
    "validate_record",
    "write_tables",
]
