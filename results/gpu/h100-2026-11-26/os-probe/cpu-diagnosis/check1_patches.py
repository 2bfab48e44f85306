"""Check 1: contact sheet of positive pairs + residual shift estimate (NCC search on gradient magnitude)."""
import sys, json
import numpy as np, cv2
sys.path.insert(0, '/work/main/src')
from kglnet.data.pairfile import read_pairs

def grad(p):
    p = cv2.GaussianBlur(p.astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(p, cv2.CV_32F, 1, 0); gy = cv2.Sobel(p, cv2.CV_32F, 0, 1)
    return np.sqrt(gx * gx + gy * gy)

def best_shift(a, b, R=16, use_grad=True):
    """Shift (dx, dy) such that b[y+dy, x+dx] ~ a[y, x]; center crop of a (64-2R) matched in b."""
    A = grad(a) if use_grad else a.astype(np.float32)
    B = grad(b) if use_grad else b.astype(np.float32)
    n = A.shape[0]
    tmpl = A[R:n - R, R:n - R]
    res = cv2.matchTemplate(B, tmpl, cv2.TM_CCOEFF_NORMED)  # (2R+1)^2
    _, mx, _, loc = cv2.minMaxLoc(res)
    return loc[0] - R, loc[1] - R, mx, res[R, R]

def run(name, path, n_sheet=24, n_est=600, seed=0):
    ps = read_pairs(path)
    pos = np.flatnonzero(ps.label == 1)
    rng = np.random.default_rng(seed)
    idx = rng.choice(pos, min(n_est, len(pos)), replace=False)
    # contact sheet
    rows = []
    for k in range(0, n_sheet, 4):
        row = []
        for i in idx[k:k + 4]:
            row += [ps.left[i], np.full((64, 2), 255, np.uint8), ps.right[i], np.full((64, 8), 128, np.uint8)]
        rows.append(np.hstack(row)); rows.append(np.full((4, rows[-1].shape[1]), 128, np.uint8))
    sheet = np.vstack(rows)
    cv2.imwrite(f'/tmp/os_diag/sheet_{name}.png', cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
    out = {}
    for g in (True, False):
        sh = np.array([best_shift(ps.left[i], ps.right[i], use_grad=g) for i in idx])
        mag = np.hypot(sh[:, 0], sh[:, 1])
        conf = sh[:, 2]
        key = 'grad' if g else 'raw'
        out[key] = {
            'n': int(len(sh)),
            'frac_|shift|<=1': float(np.mean(mag <= 1)), 'frac_<=2': float(np.mean(mag <= 2)),
            'frac_<=4': float(np.mean(mag <= 4)), 'frac_>8': float(np.mean(mag > 8)),
            'median_|shift|': float(np.median(mag)),
            'median_dx': float(np.median(sh[:, 0])), 'median_dy': float(np.median(sh[:, 1])),
            'median_peak_ncc': float(np.median(conf)), 'median_ncc_at_0': float(np.median(sh[:, 3])),
            'confident(peak>0.3)_n': int(np.sum(conf > 0.3)),
            'confident_frac_<=2': float(np.mean(mag[conf > 0.3] <= 2)) if np.any(conf > 0.3) else None,
        }
        hist = np.histogram(mag, bins=[0, 1.01, 2.01, 4.01, 8.01, 12.01, 23])[0]
        out[key]['hist_|shift|_bins[0,1,2,4,8,12,23]'] = hist.tolist()
    # negatives (val) as a null reference: NCC at 0 for negative pairs
    print(name, json.dumps(out, indent=1))
    return out

res = {}
for name, path in [('os_train', '/work/main/data/os/train.h5'), ('vislwir_train', '/work/main/data/vislwir/train.h5')]:
    res[name] = run(name, path)
json.dump(res, open('/tmp/os_diag/check1_shifts.json', 'w'), indent=1)
