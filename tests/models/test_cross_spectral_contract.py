"""The model contract, checked once for every cross-spectral baseline added with the Keras layers.

Metric networks (SCFDM, AFD-Net, MFD-Net, EFR-Net, FIL-Net, SPIMNet;
:class:`kglnet.models.metric_nets.MetricModel`) and the descriptor networks PN-Net / Q-Net
(:class:`kglnet.models.descriptors.DescriptorModel`): registration and class attributes,
outputs and head count, batch independence in eval mode, input checks, and a gradient from
``OBJECTIVES[model.objective]`` to every parameter. Each model is built once (module-scoped
fixture, seed 0) and used with batches of one or two pairs; the models' own facts (parameter
counts, architecture) are in their own test files.
"""

import contextlib
import re
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

import kglnet.models.afd_net as afd_net
import kglnet.models.efr_net as efr_net
import kglnet.models.fil_net as fil_net
import kglnet.models.mfd_net as mfd_net
import kglnet.models.pn_qnet as pn_qnet
import kglnet.models.scfdm as scfdm
import kglnet.models.spimnet as spimnet
from kglnet.models import create_model, list_models
from kglnet.models.keras_layers import KerasInstanceNorm
from kglnet.objectives import OBJECTIVES


@dataclass(frozen=True)
class Spec:
    cls: type
    heads: int                  # trained outputs (``head_logits``); 0: a descriptor model
    paper: tuple[str, ...]      # words of ``model.paper``
    objective: str = "bce_random_negatives"
    input_size: int = 64
    dead: tuple[str, ...] = ()  # parameter-name prefixes whose gradient is exactly zero by design


SPECS = {
    "scfdm": Spec(scfdm.SCFDM, 2, ("ACCV 2018", "Quan")),
    "afd_net": Spec(afd_net.AFDNet, 2, ("ICCV 2019", "AFD-Net")),
    "mfd_net2": Spec(mfd_net.MFDNet, 1, ("Multi-branch feature difference learning", "2022")),
    "mfd_net4": Spec(mfd_net.MFDNet, 3, ("Multi-branch feature difference learning", "2022")),
    "efr_net": Spec(efr_net.EFRNet, 3, ("Efficient feature relation learning", "2023")),
    "fil_net": Spec(fil_net.FILNet, 6, ("Feature interaction learning", "2023")),
    # SPIMNet's documented quirk: the translators' innermost block outputs a 1x1 map, on which
    # InstanceNorm returns its offset (0), so that block and the first up block get exactly zero
    # gradient (in TensorFlow as here).
    "spimnet": Spec(spimnet.SPIMNet, 1, ("Information Fusion",),
                    dead=tuple(f"{t}.{b}." for t in ("vis_to_other", "other_to_vis") for b in ("down.5", "up.0"))),
    "pnnet": Spec(pn_qnet.PNNet, 0, ("PN-Net",), objective="softpn", input_size=32),
    "qnet": Spec(pn_qnet.QNet, 0, ("Quadruplet",), objective="quadruplet", input_size=32),
}
NAMES = list(SPECS)


@pytest.fixture(scope="module", params=NAMES)
def model(request):
    torch.manual_seed(0)
    return create_model(request.param).eval()


@pytest.fixture(scope="module")
def spec(model):
    return SPECS[model.model_name]


def pair(b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, 64, 64, generator=g), torch.rand(b, 1, 64, 64, generator=g)


def trained_outputs(model, vis, other):
    """What the objective trains: every head's logits [B] of a metric model, the two raw
    descriptors [B,D] of a descriptor model."""
    if hasattr(model, "head_logits"):
        return list(model.head_logits(vis, other))
    return list(model.raw_descriptors(vis, other))


@pytest.fixture(scope="module")
def batch_of_two(model):
    """(forward outputs, trained outputs) for a batch of two pairs, computed once per model."""
    vis, other = pair(2)
    with torch.no_grad():
        return model(vis, other), trained_outputs(model, vis, other)


@contextlib.contextmanager
def training(model):
    """Train mode inside the block; afterwards eval mode, no gradients, the BatchNorm statistics of before."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    try:
        yield model
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])


def cancelled_by_instance_norm(model):
    """Parameters of BatchNorm layers directly followed by a per-channel InstanceNorm (SPIMNet's
    BN -> IN blocks): the InstanceNorm removes their per-channel scale and offset, so their
    gradient is round-off only (~1e-6), not a signal worth asserting on."""
    names = set()
    for prefix, seq in model.named_modules():
        if isinstance(seq, nn.Sequential):
            for k, (a, b) in enumerate(zip(seq, list(seq)[1:])):
                if isinstance(a, nn.BatchNorm2d) and isinstance(b, (KerasInstanceNorm, nn.InstanceNorm2d)):
                    names |= {f"{prefix}.{k}.{n}" for n, _ in a.named_parameters()}
    return names


def test_registered_and_class_attributes(model, spec):
    name = model.model_name
    assert name in list_models() and type(model) is spec.cls
    assert model.objective == spec.objective and model.objective in OBJECTIVES
    assert model.input_size == spec.input_size
    assert model.reported_branch == ("metric" if spec.heads else "descriptor")
    assert all(word in model.paper for word in spec.paper), model.paper
    assert "choice:" in type(model).__doc__


def test_outputs_and_head_count(model, spec, batch_of_two):
    (first, second, third), outputs = batch_of_two
    if spec.heads:   # metric: (None, None, probability [B]), one logit [B] per trained output
        assert first is None and second is None
        assert third.shape == (2,) and ((third >= 0) & (third <= 1)).all()
        assert len(outputs) == spec.heads and all(h.shape == (2,) for h in outputs)
        assert torch.allclose(third, torch.sigmoid(outputs[0]), atol=1e-6)   # the first head is reported
        if hasattr(model, "num_heads"):
            assert model.num_heads == spec.heads
    else:            # descriptor: (unit descriptors [B,D] of each spectrum, None), no heads
        assert third is None and not hasattr(model, "head_logits")
        assert first.shape == second.shape == (2, model.descriptor_dim)
        assert torch.allclose(first.norm(dim=1), torch.ones(2), atol=1e-5)
        assert torch.allclose(second.norm(dim=1), torch.ones(2), atol=1e-5)
    assert all(torch.isfinite(t).all() for t in outputs)


def test_eval_output_independent_of_batch(model, batch_of_two):
    """In eval mode the second pair alone gives what it gives inside the batch, for every output."""
    (first, second, third), outputs = batch_of_two
    vis, other = pair(2)
    with torch.no_grad():
        alone = model(vis[1:], other[1:])
        alone_outputs = trained_outputs(model, vis[1:], other[1:])
    for together, single in zip([first, second, third] + outputs, list(alone) + alone_outputs):
        if together is not None:
            assert single.shape[0] == 1
            assert torch.allclose(together[1:], single, atol=1e-5, rtol=1e-4)


BAD_SHAPES = [(2, 64, 64), (2, 1, 32, 32), (2, 3, 64, 64), (0, 1, 64, 64)]


def test_bad_inputs_raise(model):
    """Every entry point refuses bad batches before computing, naming the argument and the problem."""
    entry_points = [model, getattr(model, "head_logits", None) or model.raw_descriptors]
    if hasattr(model, "logits"):
        entry_points.append(model.logits)
    ok = torch.rand(2, 1, 64, 64)
    for fn in entry_points:
        for shape in BAD_SHAPES:
            with pytest.raises(ValueError, match=r"^vis: expected shape \[B,1,64,64\]"):
                fn(torch.rand(*shape), torch.rand(*shape))
            with pytest.raises(ValueError, match=r"^other: expected shape \[B,1,64,64\]"):
                fn(ok, torch.rand(*shape))
        with pytest.raises(ValueError, match="^vis: expected a floating-point tensor"):
            fn(torch.zeros(2, 1, 64, 64, dtype=torch.uint8), ok)
        with pytest.raises(ValueError, match="^other: expected a floating-point tensor"):
            fn(ok, torch.zeros(2, 1, 64, 64, dtype=torch.uint8))
        with pytest.raises(ValueError, match="vis and other batches differ in size: 2 vs 3"):
            fn(ok, torch.rand(3, 1, 64, 64))


def test_objective_gradient_reaches_every_parameter(model, spec):
    """Training mode, two pairs: ``OBJECTIVES[model.objective]`` is a finite scalar (the sum of one
    BCE per head for metric models) whose gradient reaches every parameter, except where the
    architecture cuts it (``Spec.dead``: exactly zero; BatchNorm before InstanceNorm: round-off)."""
    with training(model):
        out = OBJECTIVES[model.objective](model, *pair(2, seed=1), generator=torch.Generator().manual_seed(0))
        assert out["total"].dim() == 0 and torch.isfinite(out["total"])
        if spec.heads:
            terms = [key for key in out if re.fullmatch(r"bce(_head\d+)?", key)]
            assert terms == ["bce"] + [f"bce_head{k}" for k in range(1, spec.heads)]
            assert torch.allclose(out["total"], sum(out[key] for key in terms))
        out["total"].backward()
        weak = cancelled_by_instance_norm(model)
        dead = [name for name, _ in model.named_parameters() if name.startswith(spec.dead)] if spec.dead else []
        assert bool(dead) == bool(spec.dead)
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            if name in dead:
                assert torch.all(p.grad == 0), name
            elif name not in weak:
                assert p.grad.abs().sum() > 0, name
