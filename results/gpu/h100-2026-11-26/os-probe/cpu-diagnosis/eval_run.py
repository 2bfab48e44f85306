"""Score a probe's checkpoints on full val.h5 and test.h5 of a dataset (descriptor + metric FPR95)."""
import sys, json
import torch; torch.set_num_threads(1)
sys.path.insert(0, '/work/main/src')
from kglnet.checkpoint import load_model
from kglnet.data.pairfile import read_pairs
from kglnet.train import validate
run, ds = sys.argv[1], sys.argv[2]
out = {}
for ck in sys.argv[3:] or ['best.pt', 'last.pt']:
    model, meta = load_model(f'/tmp/os_diag/runs/{run}/{ck}', 'cpu')
    model.eval()
    for split in ('val', 'test'):
        p = read_pairs(f'/work/main/data/{ds}/{split}.h5', require_both_labels=True)
        out[f'{ck}:{split}'] = validate(model, p, 256, torch.device('cpu'))
print(run, json.dumps(out))
