"""Batched training-time augmentation for cross-spectral patch pairs (SPEC section 4).

Two stages, both fully batched (no per-sample Python loop) on the device the patches live on:

1. Independent jitter. Every patch -- the VIS patch and the other-modality patch of a pair
   draw independently -- gets 0, 1 or 2 (uniform count, then distinct ops uniformly) of seven
   ops, applied in the fixed order of :data:`JITTER_OPS`:

   ============== ==========================================================================
   ``blur``       Gaussian blur, sigma ~ U(0, 1) px, 7-tap separable kernel (radius 3 =
                  3 * sigma_max, renormalised), reflect (``cv2.BORDER_REFLECT_101``) borders.
                  Unlike the reference (sigma fixed at 0, a no-op, SPEC 9) this really blurs.
   ``gamma``      gamma contrast ``x ** g``, g ~ U(0.5, 1.5).
   ``scale``      scale about the centre along ONE axis (x or y, 50/50), factor ~ U(0.95, 1.1);
                  factor > 1 magnifies. Bilinear, reflection borders.
   ``translate``  shift along ONE axis (x or y, 50/50) by d * size, d ~ U(-0.05, 0.05)
                  (sub-pixel, bilinear), reflection borders.
   ``noise``      additive Gaussian noise, std 0.02 (= 0.02 * 255 in uint8 units), per pixel.
   ``crop_pad``   like imgaug ``CropAndPad(percent=(-0.1, 0.1), keep_size=True)``: each side
                  (top, right, bottom, left) independently cropped (< 0) or zero-padded (> 0)
                  by a fraction ~ U(-0.1, 0.1) of the image size, then resized back to HxW.
   ``reflect_pad`` like imgaug ``Pad(percent=(0, 0.1), pad_mode=...)``: each side padded by a
                  fraction ~ U(0, 0.1) with reflection, then resized back to HxW.
   ============== ==========================================================================

   Values stay in [0, 1]: every op but noise keeps the range by construction (normalised
   non-negative blur kernel, x ** g on [0, 1], bilinear resampling with zero/reflection padding),
   noise clamps, and the jitter output is clamped once more against rounding. (The reference worked
   in uint8, which clips after each op; it also quantised to 1/255 steps, which we do not.)
   ``scale`` and ``translate`` are adjacent and share a border mode, so a patch that drew both is
   resampled once with the composed matrix (scale first, then translate) rather than twice.

2. Shared dihedral change. Per pair, 0, 1 or 2 distinct ops of {horizontal flip, vertical flip,
   rotation by 90/180/270 degrees (uniform)}, applied in that order. Whatever is drawn is composed
   into one of the 8 elements of the dihedral group and applied to BOTH patches with one gather, so
   the pair stays aligned.

Why the geometric jitter ops use reflection borders: zero-filled borders would add artificial edges
that exist in neither modality, and the descriptor could learn to key on them. ``crop_pad`` keeps
imgaug's zero padding because padding with a constant is what that op is defined to do. PyTorch's
``grid_sample(padding_mode="reflection", align_corners=False)`` reflects about the outer pixel
*edges*, i.e. the border pixel is repeated (numpy/imgaug ``"symmetric"``), not numpy ``"reflect"``.
The spatial ops are continuous (sub-pixel, bilinear) rather than rounded to whole pixels.

Determinism: every random number comes from the ``torch.Generator`` passed in, with a fixed
number of draws per call whatever was selected (parameters are drawn for all ops, all samples, and
masked with ``torch.where``), so the same generator state gives bit-identical outputs and replaying
a saved ``generator.get_state()`` reproduces a batch exactly. Draws are made on
``generator.device`` and moved to the patches' device if they differ. Nothing reads values back
to the host (no ``.item()``, no boolean indexing), so on CUDA the whole augmentation is
asynchronous.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "JITTER_OPS",
    "PairAugmentation",
    "additive_noise",
    "crop_or_pad",
    "dihedral",
    "dihedral_index_maps",
    "dihedral_reference",
    "gamma_contrast",
    "gaussian_blur",
    "reflect_pad",
    "scale_axis",
    "shared_dihedral",
    "translate_axis",
]

#: Jitter ops, in the order they are applied when a patch draws two of them.
JITTER_OPS: tuple[str, ...] = (
    "blur",
    "gamma",
    "scale",
    "translate",
    "noise",
    "crop_pad",
    "reflect_pad",
)

BLUR_SIGMA_MAX = 1.0
BLUR_RADIUS = math.ceil(3 * BLUR_SIGMA_MAX)  # 3 sigma covers >99.7 % of the kernel mass
GAMMA_RANGE = (0.5, 1.5)
SCALE_RANGE = (0.95, 1.1)
TRANSLATE_FRAC = 0.05
NOISE_STD = 0.02
CROP_PAD_FRAC = 0.1
REFLECT_PAD_FRAC = 0.1


# --------------------------------------------------------------------------------------------------
# Single ops. Each takes x [N, C, H, W] and per-sample parameters, returns [N, C, H, W] in [0, 1].
# --------------------------------------------------------------------------------------------------


def _reflect101_taps(size: int, radius: int, device: torch.device) -> torch.Tensor:
    """[2r+1, size, size] one-hot: T[t, j, i] = 1 where output pixel i's tap t reads input pixel j
    under reflect-101 padding. A blur along that axis is then ``x @ (sum_t w_t T[t])``."""
    pos = torch.arange(size, device=device).view(1, size) + torch.arange(
        -radius, radius + 1, device=device
    ).view(-1, 1)  # [k, size]: padded position read by output i at tap t
    pos = pos.abs()  # reflect-101 at the left/top edge: -1 -> 1
    pos = torch.where(pos > size - 1, 2 * (size - 1) - pos, pos)  # and at the right/bottom edge
    return (pos.unsqueeze(1) == torch.arange(size, device=device).view(1, size, 1)).float()


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int = BLUR_RADIUS) -> torch.Tensor:
    """Per-sample separable Gaussian blur.

    x: [N, C, H, W]; sigma: [N] in pixels (0 gives the identity exactly). The kernel has
    ``2 * radius + 1`` taps and is renormalised, so constants stay constant. Borders: reflect
    without repeating the edge pixel (``cv2.BORDER_REFLECT_101``, OpenCV's default, which is what
    imgaug's blur used). Needs H, W > radius.
    """
    n, _, h, w = x.shape
    if min(h, w) <= radius:
        raise ValueError(f"blur radius {radius} needs patches larger than {radius}px")
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    # Floor on sigma: exp(-1 / (2 * 1e-3**2)) underflows to 0, so sigma=0 is an exact delta kernel.
    s = sigma.to(device=x.device, dtype=torch.float32).clamp_min(1e-3).view(n, 1)
    k = torch.exp(-(taps.view(1, -1) ** 2) / (2 * s**2))
    k = k / k.sum(dim=1, keepdim=True)  # [N, 2r+1]
    # Per-sample blur matrices with the border reflection folded in: [N, 1, W, W] and [N, 1, H, H].
    # Two batched matmuls beat both a 2N-group conv and shift-and-add on CPU (~3x / ~8x here),
    # and are two kernels on CUDA.
    mw = torch.einsum("nt,tji->nji", k, _reflect101_taps(w, radius, x.device)).unsqueeze(1)
    mh = mw if h == w else torch.einsum(
        "nt,tji->nji", k, _reflect101_taps(h, radius, x.device)
    ).unsqueeze(1)
    # A normalised non-negative kernel keeps values in [0, 1] (up to rounding; _jitter clamps).
    return mh.transpose(-1, -2).to(x.dtype) @ (x @ mw.to(x.dtype))


def gamma_contrast(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``x ** gamma`` per sample. x: [N, C, H, W] in [0, 1]; gamma: [N] (> 0)."""
    # Clamp first: a negative value would give NaN for non-integer gamma.
    return x.clamp_min(0.0).pow(gamma.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1))


def additive_noise(x: torch.Tensor, noise: torch.Tensor, std: float = NOISE_STD) -> torch.Tensor:
    """``x + std * noise`` clamped to [0, 1]. noise: standard normal, same shape as x."""
    return (x + std * noise).clamp(0.0, 1.0)


def _warp(x: torch.Tensor, theta: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """Bilinear resampling of x [N, C, H, W] at ``theta`` [N, 2, 3].

    theta maps output coordinates to input coordinates, both normalised to [-1, 1] over the pixel
    *extent* (align_corners=False), so the identity matrix maps pixel centres onto themselves.
    """
    n, _, h, w = x.shape
    cols = theta.to(device=x.device, dtype=x.dtype).transpose(1, 2)  # [N, 3, 2]
    # Same grid as F.affine_grid(theta, x.shape, align_corners=False) -- pixel centres at
    # (2i + 1)/size - 1 -- but built by broadcasting: a small [N, 1, W, 2] plus a small
    # [N, H, 1, 2] and one full-size add, which is several times faster on CPU than
    # affine_grid's [N, HW, 3] @ [N, 3, 2] bmm.
    xs = ((torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1).view(1, 1, w, 1)
    ys = ((torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1).view(1, h, 1, 1)
    grid = (xs * cols[:, 0].view(n, 1, 1, 2) + cols[:, 2].view(n, 1, 1, 2)) + ys * cols[
        :, 1
    ].view(n, 1, 1, 2)  # [N, H, W, 2]
    # Bilinear interpolation of values in [0, 1] (zeros/reflection padding) stays in [0, 1].
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _identity_theta(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    theta = torch.zeros(n, 2, 3, device=device, dtype=dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    return theta


def _scale_theta(factor: torch.Tensor, axis: torch.Tensor, device: torch.device) -> torch.Tensor:
    """theta [N, 2, 3] scaling about the centre by ``factor`` along ``axis`` (0 = x, 1 = y)."""
    theta = _identity_theta(factor.shape[0], device, torch.float32)
    inv = 1.0 / factor.to(device=device, dtype=torch.float32)
    ax = axis.to(device).bool()
    theta[:, 0, 0] = torch.where(ax, 1.0, inv)  # output x samples input x / factor
    theta[:, 1, 1] = torch.where(ax, inv, 1.0)
    return theta


def _translate_theta(shift: torch.Tensor, axis: torch.Tensor, device: torch.device) -> torch.Tensor:
    """theta [N, 2, 3] moving content by ``shift`` * size along ``axis`` (0 = x, 1 = y)."""
    theta = _identity_theta(shift.shape[0], device, torch.float32)
    # The full extent is 2 normalised units, so a shift of d * size is 2d; sampling at
    # (out - 2d) moves the content by +d.
    t = -2.0 * shift.to(device=device, dtype=torch.float32)
    ax = axis.to(device).bool()
    theta[:, 0, 2] = torch.where(ax, 0.0, t)
    theta[:, 1, 2] = torch.where(ax, t, 0.0)
    return theta


def _compose_theta(first: torch.Tensor, then: torch.Tensor) -> torch.Tensor:
    """theta of "warp by ``first``, then warp by ``then``" as one resampling.

    Warping y(p) = x(A p) then z(p) = y(B p) gives z(p) = x(A B p), so the matrix is A @ B.
    """
    # Built on the device (zeros + fill), not torch.tensor(...), to avoid a host-to-device copy.
    bottom = torch.zeros(first.shape[0], 1, 3, device=first.device, dtype=first.dtype)
    bottom[:, :, 2] = 1.0
    a = torch.cat([first, bottom], dim=1)
    b = torch.cat([then, bottom], dim=1)
    return (a @ b)[:, :2]


def scale_axis(x: torch.Tensor, factor: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Scale about the centre along one axis per sample; factor > 1 magnifies.

    x: [N, C, H, W]; factor: [N]; axis: [N] integer, 0 = x (width), 1 = y (height).
    Reflection borders (see module docstring).
    """
    return _warp(x, _scale_theta(factor, axis, x.device), "reflection")


def translate_axis(x: torch.Tensor, shift: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Shift content along one axis per sample.

    x: [N, C, H, W]; shift: [N] as a fraction of the size along that axis (``+k / W`` moves the
    content k pixels right/down: ``out[..., j] = x[..., j - k]``); axis: [N], 0 = x, 1 = y.
    Reflection borders.
    """
    return _warp(x, _translate_theta(shift, axis, x.device), "reflection")


def _sides_theta(sides: torch.Tensor) -> torch.Tensor:
    """Affine theta [N, 2, 3] for per-side pad (> 0) / crop (< 0) fractions, resized back.

    sides: [N, 4] = (top, right, bottom, left) as fractions of H (top, bottom) or W (left, right).
    After padding, the image spans [-1 - 2*left, 1 + 2*right] in the input's normalised x
    coordinates; resizing that span back onto [-1, 1] is x_in = (r - l) + (1 + l + r) * x_out.
    """
    s = sides.to(torch.float32)
    top, right, bottom, left = s.unbind(dim=1)
    theta = torch.zeros(s.shape[0], 2, 3, device=s.device, dtype=torch.float32)
    theta[:, 0, 0] = 1.0 + left + right
    theta[:, 0, 2] = right - left
    theta[:, 1, 1] = 1.0 + top + bottom
    theta[:, 1, 2] = bottom - top
    return theta


def crop_or_pad(x: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """imgaug ``CropAndPad(keep_size=True)``: crop (< 0) or zero-pad (> 0) each side, resize back.

    x: [N, C, H, W]; sides: [N, 4] fractions (top, right, bottom, left). All zeros = identity.
    """
    return _warp(x, _sides_theta(sides.to(x.device)), "zeros")


def reflect_pad(x: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """Pad each side by a fraction (>= 0) with reflection, resize back to HxW.

    x: [N, C, H, W]; sides: [N, 4] fractions (top, right, bottom, left).
    """
    return _warp(x, _sides_theta(sides.to(x.device)), "reflection")


# --------------------------------------------------------------------------------------------------
# Dihedral group (shared flips / rotations).
# --------------------------------------------------------------------------------------------------


def dihedral_reference(x: torch.Tensor, code: int) -> torch.Tensor:
    """Element ``code`` in [0, 8) of the dihedral group, the slow obvious way.

    ``code = 4 * f + k``: horizontally flip if f, then rotate by k * 90 degrees (torch.rot90 sense)
    over the last two dims. Defines the meaning of the codes used by :func:`dihedral`.
    """
    if code >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k=code % 4, dims=(-2, -1))


def dihedral_index_maps(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[8, size*size] long: row c lists, for each output pixel, the flat input pixel of code c."""
    base = torch.arange(size * size, device=device).view(size, size)
    return torch.stack([dihedral_reference(base, c).reshape(-1) for c in range(8)])


def _compose_table() -> torch.Tensor:
    """[2, 2, 4] long: code of (hflip h, then vflip v, then rot90 k) -- found by brute force on an
    asymmetric 3x3 grid, so the algebra cannot be wrong."""
    g = torch.arange(9).view(3, 3)
    variants = [dihedral_reference(g, c) for c in range(8)]
    table = torch.empty(2, 2, 4, dtype=torch.long)
    for h in range(2):
        for v in range(2):
            for k in range(4):
                y = torch.flip(g, (-1,)) if h else g
                y = torch.flip(y, (-2,)) if v else y
                y = torch.rot90(y, k, dims=(-2, -1))
                table[h, v, k] = next(c for c, ref in enumerate(variants) if torch.equal(ref, y))
    return table


_COMPOSE = _compose_table()
_COMPOSE_ON: dict[torch.device, torch.Tensor] = {}  # per-device copies: one upload per device


def _compose_on(device: torch.device) -> torch.Tensor:
    if device not in _COMPOSE_ON:
        _COMPOSE_ON[device] = _COMPOSE.to(device)
    return _COMPOSE_ON[device]


def dihedral(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Apply dihedral element ``codes[i]`` (see :func:`dihedral_reference`) to ``x[i]``.

    x: [B, C, S, S] (square: rotations must keep the shape); codes: [B] integers in [0, 8).
    One gather over precomputed index maps; no per-sample loop.
    """
    b, c, h, w = x.shape
    if h != w:
        raise ValueError(f"dihedral transforms need square patches, got {h}x{w}")
    maps = dihedral_index_maps(h, x.device)  # [8, S*S]
    idx = maps[codes.to(x.device).long()].unsqueeze(1).expand(b, c, h * w)
    return x.reshape(b, c, h * w).gather(2, idx).view(b, c, h, w)


def shared_dihedral(
    vis: torch.Tensor, other: torch.Tensor, codes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the SAME dihedral element ``codes[i]`` to ``vis[i]`` and ``other[i]``.

    vis, other: [B, C, S, S]; codes: [B] in [0, 8). Both go through one gather (stacked on the
    channel dim), so the pair cannot come out misaligned.
    """
    cv = vis.shape[1]
    both = dihedral(torch.cat([vis, other], dim=1), codes)
    return both[:, :cv], both[:, cv:]


# --------------------------------------------------------------------------------------------------
# The augmentation.
# --------------------------------------------------------------------------------------------------


def _choose(n: int, n_ops: int, max_ops: int, generator: torch.Generator) -> torch.Tensor:
    """[N, n_ops] bool: per row, a count uniform in {0..max_ops}, then that many distinct ops
    uniformly (the first ``count`` of a random permutation)."""
    dev = generator.device
    count = torch.randint(0, max_ops + 1, (n, 1), generator=generator, device=dev)
    scores = torch.rand(n, n_ops, generator=generator, device=dev)
    rank = scores.argsort(dim=1).argsort(dim=1)  # rank of each op in a random permutation
    return rank < count


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, *shape, generator=generator, device=generator.device)


class PairAugmentation:
    """SPEC section 4 augmentation for a batch of pairs.

    Shapes: ``vis``, ``other`` float [B, 1, H, W] in [0, 1], same shape; H == W when
    ``geometric`` is on (rotations). Returns two tensors of the same shape, dtype and device.

    photometric: step 1, independent jitter (all seven ops of :data:`JITTER_OPS`; the SPEC calls
        them "photometric/geometric jitter"). geometric: step 2, the shared flips/rotations.
    max_photometric_ops / max_geometric_ops: the per-patch / per-pair op count is uniform in
        {0, ..., max}.

    With both flags off the inputs are returned unchanged (the reference crashed there, SPEC 9).
    """

    def __init__(
        self,
        photometric: bool = True,
        geometric: bool = True,
        max_photometric_ops: int = 2,
        max_geometric_ops: int = 2,
    ) -> None:
        if not 0 <= max_photometric_ops <= len(JITTER_OPS):
            raise ValueError(f"max_photometric_ops must be in [0, {len(JITTER_OPS)}]")
        if not 0 <= max_geometric_ops <= 3:
            raise ValueError("max_geometric_ops must be in [0, 3]")
        self.photometric = photometric
        self.geometric = geometric
        self.max_photometric_ops = max_photometric_ops
        self.max_geometric_ops = max_geometric_ops

    def __repr__(self) -> str:
        return (
            f"PairAugmentation(photometric={self.photometric}, geometric={self.geometric}, "
            f"max_photometric_ops={self.max_photometric_ops}, "
            f"max_geometric_ops={self.max_geometric_ops})"
        )

    def __call__(
        self, vis: torch.Tensor, other: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch. vis, other: [B, 1, H, W] in [0, 1] -> same shapes.

        The same as ``apply(vis, other, draw(vis.shape, generator, vis.device))``; bad inputs are
        refused before anything is drawn."""
        self._check(vis, other)
        return self.apply(vis, other, self.draw(vis.shape, generator, vis.device))

    def _check(self, vis: torch.Tensor, other: torch.Tensor) -> None:
        if vis.shape != other.shape:
            raise ValueError(
                f"vis and other shapes differ: {tuple(vis.shape)} vs {tuple(other.shape)}"
            )
        if vis.dim() != 4:
            raise ValueError(f"expected [B, C, H, W], got {tuple(vis.shape)}")
        if not (vis.is_floating_point() and other.is_floating_point()):
            raise TypeError("patches must be floating point in [0, 1]")
        if self.geometric and vis.shape[-1] != vis.shape[-2]:
            raise ValueError("shared rotations need square patches")

    def draw(
        self, shape: torch.Size | tuple[int, ...], generator: torch.Generator,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every random number one batch of pairs of ``shape`` [B, C, H, W] needs, drawn from
        ``generator`` (on its device) in a fixed order and moved to ``device``.

        Split from :meth:`apply` so that the training step can compile the application, which is
        a pure function of the patches and these tensors, while the draws stay on the generator
        (the draws and their order are exactly those of calling the augmentation directly)."""
        b = shape[0]
        draws: dict[str, torch.Tensor] = {}
        if self.photometric:
            # VIS and other stacked into one batch of 2B patches: each row draws its own ops and
            # parameters, which is exactly "independently per patch".
            draws.update(self._draw_jitter((2 * b, *shape[1:]), generator))
        if self.geometric:
            draws["codes"] = self._draw_codes(b, generator)
        target = generator.device if device is None else torch.device(device)
        return {k: v.to(target) for k, v in draws.items()}

    def apply(
        self, vis: torch.Tensor, other: torch.Tensor, draws: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch with the random numbers of :meth:`draw` (no random draws here)."""
        self._check(vis, other)
        if not (self.photometric or self.geometric):
            return vis, other
        dtype = vis.dtype
        v, o = vis.float(), other.float()
        b = v.shape[0]
        if self.photometric:
            jittered = self._apply_jitter(torch.cat([v, o], dim=0), draws)
            v, o = jittered[:b], jittered[b:]
        if self.geometric:
            v, o = shared_dihedral(v, o, draws["codes"])
        return v.to(dtype), o.to(dtype)

    def _draw_codes(self, b: int, generator: torch.Generator) -> torch.Tensor:
        """[B] dihedral codes: 0..max of {hflip, vflip, rot 90/180/270}, applied in that order."""
        sel = _choose(b, 3, self.max_geometric_ops, generator)  # [B, 3]
        k = torch.randint(1, 4, (b,), generator=generator, device=generator.device)
        k = torch.where(sel[:, 2], k, 0)
        table = _compose_on(generator.device)
        return table[sel[:, 0].long(), sel[:, 1].long(), k]

    def _draw_jitter(self, shape: tuple[int, ...], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Step 1's draws for ``shape`` [N, C, H, W]. All parameters are drawn for every sample
        and op whatever is selected, so the number of draws -- hence the generator state
        afterwards -- never depends on the data or the draws."""
        n, g = shape[0], generator
        return {
            "select": _choose(n, len(JITTER_OPS), self.max_photometric_ops, g),
            "blur_sigma": _uniform(n, 0.0, BLUR_SIGMA_MAX, g),
            "gamma": _uniform(n, *GAMMA_RANGE, g),
            "scale_factor": _uniform(n, *SCALE_RANGE, g),
            "scale_axis": torch.randint(0, 2, (n,), generator=g, device=g.device),
            "translate_shift": _uniform(n, -TRANSLATE_FRAC, TRANSLATE_FRAC, g),
            "translate_axis": torch.randint(0, 2, (n,), generator=g, device=g.device),
            "noise": torch.randn(tuple(shape), generator=g, device=g.device),
            "crop_pad": _uniform(n, -CROP_PAD_FRAC, CROP_PAD_FRAC, g, 4),
            "reflect_pad": _uniform(n, 0.0, REFLECT_PAD_FRAC, g, 4),
        }

    def _jitter(
        self, x: torch.Tensor, generator: torch.Generator, force: str | None = None
    ) -> torch.Tensor:
        """Step 1 on x [N, C, H, W]. ``force`` (tests): every sample applies exactly that op."""
        draws = {k: v.to(x.device) for k, v in self._draw_jitter(tuple(x.shape), generator).items()}
        if force is not None:
            if force not in JITTER_OPS:
                raise ValueError(f"unknown op {force!r}; choose from {JITTER_OPS}")
            draws["select"] = torch.zeros_like(draws["select"])
            draws["select"][:, JITTER_OPS.index(force)] = True
        return self._apply_jitter(x, draws)

    def _apply_jitter(self, x: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
        """Step 1 on x [N, C, H, W] with the draws of :meth:`_draw_jitter`."""
        n = x.shape[0]
        dev = x.device
        sel = draws["select"]

        def masked(name: str, y: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
            # Unselected samples keep their values bit-exactly (an identity resampling would not).
            return torch.where(sel[:, JITTER_OPS.index(name)].view(n, 1, 1, 1), y, base)

        x = masked("blur", gaussian_blur(x, draws["blur_sigma"]), x)
        x = masked("gamma", gamma_contrast(x, draws["gamma"]), x)
        # scale and translate are consecutive and both use reflection borders: one resampling for
        # the pair (identity where an op was not drawn) saves a grid_sample and an interpolation.
        eye = _identity_theta(n, dev, torch.float32).view(n, 2, 3)
        use_s = sel[:, JITTER_OPS.index("scale")].view(n, 1, 1)
        use_t = sel[:, JITTER_OPS.index("translate")].view(n, 1, 1)
        theta = _compose_theta(
            torch.where(use_s, _scale_theta(draws["scale_factor"], draws["scale_axis"], dev), eye),
            torch.where(use_t, _translate_theta(draws["translate_shift"], draws["translate_axis"], dev), eye),
        )
        x = torch.where((use_s | use_t).view(n, 1, 1, 1), _warp(x, theta, "reflection"), x)
        x = masked("noise", additive_noise(x, draws["noise"]), x)
        x = masked("crop_pad", crop_or_pad(x, draws["crop_pad"]), x)
        x = masked("reflect_pad", reflect_pad(x, draws["reflect_pad"]), x)
        # The ops keep [0, 1] by construction (noise clamps itself); this only removes rounding
        # overshoot such as 1 + 1e-7 from the blur matmuls.
        return x.clamp(0.0, 1.0)
