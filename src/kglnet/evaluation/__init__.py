"""Evaluation: FPR95 (both definitions), hand-crafted baselines, plots and results tables."""

from kglnet.evaluation.fpr95 import fpr95_descriptor, fpr95_metric, roc_points
from kglnet.evaluation.handcrafted import (
    HANDCRAFTED,
    gisift_descriptors,
    gisift_distance,
    lghd_descriptors,
    lghd_distance,
    ncc_distance,
    sift_descriptors,
    sift_descriptors_per_patch,
    sift_distance,
)
from kglnet.evaluation.paper import load_paper_results, paper_numbers
from kglnet.evaluation.plots import (
    MATCH_GROUPS,
    operating_threshold,
    plot_fpr95_vs_parameters,
    plot_match_grid,
    plot_roc,
    plot_seed_spread,
    plot_training_curves,
    roc_figure,
    seed_spread_figure,
    select_match_examples,
)
from kglnet.evaluation.summary import paper_protocol_scores, summarize, write_summary_tables
from kglnet.evaluation.tables import (
    build_table,
    load_records,
    mean_over_test_sets,
    validate_record,
    write_tables,
)

__all__ = [
    "HANDCRAFTED",
    "MATCH_GROUPS",
    "gisift_descriptors",
    "gisift_distance",
    "lghd_descriptors",
    "lghd_distance",
    "load_paper_results",
    "operating_threshold",
    "paper_numbers",
    "paper_protocol_scores",
    "plot_fpr95_vs_parameters",
    "plot_match_grid",
    "select_match_examples",
    "summarize",
    "write_summary_tables",
    "build_table",
    "fpr95_descriptor",
    "fpr95_metric",
    "load_records",
    "mean_over_test_sets",
    "ncc_distance",
    "plot_roc",
    "plot_seed_spread",
    "plot_training_curves",
    "roc_figure",
    "roc_points",
    "seed_spread_figure",
    "sift_descriptors",
    "sift_descriptors_per_patch",
    "sift_distance",
    "validate_record",
    "write_tables",
]
