"""Data: the HDF5 pair-file contract, keypoints/patch cutting and the built-in synthetic data."""

from kglnet.data.keypoints import (
    KEYPOINT_METHODS,
    cut_patches,
    detect_keypoints,
    make_pairs,
    valid_centre_mask,
)
from kglnet.data.pairfile import (
    FORMAT_VERSION,
    PATCH_SIZE,
    REQUIRED_ATTRS,
    PairFileError,
    PairSet,
    read_pairs,
    validate_pairs,
    write_pairs,
)
from kglnet.data.synthetic import (
    SyntheticConfig,
    build_split,
    build_synthetic_dataset,
    config_sha256,
    pair_rngs,
    render_pair,
)

__all__ = [
    "FORMAT_VERSION",
    "KEYPOINT_METHODS",
    "PATCH_SIZE",
    "REQUIRED_ATTRS",
    "PairFileError",
    "PairSet",
    "SyntheticConfig",
    "build_split",
    "build_synthetic_dataset",
    "config_sha256",
    "cut_patches",
    "detect_keypoints",
    "make_pairs",
    "pair_rngs",
    "read_pairs",
    "render_pair",
    "valid_centre_mask",
    "validate_pairs",
    "write_pairs",
]
