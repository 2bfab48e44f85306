"""Seeds, both protocols and the paper's numbers in one summary (hand-computed cases)."""

from __future__ import annotations

import csv
import math

import pytest

from kglnet.evaluation.summary import paper_protocol_scores, summarize, write_summary_tables

SETS = ["field", "forest"]


def _record(model, seed, metric, descriptor=None, reported=None, dataset="visnir"):
    rec = {"dataset": dataset, "model": model, "label": model.upper(), "selection": "validation",
           "seed": seed,
           "test_sets": {n: {"fpr95_metric": m, "fpr95_descriptor": descriptor[i] if descriptor else m}
                         for i, (n, m) in enumerate(zip(SETS, metric))}}
    if reported:
        rec["reported"] = reported
    return rec


def _history(*epochs):
    return [{"epoch": i + 1, "test": {n: {"fpr95_metric": v[0], "fpr95_descriptor": v[1]}
                                      for n, v in zip(SETS, scores)}}
            for i, scores in enumerate(epochs)]


def test_paper_protocol_picks_the_best_mean_test_epoch():
    history = _history([(9, 1), (9, 1)], [(4, 5), (6, 5)], [(2, 9), (8, 9)], [(3, 9), (7, 9)])
    # metric means 9, 5, 5, 5 -> epoch 2 (the earliest of the tie); descriptor means 1, 5, 9, 9 -> 1
    assert paper_protocol_scores(history, "metric") == {"epoch": 2, "test_sets": {"field": 4, "forest": 6}}
    assert paper_protocol_scores(history, "descriptor")["epoch"] == 1
    assert paper_protocol_scores([{"epoch": 1, "val_fpr95_metric": 3.0}], "metric") is None


def test_summarize_seeds_protocols_and_paper():
    records = [
        _record("kglnet", 0, [10.0, 30.0]),
        _record("kglnet", 1, [20.0, 50.0]),
        {"dataset": "visnir", "model": "sift", "label": "SIFT", "selection": "none",
         "test_sets": {n: {"fpr95_metric": v, "fpr95_descriptor": v + 1} for n, v in zip(SETS, [40.0, 12.0])}},
    ]
    histories = {("kglnet", 0): _history([(12, 0), (28, 0)], [(8, 0), (30, 0)]),
                 ("kglnet", 1): _history([(18, 0), (44, 0)])}
    s = summarize("visnir", records, histories, paper_table="visnir",
                  paper_methods={"kglnet": "KGL-Net", "sift": "SIFT"})
    k = s["methods"]["kglnet"]
    assert k["seeds"] == [0, 1] and k["kind"] == "trained" and k["branch"] == "metric"
    assert k["validation"]["field"]["mean"] == 15.0
    assert k["validation"]["field"]["std"] == pytest.approx(math.sqrt(50.0))  # sample std of 10, 20
    assert k["validation"]["mean"]["mean"] == 27.5  # seeds' means 20 and 35
    # paper protocol: seed 0 epoch 2 (mean 19 < 20), seed 1 its only epoch (31)
    assert k["paper_epochs"] == [2, 1]
    assert k["paper"]["field"]["mean"] == 13.0 and k["paper"]["mean"]["mean"] == 25.0
    assert k["published"]["field"] == 1.00 and k["published"]["mean"] == 0.54
    sift = s["methods"]["sift"]
    assert sift["paper"] == sift["validation"] and sift["validation"]["field"]["std"] is None
    assert sift["published"]["forest"] == 11.39


def test_summarize_reported_branch_and_missing_monitor():
    records = [_record("desc_only", 0, [50.0, 50.0], descriptor=[4.0, 6.0], reported="descriptor")]
    s = summarize("visnir", records, {("desc_only", 0): [{"epoch": 1}]})
    m = s["methods"]["desc_only"]
    assert m["branch"] == "descriptor" and m["validation"]["mean"]["mean"] == 5.0
    assert m["paper"] is None and m["published"] is None and s["paper_table"] is None


def test_summarize_errors():
    good = _record("kglnet", 0, [1.0, 2.0])
    with pytest.raises(ValueError, match="no training history for seed 0"):
        summarize("visnir", [good], {})
    with pytest.raises(ValueError, match="more than one record"):
        summarize("visnir", [good, good], {("kglnet", 0): []})
    with pytest.raises(ValueError, match="for dataset 'os'"):
        summarize("visnir", [_record("kglnet", 0, [1.0, 2.0], dataset="os")], {})
    with pytest.raises(ValueError, match="different branches"):
        summarize("visnir", [good, _record("kglnet", 1, [1.0, 2.0], reported="descriptor")],
                  {("kglnet", 0): [], ("kglnet", 1): []})


def test_write_summary_tables(tmp_path):
    records = [_record("kglnet", 0, [1.5, 0.5]), _record("kglnet", 1, [2.5, 0.5])]
    histories = {("kglnet", s): _history([(1.0, 0), (0.1, 0)]) for s in (0, 1)}
    s = summarize("visnir", records, histories, paper_table="visnir", paper_methods={"kglnet": "KGL-Net"})
    md, table = tmp_path / "t.md", tmp_path / "t.csv"
    write_summary_tables(s, md, table, title="FPR95 on visnir")
    text = md.read_text()
    assert "| KGLNET | metric | 2 | validation | 2.00 ± 0.71 | 0.50 ± 0.00 | 1.25 ± 0.35 |" in text
    assert "| KGLNET | metric | 2 | paper | 1.00 ± 0.00 | 0.10 ± 0.00 | 0.55 ± 0.00 |" in text
    # field: paper 1.00; ours paper-protocol 1.00 (diff +0.00), honest 2.00 (+1.00)
    assert "| field | 1.00 | 1.00 ± 0.00 | +0.00 | 2.00 ± 0.71 | +1.00 |" in text
    assert "| mean | 0.54 | 0.55 ± 0.00 | +0.01 | 1.25 ± 0.35 | +0.71 |" in text
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 3 * 2  # (field, forest, mean) x 2 protocols
    mean_val = next(r for r in rows if r["test_set"] == "mean" and r["protocol"] == "validation")
    assert float(mean_val["mean"]) == 1.25 and float(mean_val["diff"]) == pytest.approx(0.71)
