"""Check 2b: CFOG shift of every tile pair from mini._os_pairs, with wrong-pairing null and flips."""
import sys, json, collections
import numpy as np
sys.path.insert(0, '/work/main/src'); sys.path.insert(0, '/tmp/os_diag')
from pathlib import Path
from kglnet.data.mini import _os_pairs
from cfog import match
pairs = _os_pairs(Path('/work/shared/data/3mos'))
ids = sorted(pairs)
tiles = {p: pairs[p].load()[:2] for p in ids}
rows = []
for pid in ids:
    o, s = tiles[pid]
    dx, dy, z, z0, z2 = match(o, s)
    fig, col = pid.split('/')
    other = f"{fig}/{(int(col) + 1) % 10:02d}"
    nz = match(o, tiles[other][1])[2]
    fz = match(o, np.ascontiguousarray(s[::-1, ::-1]))[2]
    rows.append(dict(id=pid, dx=round(dx, 2), dy=round(dy, 2), z=round(z, 2), z0=round(z0, 2), z2=round(z2, 2), null_z=round(nz, 2), rot180_z=round(fz, 2)))
z = np.array([r['z'] for r in rows]); nz = np.array([r['null_z'] for r in rows]); z2 = np.array([r['z2'] for r in rows])
mag = np.array([np.hypot(r['dx'], r['dy']) for r in rows])
conf = (z > np.percentile(nz, 99)) & (z - z2 > 0.5)
S = {'n': len(rows), 'null_z_median': float(np.median(nz)), 'null_z_p99': float(np.percentile(nz, 99)),
     'true_z_median': float(np.median(z)), 'frac_true_above_null_p99': float(np.mean(z > np.percentile(nz, 99))),
     'n_confident': int(conf.sum()),
     'confident |shift| quantiles 10/25/50/75/90': np.percentile(mag[conf], [10, 25, 50, 75, 90]).round(2).tolist(),
     'confident frac<=1': float(np.mean(mag[conf] <= 1)), 'confident frac<=2': float(np.mean(mag[conf] <= 2)),
     'confident frac<=4': float(np.mean(mag[conf] <= 4)), 'confident frac>8': float(np.mean(mag[conf] > 8)),
     'confident median dx, dy': [float(np.median([r['dx'] for r, c in zip(rows, conf) if c])), float(np.median([r['dy'] for r, c in zip(rows, conf) if c]))],
     'all frac<=2': float(np.mean(mag <= 2)), 'rot180 beats identity': float(np.mean(np.array([r['rot180_z'] for r in rows]) > z))}
pf = collections.defaultdict(list)
for r, c, m in zip(rows, conf, mag):
    pf[r['id'].split('/')[0]].append((c, m, r['dx'], r['dy'], r['z']))
S['per_figure: n_conf, median|shift| conf, median dx, dy conf, median z'] = {
    k: [int(sum(c for c, *_ in v)), round(float(np.median([m for c, m, *_ in v if c])), 2) if any(c for c, *_ in v) else None,
        round(float(np.median([dx for c, m, dx, dy, _ in v if c])), 2) if any(c for c, *_ in v) else None,
        round(float(np.median([dy for c, m, dx, dy, _ in v if c])), 2) if any(c for c, *_ in v) else None,
        round(float(np.median([zz for *_, zz in v])), 2)] for k, v in sorted(pf.items())}
print(json.dumps(S, indent=1))
json.dump(dict(summary=S, rows=rows), open('/tmp/os_diag/check2_cfog.json', 'w'), indent=1, default=float)
