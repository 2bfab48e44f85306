"""KGL-Net (arXiv 2412.11161), exactly as SPEC section 2, without the reference's duplicate pass.

The reference runs the four per-modality low-level layers twice per forward pass (once for the
descriptor branch, once for the metric branch). Here they run once and both branches read the
same low-level map, which is mathematically identical and about a third cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import FRN, TLU, HighLevelStack, LowLevelStack, init_weights, l2_normalize
from .registry import register_model

PATCH_SIZE = 64


@dataclass
class KGLNetFeatures:
    """Everything one forward pass of the feature network produces for a batch of B pairs.

    desc_*: L2-normalised descriptors [B,128]; raw_*: descriptors before normalisation [B,128];
    common_*: descriptor-branch ("common") maps [B,256,8,8]; diff_*: metric-branch ("difference")
    maps [B,256,8,8]. ``vis`` is the visible patch, ``other`` the NIR / thermal / SAR patch.
    """

    desc_vis: torch.Tensor
    desc_other: torch.Tensor
    raw_vis: torch.Tensor
    raw_other: torch.Tensor
    common_vis: torch.Tensor
    common_other: torch.Tensor
    diff_vis: torch.Tensor
    diff_other: torch.Tensor


class MetricHead(nn.Module):
    """``|f_vis - f_other|`` -> conv 3x3 256->256, FRN, TLU -> GAP -> MLP 256-512-256-1.

    Shapes: two [B,256,8,8] maps -> logits [B] (match probability = sigmoid(logits)).
    """

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=True)
        self.frn = FRN(channels)
        self.tlu = TLU(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 512), nn.ReLU(inplace=True),
            nn.Linear(512, 256), nn.ReLU(inplace=True),
            nn.Linear(256, 1),
        )

    def forward(self, f_vis: torch.Tensor, f_other: torch.Tensor) -> torch.Tensor:
        x = self.tlu(self.frn(self.conv((f_vis - f_other).abs())))
        return self.mlp(x.mean(dim=(2, 3))).squeeze(1)  # squeeze(1), not squeeze(): B = 1 stays [1]


def check_patch_batch(x: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``x`` is a float tensor [B,1,64,64] with B >= 1."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1:] != (1, PATCH_SIZE, PATCH_SIZE) or x.shape[0] < 1:
        raise ValueError(f"{name}: expected shape [B,1,{PATCH_SIZE},{PATCH_SIZE}], got {list(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor (uint8 / 255), got {x.dtype}")


@register_model("kglnet")
class KGLNet(nn.Module):
    """Knowledge-guided cross-spectral patch matcher: descriptor branch + metric branch.

    Pseudo-Siamese low level (one stack per modality), Siamese descriptor branch (layers 5-8
    shared, conv 8x8 -> 128, BatchNorm applied per modality), metric branch (layers 5-8 with
    separate weights per modality) and a metric head. 6,409,713 parameters.

    Inputs: ``vis``, ``other`` float [B,1,64,64] in [0,1].
    """

    descriptor_dim = 128
    shared_low_level = False  # True in KGLNetSharedLowLevel (ablation)
    standardize_input = False  # True in KGLNetStandardizedInput (not in the paper)
    # Run the shared descriptor layers (5-8 and the 8x8 projection) once on both modalities'
    # batches stacked, instead of once per modality: per sample the same arithmetic (FRN, TLU and
    # ECA use no batch statistics; BatchNorm still runs per modality), half the kernel launches,
    # each on twice the batch. A speed switch, off by default: in training the weight gradients of
    # these layers are then summed over 2B samples in one reduction, not as two sums of B, so
    # results agree to rounding, not bit for bit (``TrainConfig.one_pass_shared_stack``).
    one_pass_shared_stack = False

    def __init__(self) -> None:
        super().__init__()
        if self.shared_low_level:
            self.low = LowLevelStack(self.standardize_input)  # one stack for both modalities
        else:
            self.low_vis = LowLevelStack(self.standardize_input)
            self.low_other = LowLevelStack(self.standardize_input)
        self.desc_high = HighLevelStack()            # shared by both modalities
        self.desc_proj = nn.Conv2d(256, self.descriptor_dim, kernel_size=8, bias=True)
        self.desc_bn = nn.BatchNorm2d(self.descriptor_dim)
        self.metric_high_vis = HighLevelStack()
        self.metric_high_other = HighLevelStack()
        self.metric_head = MetricHead()
        init_weights(self)

    # -- optimiser groups (SPEC 3: lr 5e-3 for the feature network, 5e-5 for the metric head) --
    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(feature-network parameters, metric-head parameters); together they cover every parameter."""
        head = list(self.metric_head.parameters())
        head_ids = {id(p) for p in head}
        features = [p for p in self.parameters() if id(p) not in head_ids]
        return features, head

    def _descriptor(self, common: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._normalized(self.desc_proj(common))

    def _normalized(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # BatchNorm runs on each modality's batch separately, as in the reference, so its
        # training statistics are per modality.
        raw = self.desc_bn(projected).flatten(1)
        return raw, l2_normalize(raw)

    def features(self, vis: torch.Tensor, other: torch.Tensor) -> KGLNetFeatures:
        """Run the feature network once for both branches."""
        check_patch_batch(vis, "vis")
        check_patch_batch(other, "other")
        if vis.shape[0] != other.shape[0]:
            raise ValueError(f"vis and other batches differ in size: {vis.shape[0]} vs {other.shape[0]}")
        low_vis, low_other = self._low_level(vis, other)
        if self.one_pass_shared_stack:
            n = vis.shape[0]
            common = self.desc_high(torch.cat([low_vis, low_other], dim=0))
            projected = self.desc_proj(common)
            common_vis, common_other = common[:n], common[n:]
            raw_vis, desc_vis = self._normalized(projected[:n])
            raw_other, desc_other = self._normalized(projected[n:])
        else:
            common_vis, common_other = self.desc_high(low_vis), self.desc_high(low_other)
            raw_vis, desc_vis = self._descriptor(common_vis)
            raw_other, desc_other = self._descriptor(common_other)
        return KGLNetFeatures(
            desc_vis=desc_vis, desc_other=desc_other, raw_vis=raw_vis, raw_other=raw_other,
            common_vis=common_vis, common_other=common_other,
            diff_vis=self.metric_high_vis(low_vis), diff_other=self.metric_high_other(low_other),
        )

    def _low_level(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.shared_low_level:
            # One pass over both batches: FRN, TLU and ECA work per sample (no batch statistics),
            # so this equals running the stack on each modality separately.
            low = self.low(torch.cat([vis, other], dim=0))
            return low[: vis.shape[0]], low[vis.shape[0]:]
        return self.low_vis(vis), self.low_other(other)

    def metric_logits(self, diff_vis: torch.Tensor, diff_other: torch.Tensor) -> torch.Tensor:
        """Metric-branch logits [B] for pairs of difference maps [B,256,8,8]."""
        return self.metric_head(diff_vis, diff_other)

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inference on aligned pairs: (desc_vis [B,128], desc_other [B,128], match probability [B])."""
        f = self.features(vis, other)
        return f.desc_vis, f.desc_other, torch.sigmoid(self.metric_logits(f.diff_vis, f.diff_other))


@register_model("kglnet_shared_lowlevel")
class KGLNetSharedLowLevel(KGLNet):
    """Ablation: KGL-Net with ONE low-level stack (layers 1-4) shared by both modalities (Siamese
    instead of pseudo-Siamese low level); everything else as :class:`KGLNet`. 6,344,136 parameters
    (one low-level stack, 65,577, fewer)."""

    shared_low_level = True


@register_model("kglnet_standardized_input")
class KGLNetStandardizedInput(KGLNet):
    """Not in the paper: KGL-Net whose low-level stacks standardise each patch first (zero mean,
    unit variance per patch: :func:`~kglnet.models.layers.standardize_patches`, HardNet's
    ``input_norm``); everything else, the 6,409,713 parameters and their names included, as
    :class:`KGLNet`, so a ``kglnet`` checkpoint's weights load into it.

    Why: on mini OS (optical / SAR) KGL-Net's descriptors collapse at the paper's settings (the
    paper's input is uint8 / 255, SPEC section 3), while HardNet, which standardises its input this
    way, learns there (``results/gpu/h100-2026-11-26/README.md``: test FPR95 81.80 % after 40 GPU
    epochs, KGL-Net 94.96 % after 200). Standardised, the network sees the same input for
    ``a * x + b`` as for ``x`` (a > 0): each spectrum's local brightness and contrast drop out
    before layer 1, where FRN alone divides by the root mean square but keeps the mean. A deviation
    from the SPEC, registered under its own name so that no table mistakes it for KGL-Net.
    """

    standardize_input = True
