"""Learning probe: kglnet.train.train on /work/main/data/<ds> (read-only) with 1 torch thread.
usage: probe.py NAME DATASET MODEL EPOCHS BATCH LR_FEAT AUGMENT(0/1) [key=value TrainConfig/LossConfig overrides]
Validation uses at most 800 pairs (balanced subset written to /tmp/os_diag/data)."""
import sys, json, time
import numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, '/work/main/src')
from kglnet.train import train, TrainConfig
from kglnet.losses import LossConfig
from kglnet.data.pairfile import read_pairs, write_pairs

name, ds, model, epochs, batch, lr, aug = sys.argv[1:8]
extra = dict(a.split('=', 1) for a in sys.argv[8:])
val_path = f'/tmp/os_diag/data/{ds}_val800.h5'
import os
if not os.path.exists(val_path):
    v = read_pairs(f'/work/main/data/{ds}/val.h5')
    rng = np.random.default_rng(0)
    pos = rng.choice(np.flatnonzero(v.label == 1), 400, replace=False)
    neg = rng.choice(np.flatnonzero(v.label == 0), 400, replace=False)
    idx = np.sort(np.concatenate([pos, neg]))
    write_pairs(val_path, v.left[idx], v.right[idx], v.label[idx])
train_path = f'/work/main/data/{ds}/train.h5'
if 'train_n' in extra:
    n = int(extra.pop('train_n'))
    tp = f'/tmp/os_diag/data/{ds}_train{n}.h5'
    if not os.path.exists(tp):
        t = read_pairs(train_path)
        idx = np.sort(np.random.default_rng(1).choice(len(t.label), n, replace=False))
        write_pairs(tp, t.left[idx], t.right[idx], t.label[idx])
    train_path = tp
loss = {k[5:]: float(v) for k, v in extra.items() if k.startswith('loss.')}
def conv(v):
    try:
        return float(v)
    except ValueError:
        return v
other = {k: conv(v) for k, v in extra.items() if not k.startswith('loss.')}
cfg = TrainConfig(model=model, epochs=int(epochs), batch_size=int(batch), lr_features=float(lr),
                  augment=bool(int(aug)), device='cpu', threads=1, eval_batch_size=200,
                  loss=LossConfig(**loss), **other)
t0 = time.time()
out = f'/tmp/os_diag/runs/{name}'
train(train_path, val_path, out, cfg, resume=False, progress=False)
hist = json.load(open(f'{out}/history.json'))
for r in hist:
    print(name, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                 if k in ('epoch', 'd_pos', 'd_neg', 'loss_total', 'loss_triplet', 'loss_norm', 'loss', 'val_fpr95_descriptor', 'val_fpr95_metric', 'train_seconds')})
print(name, 'wall', round(time.time() - t0, 1), 's')
