"""kglnet.matching.descriptors: each image's patches through its own branch, batched; probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kglnet.checkpoint import load_model
from kglnet.data.keypoints import cut_patches
from kglnet.matching.descriptors import (branch_descriptors, compute_descriptors, has_descriptors,
                                         has_metric_branch, match_probabilities)
from kglnet.matching.keypoints import grid_keypoints
from kglnet.models import create_model
from kglnet.step import to_unit_float


@pytest.fixture(scope="module")
def kglnet(kglnet_checkpoint):
    return load_model(kglnet_checkpoint)[0]


@pytest.fixture(scope="module")
def patches(affine_pair):
    vis, other, _ = affine_pair
    xy = grid_keypoints(vis.shape, 6)
    return cut_patches(vis, xy), cut_patches(other, xy)


def test_kglnet_branches_equal_the_features_of_the_paired_forward(kglnet, patches):
    vis_u8, other_u8 = patches
    vis, other = to_unit_float(torch.from_numpy(vis_u8)), to_unit_float(torch.from_numpy(other_u8))
    with torch.no_grad():
        f = kglnet.features(vis, other)
        d_vis = branch_descriptors(kglnet, vis, "vis")
        d_other = branch_descriptors(kglnet, other, "other")
    assert torch.allclose(d_vis, f.desc_vis, atol=1e-6) and torch.allclose(d_other, f.desc_other, atol=1e-6)
    # per-image descriptors do not depend on what the other side of a pair would have been
    with torch.no_grad():
        f2 = kglnet.features(vis, other.flip(0))
    assert torch.allclose(d_vis, f2.desc_vis, atol=1e-6)


def test_compute_descriptors_is_batched_normalised_and_uses_the_right_branch(kglnet, patches):
    vis_u8, _ = patches
    d1 = compute_descriptors(kglnet, vis_u8, "vis", batch_size=1)
    d4 = compute_descriptors(kglnet, vis_u8, "vis", batch_size=4)
    assert d1.shape == (len(vis_u8), 128) and d1.dtype == np.float32
    assert np.allclose(d1, d4, atol=1e-5)
    assert np.allclose(np.linalg.norm(d1, axis=1), 1.0, atol=1e-4)
    # the VIS and other low-level stacks have their own weights: the same patches differ by branch
    assert not np.allclose(d1, compute_descriptors(kglnet, vis_u8, "other"), atol=1e-3)
    assert compute_descriptors(kglnet, vis_u8[:0], "vis").shape == (0, 128)
    assert kglnet.training is False


def test_siamese_models_share_weights_for_both_spectra(patches):
    torch.manual_seed(0)
    for name in ("tfeat", "kglnet_shared_lowlevel"):
        model = create_model(name).eval()
        d_vis = compute_descriptors(model, patches[0], "vis")
        assert np.allclose(d_vis, compute_descriptors(model, patches[0], "other"), atol=1e-6)
        assert has_descriptors(model)
    assert not has_metric_branch(create_model("tfeat"))


def test_metric_only_and_descriptor_only_models_are_refused_clearly(patches):
    metric = create_model("two_channel").eval()
    assert not has_descriptors(metric) and has_metric_branch(metric)
    with pytest.raises(ValueError, match="'two_channel' is a metric-only network"):
        compute_descriptors(metric, patches[0], "vis")
    with pytest.raises(ValueError, match="'tfeat' has no metric branch"):
        match_probabilities(create_model("tfeat"), patches[0], patches[1], np.array([[0, 0]]))


def test_bad_arguments(kglnet, patches):
    with pytest.raises(ValueError, match="modality"):
        compute_descriptors(kglnet, patches[0], "nir")
    with pytest.raises(ValueError, match=r"uint8 \[K,64,64\]"):
        compute_descriptors(kglnet, patches[0].astype(np.float32), "vis")


def test_match_probabilities_are_the_metric_branch_of_the_pairs(kglnet, patches):
    vis_u8, other_u8 = patches
    matches = np.array([[0, 1], [2, 2], [5, 0]])
    p = match_probabilities(kglnet, vis_u8, other_u8, matches, batch_size=2)
    with torch.no_grad():
        _, _, expected = kglnet(to_unit_float(torch.from_numpy(vis_u8[[0, 2, 5]])),
                                to_unit_float(torch.from_numpy(other_u8[[1, 2, 0]])))
    assert p.shape == (3,) and p.dtype == np.float32
    assert np.allclose(p, expected.numpy(), atol=1e-5)
    assert match_probabilities(kglnet, vis_u8, other_u8, np.zeros((0, 2), np.int64)).shape == (0,)


def test_standardized_input_variant_matches_with_its_standardisation(patches):
    """Matching runs each spectrum's low-level stack alone; the variant's per-patch
    standardisation is inside that stack, so per-image descriptors equal the paired forward's."""
    vis_u8, other_u8 = patches
    torch.manual_seed(0)
    model = create_model("kglnet_standardized_input").eval()
    vis, other = to_unit_float(torch.from_numpy(vis_u8)), to_unit_float(torch.from_numpy(other_u8))
    with torch.no_grad():
        f = model.features(vis, other)
        torch.testing.assert_close(branch_descriptors(model, vis, "vis"), f.desc_vis, atol=1e-6, rtol=0)
        torch.testing.assert_close(branch_descriptors(model, other, "other"), f.desc_other, atol=1e-6, rtol=0)
        # the same patch with another brightness and contrast gives the same descriptors
        torch.testing.assert_close(branch_descriptors(model, 0.5 * vis + 0.2, "vis"), f.desc_vis, atol=1e-4, rtol=0)
