"""Check 2: tile-level optical/SAR alignment with the project's own tile cutter (mini._os_pairs).
For every tile pair: NCC search (+-R px) of the central optical crop inside the SAR tile, on
blurred gradient magnitude ('grad') -- also for flipped/rotated SAR and for wrong pairings (null)."""
import sys, json
import numpy as np, cv2
sys.path.insert(0, '/work/main/src')
from pathlib import Path
from kglnet.data.mini import _os_pairs

R = 32
def feat(img, sigma=2.0):
    f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0); gy = cv2.Sobel(f, cv2.CV_32F, 0, 1)
    g = np.sqrt(gx * gx + gy * gy)
    return cv2.GaussianBlur(g, (0, 0), sigma)

def match(opt, sar, sigma=2.0):
    A, B = feat(opt, sigma), feat(sar, sigma)
    h, w = A.shape
    tmpl = A[R:h - R, R:w - R]
    res = cv2.matchTemplate(B, tmpl, cv2.TM_CCOEFF_NORMED)
    _, mx, _, loc = cv2.minMaxLoc(res)
    # peak distinctiveness: best outside a 5px radius around the max
    r2 = res.copy(); y, x = loc[1], loc[0]
    r2[max(0, y - 5):y + 6, max(0, x - 5):x + 6] = -1
    return loc[0] - R, loc[1] - R, float(mx), float(res[R, R]), float(r2.max())

pairs = _os_pairs(Path('/work/shared/data/3mos'))
ids = sorted(pairs)
rows = []
tiles = {}
for pid in ids:
    opt, sar, _ = pairs[pid].load()
    tiles[pid] = (opt, sar)
    dx, dy, peak, at0, second = match(opt, sar)
    trans = {}
    for tname, t in [('flipH', sar[:, ::-1]), ('flipV', sar[::-1]), ('rot180', sar[::-1, ::-1])]:
        trans[tname] = match(opt, np.ascontiguousarray(t))[2]
    rows.append(dict(id=pid, shape=list(opt.shape), dx=dx, dy=dy, peak=peak, ncc0=at0, second=second, **{k: v for k, v in trans.items()}))

# null: optical tile i with SAR tile of next column in the same figure
null = []
for pid in ids:
    fig, col = pid.split('/')
    other = f"{fig}/{(int(col) + 1) % 10:02d}"
    null.append(match(tiles[pid][0], tiles[other][1])[2])

import collections
mag = np.array([np.hypot(r['dx'], r['dy']) for r in rows])
peak = np.array([r['peak'] for r in rows]); ncc0 = np.array([r['ncc0'] for r in rows])
second = np.array([r['second'] for r in rows])
best_tr = np.array([max(r['flipH'], r['flipV'], r['rot180']) for r in rows])
null = np.array(null)
conf = (peak > np.percentile(null, 95)) & (peak - second > 0.05)
summary = {
 'n_tile_pairs': len(rows), 'tile_shapes': sorted({tuple(r['shape']) for r in rows}),
 'frac_shift<=1': float(np.mean(mag <= 1)), 'frac_shift<=2': float(np.mean(mag <= 2)),
 'frac_shift<=4': float(np.mean(mag <= 4)), 'frac_shift>8': float(np.mean(mag > 8)),
 'median_peak_ncc': float(np.median(peak)), 'median_ncc_at_0': float(np.median(ncc0)),
 'null_wrong_pairing_peak_median': float(np.median(null)), 'null_p95': float(np.percentile(null, 95)),
 'frac_peak_above_null_p95': float(np.mean(peak > np.percentile(null, 95))),
 'n_confident': int(conf.sum()), 'confident_frac_shift<=2': float(np.mean(mag[conf] <= 2)) if conf.any() else None,
 'confident_shifts': [(r['id'], r['dx'], r['dy'], round(r['peak'], 3)) for r, c in zip(rows, conf) if c and np.hypot(r['dx'], r['dy']) > 2],
 'frac_flip_beats_identity': float(np.mean(best_tr > peak)),
}
per_fig = collections.defaultdict(list)
for r, m in zip(rows, mag):
    per_fig[r['id'].split('/')[0]].append((m, r['peak'], r['ncc0']))
summary['per_figure(median|shift|, median peak, median ncc0)'] = {
    k: [float(np.median([a for a, _, _ in v])), round(float(np.median([b for _, b, _ in v])), 3), round(float(np.median([c for _, _, c in v])), 3)]
    for k, v in sorted(per_fig.items())}
print(json.dumps(summary, indent=1))
json.dump(dict(summary=summary, rows=rows, null=null.tolist()), open('/tmp/os_diag/check2_tiles.json', 'w'), indent=1)
