"""CFOG (Ye et al. 2019, channel features of orientated gradients) dense matching for optical/SAR.
Returns the integer shift (dx, dy) maximising similarity of the central optical crop within SAR."""
import numpy as np, cv2

def cfog(img, nbins=9, sigma=0.8, log=False):
    f = img.astype(np.float32)
    if log:
        f = np.log1p(f)
    f = cv2.GaussianBlur(f, (0, 0), 1.0)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3); gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    ch = []
    for k in range(nbins):
        th = np.pi * k / nbins
        ch.append(np.abs(gx * np.cos(th) + gy * np.sin(th)))
    ch = np.stack(ch, -1)
    ch = np.stack([cv2.GaussianBlur(ch[..., k], (0, 0), 3 * sigma) for k in range(nbins)], -1)
    # 1-D smoothing across orientations [1,2,1]
    ch = (np.roll(ch, 1, -1) + 2 * ch + np.roll(ch, -1, -1)) / 4
    ch /= np.linalg.norm(ch, axis=-1, keepdims=True) + 1e-6
    return ch.astype(np.float32)

def match(opt, sar, R=24, log_sar=False):
    A, B = cfog(opt), cfog(sar, log=log_sar)
    h, w, c = A.shape
    tmpl = A[R:h - R, R:w - R]
    res = sum(cv2.matchTemplate(B[..., k].copy(), tmpl[..., k].copy(), cv2.TM_CCOEFF) for k in range(c))
    res = res / (tmpl.shape[0] * tmpl.shape[1])
    # normalise into a z-score within the search window
    z = (res - res.mean()) / (res.std() + 1e-9)
    _, mx, _, loc = cv2.minMaxLoc(z)
    r2 = z.copy(); y, x = loc[1], loc[0]
    r2[max(0, y - 4):y + 5, max(0, x - 4):x + 5] = -1e9
    # subpixel via parabola
    def para(a, b, c):
        d = a - 2 * b + c
        return 0.0 if d == 0 else 0.5 * (a - c) / d
    sx = para(z[y, x - 1], z[y, x], z[y, x + 1]) if 0 < x < z.shape[1] - 1 else 0.0
    sy = para(z[y - 1, x], z[y, x], z[y + 1, x]) if 0 < y < z.shape[0] - 1 else 0.0
    return x - R + sx, y - R + sy, float(mx), float(z[R, R]), float(r2.max())
