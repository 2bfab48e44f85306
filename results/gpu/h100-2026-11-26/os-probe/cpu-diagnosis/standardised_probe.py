"""CPU probe (issue 3): KGL-Net with per-patch standardised input on mini OS, the paper's settings,
4 epochs, exact fp32; compare with the earlier CPU control (same settings, plain input)."""
import json, sys, time
from pathlib import Path
import torch
from kglnet.models.registry import register_model
from kglnet.models.kglnet import KGLNet
from kglnet.train import TrainConfig, train

@register_model("kglnet_standardised_probe")
class KGLNetStandardised(KGLNet):
    """KGL-Net whose low-level stacks see each patch standardised (zero mean, unit variance)."""
    def _low_level(self, vis, other):
        def standardise(x):
            return (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-3)
        return super()._low_level(standardise(vis), standardise(other))

torch.set_num_threads(2)
out = Path(sys.argv[1])
t = time.time()
train("/work/main/data/os/train.h5", "/work/main/data/os/val.h5", out,
      TrainConfig(model="kglnet_standardised_probe", epochs=int(sys.argv[2]), seed=0), resume=True, progress=False)
print("wall", time.time() - t)
for r in json.loads((out / "history.json").read_text()):
    print(r["epoch"], round(r["d_pos"], 3), round(r["d_neg"], 3), r["val_fpr95_descriptor"], r["val_fpr95_metric"])
