"""kglnet.matching.pipeline: ImageMatcher end to end, MatchResult records, output files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from kglnet.matching.geometry import warp_image
from kglnet.matching.keypoints import grid_keypoints
from kglnet.matching.pipeline import ImageMatcher, MatchResult, RegistrationError, match_images, write_outputs


class PixelDescriptor(torch.nn.Module):
    """A "model" whose descriptor is the mean-subtracted, L2-normalised patch; its other-spectrum
    branch inverts the patch first. Identical content therefore gives identical descriptors, so
    matching and RANSAC are exactly checkable; an image pair where image 1 is image 0 inverted
    matches only when image 1 goes through the other branch."""

    model_name = "pixels"

    @staticmethod
    def _norm(x):
        x = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def forward(self, vis, other):
        return self._norm(vis), self._norm(1.0 - other), None


@pytest.fixture(scope="module")
def shifted_pair(texture):
    """(VIS, inverted other, tx, ty): the other image shows the VIS scene moved by (-tx, -ty) and
    inverted; tx, ty are multiples of the step of a 64-point grid, so grid points coincide."""
    h, w = 176, 196
    xy = grid_keypoints((h, w), 64)
    step = int(np.diff(np.unique(xy[:, 0]))[0])
    tx, ty = 2 * step, step
    return texture[:h, :w].copy(), 255 - texture[ty:ty + h, tx:tx + w], tx, ty


def _translation(tx, ty):
    return np.array([[1.0, 0.0, -tx], [0.0, 1.0, -ty], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("model_transform", ["affine", "homography"])
def test_identical_patches_give_the_exact_transform(shifted_pair, model_transform):
    vis, other, tx, ty = shifted_pair
    result = match_images(PixelDescriptor(), vis, other, keypoints="grid", max_keypoints=64,
                          model_transform=model_transform, ransac_px=1.0)
    assert isinstance(result, MatchResult)
    assert np.abs(result.transform - _translation(tx, ty)).max() < 1e-6
    assert result.num_inliers >= 30
    exact = (result.points0 - result.points1 == [tx, ty]).all(axis=1)
    assert np.array_equal(result.inliers, exact)
    assert np.allclose(result.distances[exact], 0.0, atol=1e-3)
    assert result.inlier_rmse() < 1e-6


def test_detected_keypoints_recover_the_transform_within_a_pixel(shifted_pair):
    vis, other, tx, ty = shifted_pair
    result = match_images(PixelDescriptor(), vis, other, keypoints="fast", max_keypoints=150)
    assert result.num_inliers >= 10
    corners = np.array([[0, 0, 1], [195, 0, 1], [195, 175, 1], [0, 175, 1]], float)
    assert np.abs(corners @ result.transform.T - corners @ _translation(tx, ty).T).max() < 1.0


def test_kglnet_checkpoint_with_verification(kglnet_checkpoint, affine_pair):
    vis, other, _ = affine_pair
    matcher = ImageMatcher(kglnet_checkpoint, device="cpu", keypoints="grid", max_keypoints=12, verify_threshold=0.0)
    result = matcher.match(vis, other)
    assert len(result.keypoints0) == len(result.keypoints1) == 12
    assert result.num_matches == result.num_mutual > 0               # p >= 0 keeps every mutual match
    assert result.probabilities.shape == (result.num_matches,)
    assert ((result.probabilities >= 0) & (result.probabilities <= 1)).all()
    assert set(result.timings) == {"read", "keypoints", "descriptors", "matching", "verification", "ransac", "total"}
    strict = ImageMatcher(matcher.model, verify_threshold=1.0, keypoints="grid", max_keypoints=12)
    strict_result = strict.match(vis, other)
    assert strict_result.num_mutual == result.num_mutual
    assert strict_result.num_matches == int((result.probabilities >= 1.0).sum())


def test_result_record(shifted_pair):
    vis, other, tx, ty = shifted_pair
    result = match_images(PixelDescriptor(), vis, other, keypoints="grid", max_keypoints=64)
    record = result.to_dict()
    assert json.loads(result.to_json()) == json.loads(json.dumps(record))
    assert record["format"] == "kglnet-matches" and record["version"] == 1
    assert record["image0"] == "<image0 array>" and record["size0"] == [196, 176]
    assert record["num_matches"] == len(record["matches"]) == result.num_matches
    assert record["num_inliers"] == sum(m["inlier"] for m in record["matches"])
    first = record["matches"][0]
    assert set(first) == {"i", "j", "xy0", "xy1", "distance", "probability", "inlier"}
    assert first["xy0"] == record["keypoints0"][first["i"]] and first["probability"] is None
    assert record["settings"]["keypoints"] == "grid" and record["settings"]["model"] == "pixels"
    assert np.allclose(record["transform"], _translation(tx, ty), atol=1e-6)
    assert record["transform_model"] == "affine"
    named = ImageMatcher(PixelDescriptor(), keypoints="grid", max_keypoints=4).match(vis, other, names=("a.png", "b.png"))
    assert named.image0 == "a.png" and named.image1 == "b.png"


def test_write_outputs_for_a_registration(shifted_pair, tmp_path):
    vis, other, tx, ty = shifted_pair
    result = match_images(PixelDescriptor(), vis, other, keypoints="grid", max_keypoints=64)
    written = write_outputs(result, vis, other, tmp_path, register=True)
    assert sorted(written) == ["matches.json", "matches.png", "overlay.png", "transform.json", "warped.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)       # no temporary files
    warped = cv2.imread(str(tmp_path / "warped.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(warped, warp_image(vis, result.transform, other.shape))
    overlay = cv2.imread(str(tmp_path / "overlay.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(overlay[..., 1], warped) and np.array_equal(overlay[..., 0], other)
    record = json.loads((tmp_path / "transform.json").read_text())
    assert record["format"] == "kglnet-transform" and record["model"] == "affine"
    assert np.allclose(np.array(record["matrix"]) @ np.array(record["inverse"]), np.eye(3))
    assert record["warp"]["dsize"] == [196, 176]
    assert cv2.imread(str(tmp_path / "matches.png")).shape == (176, 392, 3)


def test_failed_registration_keeps_matches_and_removes_stale_outputs(shifted_pair, tmp_path):
    vis, other, _, _ = shifted_pair
    result = match_images(PixelDescriptor(), vis, other, keypoints="grid", max_keypoints=2)
    assert result.transform is None and result.failure_reason().endswith("at least 3 are needed")
    for name in ("transform.json", "warped.png", "overlay.png"):
        (tmp_path / name).write_text("stale")
    with pytest.raises(RegistrationError, match="no affine transform found"):
        write_outputs(result, vis, other, tmp_path, register=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matches.json", "matches.png"]
    assert json.loads((tmp_path / "matches.json").read_text())["transform"] is None


def test_too_few_inliers_is_no_transform(shifted_pair):
    vis, other, _, _ = shifted_pair
    matcher = ImageMatcher(PixelDescriptor(), keypoints="grid", max_keypoints=64, min_inliers=1000)
    result = matcher.match(vis, other)
    assert result.transform is None and not result.inliers.any() and result.ransac_inliers >= 30
    assert f"best transform has {result.ransac_inliers} inliers, fewer than the 1000 required" in result.failure_reason()
    assert result.to_dict()["ransac_inliers"] == result.ransac_inliers
    assert ImageMatcher(PixelDescriptor(), model_transform="homography").min_inliers == 6
    assert ImageMatcher(PixelDescriptor()).min_inliers == 5


def test_settings_and_models_are_checked(kglnet_checkpoint, tfeat_checkpoint, metric_only_checkpoint):
    with pytest.raises(ValueError, match="unknown keypoint method"):
        ImageMatcher(PixelDescriptor(), keypoints="orb")
    with pytest.raises(ValueError, match="unknown transform model"):
        ImageMatcher(PixelDescriptor(), model_transform="rigid")
    with pytest.raises(ValueError, match="ransac_px"):
        ImageMatcher(PixelDescriptor(), ransac_px=-1)
    with pytest.raises(ValueError, match="verify_threshold"):
        ImageMatcher(PixelDescriptor(), verify_threshold=1.5)
    with pytest.raises(ValueError, match="min_inliers must be at least 4 for a homography"):
        ImageMatcher(PixelDescriptor(), model_transform="homography", min_inliers=3)
    with pytest.raises(ValueError, match="max_keypoints"):
        ImageMatcher(PixelDescriptor(), max_keypoints=0)
    with pytest.raises(ValueError, match=f"{metric_only_checkpoint}: model 'two_channel' is a metric-only"):
        ImageMatcher(metric_only_checkpoint)
    with pytest.raises(ValueError, match=f"{tfeat_checkpoint}: model 'tfeat' has no metric branch"):
        ImageMatcher(tfeat_checkpoint, verify_threshold=0.5)
    with pytest.raises(ValueError, match="image0.*smaller than a 64x64 patch"):
        ImageMatcher(PixelDescriptor()).match(np.zeros((40, 100), np.uint8), np.zeros((100, 100), np.uint8))
