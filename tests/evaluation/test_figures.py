"""Qualitative match grid, the FPR95 operating threshold, the FPR95-vs-parameters chart and the
per-seed spread."""

import math

import cv2
import numpy as np
import pytest

from kglnet.evaluation.fpr95 import fpr95_descriptor, fpr95_metric
from kglnet.evaluation.plots import (
    MATCH_GROUPS,
    operating_threshold,
    plot_fpr95_vs_parameters,
    plot_match_grid,
    plot_seed_spread,
    seed_spread_figure,
    select_match_examples,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(directory, name, min_side=200):
    # Atomic writes leave exactly the target, no ".<name>.*.tmp".
    assert sorted(p.name for p in directory.iterdir()) == [name]
    path = directory / name
    assert path.read_bytes().startswith(PNG_MAGIC)
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None and min(img.shape) >= min_side
    assert img.std() > 5.0  # not a blank canvas


# Hand-built case, threshold 0.5 on a match score (>= 0.5 -> predicted match).
#        idx:   0    1    2    3    4    5    6     7     8    9    10    11
LABEL = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=np.uint8)
SCORE = np.array([.9, .8, .6, .1, .2, .7, .95, .55, .5, .3, .05, .45])
EXPECTED = {
    "correctly matched": [0, 1, 2],
    "correctly rejected": [3, 4],
    "false match": [5, 6, 7, 8],  # 8 sits exactly on the threshold: a predicted match
    "missed match": [9, 10, 11],
}


def _patches(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 64, 64), dtype=np.uint8),
            rng.integers(0, 256, (n, 64, 64), dtype=np.uint8))


# ---------------------------------------------------------------- groups and examples

@pytest.mark.parametrize("higher", [True, False])
def test_groups_and_most_confident_errors(higher):
    score, thr = (SCORE, 0.5) if higher else (1.0 - SCORE, 0.5)  # distances: <= 0.5 is a match
    sel = select_match_examples(LABEL, score, thr, per_class=2, higher_is_match=higher, seed=0)
    assert list(sel) == list(MATCH_GROUPS)
    assert {g: c for g, (_, c) in sel.items()} == {g: len(v) for g, v in EXPECTED.items()}
    assert sel["false match"][0].tolist() == [6, 5]    # highest match score first
    assert sel["missed match"][0].tolist() == [10, 9]  # lowest match score first
    assert sel["correctly rejected"][0].tolist() == [3, 4]
    cm = sel["correctly matched"][0].tolist()
    assert len(cm) == 2 and set(cm) <= set(EXPECTED["correctly matched"]) and cm == sorted(cm)


def test_selection_is_deterministic_and_seeded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = rng.random(500)
    a = select_match_examples(y, s, 0.5, per_class=4, seed=3)
    b = select_match_examples(y, s, 0.5, per_class=4, seed=3)
    c = select_match_examples(y, s, 0.5, per_class=4, seed=4)
    for g in MATCH_GROUPS:
        assert a[g][0].tolist() == b[g][0].tolist()
    assert a["correctly matched"][0].tolist() != c["correctly matched"][0].tolist()
    # Errors are chosen by confidence, not by the seed.
    assert a["false match"][0].tolist() == c["false match"][0].tolist()
    # per_class larger than a group: the whole group.
    small = select_match_examples(LABEL, SCORE, 0.5, per_class=10)
    assert sorted(small["correctly matched"][0].tolist()) == EXPECTED["correctly matched"]
    assert small["false match"][0].tolist() == [6, 5, 7, 8]


def test_plot_match_grid_writes_png_and_counts(tmp_path):
    left, right = _patches(len(LABEL))
    counts = plot_match_grid(left, right, LABEL, SCORE, 0.5, tmp_path / "grid.png", "hand case",
                             per_class=3)
    assert counts == {g: len(v) for g, v in EXPECTED.items()}
    assert sum(counts.values()) == len(LABEL)
    _check_png(tmp_path, "grid.png")


def test_plot_match_grid_empty_groups_are_fine(tmp_path):
    # Perfect separation with distances: no false or missed matches.
    y = np.array([1, 1, 1, 0, 0, 0])
    d = np.array([0.1, 0.2, 0.3, 1.0, 1.1, 1.2])
    left, right = _patches(6)
    counts = plot_match_grid(left, right, y, d, 0.5, tmp_path / "g.png", "perfect",
                             higher_is_match=False)
    assert counts == {"correctly matched": 3, "correctly rejected": 3, "false match": 0,
                      "missed match": 0}
    _check_png(tmp_path, "g.png")


@pytest.mark.parametrize("mutate, match", [
    (lambda a: a.update(left=a["left"][:, 0]), "left"),                     # [N, 64]
    (lambda a: a.update(left=a["left"].astype(np.float32)), "left"),        # dtype
    (lambda a: a.update(right=a["right"][:-1]), "right"),                   # N mismatch
    (lambda a: a.update(label=a["label"][:-1]), "label"),                   # length
    (lambda a: a.update(score=a["score"][:-1]), "score"),                   # length
    (lambda a: a.update(score=a["score"][:, None]), "score"),               # 2-D
    (lambda a: a.update(label=np.where(a["label"] == 1, 2, 0)), "label"),   # outside {0, 1}
    (lambda a: a.update(score=np.where(a["label"] == 1, np.nan, 0.0)), "score"),
    (lambda a: a.update(threshold=float("nan")), "threshold"),
    (lambda a: a.update(per_class=0), "per_class"),
])
def test_plot_match_grid_rejects_bad_input(tmp_path, mutate, match):
    left, right = _patches(len(LABEL))
    args = dict(left=left, right=right, label=LABEL, score=SCORE, threshold=0.5)
    mutate(args)
    per_class = args.pop("per_class", 4)
    with pytest.raises(ValueError, match=match):
        plot_match_grid(path=tmp_path / "g.png", title="t", per_class=per_class, **args)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- operating threshold

def test_operating_threshold_scores_hand_cases():
    # 20 positives 0.05..1.00: ceil(0.95 * 20) = 19 positives must be accepted -> 0.10.
    pos = np.round(np.arange(1, 21) * 0.05, 2)
    s = np.concatenate([pos, [0.99, 0.0]])
    y = np.r_[np.ones(20), np.zeros(2)]
    assert operating_threshold(s, y) == pytest.approx(0.10)
    assert np.mean(pos >= 0.10) >= 0.95
    # 3 positives: ceil(2.85) = 3 -> all of them -> the smallest.
    assert operating_threshold([0.9, 0.2, 0.5, 0.7], [1, 1, 1, 0]) == 0.2
    # tpr 0.5 of 10 positives: the 5th highest.
    assert operating_threshold(np.arange(10) / 10, np.ones(10), tpr=0.5) == 0.5
    assert operating_threshold([0.3, 0.8], [1, 0], tpr=1.0) == 0.3


def test_operating_threshold_distance_hand_cases():
    # 100 positives 0.01..1.00: index ceil(95) = 95 -> the 96th smallest (descriptor definition).
    pos = np.arange(1, 101) / 100
    d = np.concatenate([pos, [0.5]])
    y = np.r_[np.ones(100), 0]
    assert operating_threshold(d, y, higher_is_match=False) == pytest.approx(0.96)
    # n_pos < 20: index ceil(0.95 n) == n is clamped to n - 1, the largest positive distance.
    assert operating_threshold([0.3, 0.1, 0.2, 0.05], [1, 1, 1, 0], higher_is_match=False) == 0.3


def test_operating_threshold_consistent_with_fpr95():
    rng = np.random.default_rng(7)
    for n in (7, 50, 333, 2000):
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        d = rng.random(n) + 0.6 * (1 - y)
        thr = operating_threshold(d, y, higher_is_match=False)
        assert 100.0 * np.mean(d[y == 0] <= thr) == pytest.approx(fpr95_descriptor(d, y))
        s = -d
        t = operating_threshold(s, y)
        assert np.mean(s[y == 1] >= t) >= 0.95
        assert np.mean(s[y == 1] > t) < 0.95  # the largest such threshold
        # fpr95_metric interpolates towards the previous ROC point: never above this FPR.
        assert fpr95_metric(s, y) <= 100.0 * np.mean(s[y == 0] >= t) + 1e-9


@pytest.mark.parametrize("kwargs, match", [
    (dict(score=[0.1, 0.2], label=[0, 0]), "no positives"),
    (dict(score=[0.1, 0.2], label=[1, 2]), "label"),
    (dict(score=[0.1, 0.2], label=[1]), "length"),
    (dict(score=[0.1, 0.2], label=[1, 0], tpr=0.0), "tpr"),
    (dict(score=[0.1, 0.2], label=[1, 0], tpr=1.5), "tpr"),
    (dict(score=[[0.1, 0.2]], label=[1, 0]), "score"),
])
def test_operating_threshold_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        operating_threshold(**kwargs)


# ---------------------------------------------------------------- FPR95 vs parameters

POINTS = [
    {"label": "KGL-Net", "params": 1_200_000, "fpr95": 2.5, "kind": "paper"},
    {"label": "HardNet", "params": 1_330_000, "fpr95": 6.1, "kind": "paper"},
    {"label": "SIFT", "params": None, "fpr95": 30.0, "kind": "paper"},
    {"label": "KGL-Net (ours)", "params": 1_150_000, "fpr95": 3.4, "kind": "ours"},
    {"label": "big", "params": 40_000_000, "fpr95": 4.0, "kind": "other"},
]


def test_plot_fpr95_vs_parameters_writes_png_and_skips(tmp_path):
    skipped = plot_fpr95_vs_parameters(POINTS, tmp_path / "p.png", "FPR95 vs params")
    assert skipped == ["SIFT"]
    _check_png(tmp_path, "p.png")


def test_plot_fpr95_vs_parameters_layout_does_not_depend_on_machine_speed(tmp_path, monkeypatch):
    # adjustText stops after 1 s of wall time unless given an iteration limit; a slow machine
    # (here a clock that jumps 10 s per reading) must still draw the same chart.
    import adjustText

    from kglnet.evaluation import plots

    if plots.adjust_text is None:
        pytest.skip("adjustText not installed")
    crowded = [{"label": f"method {i}", "params": 1_000_000 + 1_000 * i, "fpr95": 90.0 + 0.1 * i, "kind": "ours"}
               for i in range(12)]
    plot_fpr95_vs_parameters(crowded, tmp_path / "fast.png", "crowded")
    clock = iter(range(0, 10**6, 10))
    monkeypatch.setattr(adjustText, "timer", lambda: next(clock))
    plot_fpr95_vs_parameters(crowded, tmp_path / "slow.png", "crowded")
    assert (tmp_path / "fast.png").read_bytes() == (tmp_path / "slow.png").read_bytes()


def test_plot_fpr95_vs_parameters_keeps_crowded_labels_apart(tmp_path, monkeypatch):
    # The built-in zoo's small networks: eight methods within 1-3 M parameters and 88-97 % FPR95,
    # whose labels, each written at its point, covered one another.
    from kglnet.evaluation import plots

    crowded = [{"label": name, "params": p, "fpr95": v, "kind": "ours"} for name, p, v in [
        ("2-channel", 913_377, 96.1), ("Siamese", 1_171_585, 94.5), ("PN-Net", 1_124_224, 93.4),
        ("Q-Net", 1_124_224, 91.2), ("HyNet", 1_336_355, 90.7), ("L2-Net", 1_334_560, 88.4),
        ("Pseudo-Siamese", 2_080_001, 94.9), ("MatchNet", 2_859_250, 94.0), ("KGL-Net", 6_409_713, 78.3)]]
    figures = []
    real_save = plots._save_png
    monkeypatch.setattr(plots, "_save_png", lambda fig, path: (figures.append(fig), real_save(fig, path)))
    plot_fpr95_vs_parameters(crowded, tmp_path / "p.png", "crowded")
    _check_png(tmp_path, "p.png")
    (fig,) = figures
    renderer = fig.canvas.get_renderer()
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in fig.axes[0].texts}
    assert sorted(boxes) == sorted(p["label"] for p in crowded)  # every label drawn once
    names = sorted(boxes)
    overlapping = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if boxes[a].overlaps(boxes[b])]
    assert overlapping == []


@pytest.mark.parametrize("points, match", [
    ([], "no point"),
    ([{"label": "SIFT", "params": None, "fpr95": 30.0, "kind": "paper"}], "no point"),
    ([{"label": "a", "params": 1e6, "kind": "paper"}], "fpr95"),
    ([{"label": "a", "params": 0, "fpr95": 1.0, "kind": "paper"}], "params"),
    ([{"label": "a", "params": 1e6, "fpr95": math.nan, "kind": "ours"}], "fpr95"),
    ([{"label": "a", "params": "1M", "fpr95": 1.0, "kind": "ours"}], "params"),
    (["not a dict"], r"points\[0\]"),
    ({"label": "a"}, "list"),
])
def test_plot_fpr95_vs_parameters_errors(tmp_path, points, match):
    with pytest.raises(ValueError, match=match):
        plot_fpr95_vs_parameters(points, tmp_path / "p.png", "t")
    assert list(tmp_path.iterdir()) == []


def test_plot_fpr95_vs_parameters_without_adjusttext_still_writes_every_label(tmp_path, monkeypatch, caplog):
    # The GPU slots' machines have matplotlib but not adjustText: the chart must still come out.
    from kglnet.evaluation import plots

    monkeypatch.setattr(plots, "adjust_text", None)
    assert plot_fpr95_vs_parameters(POINTS, tmp_path / "p.png", "t") == ["SIFT"]
    _check_png(tmp_path, "p.png")
    assert "adjustText is not installed" in caplog.text


def test_seed_spread_rows_sorted_best_on_top_with_mean_and_sample_std(tmp_path):
    values = {"worse": [80.0, 90.0, 100.0], "better": [10.0, 20.0], "single": [50.0]}
    fig = seed_spread_figure(values, "t")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # y grows upwards: the last row, drawn at the top, is the lowest mean.
    assert labels == ["worse (n=3)", "single (n=1)", "better (n=2)"]
    bars = ax.collections[0::2]  # hlines (mean ± std) and seed scatters alternate per row
    spans = [list(seg[:, 0]) for bar in bars for seg in bar.get_segments()]
    half = 50 ** 0.5  # sample std of [10, 20]
    assert spans == [[80.0, 100.0], [50.0, 50.0], pytest.approx([15.0 - half, 15.0 + half])]
    dots = [tuple(sorted(c.get_offsets()[:, 0])) for c in ax.collections[1::2]]
    assert dots == [(80.0, 90.0, 100.0), (50.0,), (10.0, 20.0)]
    plot_seed_spread(values, tmp_path / "seeds.png", "t")
    _check_png(tmp_path, "seeds.png")


def test_seed_spread_long_names_are_wrapped_and_leave_the_axes_room():
    long = "KGL-Net, standardised input: random negatives, then HNSM-M, features at 5e-4 (not in the paper)"
    fig = seed_spread_figure({long: [88.4, 88.1], "LGHD": [73.3]}, "t")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[1] == "LGHD (n=1)"
    assert labels[0].replace("\n", " ") == f"{long} (n=2)"                    # the whole name, wrapped
    assert max(len(line) for line in labels[0].splitlines()) <= 52
    fig.canvas.draw()
    assert ax.get_position().width > 0.3                                     # before: 0.14
    renderer = fig.canvas.get_renderer()
    for artist in [*ax.get_yticklabels(), ax.xaxis.label]:                    # nothing cut at the edges
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y0 >= 0


def test_seed_spread_bad_values_name_the_method(tmp_path):
    with pytest.raises(ValueError, match="'broken'"):
        plot_seed_spread({"ok": [1.0], "broken": [float("nan")]}, tmp_path / "s.png", "t")
    with pytest.raises(ValueError, match="'empty'"):
        plot_seed_spread({"empty": []}, tmp_path / "s.png", "t")
    with pytest.raises(ValueError, match="at least one method"):
        plot_seed_spread({}, tmp_path / "s.png", "t")
    assert list(tmp_path.iterdir()) == []
