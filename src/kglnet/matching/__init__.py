"""Image matching and registration with a trained patch model (issue 7, item 1).

Match a visible image (image 0) against an NIR, thermal or SAR image (image 1) with a KGL-Net
checkpoint (or any registered descriptor model), and register them::

    from kglnet.matching import ImageMatcher, read_image, write_outputs
    matcher = ImageMatcher("best.pt", keypoints="sift", max_keypoints=1000, model_transform="affine")
    result = matcher.match("vis.png", "nir.png")      # MatchResult
    result.transform                                   # float64 3x3, VIS (x, y) -> NIR (x, y), or None
    result.inliers                                     # bool [M]

Command line: ``kglnet match`` / ``kglnet register`` (see :mod:`kglnet.cli`).

Modules: :mod:`~kglnet.matching.images` (any-depth image reading, atomic PNG writing),
:mod:`~kglnet.matching.keypoints` (SIFT / FAST / grid), :mod:`~kglnet.matching.descriptors`
(per-image branch descriptors, metric-branch probabilities), :mod:`~kglnet.matching.matcher`
(mutual nearest neighbours), :mod:`~kglnet.matching.geometry` (RANSAC affine / homography,
warping), :mod:`~kglnet.matching.visualize` (pictures), :mod:`~kglnet.matching.pipeline`
(:class:`ImageMatcher`, :class:`MatchResult`, output files).
"""

from kglnet.matching.descriptors import (MODALITIES, branch_descriptors, compute_descriptors, has_descriptors,
                                         has_metric_branch, match_probabilities)
from kglnet.matching.geometry import (MIN_MATCHES, TRANSFORM_MODELS, apply_transform, estimate_transform,
                                      reprojection_errors, warp_image)
from kglnet.matching.images import check_gray_image, read_image, to_gray_uint8, write_png
from kglnet.matching.keypoints import KEYPOINT_METHODS, find_keypoints, grid_keypoints
from kglnet.matching.matcher import descriptor_distances, match_descriptors, mutual_nearest_neighbours
from kglnet.matching.pipeline import (MATCH_FILES, REGISTER_FILES, ImageMatcher, MatchResult, RegistrationError,
                                      match_images, write_outputs)
from kglnet.matching.visualize import draw_matches, overlay_images

__all__ = [
    "KEYPOINT_METHODS", "MATCH_FILES", "MIN_MATCHES", "MODALITIES", "REGISTER_FILES", "TRANSFORM_MODELS",
    "ImageMatcher", "MatchResult", "RegistrationError",
    "apply_transform", "branch_descriptors", "check_gray_image", "compute_descriptors", "descriptor_distances",
    "draw_matches", "estimate_transform", "find_keypoints", "grid_keypoints", "has_descriptors",
    "has_metric_branch", "match_descriptors", "match_images", "match_probabilities", "mutual_nearest_neighbours",
    "overlay_images", "read_image", "reprojection_errors", "to_gray_uint8", "warp_image", "write_outputs",
    "write_png",
]
