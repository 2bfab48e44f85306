"""SCFDM (Quan et al., ACCV 2018): a metric network on the two patches placed side by side.

Layer sizes from the public Keras re-implementation ``network_models/SCFDM.py`` of the
YuChuang1205/RRL-Net repository; the Keras conventions (TF ``'same'`` padding, BatchNorm
defaults, initialisers, softmax / probability outputs as logits) come from
:mod:`kglnet.models.keras_layers`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .keras_layers import (
    conv_bn_relu, dense_head, keras_init_, keras_l2_normalize, probability_to_logit, two_way_logit,
)
from .metric_nets import MetricModel
from .registry import register_model

QUAN_2018 = ("Quan, Fang, Liang, Wang, Jiao. Cross-spectral image patch matching by learning features of the "
             "spatially connected patches in a shared space. ACCV 2018 (LNCS 11362, 2019)")


@register_model("scfdm")
class SCFDM(MetricModel):
    """SCFDM of Quan, Fang, Liang, Wang, Jiao, "Cross-spectral image patch matching by learning
    features of the spatially connected patches in a shared space", ACCV 2018 (LNCS 11362, 2019).
    Input 64x64 (``input_size = 64``, no resize).

    Architecture as built: the layer sizes of the public Keras re-implementation
    (``network_models/SCFDM.py`` of YuChuang1205/RRL-Net), which are followed wherever they and the
    paper might disagree (the paper's text was not compared layer by layer here; the losses below
    are those of the Keras training script):

    - Spatial connection: the VIS and the other patch are placed side by side (VIS left) into one
      [B,1,64,128] image, so ONE network (a shared space, no per-spectrum weights) sees both and
      its receptive fields cross the seam.
    - Trunk (every conv 3x3, TF ``'same'`` padding, bias, BatchNorm, ReLU; max-pool 2x2 stride 2):
      C64-P (32x64), C128-P (16x32), C256-C256-P (8x16), C256-C256-P -> [B,256,4,8].
    - The map is cut at the middle of its width: left half [B,256,4,4] (VIS), right half
      [B,256,4,4] (other).
    - Feature-difference head (the reported output): ``|left - right|`` -> flatten 4096 ->
      Dense 1024, ReLU -> Dense 128, ReLU -> Dense 2 (softmax over {non-match, match}); logit
      ``z_match - z_nonmatch``.
    - Similarity head (auxiliary): global max-pool of each half -> two 256-D vectors,
      L2-normalised; ``p = (cos + 1) / 2`` is a match probability (sigmoid-type output, trained
      with BCE); its logit is ``log(p / (1 - p))`` with ``p`` clipped to [1e-7, 1 - 1e-7], as
      Keras' TF1 ``binary_crossentropy`` computes it.

    ``head_logits`` = [difference head, similarity head]; the objective sums their BCEs (the
    Keras script: categorical CE + binary CE, weights 1). ``logits`` / ``forward`` use the
    difference head only (the script reports output 0).

    Parameters: 6,469,122 trainable = convs 2,139,904 (640 + 73,856 + 295,168 + 3 x 590,080)
    + BatchNorm gamma / beta 2,432 + dense 4,326,786 (4,195,328 + 131,200 + 258). Keras' summary
    would also list 2,432 non-trainable moving statistics (6,471,554 in all). No parameter count
    is published.

    Keras settings kept: BatchNorm momentum 0.99 / epsilon 1e-3 (``eps=1e-3, momentum=0.01``);
    conv and dense layers with bias; ``'same'`` padding; ``he_normal`` conv kernels,
    ``glorot_uniform`` dense kernels, zero biases (see
    :func:`kglnet.models.keras_layers.keras_init_`; drawn with its ``"inverse_cdf"`` sampler).

    choice: no extra input. The Keras model takes only the two patches (no reconstruction target
    or auxiliary input): its second output (the cosine similarity of the two halves' max-pooled
    features) is computed from the same (vis, other) pair and trained on the same match label,
    so nothing beyond the pair has to be built.
    choice: the flatten of ``|left - right|`` is channel-major (PyTorch's [C,H,W]) instead of
    Keras' [H,W,C]; a fixed permutation of the first dense layer's inputs, irrelevant when
    training from scratch (Keras weights would need the rows permuted).
    choice: the two-way softmax is reported as the logit difference, so the loss on it is the
    exact categorical cross-entropy; Keras clips the softmax probabilities to [1e-7, 1 - 1e-7]
    before the log (the loss saturates at about 16.1 there), which is not reproduced. The
    similarity head keeps Keras' clipping because its logit is derived from a probability.
    choice: the similarity features are ReLU outputs, so ``cos >= 0`` and ``p >= 0.5``: the
    auxiliary head can never call a pair a non-match; kept as in the code.
    choice: the inputs are used as given (float in [0,1], the Keras script's ``/ 255``); no
    per-patch normalisation. Training (not part of the model): the Keras script trains on
    labelled, balanced pairs with imgaug augmentation, Nadam lr 2e-4, batch 64, 40 epochs;
    here the project objective ``bce_random_negatives`` draws negatives in the batch.
    """

    paper = QUAN_2018

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            conv_bn_relu(1, 64), nn.MaxPool2d(2, 2),                             # 64x128 -> 32x64
            conv_bn_relu(64, 128), nn.MaxPool2d(2, 2),                           # -> 16x32
            conv_bn_relu(128, 256), conv_bn_relu(256, 256), nn.MaxPool2d(2, 2),  # -> 8x16
            conv_bn_relu(256, 256), conv_bn_relu(256, 256), nn.MaxPool2d(2, 2),  # -> 4x8
        )
        # Flatten -> Dense 1024, ReLU -> Dense 128, ReLU -> Dense 2 (softmax scores)
        self.difference_head = dense_head(256 * 4 * 4, (1024, 128), outputs=2)
        keras_init_(self, sampler="inverse_cdf")

    def half_features(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The trunk on the side-by-side pair, cut in two: ([B,256,4,4] VIS, [B,256,4,4] other)."""
        f = self.trunk(torch.cat([vis, other], dim=3))   # [B,1,64,128] -> [B,256,4,8]
        half = f.shape[3] // 2
        return f[..., :half], f[..., half:]

    def difference_logit(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Reported output: logit [B] of the softmax head on ``|left - right|``."""
        return two_way_logit(self.difference_head((left - right).abs()))

    def similarity_probability(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Auxiliary output: ``(cos + 1) / 2`` [B] of the globally max-pooled half features."""
        a = keras_l2_normalize(left.amax(dim=(2, 3)))
        b = keras_l2_normalize(right.amax(dim=(2, 3)))
        return ((a * b).sum(dim=1) + 1.0) / 2.0

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.difference_logit(*self.half_features(vis, other))

    def pair_head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        left, right = self.half_features(vis, other)
        return [self.difference_logit(left, right),
                probability_to_logit(self.similarity_probability(left, right))]


__all__ = ["SCFDM", "QUAN_2018"]
