"""MFD-Net: multi-branch feature difference learning for cross-spectral patch matching (metric network).

Quan, Wang, Huyan, Wang, Li, Guo, Jiao, "Multi-branch feature difference learning network for
cross-spectral image patch matching", IEEE TGRS 2022. The layer sizes are those of the public
Keras re-implementation in repository ``YuChuang1205/RRL-Net`` (``network_models/MFD.py``),
which builds the eight-branch network; the training settings are those of its
``train_model_new.py``. Contract: :class:`kglnet.models.metric_nets.MetricModel`.

Vocabulary used here: a *branch* is one feature tower (one network input); two branches, one
for the visible patch and one for the other spectrum, feed one *difference stream*. The Keras
model has eight inputs, fed ``[vis, nir, vis, nir, vis, nir, vis, nir]``, i.e. four streams on
the same pair. ``MFDNet(branches)`` builds ``branches // 2`` streams; the registered variants are
``mfd_net2``, ``mfd_net4``, ``mfd_net6``, ``mfd_net8``.

The Keras building blocks are rebuilt with Keras' settings (:mod:`kglnet.models.keras_layers`):
BatchNormalization momentum 0.99 / epsilon 1e-3 (PyTorch ``momentum=0.01, eps=1e-3``),
convolutions and dense layers with bias, 'same' padding; Keras' initialisers (``he_normal`` for
every convolution, as the code names it; ``glorot_uniform`` for the dense layers; zero biases)
by :func:`kglnet.models.keras_layers.keras_init_`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .keras_layers import KerasConv2d, dense_head, keras_batch_norm, keras_init_
from .metric_nets import MetricModel
from .registry import register_model

MFD_NET_2022 = ("Quan, Wang, Huyan, Wang, Li, Guo, Jiao. Multi-branch feature difference learning network for "
                "cross-spectral image patch matching. IEEE Transactions on Geoscience and Remote Sensing 2022")

# Tower widths (conv1..conv5); widths of the six tower taps the streams difference (raw conv1,
# raw conv2, pool1..pool4); difference-stream widths (stage 0..5): each stage convolves
# concat(|tap_a - tap_b|, previous stage) and keeps its width, 32, 64+32, 64+96, 128+160,
# 256+288, 512+544.
TOWER_CHANNELS = (32, 64, 128, 256, 512)
TAP_CHANNELS = (32, 64, 64, 128, 256, 512)
STREAM_CHANNELS = tuple(sum(TAP_CHANNELS[:k + 1]) for k in range(len(TAP_CHANNELS)))
FUSION_CHANNELS = 1024
# Dense widths of every head (ReLU after each), then Dense 1 (Keras' sigmoid; here the logit).
HEAD_WIDTHS = (2048, 1024, 512, 512, 128, 128, 64)


class ConvBNReLU(nn.Module):
    """Conv (bias, 'same' padding) -> BN -> ReLU. ``pre_activation`` also returns the raw conv
    output, which the difference streams tap at the two first tower layers."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = KerasConv2d(c_in, c_out, kernel_size)
        self.bn = keras_batch_norm(c_out)
        self.act = nn.ReLU(inplace=True)

    def pre_activation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw conv output, ReLU(BN(conv output)))."""
        raw = self.conv(x)
        return raw, self.act(self.bn(raw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class MFDTower(nn.Module):
    """One branch (the code's ``FeatureNetwork2``): [B,1,64,64] -> six feature taps.

    conv3x3 1->32-BN-ReLU, conv3x3 32->64-BN-ReLU, pool; conv3x3 64->128-BN-ReLU, pool;
    conv3x3 128->256-BN-ReLU, pool; conv3x3 256->512-BN-ReLU, pool (max 2x2 stride 2;
    64 -> 32 -> 16 -> 8 -> 4). Taps, as the Keras graph reads them: the raw outputs of conv1
    [B,32,64,64] and conv2 [B,64,64,64] (before BN), then the four pooled maps [B,64,32,32],
    [B,128,16,16], [B,256,8,8], [B,512,4,4]. 1,569,984 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        widths = (1,) + TOWER_CHANNELS
        self.layers = nn.ModuleList(ConvBNReLU(a, b) for a, b in zip(widths, widths[1:]))
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        raw1, x = self.layers[0].pre_activation(x)
        raw2, x = self.layers[1].pre_activation(x)
        taps = [raw1, raw2]
        x = self.pool(x)
        taps.append(x)
        for layer in self.layers[2:]:
            x = self.pool(layer(x))
            taps.append(x)
        return taps


def mfd_head(in_features: int) -> nn.Sequential:
    """Flatten -> Dense 2048-1024-512-512-128-128-64 (ReLU each) -> Dense 1 (the logit)."""
    return dense_head(in_features, HEAD_WIDTHS)


class DifferenceStream(nn.Module):
    """Two branches (``tower_vis``, ``tower_other``) and their multi-level feature difference.

    Stage k takes ``|tap_k(vis) - tap_k(other)|``, concatenated (difference first) with stage
    k-1's output (k >= 1), and applies conv-BN-ReLU keeping the width (:data:`STREAM_CHANNELS`):
    1x1 convolutions for stages 0-4, 3x3 for stage 5; stages 1-4 end with a max-pool 2x2 so that
    the next tap's size matches (64 -> 32 -> 16 -> 8 -> 4). Output: stage 5, [B,1056,4,4] (the
    fusion input). With ``with_head`` the stream has its own output: max-pool -> [B,1056,2,2] ->
    :func:`mfd_head` (4224 inputs).
    """

    def __init__(self, with_head: bool) -> None:
        super().__init__()
        self.tower_vis = MFDTower()
        self.tower_other = MFDTower()
        self.stages = nn.ModuleList(ConvBNReLU(width, width, kernel_size=3 if k == 5 else 1)
                                    for k, width in enumerate(STREAM_CHANNELS))
        self.pool = nn.MaxPool2d(2, 2)
        self.head = nn.Sequential(nn.MaxPool2d(2, 2), mfd_head(4 * STREAM_CHANNELS[-1])) if with_head else None

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """[B,1056,4,4]: the stage-5 difference features."""
        x = None
        for k, (a, b, stage) in enumerate(zip(self.tower_vis(vis), self.tower_other(other), self.stages)):
            d = (a - b).abs()
            x = stage(d if x is None else torch.cat([d, x], dim=1))
            if 1 <= k <= 4:
                x = self.pool(x)
        return x


class MFDNet(MetricModel):
    """MFD-Net (Quan, Wang, Huyan, Wang, Li, Guo, Jiao, "Multi-branch feature difference learning
    network for cross-spectral image patch matching", IEEE TGRS 2022). Input 64x64, no
    preprocessing beyond the [0,1] scaling (the public training script divides uint8 patches by
    255, as this project does).

    Architecture as built, for ``branches`` = 2n (n difference streams; the public Keras code
    builds n = 4):

    - 2n feature towers with separate weights (:class:`MFDTower`), paired into n
      :class:`DifferenceStream` s; every stream gets the same ``(vis, other)`` pair (the training
      script feeds ``[vis, nir, vis, nir, ...]``), so the streams differ only by their weights.
    - each stream aggregates the absolute differences of its two towers at six levels (raw conv1,
      raw conv2, pool1..pool4) into [B,1056,4,4].
    - fusion: concat of the n streams' [B,1056,4,4] -> conv3x3 1056n->1024-BN-ReLU -> max-pool
      -> [B,1024,2,2] -> :func:`mfd_head` (4096 -> 2048-1024-512-512-128-128-64 ReLU -> 1).
    - for n >= 2 every stream also has its own head (max-pool -> 4224 -> the same dense widths
      -> 1). ``head_logits`` = [fusion, stream 1, ..., stream n], the Keras output order (fusion
      first, the reported score); the objective sums their BCE (Keras' sum of the five
      ``binary_crossentropy`` losses, weights 1, for n = 4).

    Parameters (trainable; Keras' ``model.summary()`` total adds 2 BN moving statistics per BN
    channel): branches 2: 34,699,393 (Keras 34,709,761 = 34.71 M, the paper's smallest count);
    4: 81,286,787 (81,305,475); 6: 116,245,252 (116,272,260); 8: 151,203,717 (151,239,045 =
    151.24 M). The paper's largest count, 221.17 M, is 69.93 M above the eight-branch model of the
    public code; it is exactly this family at 12 branches (6 streams: 221,172,615 Keras total), so
    the paper's largest configuration is probably not the public code's eight inputs (the public
    re-implementation is not the MFD-Net authors' own code); see the tests.

    choice: the generalisation to 2n branches: n streams, each with its own head when n >= 2, and
    the fusion head on all n (the public code fixes n = 4). With n = 1 the stream's own head would
    duplicate the fusion head on the same features; building only the fusion head gives exactly
    the paper's 34.71 M, so ``mfd_net2`` has one output.
    choice: the first two difference levels use the raw (pre-BN) conv outputs, as the Keras code
    reads ``get_layer('conv1').output``; the later ones the pooled post-ReLU maps.
    choice: concatenation order (difference first, previous stage second) and NCHW flattening
    (Keras flattens NHWC; the two differ by a fixed permutation of the first dense weights).
    choice: Keras' initialisers and BatchNorm settings (:func:`kglnet.models.keras_layers.keras_init_`,
    :func:`kglnet.models.keras_layers.keras_batch_norm`).
    choice: BatchNorm statistics are per tower / per stream (each tower sees only its own
    spectrum's batch), as in the Keras graph.
    choice: ``logits`` evaluates only the fusion head (the stream heads are training-only; the
    public evaluation reads the first output).
    Training in the public code: Adam, lr 2e-4, batch 64, 40 epochs, five sigmoid outputs each
    trained with binary cross-entropy (weights 1), the first output reported; batches of labelled
    positive / negative pairs drawn at random, with imgaug augmentation (0-2 of blur, gamma,
    scale, translation, noise per patch, then 0-2 shared flips / rotations by 90 degrees). Here the project's ``bce_random_negatives`` objective (BCE summed over
    all heads, in-batch random negatives).
    """

    paper = MFD_NET_2022
    input_size = 64

    def __init__(self, branches: int = 8) -> None:
        super().__init__()
        if isinstance(branches, bool) or not isinstance(branches, int) or branches < 2 or branches % 2:
            raise ValueError(f"branches must be an even integer >= 2, got {branches!r}")
        self.branches = branches
        n = branches // 2
        self.streams = nn.ModuleList(DifferenceStream(with_head=n >= 2) for _ in range(n))
        self.fusion = nn.Sequential(ConvBNReLU(n * STREAM_CHANNELS[-1], FUSION_CHANNELS, kernel_size=3),
                                    nn.MaxPool2d(2, 2))
        self.fusion_head = mfd_head(4 * FUSION_CHANNELS)
        keras_init_(self)

    @property
    def num_heads(self) -> int:
        """Number of trained outputs: 1 for two branches, branches / 2 + 1 otherwise."""
        return 1 + sum(s.head is not None for s in self.streams)

    def stream_features(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        """Each stream's [B,1056,4,4] difference features, for checked inputs."""
        return [stream(vis, other) for stream in self.streams]

    def _fusion_logits(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.fusion_head(self.fusion(torch.cat(features, dim=1))).squeeze(1)

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self._fusion_logits(self.stream_features(vis, other))

    def pair_head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        features = self.stream_features(vis, other)
        heads = [self._fusion_logits(features)]
        heads += [s.head(f).squeeze(1) for s, f in zip(self.streams, features) if s.head is not None]
        return heads


@register_model("mfd_net2")
def mfd_net2() -> MFDNet:
    """MFD-Net with two branches (one difference stream, one output)."""
    return MFDNet(branches=2)


@register_model("mfd_net4")
def mfd_net4() -> MFDNet:
    """MFD-Net with four branches (two streams, three outputs)."""
    return MFDNet(branches=4)


@register_model("mfd_net6")
def mfd_net6() -> MFDNet:
    """MFD-Net with six branches (three streams, four outputs)."""
    return MFDNet(branches=6)


@register_model("mfd_net8")
def mfd_net8() -> MFDNet:
    """MFD-Net with eight branches (four streams, five outputs): the public Keras model."""
    return MFDNet(branches=8)


__all__ = ["MFDNet", "MFDTower", "DifferenceStream", "ConvBNReLU", "mfd_head", "mfd_net2", "mfd_net4", "mfd_net6",
           "mfd_net8"]
