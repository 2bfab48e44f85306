"""Registration benchmark arithmetic: corner error, ground truth orientation, summaries."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from kglnet.evaluation.registration import (PairResult, apply_transform, as_homogeneous, corner_error,
                                            registration_pairs, results_table, run_registration, summarize)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "visnir-registration"


def test_corner_error_by_hand():
    truth = np.eye(3)
    shift = np.array([[1, 0, 3.0], [0, 1, 4.0]])          # every corner moves by 5 px
    assert corner_error(shift, truth, 100, 50) == pytest.approx(5.0)
    scale = np.array([[2.0, 0, 0], [0, 2.0, 0]])            # corners (0,0),(9,0),(9,9),(0,9) -> 0, 9, 9*sqrt2, 9
    assert corner_error(scale, truth, 10, 10) == pytest.approx((0 + 9 + 9 * math.sqrt(2) + 9) / 4)
    assert corner_error(truth, truth, 640, 480) == 0.0
    degenerate = np.array([[1.0, 0, 0], [0, 1, 0], [1, 0, 0]])  # sends (0,0) to infinity
    assert corner_error(degenerate, truth, 10, 10) == math.inf


def test_transforms_accept_affine_and_homography():
    affine = np.array([[1.0, 0.1, 2], [0.0, 1, -1]])
    assert as_homogeneous(affine)[2].tolist() == [0, 0, 1]
    assert np.allclose(apply_transform(affine, [[10, 20]]), [[14, 19]])
    with pytest.raises(ValueError, match="2x3 or 3x3"):
        as_homogeneous(np.eye(4))


def test_summary_counts_failures_against_every_pair():
    results = [PairResult("a/1", "a", 1.0, 50, 80, 0.5), PairResult("a/2", "a", 7.0, 20, 60, 0.5),
               PairResult("b/1", "b", None, 0, 3, 1.0), PairResult("b/2", "b", 30.0, 8, 40, 1.0)]
    s = summarize(results)
    assert s["pairs"] == 4 and s["estimated"] == 3
    assert s["success_5px"] == 0.25 and s["success_10px"] == 0.5
    assert s["mean_corner_error_px"] == pytest.approx(38 / 3) and s["median_corner_error_px"] == 7.0
    assert s["per_category"]["b"]["success_10px"] == 0.0 and s["per_category"]["a"]["success_5px"] == 0.5
    table = results_table({"kglnet": s, "sift": s}, "CPU")
    assert "| kglnet | 25.0% | 50.0% | 12.67 | 7.00 | 3/4 |" in table


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_ground_truth_maps_vis_to_the_warped_nir():
    """The dataset's matrix is the VIS -> warped-NIR transform: warping the NIR back with its
    inverse lines it up with VIS, and registering with the truth itself scores 0 px."""
    pairs = registration_pairs(SHARED, categories=["field"], per_category=1)
    assert len(pairs) == 1 and pairs[0].pair_id.startswith("field/")
    pair = pairs[0]
    results = run_registration(pairs, lambda vis, nir: (pair.truth, 10, 10))
    assert results[0].corner_error_px == pytest.approx(0.0)
    vis = cv2.imread(str(pair.vis_path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    nir = cv2.imread(str(pair.nir_path), cv2.IMREAD_GRAYSCALE)
    back = cv2.warpPerspective(nir, np.linalg.inv(pair.truth), (nir.shape[1], nir.shape[0])).astype(np.float32)
    unmoved = nir.astype(np.float32)
    inner = (slice(80, -80), slice(80, -80))
    # the un-warped NIR correlates with VIS far better than the warped one does
    corr = lambda a, b: np.corrcoef(a[inner].ravel(), b[inner].ravel())[0, 1]
    assert corr(vis, back) > corr(vis, unmoved) + 0.05
    assert len(registration_pairs(SHARED)) == 160


def test_missing_dataset_is_named(tmp_path):
    with pytest.raises(ValueError, match="VIS-NIR registration dataset folder not found"):
        registration_pairs(tmp_path)


def test_category_names_in_the_cli_match_the_benchmark():
    from kglnet.cli import REGISTRATION_CATEGORY_NAMES
    from kglnet.evaluation.registration import REGISTRATION_CATEGORIES

    assert REGISTRATION_CATEGORY_NAMES == REGISTRATION_CATEGORIES


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_registration_benchmark_cli_writes_summary_table_and_pairs(tmp_path, untrained_checkpoint):
    """One real pair, a KGL-Net checkpoint and SIFT on the same keypoints: every output file,
    the issue's summary keys per method, and the same keypoint settings for both."""
    import json

    from kglnet.cli import main

    out = tmp_path / "registration"
    assert main(["registration-benchmark", "--source-dir", str(SHARED), "--checkpoint", str(untrained_checkpoint("kglnet")),
                 "--out-dir", str(out), "--categories", "field", "--per-category", "1", "--max-keypoints", "150",
                 "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"kglnet", "sift"}
    for method, s in summary.items():
        for key in ("pairs", "success_5px", "success_10px", "median_corner_error_px", "seconds_per_pair"):
            assert key in s, (method, key)
        assert s["pairs"] == 1 and s["settings"]["max_keypoints"] == 150 and s["settings"]["keypoints"] == "sift"
    assert summary["sift"]["success_10px"] == 1.0  # SIFT registers this pair
    pairs = json.loads((out / "pairs.json").read_text())
    assert [p["pair_id"] for p in pairs["kglnet"]] == ["field/0001"]
    assert "| sift |" in (out / "table.md").read_text()


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_registration_benchmark_refuses_a_source_folder_that_fails_the_manifest(tmp_path, untrained_checkpoint,
                                                                                capsys):
    """The benchmark reads the registration dataset only after every file matches the committed
    manifest: one changed ground-truth file stops it, naming that file, before anything is written."""
    import shutil

    from kglnet.cli import main

    copy = tmp_path / "source"
    shutil.copytree(SHARED, copy)
    bad = copy / "VIS-NIR registration dataset" / "field" / "0001_nir.txt"
    bad.write_text(bad.read_text() + "\n")
    out = tmp_path / "registration"
    assert main(["registration-benchmark", "--source-dir", str(copy), "--checkpoint", str(untrained_checkpoint("kglnet")),
                 "--out-dir", str(out), "--categories", "field", "--per-category", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "field/0001_nir.txt" in err and "visnir-registration" in err
    assert not out.exists()
