"""The shared training step: exact fp32 path, bf16 / channels_last fast path, deferred NaN check."""

import numpy as np
import pytest
import torch

from kglnet.augment import PairAugmentation
from kglnet.inference import score_pairs
from kglnet.losses import LossConfig, kglnet_loss
from kglnet.models import create_model
from kglnet.step import TrainStep, autocast_context, to_unit_float


def _batch(b=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    vis = torch.randint(0, 256, (b, 64, 64), generator=g, dtype=torch.uint8)
    other = (255 - vis.int()).clamp(0, 255).to(torch.uint8)  # a polarity flip: a learnable match
    return vis, other


def _step(precision="fp32", channels_last=False, seed=0, augment=True):
    torch.manual_seed(seed)
    model = create_model("kglnet")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    neg = torch.Generator().manual_seed(2)
    return model, TrainStep(model, opt, lambda m, v, o: kglnet_loss(m, v, o, LossConfig(), generator=neg),
                            augment=PairAugmentation() if augment else None,
                            augment_generator=torch.Generator().manual_seed(1),
                            precision=precision, channels_last=channels_last)


def test_to_unit_float_scales_and_shapes():
    x = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    y = to_unit_float(x)
    assert y.shape == (1, 1, 2, 2) and y.dtype == torch.float32
    assert torch.allclose(y.flatten(), torch.tensor([0.0, 1.0, 0.2, 0.4]))


@pytest.mark.parametrize("augment", [False, True])
def test_fp32_step_equals_the_hand_written_step(augment):
    """The exact path is plain eager fp32: same weights as doing it by hand (with augmentation:
    the batch augmented by PairAugmentation with the same generator first), bit for bit."""
    vis, other = _batch()
    model, step = _step(augment=augment)
    terms = step(vis, other)
    torch.manual_seed(0)
    ref = create_model("kglnet")
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    v, o = to_unit_float(vis), to_unit_float(other)
    if augment:
        v, o = PairAugmentation()(v, o, torch.Generator().manual_seed(1))
    ref_terms = kglnet_loss(ref, v, o, LossConfig(), generator=torch.Generator().manual_seed(2))
    opt.zero_grad()
    ref_terms["total"].backward()
    opt.step()
    assert torch.equal(terms["total"], ref_terms["total"].detach())
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), name


def test_augmentation_forward_and_loss_trace_as_one_graph():
    """What a compile mode compiles: cast, augmentation, forward pass and KGL-Net's loss are one
    graph with no break (a break would leave eager kernels between compiled pieces)."""
    _, step = _step(augment=True)
    vis, other = _batch()
    draws = step.augment.draw((8, 1, 64, 64), step.augment_generator, step.device)
    explained = torch._dynamo.explain(step._eager_forward_loss)(vis, other, draws)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_epoch_sums_add_up_the_returned_terms():
    vis, other = _batch()
    _, step = _step()
    returned = [step(vis, other) for _ in range(3)]
    sums = step.epoch_sums()
    assert set(sums) == set(returned[0]) and "total" in sums
    for k, v in sums.items():
        assert torch.allclose(v, sum(r[k] for r in returned), rtol=1e-6), k
    step.reset_counter()
    assert step.epoch_sums() == {}


class _TinyNet(torch.nn.Module):
    """A small stand-in for KGL-Net: compiling it on the CPU takes seconds, not minutes."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 8, stride=8)
        self.fc = torch.nn.Linear(4 * 64, 8)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def _tiny_loss(model, vis, other):
    a, b = model(vis), model(other)
    d = (a - b).pow(2).sum(1).mean()
    return {"total": d + 0.1 * a.pow(2).mean(), "distance": d}


@pytest.mark.slow  # inductor compiles the augmentation on the CPU: about 25 s on 2 cores
def test_compiled_step_with_augmentation_tracks_the_eager_step():
    """compile="default": the augmentation compiled with the forward pass gets the same draws and
    gives the same losses and weights as the eager step, to float rounding."""
    runs = []
    for mode in ("none", "default"):
        torch.manual_seed(0)
        model = _TinyNet()
        step = TrainStep(model, torch.optim.Adam(model.parameters(), lr=1e-2), _tiny_loss,
                         augment=PairAugmentation(), augment_generator=torch.Generator().manual_seed(1),
                         compile=mode)
        losses = [float(step(*_batch(8, seed))["total"]) for seed in range(3)]
        runs.append((model, losses))
    (eager, eager_losses), (compiled, compiled_losses) = runs
    assert np.allclose(eager_losses, compiled_losses, rtol=1e-5)
    for p, q in zip(eager.parameters(), compiled.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_fused_adam_tracks_the_default_adam():
    """fused_optimizer's Adam (one kernel per step on a GPU) takes the same steps as PyTorch's
    default Adam to float rounding."""
    from kglnet.train import TrainConfig, _make_optimizer

    vis, other = _batch(8)
    models = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = _TinyNet()
        optimizer = _make_optimizer(model, TrainConfig(fused_optimizer=fused))
        assert optimizer.defaults.get("fused") is (True if fused else None)
        step = TrainStep(model, optimizer, _tiny_loss)
        for _ in range(3):
            step(vis, other)
        models.append(model)
    for p, q in zip(*(m.parameters() for m in models)):
        assert torch.allclose(p, q, atol=1e-6)


def test_terms_stay_on_the_device_as_tensors():
    vis, other = _batch()
    _, step = _step()
    terms = step(vis, other)
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in terms.values())
    assert step.check_finite() is None and step.steps == 1


@pytest.mark.parametrize("precision, channels_last", [("bf16", False), ("fp32", True), ("bf16", True)])
def test_fast_path_tracks_the_fp32_path(precision, channels_last):
    """bf16 autocast / NHWC: on the same batch the first step's loss agrees with fp32 to bf16
    precision and its gradient points the same way, so the update is the same step; NHWC in fp32
    agrees to float rounding. One step of 8 pairs: bf16 runs about 15x slower than fp32 on a CPU
    without bf16 instructions (49 s for three steps of 16 pairs on a 2-core AMD EPYC)."""
    vis, other = _batch(8)
    exact_model, exact = _step(augment=False)
    fast_model, fast = _step(precision, channels_last, augment=False)
    exact_loss, fast_loss = float(exact(vis, other)["total"]), float(fast(vis, other)["total"])
    grads = [torch.cat([p.grad.double().flatten() for p in m.parameters()]) for m in (exact_model, fast_model)]
    cosine = float(torch.nn.functional.cosine_similarity(*grads, dim=0))
    relative = float((grads[1] - grads[0]).norm() / grads[0].norm())
    if precision == "bf16":   # measured: loss within 0.2 %, cosine 0.98 to 0.996
        assert abs(fast_loss - exact_loss) <= 0.02 * abs(exact_loss)
        assert cosine > 0.95
    else:                     # measured: loss within 5e-7, gradient within 4e-4 (relative)
        assert abs(fast_loss - exact_loss) <= 1e-5 * abs(exact_loss)
        assert relative < 1e-2


def test_non_finite_loss_is_reported_once_per_epoch_with_its_step():
    vis, other = _batch()
    calls = {"n": 0}
    model = create_model("hardnet")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss(m, v, o):
        calls["n"] += 1
        d_vis, d_other, _ = m(v, o)
        total = (d_vis - d_other).pow(2).sum()
        return {"total": total * float("nan") if calls["n"] == 2 else total}

    step = TrainStep(model, opt, loss)
    for _ in range(3):
        step(vis, other)
    first, terms = step.check_finite()
    assert first == 2 and np.isnan(terms["total"])
    step.reset_counter()
    assert step.check_finite() is None and step.steps == 0


def test_bad_switches_are_named():
    model = create_model("hardnet")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16; got 'fp16'"):
        TrainStep(model, opt, lambda *a: {}, precision="fp16")
    with pytest.raises(ValueError, match="compile must be one of none, default"):
        TrainStep(model, opt, lambda *a: {}, compile="fast")
    with pytest.raises(ValueError, match="precision"):
        autocast_context(torch.device("cpu"), "half")
    with pytest.raises(TypeError, match="augment must have draw"):
        TrainStep(model, opt, lambda *a: {}, augment=lambda v, o, g: (v, o))


def _eval_model_and_pairs(seed: int, n: int = 20):
    """A KGL-Net in eval mode and ``n`` random uint8 pairs [n,64,64]."""
    torch.manual_seed(0)
    rng = np.random.default_rng(seed)
    return (create_model("kglnet").eval(), rng.integers(0, 256, (n, 64, 64), dtype=np.uint8),
            rng.integers(0, 256, (n, 64, 64), dtype=np.uint8))


def test_bf16_evaluation_is_close_to_fp32():
    # 4 pairs in two batches: bf16 is slow on a CPU without bf16 instructions
    model, left, right = _eval_model_and_pairs(seed=0, n=4)
    exact = score_pairs(model, left, right, batch_size=2)
    fast = score_pairs(model, left, right, batch_size=2, precision="bf16")
    assert fast["distance"].dtype == np.float32 and fast["probability"].shape == (4,)
    assert np.allclose(fast["distance"], exact["distance"], atol=0.05)
    assert np.allclose(fast["probability"], exact["probability"], atol=0.05)
    # batch size does not change the exact scores
    again = score_pairs(model, left, right, batch_size=4)
    assert np.allclose(again["distance"], exact["distance"], atol=1e-5)


def test_fixed_batch_pads_the_last_batch_and_drops_its_scores():
    model, left, right = _eval_model_and_pairs(seed=1)
    shapes = []
    model.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape)))
    plain = score_pairs(model, left, right, batch_size=8)
    assert [s[0] for s in shapes] == [8, 8, 4]
    shapes.clear()
    padded = score_pairs(model, left, right, batch_size=8, fixed_batch=True)
    assert [s[0] for s in shapes] == [8, 8, 8]  # one shape: a compiled scorer compiles once
    assert padded["distance"].shape == padded["probability"].shape == (20,)
    assert np.allclose(padded["distance"], plain["distance"], atol=1e-5)
    assert np.allclose(padded["probability"], plain["probability"], atol=1e-5)


def test_scores_do_not_depend_on_the_upload_chunks(monkeypatch):
    """Pairs go to the device in chunks of whole batches: any chunk size gives the same scores,
    and only the last batch of all is short (padded with fixed_batch)."""
    import kglnet.inference as inference

    model, left, right = _eval_model_and_pairs(seed=2)
    whole = score_pairs(model, left, right, batch_size=3)
    monkeypatch.setattr(inference, "_UPLOAD_PAIRS", 8)  # not a multiple of the batch: chunks of 6
    shapes = []
    model.register_forward_pre_hook(lambda m, args: shapes.append(args[0].shape[0]))
    chunked = score_pairs(model, left, right, batch_size=3, fixed_batch=True)
    assert shapes == [3] * 7  # ceil(20 / 3) batches, none padded mid-way
    for key in ("distance", "probability"):
        assert np.allclose(chunked[key], whole[key], atol=1e-5), key
