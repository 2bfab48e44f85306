"""Plots (valid PNGs, atomic) and results tables (Markdown, CSV, validation)."""

import copy
import csv
import json

import numpy as np
import pytest

from kglnet.evaluation import (
    build_table,
    load_records,
    mean_over_test_sets,
    plot_roc,
    plot_training_curves,
    roc_figure,
    roc_points,
    write_tables,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _only_file(directory, name):
    # Atomic writes must not leave ".<name>.*.tmp" files behind.
    assert sorted(p.name for p in directory.iterdir()) == [name]
    data = (directory / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


# ---------------------------------------------------------------- plots

def test_plot_roc_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = rng.normal(size=400) + 2 * y
    fpr, tpr = roc_points(s, y, max_points=64)
    curves = {"model A": (fpr, tpr, 12.5), "NCC": (np.array([0.0, 1.0]), np.array([0.0, 1.0]), None)}
    out = tmp_path / "figs" / "roc.png"  # parent directory created on demand
    plot_roc(curves, out, title="test ROC")
    _only_file(out.parent, "roc.png")


def test_plot_roc_bad_curve_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="equal length"):
        plot_roc({"x": (np.zeros(3), np.zeros(4), 1.0)}, tmp_path / "roc.png", "t")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        plot_roc({}, tmp_path / "roc.png", "t")


def _diagonal_curves(n):
    line = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    return {f"model {i}": (*line, 95.0) for i in range(n)}


def test_roc_figure_few_curves_legend_inside_solid_lines():
    fig = roc_figure(_diagonal_curves(3), "t")
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if line.get_label().startswith("model")]
    assert [line.get_linestyle() for line in curves] == ["-"] * 3
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert ax.get_window_extent().contains(legend.x0 + 1, legend.y0 + 1)


def test_roc_figure_many_curves_distinct_colours_legend_beside_axes():
    # An ablation table's figure: 14 curves would repeat colours in the default 10-colour cycle
    # and a legend inside the axes would cover them.
    curves = _diagonal_curves(14)
    fig = roc_figure(curves, "t", dashed={"model 1", "model 3"})
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label().startswith("model")]
    assert len(lines) == 14
    assert len({tuple(np.round(line.get_color(), 6)) for line in lines}) == 14
    assert [line.get_linestyle() for line in lines][:4] == ["-", "--", "-", "--"]
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1
    assert legend.x1 <= fig.bbox.x1  # tight_layout keeps it on the canvas


def test_roc_figure_dashed_must_name_a_curve():
    with pytest.raises(ValueError, match="model 9"):
        roc_figure(_diagonal_curves(2), "t", dashed={"model 9"})


def test_plot_training_curves_writes_png(tmp_path):
    history = [
        {"epoch": 1, "loss_total": 3.0, "loss_triplet": 1.0, "loss_norm": 0.5, "loss_bce": 0.7,
         "loss_feature": 0.8, "val_fpr95_metric": 20.0, "val_fpr95_descriptor": 25.0, "lr": 1e-3},
        {"epoch": 2, "loss_total": 2.0, "loss_triplet": 0.8, "loss_norm": 0.4, "loss_bce": 0.5,
         "loss_feature": 0.3, "val_fpr95_metric": None, "val_fpr95_descriptor": 18.0, "lr": 5e-4},
        {"epoch": 3, "loss_total": 1.5},  # keys missing in an epoch leave gaps, not errors
    ]
    plot_training_curves(history, tmp_path / "train.png", title="training")
    _only_file(tmp_path, "train.png")


def test_plot_training_curves_rejects_empty(tmp_path):
    with pytest.raises(ValueError):
        plot_training_curves([], tmp_path / "t.png", "t")
    with pytest.raises(ValueError, match="numeric"):
        plot_training_curves([{"epoch": 1}], tmp_path / "t.png", "t")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- tables

def _record(model, label, a, b, metric_b=4.0, selection="validation"):
    test_sets = {
        "field": {"file": "data/x/field.h5", "pairs": 100, "fpr95_descriptor": a[0],
                  "fpr95_metric": a[1]},
        "forest": {"file": "data/x/forest.h5", "pairs": 200, "fpr95_descriptor": b,
                   "fpr95_metric": metric_b},
    }
    return {"dataset": "vis_nir", "model": model, "label": label, "selection": selection,
            "test_sets": test_sets, "mean": mean_over_test_sets(test_sets)}


RECORDS = [
    _record("kglnet", "KGL-Net", (1.0, 2.0), 3.0),
    _record("sift", "SIFT", (10.123456789, None), 20.0, metric_b=None),
]


def test_mean_over_test_sets():
    # descriptor: (1 + 3) / 2 = 2; metric: (2 + 4) / 2 = 3.
    assert mean_over_test_sets(RECORDS[0]["test_sets"]) == {"fpr95_descriptor": 2.0,
                                                            "fpr95_metric": 3.0}
    # descriptor: (10.123456789 + 20) / 2 = 15.0617283945; metric has None -> None.
    m = mean_over_test_sets(RECORDS[1]["test_sets"])
    assert m["fpr95_descriptor"] == pytest.approx(15.0617283945)
    assert m["fpr95_metric"] is None
    # A missing key counts as None too.
    assert mean_over_test_sets({"a": {"fpr95_descriptor": 1.0}})["fpr95_metric"] is None
    with pytest.raises(ValueError):
        mean_over_test_sets({})


def test_build_table_rows_and_columns():
    rows = build_table(RECORDS)
    assert [r["method"] for r in rows] == ["KGL-Net", "SIFT"]  # input order kept
    assert list(rows[0]) == ["method", "model", "selection",
                             "field descriptor", "field metric",
                             "forest descriptor", "forest metric",
                             "mean descriptor", "mean metric"]
    assert rows[0]["mean descriptor"] == 2.0 and rows[0]["mean metric"] == 3.0
    assert rows[1]["field metric"] is None and rows[1]["mean metric"] is None
    # Reversed input -> reversed rows.
    assert [r["model"] for r in build_table(RECORDS[::-1])] == ["sift", "kglnet"]


def test_build_table_missing_test_set_and_mixed_datasets():
    partial = copy.deepcopy(RECORDS[0])
    partial["model"] = "other"
    del partial["test_sets"]["forest"]
    partial["mean"] = mean_over_test_sets(partial["test_sets"])
    rows = build_table([RECORDS[0], partial])
    assert rows[1]["forest descriptor"] is None and rows[1]["mean descriptor"] is None
    wrong = copy.deepcopy(RECORDS[1])
    wrong["dataset"] = "os"
    with pytest.raises(ValueError, match="one dataset"):
        build_table([RECORDS[0], wrong])
    with pytest.raises(ValueError, match="duplicate"):
        build_table([RECORDS[0], RECORDS[0]])


def test_write_tables_markdown_and_csv(tmp_path):
    md, csv_path = tmp_path / "t.md", tmp_path / "t.csv"
    write_tables(RECORDS, md, csv_path, title="VIS-NIR")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md"]  # no temp leftovers

    text = md.read_text(encoding="utf-8")
    lines = text.splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + 2  # header, separator, two models
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["method", "field descriptor", "field metric", "forest descriptor",
                      "forest metric", "mean descriptor", "mean metric"]
    kgl = [c.strip() for c in table[2].strip("|").split("|")]
    assert kgl == ["KGL-Net", "1.00", "2.00", "3.00", "4.00", "2.00", "3.00"]
    sift = [c.strip() for c in table[3].strip("|").split("|")]
    assert sift == ["SIFT", "10.12", "—", "20.00", "—", "15.06", "—"]
    assert "lower is better" in text and "FPR95 in %" in text
    assert "descriptor" in text and "metric" in text and text.startswith("# VIS-NIR")

    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = build_table(RECORDS)
    assert [r["method"] for r in rows] == ["KGL-Net", "SIFT"]
    for got, want in zip(rows, expected):
        assert list(got) == list(want)
        for key, value in want.items():
            if value is None:
                assert got[key] == ""
            elif isinstance(value, float):
                assert float(got[key]) == value  # full precision, exact round trip
            else:
                assert got[key] == value


def test_load_records_ok_and_bad(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(RECORDS[0]))
    assert load_records([good]) == [RECORDS[0]]

    bad = copy.deepcopy(RECORDS[0])
    del bad["label"]
    bad_path = tmp_path / "bad_label.json"
    bad_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="bad_label.json.*label"):
        load_records([good, bad_path])

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_records([broken])

    wrong_mean = copy.deepcopy(RECORDS[0])
    wrong_mean["mean"]["fpr95_descriptor"] = 9.0
    wm = tmp_path / "wrong_mean.json"
    wm.write_text(json.dumps(wrong_mean))
    with pytest.raises(ValueError, match="wrong_mean.json.*mean"):
        load_records([wm])

    no_metric = copy.deepcopy(RECORDS[0])
    del no_metric["test_sets"]["field"]["fpr95_metric"]
    nm = tmp_path / "no_metric.json"
    nm.write_text(json.dumps(no_metric))
    with pytest.raises(ValueError, match="no_metric.json.*fpr95_metric"):
        load_records([nm])

    out_of_range = copy.deepcopy(RECORDS[0])
    out_of_range["test_sets"]["field"]["fpr95_descriptor"] = 150.0
    oor = tmp_path / "oor.json"
    oor.write_text(json.dumps(out_of_range))
    with pytest.raises(ValueError, match="oor.json"):
        load_records([oor])
