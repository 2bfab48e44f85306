"""The report's ROC curves (kglnet.evaluation.runner): labels, dashes and the FPR95 each legend shows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kglnet.evaluation.runner import report_roc_curves
from kglnet.evaluation.summary import summarize


def _roc_file(path, model, branch, points):
    path.write_text(json.dumps([{"model": model, "test_set": "test", "branch": branch, "fpr": f, "tpr": t}
                                for f, t in points]))
    return path


def _summary(records):
    # Without paper-protocol histories: this test is about the figures, not the second protocol.
    return summarize("d", records, {("kglnet", 0): [], ("kglnet", 1): []})


def _records():
    kgl = [{"dataset": "d", "model": "kglnet", "label": "KGL-Net", "selection": "validation", "seed": seed,
            "test_sets": {"test": {"fpr95_metric": metric, "fpr95_descriptor": descriptor}}}
           for seed, metric, descriptor in ((0, 30.0, 40.0), (1, 50.0, 60.0))]
    # A hand-crafted method: one distance; the descriptor column thresholds at the sorted positive,
    # the metric column (reported) interpolates on the same ROC curve.
    sift = {"dataset": "d", "model": "sift", "label": "SIFT", "selection": "none",
            "test_sets": {"test": {"fpr95_metric": 9.47, "fpr95_descriptor": 9.67}}}
    return kgl + [sift]


def test_report_roc_curves_labels_dashes_and_reported_fpr95(tmp_path):
    records = _records()
    summary = _summary(records)
    roc = [_roc_file(tmp_path / "k.json", "kglnet", "metric", [(0.0, 0.0), (0.5, 0.9), (1.0, 1.0)]),
           _roc_file(tmp_path / "k.descriptor.json", "kglnet", "descriptor", [(0.0, 0.0), (1.0, 1.0)]),
           _roc_file(tmp_path / "sift.json", "sift", "descriptor", [(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)])]
    curves, dashed = report_roc_curves(summary, records, roc)
    assert set(curves) == {"test"}
    test = curves["test"]
    # The first seed stands for the model; both its branches are drawn, the descriptor dashed.
    assert sorted(test) == ["KGL-Net (descriptor), seed 0", "KGL-Net (metric), seed 0", "SIFT"]
    assert test["KGL-Net (metric), seed 0"][2] == 30.0 and test["KGL-Net (descriptor), seed 0"][2] == 40.0
    assert dashed == {"test": {"KGL-Net (descriptor), seed 0"}}
    # One curve: the legend gives the table's number (the reported metric column), not the
    # column of the branch the ROC file happens to be stored under.
    assert summary["methods"]["sift"]["branch"] == "metric"
    fpr, tpr, f95 = test["SIFT"]
    assert f95 == 9.47
    np.testing.assert_array_equal(fpr, [0.0, 0.2, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.7, 1.0])


def test_report_roc_curves_rejects_a_model_without_metrics(tmp_path):
    records = _records()
    stray = _roc_file(tmp_path / "hardnet.json", "hardnet", "descriptor", [(0.0, 0.0), (1.0, 1.0)])
    with pytest.raises(ValueError, match=r"hardnet\.json: no metrics record for model 'hardnet'"):
        report_roc_curves(_summary(records), records, [stray])
