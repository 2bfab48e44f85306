"""PN-Net and Q-Net: shallow tanh descriptor networks trained on triplets / quadruplets.

- PN-Net: Balntas, Johns, Tang, Mikolajczyk, "PN-Net: Conjoined Triple Deep Network for Learning
  Local Image Descriptors", arXiv 1601.05030, 2016 (code: repository ``vbalnt/pnnet``).
- Q-Net: Aguilera, Sappa, Aguilera, Toledo, "Cross-Spectral Local Descriptors via Quadruplet
  Network", Sensors 17(4):873, 2017 (code: repository ``ngunsu/qnet``).

Both papers' VIS-NIR numbers (PN-Net 8.26, Q-Net 6.91 mean FPR95) come from the Q-Net paper,
whose authors trained PN-Net and Q-Net on the same data with the same pipeline, so both models
here follow that pipeline:

- Network (identical for the two; PN-Net's ``train/run.lua``, Q-Net's
  ``nets/quadruplet_4n_2p_256_raw.lua``): conv 7x7 1->32, tanh, max-pool 2x2, conv 6x6 32->64,
  tanh, flatten 64x8x8, Linear 4096->D, tanh, on 32x32 patches. These are exactly the learned
  layers of :class:`kglnet.models.descriptors.TFeat` (TFeat is the BMVC 2016 version of PN-Net),
  so both classes here derive from it and only change its input normalisation and, for D != 128,
  its last Linear layer.
- Descriptor size D = 256: the Q-Net authors' PN-Net and Q-Net networks are
  ``pnnet_256_raw`` / ``quadruplet_*_256_raw`` (their experiment scripts), and PN-Net's own
  training script also builds Linear 4096->256. The PN-Net paper and its README describe a
  128-D descriptor; ``descriptor_dim=128`` builds that (then the network is TFeat's, 599,808
  parameters).
- Preprocessing (Q-Net's training and evaluation scripts): the 64x64 patch is scaled to 32x32,
  divided by 255 and its own mean is subtracted (no division by a standard deviation).

Training objectives: ``"softpn"`` and ``"quadruplet"`` in :mod:`kglnet.objectives` (the SoftPN
loss on in-batch triplets, and on in-batch quadruplets). Both use the raw tanh descriptors
(:meth:`raw_descriptors`), as the papers; ``forward`` returns them L2-normalised like every
descriptor model of this project.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .descriptors import TFeat
from .metric_nets import zero_mean_patches
from .registry import register_model

PNNET_DIM = 256

PN_NET_2016 = ("Balntas, Johns, Tang, Mikolajczyk. PN-Net: Conjoined Triple Deep Network for Learning Local Image "
               "Descriptors. arXiv 1601.05030, 2016")
Q_NET_2017 = ("Aguilera, Sappa, Aguilera, Toledo. Cross-Spectral Local Descriptors via Quadruplet Network. "
              "Sensors 17(4):873, 2017")

# Positions in TFeat's tower: [InstanceNorm, conv7, tanh, pool, conv6, tanh, flatten, Linear, tanh].
_INPUT_NORM, _LINEAR = 0, 7


@register_model("pnnet")
class PNNet(TFeat):
    """PN-Net (Balntas, Johns, Tang, Mikolajczyk, "PN-Net: Conjoined Triple Deep Network for
    Learning Local Image Descriptors", arXiv 1601.05030, 2016), as the Q-Net authors trained it
    on VIS-NIR (Aguilera et al., Sensors 2017, Section 3). Input 32x32 (``input_size``; the 64x64
    patch is resized inside ``forward`` by :func:`kglnet.models.descriptors.resize_patches`).

    Architecture as built: per-patch mean subtraction; conv 7x7 1->32 (bias), tanh, max-pool
    2x2 (32 -> 26 -> 13); conv 6x6 32->64 (bias), tanh (13 -> 8); flatten 4096; Linear 4096->256,
    tanh -> raw descriptor (:meth:`raw_descriptors`); L2-normalised by ``forward``. One network
    for both spectra (the triplet's three towers share their weights). 1,124,224 parameters
    (1,600 + 73,792 + 1,048,832); 599,808 with ``descriptor_dim=128``. Built from
    :class:`kglnet.models.descriptors.TFeat` (same layers), whose InstanceNorm input layer is
    replaced by an identity (the normalisation is :meth:`normalize_input`) and whose Linear
    4096->128 is replaced for D != 128.

    Objective ``"softpn"``: SoftPN on the raw descriptors of in-batch triplets (VIS_i, X_i,
    negative = VIS_j or X_j, j != i, the spectrum drawn at random); see
    :func:`kglnet.objectives.softpn_objective`.

    choice: D = 256 (the Q-Net authors' ``pnnet_256_raw``, which produced the VIS-NIR numbers;
    PN-Net's paper has 128). choice: preprocessing is Q-Net's (patch minus its own mean, after
    /255 and the resize); PN-Net's own code standardises with the training set's global mean and
    standard deviation instead. choice: the 64 -> 32 resize is bilinear with antialiasing (Q-Net
    used Torch's ``image.scale``, bilinear). choice: PyTorch's default initialisation, which is
    Torch7's default for these layers (uniform in +-1/sqrt(fan_in) for weights and biases).
    choice: the descriptor is L2-normalised for matching (the papers compare the raw tanh
    descriptors with the Euclidean distance); the training loss uses the raw descriptors.
    """

    objective = "softpn"
    input_size = 32
    paper = PN_NET_2016
    reported_branch = "descriptor"
    descriptor_dim = PNNET_DIM

    def __init__(self, descriptor_dim: int = PNNET_DIM) -> None:
        super().__init__()
        if descriptor_dim < 1:
            raise ValueError(f"descriptor_dim must be positive, got {descriptor_dim}")
        norm, linear = self.tower[_INPUT_NORM], self.tower[_LINEAR]
        if not isinstance(norm, nn.InstanceNorm2d) or not isinstance(linear, nn.Linear):
            raise RuntimeError("TFeat's tower changed: expected InstanceNorm2d at 0 and Linear at 7")
        self.tower[_INPUT_NORM] = nn.Identity()
        if descriptor_dim != linear.out_features:
            self.tower[_LINEAR] = nn.Linear(linear.in_features, descriptor_dim)
        self.descriptor_dim = descriptor_dim

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        return zero_mean_patches(x)  # Q-Net's preprocessing: each patch minus its own mean


@register_model("qnet")
class QNet(PNNet):
    """Q-Net (Aguilera, Sappa, Aguilera, Toledo, "Cross-Spectral Local Descriptors via Quadruplet
    Network", Sensors 17(4):873, 2017). Input 32x32 (resized inside ``forward``).

    Architecture as built: the PN-Net network of :class:`PNNet` unchanged (Q-Net trains four
    weight-sharing copies of it; the released ``quadruplet_4n_2p_256_raw`` network): per-patch
    mean subtraction; conv 7x7 1->32, tanh, max-pool 2x2; conv 6x6 32->64, tanh; Linear
    4096->256, tanh -> raw descriptor; L2-normalised by ``forward``. 1,124,224 parameters.

    Objective ``"quadruplet"``: two matching cross-spectral pairs (VIS_i, X_i), (VIS_j, X_j),
    j != i drawn in the batch; the larger of the two matching distances against the smallest of
    the four non-matching ones (VIS_i-VIS_j, VIS_i-X_j, X_i-VIS_j, X_i-X_j), through the SoftPN
    loss; see :func:`kglnet.objectives.quadruplet_objective`.

    choice: every choice of :class:`PNNet` (D = 256 as the released network, Q-Net's
    preprocessing, antialiased resize, default initialisation, L2-normalised output).

    On the mini datasets with these settings (256-pair batches) the descriptors collapse: all
    distances go to zero and the loss to 0.25, because the farther of two matching pairs starts
    farther than the nearest negative. With the quadruplet's own pair as the positive
    (``objective_options: {both_positives: false}`` in a config) it learns; the loss on normalised
    descriptors and a tenth of the rate do not help (results/cpu/2026-11-28-qnet-collapse/).
    """

    objective = "quadruplet"
    paper = Q_NET_2017


__all__ = ["PNNet", "QNet", "PNNET_DIM"]
