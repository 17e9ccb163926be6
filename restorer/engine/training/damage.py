"""Synthetic old-photo damage: the training (and benchmark) data of the damage detector.

`make_damage(clean, params, generator)` takes a batch of clean RGB crops (B, 3, H, W) in [0, 1]
and returns a :class:`DamageResult`: the damaged photos, the ground-truth mask of damaged
pixels (B, 1, H, W, bool) and the clean photos after the same tone changes (what an ideal
restoration would give back). Everything is torch, batched, and deterministic given the
`torch.Generator` (CPU generator; tensors may live on any device).

The steps, each with its ranges in :class:`DamageParams`:

1. *tone*: the crop stays colour, or becomes greyscale or sepia; optionally faded (contrast
   towards a paper tone). Not damage: never marked.
2. *strokes* (anti-aliased poly-lines, width varying 1-8 px, opacity varying along the line):
   long smooth scratches (bright or dark), short curly hairs/fibres, random-walk emulsion
   cracks and creases (a bright line with a dark shadow beside it).
3. *specks and dust*: small discs and elongated flecks, bright or dark, drawn by convolving
   impulse maps with anti-aliased kernels (cheap at any count).
4. *blotches*: irregular soft-edged stains and missing emulsion from a thresholded
   low-frequency noise field.
5. *scan softness* (a small blur of damaged and clean alike), then *paper texture*
   (multiplicative low/high-frequency noise) and *grain* (Gaussian noise): never marked.

The mask marks a pixel when a damage element covers at least half of it *and* the damage
changes it visibly (by at least `min_contrast` in some channel after the blur): a dark
scratch over a black coat is not something a detector can or needs to find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

Range = tuple[float, float]


@dataclass(frozen=True)
class DamageParams:
    """Ranges of the synthetic damage (uniform unless stated; counts are per 128x128 area)."""

    # tone
    p_grey: float = 0.35
    p_sepia: float = 0.30  # the rest stays colour
    p_fade: float = 0.5
    fade_amount: Range = (0.1, 0.45)  # blend towards the paper tone
    # damage-free samples (teach the network to leave clean photos alone)
    p_clean: float = 0.15
    # long scratches
    scratches: tuple[int, int] = (0, 4)  # count per sample (inclusive)
    scratch_width: Range = (1.0, 8.0)  # px; drawn as min + (max-min) * u^width_power
    width_power: float = 2.0  # >1 favours thin scratches
    scratch_length: Range = (0.3, 1.6)  # as a fraction of the crop side
    scratch_bend: Range = (0.0, 0.15)  # sideways sway, fraction of the length
    p_bright: float = 0.65  # bright (missing emulsion) vs dark scratches
    opacity: Range = (0.45, 1.0)
    # hairs / fibres: short, thin, curly
    hairs: tuple[int, int] = (0, 2)
    hair_length: Range = (0.1, 0.35)
    hair_width: Range = (1.0, 2.0)
    # emulsion cracks: random walks
    cracks: tuple[int, int] = (0, 1)
    crack_step: Range = (3.0, 9.0)
    crack_width: Range = (1.0, 2.5)
    # creases: a bright fold line with a darker shadow beside it
    p_crease: float = 0.2
    crease_width: Range = (1.5, 5.0)
    # specks and dust
    p_specks: float = 0.7
    specks: Range = (0.0, 60.0)  # expected count per 128x128
    # blotches / stains / missing emulsion
    p_blotch: float = 0.3
    blotch_cover: Range = (0.005, 0.05)  # fraction of the crop
    # scan and paper (never marked)
    p_blur: float = 0.5
    blur_sigma: Range = (0.3, 1.0)
    paper_texture: Range = (0.0, 0.06)
    grain: Range = (0.0, 0.04)
    min_contrast: float = 0.04  # damage changing a pixel less than this is not marked

    def only_scratches(self, min_width: float = 2.0) -> "DamageParams":
        """The benchmark's scratch set: long scratches at least `min_width` px wide, nothing else."""
        return DamageParams(**{**self.__dict__, "p_clean": 0.0, "scratches": (1, 4),
                               "scratch_width": (min_width, self.scratch_width[1]), "hairs": (0, 0),
                               "cracks": (0, 0), "p_crease": 0.0, "p_specks": 0.0, "p_blotch": 0.0})

    def undamaged(self) -> "DamageParams":
        """Tone, texture and grain only: for measuring false marks on clean photos."""
        return DamageParams(**{**self.__dict__, "p_clean": 1.0})


@dataclass
class DamageResult:
    damaged: torch.Tensor  # (B, 3, H, W) float in [0, 1]
    mask: torch.Tensor  # (B, 1, H, W) bool: damaged pixels
    clean: torch.Tensor  # (B, 3, H, W): the same photo, toned/textured alike, without damage


# ----------------------------------------------------------------------------- random helpers
class _Rand:
    """Uniform draws from one CPU generator, moved to the working device."""

    def __init__(self, gen: torch.Generator, device: torch.device) -> None:
        self.gen = gen
        self.device = device

    def u(self, *shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return (torch.rand(shape, generator=self.gen) * (hi - lo) + lo).to(self.device)

    def r(self, rng: Range, *shape: int) -> torch.Tensor:
        return self.u(*shape, lo=rng[0], hi=rng[1])

    def n(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen).to(self.device)

    def counts(self, rng: tuple[int, int], b: int) -> torch.Tensor:
        return torch.randint(rng[0], rng[1] + 1, (b,), generator=self.gen).to(self.device)

    def bern(self, p: float, *shape: int) -> torch.Tensor:
        return self.u(*shape) < p


_LUMA = (0.299, 0.587, 0.114)
_SEPIA = (1.07, 0.88, 0.64)  # multipliers of the grey value


def _grey(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _tone(x: torch.Tensor, p: DamageParams, rnd: _Rand) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour / greyscale / sepia, optionally faded. Returns (toned, paper colour (B, 3, 1, 1))."""
    b = x.shape[0]
    pick = rnd.u(b).view(b, 1, 1, 1)
    g = _grey(x)
    sepia_tint = torch.tensor(_SEPIA, device=x.device).view(1, 3, 1, 1)
    grey = g.expand_as(x)
    sepia = (g * sepia_tint).clamp(0, 1)
    toned = torch.where(pick < p.p_grey, grey, torch.where(pick < p.p_grey + p.p_sepia, sepia, x))
    is_sepia = (pick >= p.p_grey) & (pick < p.p_grey + p.p_sepia)
    paper = torch.where(is_sepia, sepia_tint.clamp(max=1.0) * 0.95, torch.full_like(sepia_tint, 0.95))
    fade = rnd.bern(p.p_fade, b).float() * rnd.r(p.fade_amount, b)
    fade = fade.view(b, 1, 1, 1)
    toned = toned * (1 - fade) + paper * fade
    return toned, paper


# ----------------------------------------------------------------------------- strokes
@dataclass
class _Strokes:
    """S poly-lines per sample: points (B, S, K, 2) as (x, y) px, width (B, S), opacity (B, S, K),
    bright (B, S) bool (else dark); a stroke with zero opacity is absent."""

    points: torch.Tensor
    width: torch.Tensor
    opacity: torch.Tensor
    bright: torch.Tensor


def _smooth_curves(b: int, s: int, k: int, side: float, length: Range, bend: Range, rnd: _Rand) -> torch.Tensor:
    """Gently curved lines of random length/direction: (B, S, K, 2)."""
    ln = rnd.r(length, b, s, 1) * side
    start = rnd.u(b, s, 2, lo=-0.2, hi=1.2) * side
    theta = rnd.u(b, s, 1, lo=0.0, hi=math.pi * 2)
    direction = torch.cat([theta.cos(), theta.sin()], -1)  # (b, s, 2)
    normal = torch.cat([-theta.sin(), theta.cos()], -1)
    t = torch.linspace(0.0, 1.0, k, device=rnd.device).view(1, 1, k)
    sway = rnd.r(bend, b, s, 1) * ln
    freq = rnd.u(b, s, 1, lo=0.5, hi=2.0)
    phase = rnd.u(b, s, 1, lo=0.0, hi=math.pi * 2)
    off = sway * torch.sin(math.pi * freq * t + phase)  # (b, s, k)
    along = (t - 0.5) * ln  # centred on `start`
    return start.unsqueeze(2) + along.unsqueeze(-1) * direction.unsqueeze(2) + off.unsqueeze(-1) * normal.unsqueeze(2)


def _random_walks(b: int, s: int, k: int, side: float, step: Range, rnd: _Rand) -> torch.Tensor:
    start = rnd.u(b, s, 1, 2, lo=0.0, hi=1.0) * side
    theta0 = rnd.u(b, s, 1, lo=0.0, hi=math.pi * 2)
    turns = rnd.n(b, s, k - 1) * 0.6
    theta = theta0 + torch.cumsum(turns, -1)
    steps = rnd.r(step, b, s, k - 1).unsqueeze(-1) * torch.stack([theta.cos(), theta.sin()], -1)
    path = torch.cat([torch.zeros_like(start), torch.cumsum(steps, 2)], 2)
    return start + path


def _draw_strokes(strokes: _Strokes, h: int, w: int) -> list[torch.Tensor]:
    """Coverage x opacity per stroke: a list of S tensors (B, 1, H, W) in [0, 1].

    Distance of every pixel centre to every segment of the poly-line; the anti-aliased coverage
    of a line of width w at distance d is clamp(w/2 + 0.5 - d, 0, 1); the opacity is interpolated
    along each segment, and a pixel takes the maximum over the segments.
    """
    pts = strokes.points
    dev = pts.device
    b, s, k, _ = pts.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32) + 0.5,
                            torch.arange(w, device=dev, dtype=torch.float32) + 0.5, indexing="ij")
    px, py = xs.reshape(1, 1, -1), ys.reshape(1, 1, -1)  # (1, 1, HW)
    layers = []
    for i in range(s):
        layer = torch.zeros(b, 1, h, w, device=dev)
        layers.append(layer)
        present = (strokes.opacity[:, i] > 0).any(1).nonzero().flatten()  # only where the stroke exists
        if present.numel() == 0:
            continue
        op_all = strokes.opacity[present, i]  # (n, k)
        sp = pts[present, i]  # (n, k, 2)
        ax, ay = sp[:, :-1, 0].unsqueeze(-1), sp[:, :-1, 1].unsqueeze(-1)  # (n, k-1, 1)
        dx = sp[:, 1:, 0].unsqueeze(-1) - ax
        dy = sp[:, 1:, 1].unsqueeze(-1) - ay
        inv_len2 = 1.0 / (dx * dx + dy * dy).clamp(min=1e-6)
        qx, qy = px - ax, py - ay  # (b, k-1, HW)
        t = ((qx * dx + qy * dy) * inv_len2).clamp_(0, 1)
        ex, ey = qx.sub_(t * dx), qy.sub_(t * dy)
        d = (ex.square_() + ey.square_()).sqrt_()
        cov = (strokes.width[present, i].view(-1, 1, 1) / 2 + 0.5 - d).clamp_(0, 1)
        op = op_all[:, :-1].unsqueeze(-1) + (op_all[:, 1:] - op_all[:, :-1]).unsqueeze(-1) * t
        layer[present] = cov.mul_(op).amax(1).view(-1, 1, h, w)
    return layers


def _make_strokes(b: int, h: int, w: int, p: DamageParams, rnd: _Rand, active: torch.Tensor) -> _Strokes:
    side = float(min(h, w))
    k = 9
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def opacity_along(n_s: int, count: torch.Tensor, lo_hi: Range) -> torch.Tensor:
        base = rnd.r(lo_hi, b, n_s, 1)
        # varies along the line: fades in and out, sometimes breaks off
        wave = 0.55 + 0.45 * torch.sin(rnd.u(b, n_s, 1, lo=0, hi=6.3)
                                       + torch.linspace(0, 1, k, device=rnd.device) * rnd.u(b, n_s, 1, lo=0, hi=9.0))
        varying = rnd.bern(0.5, b, n_s, 1)
        op = torch.where(varying, (base * (0.4 + 0.6 * wave)).clamp(max=1.0), base.expand(b, n_s, k))
        present = (torch.arange(n_s, device=rnd.device).view(1, n_s) < count.view(b, 1)) & active.view(b, 1)
        return op * present.unsqueeze(-1).float()

    def widths(n_s: int, rng: Range, power: float = 1.0) -> torch.Tensor:
        return rng[0] + (rng[1] - rng[0]) * rnd.u(b, n_s) ** power

    n = p.scratches[1]
    if n > 0:
        pts = _smooth_curves(b, n, k, side, p.scratch_length, p.scratch_bend, rnd)
        parts.append((pts, widths(n, p.scratch_width, p.width_power),
                      opacity_along(n, rnd.counts(p.scratches, b), p.opacity),
                      rnd.bern(p.p_bright, b, n)))
    n = p.hairs[1]
    if n > 0:
        pts = _smooth_curves(b, n, k, side, p.hair_length, (0.1, 0.4), rnd)
        parts.append((pts, widths(n, p.hair_width), opacity_along(n, rnd.counts(p.hairs, b), p.opacity),
                      rnd.bern(0.3, b, n)))
    n = p.cracks[1]
    if n > 0:
        pts = _random_walks(b, n, k, side, p.crack_step, rnd)
        parts.append((pts, widths(n, p.crack_width), opacity_along(n, rnd.counts(p.cracks, b), p.opacity),
                      rnd.bern(0.3, b, n)))
    if p.p_crease > 0:
        pts = _smooth_curves(b, 1, k, side, (1.2, 1.8), (0.0, 0.03), rnd)
        cw = widths(1, p.crease_width)
        seg = pts[:, :, -1] - pts[:, :, 0]
        normal = torch.stack([-seg[..., 1], seg[..., 0]], -1)
        normal = normal / normal.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        shadow = pts + (normal * cw.unsqueeze(-1) * 0.9).unsqueeze(2)
        has = rnd.bern(p.p_crease, b).long()
        op_bright = opacity_along(1, has, (0.5, 0.9))
        op_dark = op_bright * 0.6
        bright = torch.ones(b, 1, dtype=torch.bool, device=rnd.device)
        parts.append((torch.cat([pts, shadow], 1), torch.cat([cw, cw * 0.8], 1), torch.cat([op_bright, op_dark], 1),
                      torch.cat([bright, ~bright], 1)))
    if not parts:
        z = torch.zeros(b, 0, device=rnd.device)
        return _Strokes(torch.zeros(b, 0, k, 2, device=rnd.device), z, torch.zeros(b, 0, k, device=rnd.device),
                        torch.zeros(b, 0, dtype=torch.bool, device=rnd.device))
    return _Strokes(*(torch.cat(x, 1) for x in zip(*parts)))


# ----------------------------------------------------------------------------- specks
def _disc_kernel(radius: float, aspect: float = 1.0, angle: float = 0.0) -> torch.Tensor:
    half = int(math.ceil(radius * max(1.0, aspect))) + 1
    ax = torch.arange(-half, half + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    u, v = (c * xx + s * yy) / aspect, -s * xx + c * yy
    return (radius + 0.5 - (u * u + v * v).sqrt()).clamp(0, 1)


# (radius, aspect, angle): round dust of several sizes and a few elongated flecks
_SPECK_SHAPES = ((0.6, 1, 0), (1.0, 1, 0), (1.5, 1, 0), (2.2, 1, 0), (3.2, 1, 0),
                 (1.0, 3, 0.3), (1.2, 2.5, 1.9), (0.8, 4, 2.6))


def _specks(b: int, h: int, w: int, p: DamageParams, rnd: _Rand, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bright, dark) alpha layers (B, 1, H, W) of dust specks."""
    n_shapes = len(_SPECK_SHAPES)
    area = h * w / (128.0 * 128.0)
    has = (rnd.bern(p.p_specks, b) & active).float().view(b, 1, 1, 1)
    density = rnd.r(p.specks, b).view(b, 1, 1, 1) * area / (h * w)
    # per pixel, per (polarity, shape): an impulse with probability density / shapes
    probs = density / n_shapes * torch.ones(b, 2 * n_shapes, h, w, device=rnd.device)
    impulses = (rnd.u(b, 2 * n_shapes, h, w) < probs).float() * has
    impulses = impulses * rnd.r(p.opacity, b, 2 * n_shapes, h, w)
    half = max(int(math.ceil(r * max(1.0, a))) + 1 for r, a, _ in _SPECK_SHAPES)
    kernels = torch.zeros(2 * n_shapes, 1, 2 * half + 1, 2 * half + 1)
    for j, (r, a, ang) in enumerate(_SPECK_SHAPES):
        kern = _disc_kernel(r, a, ang)
        off = half - kern.shape[0] // 2
        for pol in range(2):
            kernels[pol * n_shapes + j, 0, off:off + kern.shape[0], off:off + kern.shape[1]] = kern
    alpha = F.conv2d(impulses, kernels.to(rnd.device), padding=half, groups=2 * n_shapes)
    bright = alpha[:, :n_shapes].amax(1, keepdim=True).clamp(0, 1)
    dark = alpha[:, n_shapes:].amax(1, keepdim=True).clamp(0, 1)
    return bright, dark


# ----------------------------------------------------------------------------- blotches, paper
def _smooth_noise(b: int, h: int, w: int, cell: int, rnd: _Rand) -> torch.Tensor:
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    field = rnd.n(b, 1, gh, gw)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    field = field - field.mean((2, 3), keepdim=True)
    return field / field.std((2, 3), keepdim=True).clamp(min=1e-6)


def _blotches(b: int, h: int, w: int, p: DamageParams, rnd: _Rand, active: torch.Tensor) -> torch.Tensor:
    """An alpha layer (B, 1, H, W) of soft-edged irregular stains covering `blotch_cover` of the crop."""
    field = _smooth_noise(b, h, w, max(8, min(h, w) // 6), rnd) + 0.35 * _smooth_noise(b, h, w, 6, rnd)
    cover = rnd.r(p.blotch_cover, b)
    thr = torch.quantile(field.view(b, -1), (1 - cover).clamp(0, 1), dim=1).diagonal().view(b, 1, 1, 1)
    soft = rnd.u(b, 1, 1, 1, lo=0.05, hi=0.4)
    has = (rnd.bern(p.p_blotch, b) & active).float().view(b, 1, 1, 1)
    return ((field - thr) / soft + 0.5).clamp(0, 1) * rnd.r(p.opacity, b, 1, 1, 1) * has


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample Gaussian blur (sigma (B,), 0 = none) with a fixed 7-tap separable kernel."""
    b, c, h, w = x.shape
    ax = torch.arange(-3, 4, device=x.device, dtype=torch.float32).view(1, 7)
    k = torch.exp(-0.5 * (ax / sigma.clamp(min=1e-3).view(b, 1)) ** 2)
    k = torch.where(sigma.view(b, 1) > 0, k, (ax == 0).float())
    k = k / k.sum(1, keepdim=True)
    kx = k.repeat_interleave(c, 0).view(b * c, 1, 1, 7)
    ky = kx.view(b * c, 1, 7, 1)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (3, 3, 0, 0), mode="replicate"), kx, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, 3, 3), mode="replicate"), ky, groups=b * c)
    return y.view(b, c, h, w)


# ----------------------------------------------------------------------------- the generator
@dataclass
class DamageLayers:
    """Photo-independent damage: alpha (B, 3, H, W) of the bright, dark and stain layers, and the
    support (B, 1, H, W) bool of pixels a damage element covers (before the visibility test)."""

    alpha: torch.Tensor
    support: torch.Tensor

    def to_uint8(self) -> torch.Tensor:
        """(B, 4, H, W) uint8 for compact pools: three alphas x 255 and the support."""
        return torch.cat([(self.alpha * 255).round(), self.support.float()], 1).to(torch.uint8)

    @classmethod
    def from_uint8(cls, packed: torch.Tensor) -> "DamageLayers":
        return cls(alpha=packed[:, :3].float() / 255.0, support=packed[:, 3:4] > 0)


def damage_layers(b: int, h: int, w: int, params: DamageParams = DamageParams(),
                  generator: Optional[torch.Generator] = None, device: str | torch.device = "cpu") -> DamageLayers:
    """Draw the damage of `b` samples of h x w px (no photo needed)."""
    p = params
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    rnd = _Rand(gen, torch.device(device))
    active = ~rnd.bern(p.p_clean, b)
    bright = torch.zeros(b, 1, h, w, device=rnd.device)
    dark = torch.zeros_like(bright)
    support = torch.zeros(b, 1, h, w, dtype=torch.bool, device=rnd.device)
    stain = _blotches(b, h, w, p, rnd, active) if p.p_blotch > 0 else torch.zeros_like(bright)
    support |= (stain >= 0.5 * stain.amax((2, 3), keepdim=True)) & (stain > 0.15)

    strokes = _make_strokes(b, h, w, p, rnd, active)
    for i, a in enumerate(_draw_strokes(strokes, h, w)):
        is_bright = strokes.bright[:, i].view(b, 1, 1, 1)
        bright = torch.where(is_bright, torch.maximum(bright, a), bright)
        dark = torch.where(is_bright, dark, torch.maximum(dark, a))
        # covered at least half (of the stroke's own peak opacity), with an opacity that can show
        peak = strokes.opacity[:, i].amax(1).view(b, 1, 1, 1)
        support |= (a >= 0.5 * peak) & (a > 0.2)
    if p.p_specks > 0:
        sb, sd = _specks(b, h, w, p, rnd, active)
        bright = torch.maximum(bright, sb)
        dark = torch.maximum(dark, sd)
        support |= (sb >= 0.3) | (sd >= 0.3)
    return DamageLayers(alpha=torch.cat([bright, dark, stain], 1), support=support)


_BROWN = (0.45, 0.33, 0.18)


def apply_damage(clean: torch.Tensor, layers: DamageLayers, params: DamageParams = DamageParams(),
                 generator: Optional[torch.Generator] = None) -> DamageResult:
    """Tone a batch of clean photos, composite `layers` over them, blur, texture and grain."""
    if clean.ndim != 4 or clean.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(clean.shape)}")
    p = params
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    x = clean.float().clamp(0, 1)
    b, _, h, w = x.shape
    rnd = _Rand(gen, x.device)
    alpha = layers.alpha.to(x.device)
    support = layers.support.to(x.device)

    toned, paper = _tone(x, p, rnd)
    kind = rnd.u(b, 1, 1, 1)
    stain_col = torch.where(kind < 0.4, paper.expand(b, 3, 1, 1),
                            torch.where(kind < 0.7, torch.tensor(_BROWN, device=x.device).view(1, 3, 1, 1),
                                        rnd.u(b, 1, 1, 1, lo=0.05, hi=0.3).expand(b, 3, 1, 1)))
    light = (paper * rnd.u(b, 1, 1, 1, lo=0.9, hi=1.08)).clamp(0, 1)
    dark = rnd.u(b, 1, 1, 1, lo=0.0, hi=0.22)
    out = toned
    for a, col in ((alpha[:, 2:3], stain_col), (alpha[:, 1:2], dark), (alpha[:, 0:1], light)):
        out = out * (1 - a) + col * a

    # scan softness, then the visibility test on the blurred pair
    sigma = torch.where(rnd.bern(p.p_blur, b), rnd.r(p.blur_sigma, b), torch.zeros(b, device=x.device))
    out = _blur(out, sigma)
    ref = _blur(toned, sigma)
    visible = (out - ref).abs().amax(1, keepdim=True) >= p.min_contrast
    mask = support & visible

    # paper texture and grain (the same on the clean reference)
    tex_amp = rnd.r(p.paper_texture, b).view(b, 1, 1, 1)
    texture = 1 + tex_amp * (0.6 * _smooth_noise(b, h, w, 24, rnd) + 0.4 * _smooth_noise(b, h, w, 3, rnd))
    grain_amp = rnd.r(p.grain, b).view(b, 1, 1, 1)
    mono = (toned.std(1, keepdim=True).amax((2, 3), keepdim=True) < 0.03).float()  # grey/sepia: mono grain
    g_col = rnd.n(b, 3, h, w)
    g = (mono * g_col[:, :1] + (1 - mono) * g_col) * grain_amp
    damaged = (out * texture + g).clamp(0, 1)
    clean_out = (ref * texture + g).clamp(0, 1)
    return DamageResult(damaged=damaged, mask=mask, clean=clean_out)


def make_damage(clean: torch.Tensor, params: DamageParams = DamageParams(),
                generator: Optional[torch.Generator] = None) -> DamageResult:
    """Damage a batch of clean photos (B, 3, H, W) in [0, 1]; see the module docstring."""
    if clean.ndim != 4 or clean.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(clean.shape)}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    b, _, h, w = clean.shape
    layers = damage_layers(b, h, w, params, gen, clean.device)
    return apply_damage(clean, layers, params, gen)
