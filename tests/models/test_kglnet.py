"""KGL-Net architecture: parameter counts, shapes, input checks and SPEC details."""

import pytest
import torch

from kglnet.models import KGLNet, count_parameters, create_model, list_models
from kglnet.models.layers import ECA, FRN, TLU, eca_kernel_size


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("kglnet")


def test_registered_by_name():
    assert "kglnet" in list_models()
    assert isinstance(create_model("kglnet"), KGLNet)
    with pytest.raises(KeyError, match="kglnet"):  # the error lists the known names
        create_model("no-such-model")


def test_parameter_counts_match_the_paper(model):
    assert count_parameters(model) == 6_409_713
    features, head = model.parameter_groups()
    assert sum(p.numel() for p in features) == 5_555_696
    assert sum(p.numel() for p in head) == 854_017
    # the two optimiser groups cover every parameter exactly once (the reference's SGD path did not)
    ids = [id(p) for p in features + head]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


@pytest.mark.parametrize("batch", [1, 5])
def test_forward_shapes_eval(model, batch):
    model.eval()
    x = torch.rand(batch, 1, 64, 64)
    desc_vis, desc_other, prob = model(x, torch.rand(batch, 1, 64, 64))
    assert desc_vis.shape == desc_other.shape == (batch, 128)
    assert prob.shape == (batch,)  # a batch of one pair keeps its batch axis
    assert torch.allclose(desc_vis.norm(dim=1), torch.ones(batch), atol=1e-4)
    assert ((prob > 0) & (prob < 1)).all()


def test_feature_shapes_train(model):
    model.train()
    f = model.features(torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64))
    assert f.raw_vis.shape == f.raw_other.shape == (4, 128)
    for m in (f.common_vis, f.common_other, f.diff_vis, f.diff_other):
        assert m.shape == (4, 256, 8, 8)
    assert model.metric_logits(f.diff_vis, f.diff_other).shape == (4,)


@pytest.mark.parametrize("shape", [(2, 64, 64), (2, 1, 32, 32), (2, 3, 64, 64), (0, 1, 64, 64)])
def test_bad_input_shapes(model, shape):
    with pytest.raises(ValueError, match="expected shape"):
        model.features(torch.rand(*shape), torch.rand(*shape))


def test_bad_input_dtype_and_batch_mismatch(model):
    with pytest.raises(ValueError, match="floating-point"):
        model.features(torch.zeros(2, 1, 64, 64, dtype=torch.uint8), torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="differ"):
        model.features(torch.rand(2, 1, 64, 64), torch.rand(3, 1, 64, 64))


def test_low_level_layers_run_once_per_forward(model):
    """The reference ran layers 1-4 twice per pass; here both branches share one pass."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in (model.low_vis, model.low_other)]
    try:
        model.eval()
        model(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))
    finally:
        for h in hooks:
            h.remove()
    assert len(calls) == 2


def test_batchnorm_statistics_are_per_modality(model):
    """In training mode the VIS descriptor must not depend on the other modality's batch."""
    model.train()
    vis = torch.rand(6, 1, 64, 64)
    with torch.no_grad():
        a = model.features(vis, torch.rand(6, 1, 64, 64)).raw_vis
        b = model.features(vis, torch.rand(6, 1, 64, 64) * 0.1).raw_vis
    assert torch.allclose(a, b, atol=1e-5)


def test_frn_tlu_formulas():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, 5)
    frn = FRN(3)
    with torch.no_grad():
        frn.gamma.fill_(2.0)
        frn.beta.fill_(0.5)
    expected = 2.0 * x / torch.sqrt((x**2).mean(dim=(2, 3), keepdim=True) + 1e-6) + 0.5
    assert torch.allclose(frn(x), expected, atol=1e-5)
    assert sum(p.numel() for p in frn.parameters()) == 6  # eps is a buffer, not learned
    tlu = TLU(3)
    assert torch.equal(tlu(x), torch.clamp(x, min=-1.0))  # tau initialised to -1


def test_eca_kernel_sizes():
    assert [eca_kernel_size(c) for c in (32, 64, 128, 256)] == [3, 3, 5, 5]
    eca = ECA(64)
    assert eca.conv.bias is None and eca.conv.kernel_size == (3,)
    x = torch.rand(2, 64, 4, 4)
    y = eca(x)
    ratio = y / x  # each channel is scaled by one factor in (0, 1)
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
    assert ((ratio > 0) & (ratio < 1)).all()


def test_initialisation():
    torch.manual_seed(0)
    m = create_model("kglnet")
    assert torch.equal(m.low_vis[1].tau, torch.full_like(m.low_vis[1].tau, -1.0))
    assert torch.count_nonzero(m.desc_proj.bias) == 0
    assert torch.equal(m.desc_bn.weight, torch.ones(128))


# -- ablation: one low-level stack shared by both modalities --------------------------------------

def _low_level_stack_parameters() -> int:
    """Layers 1-4 of SPEC section 2, counted from their shapes alone."""
    def conv(c_in, c_out, k=3):
        return c_in * c_out * k * k + c_out          # weight + bias
    def frn(c):
        return 2 * c                                  # gamma, beta (eps is a buffer)
    def tlu(c):
        return c                                      # tau
    eca = {32: 3, 64: 3}                              # 1-D conv kernel, no bias
    return (frn(1) + tlu(1)
            + conv(1, 32) + frn(32) + tlu(32)
            + conv(32, 32) + frn(32) + tlu(32) + eca[32]
            + conv(32, 64) + frn(64) + tlu(64)
            + conv(64, 64) + frn(64) + tlu(64) + eca[64])


def test_shared_lowlevel_parameter_count():
    low = _low_level_stack_parameters()
    assert low == 65_577
    shared = create_model("kglnet_shared_lowlevel")
    assert "kglnet_shared_lowlevel" in list_models()
    assert count_parameters(shared) == 6_409_713 - low == 6_344_136
    features, head = shared.parameter_groups()
    assert sum(p.numel() for p in features) == 5_555_696 - low
    assert sum(p.numel() for p in head) == 854_017


def test_shared_lowlevel_sends_both_modalities_through_one_stack():
    from kglnet.models.layers import LowLevelStack

    torch.manual_seed(0)
    m = create_model("kglnet_shared_lowlevel").eval()
    stacks = [mod for mod in m.modules() if isinstance(mod, LowLevelStack)]
    assert stacks == [m.low] and not hasattr(m, "low_vis") and not hasattr(m, "low_other")
    seen = []
    hook = m.low.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].shape[0]))
    a, b = torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64)
    try:
        with torch.no_grad():
            f_ab, f_ba = m.features(a, b), m.features(b, a)
    finally:
        hook.remove()
    assert seen == [6, 6]  # one pass over both modalities' batches
    # same stack (and shared layers 5-8): a patch gets the same common map whichever side it is on
    assert torch.allclose(f_ab.common_vis, f_ba.common_other, atol=1e-5)
    assert torch.allclose(f_ab.common_other, f_ba.common_vis, atol=1e-5)
    # ... and both low-level maps are exactly what the shared stack makes of each patch alone
    with torch.no_grad():
        assert torch.allclose(m.metric_high_vis(m.low(a)), f_ab.diff_vis, atol=1e-5)
        assert torch.allclose(m.metric_high_other(m.low(b)), f_ab.diff_other, atol=1e-5)
    kgl = create_model("kglnet").eval()
    with torch.no_grad():  # the pseudo-Siamese original does not have that symmetry
        assert not torch.allclose(kgl.features(a, b).common_vis, kgl.features(b, a).common_other, atol=1e-3)


@pytest.mark.parametrize("name", ["kglnet", "kglnet_shared_lowlevel"])
def test_one_pass_shared_stack_matches_the_per_modality_passes(name):
    """The speed switch runs the shared descriptor layers once on 2B samples; per sample it is the
    same arithmetic, BatchNorm stays per modality, and the weight gradients agree to rounding."""
    import copy

    from kglnet.losses import LossConfig, kglnet_loss
    from kglnet.step import prepare_model

    torch.manual_seed(3)
    per_modality = create_model(name).train()
    one_pass = prepare_model(copy.deepcopy(per_modality), channels_last=False, one_pass_shared_stack=True)
    assert one_pass.one_pass_shared_stack and not per_modality.one_pass_shared_stack
    seen = []
    hook = one_pass.desc_high.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape[0]))
    vis, other = torch.rand(6, 1, 64, 64), torch.rand(6, 1, 64, 64) * 0.5
    grads = []
    for model in (per_modality, one_pass):
        with torch.no_grad():
            f = model.features(vis, other)
        kglnet_loss(model, vis, other, LossConfig(), torch.Generator().manual_seed(0))["total"].backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
        if model is per_modality:
            reference = f
    hook.remove()
    assert seen == [12, 12]  # one call on both batches, per forward pass
    for key in ("desc_vis", "desc_other", "raw_vis", "raw_other", "common_vis", "common_other", "diff_vis", "diff_other"):
        torch.testing.assert_close(getattr(f, key), getattr(reference, key), rtol=1e-5, atol=1e-6)
    # per-modality BatchNorm statistics: the running mean moved the same way in both
    torch.testing.assert_close(one_pass.desc_bn.running_mean, per_modality.desc_bn.running_mean)
    for key, g in grads[0].items():
        if key == "desc_proj.bias":  # BatchNorm follows it: its gradient is rounding noise around 0
            assert grads[1][key].abs().max() < 1e-4
            continue
        scale = g.abs().max().clamp_min(1e-12)
        assert ((grads[1][key] - g).abs().max() / scale) < 1e-4, key


def test_one_pass_shared_stack_is_refused_by_models_without_shared_layers():
    from kglnet.step import prepare_model

    with pytest.raises(ValueError, match="one_pass_shared_stack: HardNet has no shared descriptor layers"):
        prepare_model(create_model("hardnet"), channels_last=False, one_pass_shared_stack=True)


# --- kglnet_standardized_input: not in the paper, the remedy under test for mini OS -------------

def test_standardize_patches_statistics_and_bounds():
    from kglnet.models.layers import STANDARDIZE_EPS, standardize_patches

    x = torch.rand(4, 1, 64, 64) * torch.tensor([0.1, 0.5, 1.0, 2.0])[:, None, None, None] + 0.2
    flat = standardize_patches(x).flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(1), torch.ones(4), atol=1e-4, rtol=0)
    # float32 rounding can leave a constant patch's mean about 1e-8 off its value (it did here,
    # and HardNet's eps, 1e-7, blew that up to about 0.3); the low-level stacks' eps (a quarter
    # grey level) keeps a flat patch flat whatever the summation order
    constant = torch.full((2, 1, 64, 64), 0.3)
    assert standardize_patches(constant, eps=STANDARDIZE_EPS).abs().max() < 1e-3
    one_pixel = torch.zeros(1, 1, 64, 64)
    one_pixel[0, 0, 5, 7] = 1.0
    # the most extreme patch there is: one pixel reaches (N - 1) / sqrt(N) (Samuelson), N = 4096
    assert standardize_patches(one_pixel).abs().max().item() == pytest.approx(4095 / 64, rel=1e-4)


def test_standardized_input_variant_has_kglnets_weights_and_ignores_brightness_and_contrast():
    from kglnet.models import KGLNetStandardizedInput
    from kglnet.models.layers import STANDARDIZE_EPS, standardize_patches

    torch.manual_seed(0)
    plain = create_model("kglnet").eval()
    standardized = create_model("kglnet_standardized_input").eval()
    assert "kglnet_standardized_input" in list_models() and isinstance(standardized, KGLNetStandardizedInput)
    assert count_parameters(standardized) == 6_409_713
    standardized.load_state_dict(plain.state_dict())  # strict: the same names and shapes
    vis, other = torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64)
    # each spectrum with its own brightness and contrast, still inside [0, 1]
    vis2, other2 = 0.5 * vis + 0.25, 0.8 * other + 0.1
    with torch.no_grad():
        out, moved = standardized(vis, other), standardized(vis2, other2)
        for a, b in zip(out, moved):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
        # the same network as the plain one, fed standardised patches
        for a, b in zip(out, plain(standardize_patches(vis, eps=STANDARDIZE_EPS),
                                   standardize_patches(other, eps=STANDARDIZE_EPS))):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        # the plain network sees the change (its first FRN removes the scale, not the mean)
        assert not torch.allclose(plain(vis, other)[0], plain(vis2, other2)[0], atol=1e-2)
        flat = standardized(torch.full((2, 1, 64, 64), 0.5), torch.zeros(2, 1, 64, 64))
        assert all(torch.isfinite(t).all() for t in flat)
