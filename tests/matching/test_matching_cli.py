"""``kglnet match`` / ``kglnet register``: files written, JSON fields, warped image, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kglnet.cli import main
from kglnet.matching.images import read_image
from kglnet.matching.keypoints import grid_keypoints


@pytest.fixture(scope="module")
def cross_spectral_files(affine_pair, tmp_path_factory):
    """VIS as an 8-bit colour PNG, the other image (warped, inverted) as a 16-bit grey PNG."""
    vis, other, _ = affine_pair
    folder = tmp_path_factory.mktemp("cli_images")
    vis_path, other_path = folder / "vis.png", folder / "nir16.png"
    cv2.imwrite(str(vis_path), np.dstack([vis, vis, vis]))
    cv2.imwrite(str(other_path), other.astype(np.uint16) * 200 + 1000)
    return vis_path, other_path


@pytest.fixture(scope="module")
def shifted_files(texture, tmp_path_factory):
    """VIS and the same scene moved by (-tx, -ty) (grid points coincide): (vis, other, tx, ty)."""
    h, w = 176, 196
    step = int(np.diff(np.unique(grid_keypoints((h, w), 64)[:, 0]))[0])
    tx, ty = step, 2 * step
    folder = tmp_path_factory.mktemp("cli_shift")
    cv2.imwrite(str(folder / "vis.png"), texture[:h, :w])
    cv2.imwrite(str(folder / "other.png"), texture[ty:ty + h, tx:tx + w])
    return folder / "vis.png", folder / "other.png", tx, ty


def _args(command, checkpoint, image0, image1, out_dir, *extra):
    return [command, "--checkpoint", str(checkpoint), "--image0", str(image0), "--image1", str(image1),
            "--out-dir", str(out_dir), "--device", "cpu", *map(str, extra)]


def test_match_writes_json_and_picture(kglnet_checkpoint, cross_spectral_files, tmp_path, capsys):
    vis, other = cross_spectral_files
    rc = main(_args("match", kglnet_checkpoint, vis, other, tmp_path / "out", "--keypoints", "grid",
                    "--max-keypoints", 16, "--verify-threshold", 0.0, "--model-transform", "homography",
                    "--ransac-px", 4))
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["matches.json", "matches.png"]
    summary = json.loads(capsys.readouterr().out)
    record = json.loads((tmp_path / "out" / "matches.json").read_text())
    assert record["image0"] == str(vis) and record["image1"] == str(other)
    assert record["num_keypoints0"] == record["num_keypoints1"] == 16 == summary["keypoints0"]
    assert record["settings"] == {"keypoints": "grid", "max_keypoints": 16, "min_spacing": 8,
                                  "model_transform": "homography", "ransac_px": 4.0, "min_inliers": 6,
                                  "verify_threshold": 0.0,
                                  "batch_size": 256, "model": "kglnet", "checkpoint": str(kglnet_checkpoint),
                                  "device": "cpu"}
    assert record["num_matches"] == len(record["matches"]) == summary["matches"] > 0
    assert all(0.0 <= m["probability"] <= 1.0 for m in record["matches"])
    for key in ("transform", "inlier_rmse_px", "keypoints0", "keypoints1", "timings_s", "num_mutual",
                "num_inliers", "size0", "size1", "transform_model"):
        assert key in record
    assert cv2.imread(str(tmp_path / "out" / "matches.png")).shape == (160, 360, 3)


def test_register_writes_every_file_and_the_warped_image_is_warp_perspective(tfeat_checkpoint, shifted_files,
                                                                               tmp_path, capsys):
    vis, other, tx, ty = shifted_files
    out = tmp_path / "reg"
    rc = main(_args("register", tfeat_checkpoint, vis, other, out, "--keypoints", "grid", "--max-keypoints", 64))
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["matches.json", "matches.png", "overlay.png",
                                                    "transform.json", "warped.png"]
    transform = json.loads((out / "transform.json").read_text())
    matrix = np.array(transform["matrix"])
    # identical patches through a Siamese network: the translation comes back exactly
    assert np.allclose(matrix, [[1, 0, -tx], [0, 1, -ty], [0, 0, 1]], atol=1e-6)
    assert transform["image0"] == str(vis) and transform["size1"] == [196, 176]
    assert transform["num_inliers"] == json.loads((out / "matches.json").read_text())["num_inliers"] >= 20
    image0, image1 = read_image(vis), read_image(other)
    expected = cv2.warpPerspective(image0, matrix, (image1.shape[1], image1.shape[0]), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped = cv2.imread(str(out / "warped.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(warped, expected)
    overlay = cv2.imread(str(out / "overlay.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(overlay, np.dstack([image1, expected, image1]))
    assert json.loads(capsys.readouterr().out)["inliers"] == transform["num_inliers"]


def test_register_without_a_transform_exits_1_and_leaves_no_stale_outputs(kglnet_checkpoint, cross_spectral_files,
                                                                          tmp_path, capsys):
    vis, other = cross_spectral_files
    (tmp_path / "transform.json").write_text("{}")          # left over from an earlier run
    rc = main(_args("register", kglnet_checkpoint, vis, other, tmp_path, "--keypoints", "grid",
                    "--max-keypoints", 2))
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kglnet register: error: ") and "no affine transform found" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matches.json", "matches.png"]


@pytest.mark.parametrize("problem", ["small", "garbage", "missing"])
def test_bad_images_exit_2_naming_the_file(kglnet_checkpoint, cross_spectral_files, tmp_path, capsys, problem):
    vis, _ = cross_spectral_files
    bad = tmp_path / f"{problem}.png"
    if problem == "small":
        cv2.imwrite(str(bad), np.zeros((64, 40), np.uint8))
    elif problem == "garbage":
        bad.write_bytes(b"\x89PNG but not really" + b"IEND" * 3)
    rc = main(_args("match", kglnet_checkpoint, vis, bad, tmp_path / "out"))
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kglnet match: error: ") and str(bad) in err[0]
    assert not (tmp_path / "out").exists()


def test_bad_checkpoints_exit_2_naming_the_file(metric_only_checkpoint, cross_spectral_files, tmp_path, capsys):
    vis, other = cross_spectral_files
    for checkpoint, problem in [(metric_only_checkpoint, "metric-only network"),
                                (tmp_path / "none.pt", "does not exist")]:
        assert main(_args("register", checkpoint, vis, other, tmp_path / "out")) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(checkpoint) in err[0] and problem in err[0]


@pytest.mark.parametrize("option, value", [("--verify-threshold", "1.5"), ("--ransac-px", "0"),
                                           ("--max-keypoints", "0"), ("--keypoints", "orb"),
                                           ("--min-inliers", "-3")])
def test_bad_options_exit_2(option, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(_args("match", tmp_path / "c.pt", tmp_path / "a.png", tmp_path / "b.png", tmp_path, option, value))
    assert info.value.code == 2
    assert option in capsys.readouterr().err
