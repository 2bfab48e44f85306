"""Check 2c: is the SAR tile at the same scale as the optical tile? CFOG z-score of the best shift
after resizing SAR about the tile centre by s in {0.90,0.95,1.0,1.05,1.10}; also rot90."""
import sys, json, collections
import numpy as np, cv2
sys.path.insert(0, '/work/main/src'); sys.path.insert(0, '/tmp/os_diag')
from pathlib import Path
from kglnet.data.mini import _os_pairs
from cfog import match
pairs = _os_pairs(Path('/work/shared/data/3mos'))
ids = sorted(pairs)[::2]  # every other tile pair (120) to save time
scales = [0.9, 0.95, 1.0, 1.05, 1.1]
best = collections.Counter(); rows = []
for pid in ids:
    o, s = pairs[pid].load()[:2]
    h, w = s.shape
    zs = []
    for sc in scales:
        M = cv2.getRotationMatrix2D((w / 2, h / 2), 0, sc)
        s2 = cv2.warpAffine(s, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        zs.append(match(o, s2, R=16)[2])
    zr = match(o, np.ascontiguousarray(np.rot90(s)), R=16)[2]
    rows.append((pid, zs, zr))
    best[scales[int(np.argmax(zs))]] += 1
z = np.array([r[1] for r in rows]); zr = np.array([r[2] for r in rows])
strong = z[:, 2] > 3.7
out = {'n': len(rows), 'best_scale_counts(all)': dict(best),
       'best_scale_counts(strong z>3.7 at s=1)': dict(collections.Counter(scales[int(np.argmax(r))] for r in z[strong])),
       'n_strong': int(strong.sum()), 'median_z_by_scale': np.median(z, 0).round(2).tolist(),
       'median_z_by_scale_strong': np.median(z[strong], 0).round(2).tolist(),
       'median_z_rot90': float(np.median(zr))}
print(json.dumps(out, indent=1))
json.dump(dict(summary=out, rows=rows), open('/tmp/os_diag/check2_scale.json', 'w'), indent=1, default=float)
