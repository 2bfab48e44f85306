"""The paper's numbers as data: complete, consistent with themselves, and looked up by name."""

from __future__ import annotations

import pytest

from kglnet.evaluation.paper import PAPER_TABLES, load_paper_results, paper_numbers


def test_every_table_and_the_kglnet_rows():
    results = load_paper_results()
    assert "2412.11161" in results["source"]
    assert tuple(results["tables"]) == PAPER_TABLES
    assert paper_numbers("visnir", "KGL-Net") == {
        "field": 1.00, "forest": 0.03, "indoor": 0.83, "mountain": 0.28, "oldbuilding": 0.47,
        "street": 0.20, "urban": 0.17, "water": 1.37, "mean": 0.54}
    assert paper_numbers("vislwir", "KGL-Net") == {"test": 0.51}
    assert paper_numbers("os", "KGL-Net") == {"test": 4.36}
    assert paper_numbers("visnir", "SIFT")["mean"] == 23.95
    # the 20 printed rows, plus the MFD-Net row repeated as "MFD-Net (eight branches)"
    assert len(results["tables"]["visnir"]["methods"]) == 21
    assert results["tables"]["visnir"]["methods"]["MFD-Net (eight branches)"] == \
        results["tables"]["visnir"]["methods"]["MFD-Net"]
    assert len(results["tables"]["os"]["methods"]) == 14


def test_printed_visnir_means_agree_with_the_scenes():
    # A transcription check: each printed mean is the average of its 8 scenes up to the paper's
    # two-decimal rounding (and truncation) of both.
    table = load_paper_results()["tables"]["visnir"]
    for method, row in table["methods"].items():
        scenes = [row[s] for s in table["test_sets"]]
        assert abs(sum(scenes) / len(scenes) - row["mean"]) < 0.01, method


def test_chart_points_match_the_tables():
    results = load_paper_results()
    visnir = results["tables"]["visnir"]["methods"]
    for point in results["chart_visnir_mean"]:
        if point["method"] in visnir:
            assert point["fpr95"] == visnir[point["method"]]["mean"], point
    kgl = next(p for p in results["chart_visnir_mean"] if p["method"] == "KGL-Net")
    assert kgl["parameters_m"] == pytest.approx(6.409713, abs=0.005)  # our model's exact count


def test_lookups():
    assert paper_numbers("os", "NCC") is None  # the paper has no NCC row
    with pytest.raises(ValueError, match="unknown paper table 'builtin'.*visnir"):
        paper_numbers("builtin", "KGL-Net")
    copy = load_paper_results()
    copy["tables"]["visnir"]["methods"]["KGL-Net"]["mean"] = 99.0
    assert paper_numbers("visnir", "KGL-Net")["mean"] == 0.54  # callers cannot corrupt the data
