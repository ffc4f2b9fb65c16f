"""Procedural shapes: the embedded default dataset of ssl-bench.

Every image shows one filled geometric shape on a textured background. The
shape class is the label; everything else is a nuisance factor that a
self-supervised method has to become invariant to. The data set is produced
deterministically from a seed, in memory, with no files and no network access.

Generative process, per image:

1. Class. Labels cycle through the ten classes and are then shuffled, so the
   classes are balanced (counts differ by at most one).
2. Geometry. The shape is defined as an indicator function on a canonical
   frame where it (almost) fits inside the unit disc. It is rotated by an
   angle drawn uniformly from ``[-MAX_ROTATION, MAX_ROTATION]``, scaled so
   that its extent covers a uniform random fraction (``SIZE_RANGE``) of the
   image side, and its centre is displaced by at most ``MAX_SHIFT`` (as a
   fraction of the half side) in each axis, so the object stays near the
   centre and inside most random crops.
3. Anti-aliasing. The indicator is evaluated on a grid ``SUPERSAMPLE`` times
   finer than the output and area-averaged down, giving a fractional coverage
   map with smooth edges.
4. Colour. Background and object colours are drawn independently in hue and
   saturation. Their luminances (Rec. 601 weights) are drawn so that they differ
   by at least ``contrast``; the chroma of each colour is a random direction of
   zero luminance, scaled by a random fraction of the largest amount that keeps
   the colour inside the RGB cube. The object therefore stays visible after
   conversion to grayscale and after moderate brightness/contrast changes.
5. Texture. The background receives a low-amplitude pattern in a random
   colour: a mix, with random weights, of a linear gradient, sinusoidal stripes
   of random frequency, orientation and phase, and smooth value noise
   (a bilinearly upsampled coarse random grid). The object receives a weak
   linear shading. Finally a small amount of i.i.d. pixel noise is added before
   quantisation to 8 bits.

Nuisance factors: object colour, background colour, position, scale,
rotation, background texture (type mix, colour, frequency, orientation) and
shading/pixel noise. Colour-related nuisances are those removed by colour
jitter and random grayscale; position and scale are those removed by random
resized crops. Rotation is not removed by the usual augmentations, so its
range is kept moderate (``MAX_ROTATION`` = 45 degrees).

Variants (the default, 10 classes and free colours, is unchanged by them):

- ``num_classes`` > 10 adds generated classes after the ten named shapes: star-convex outlines
  whose radius is a random Fourier series in the angle, ``r(t) = 1 + sum_m a_m cos(m t - p_m)``
  (m = 2..6), one fixed outline per class (seeded by ``CLASS_SEED`` and the class index, so the
  train, val and test splits share the classes). Many classes make the task fine-grained: a batch
  of 32 no longer holds every class, so contrastive negatives matter as they do on ImageNet.
- ``palette`` = K > 0 draws background and object colours from K fixed colours (a pair per image
  with the luminance gap), instead of from a continuum. With free colours the colour pair of an
  image is nearly unique, an instance id that two views share when colour jitter is off; with a
  small palette many images share it, so colour narrows the candidates without identifying one.

The same ``(num_images, image_size, seed, contrast, num_classes, palette)`` always yields
bit-identical tensors on a given platform.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["SHAPE_CLASSES", "generate_shapes", "shape_classes"]

SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "cross",
    "star",
    "ring",
    "diamond",
    "hexagon",
    "crescent",
    "arrow",
)

SIZE_RANGE: tuple[float, float] = (0.45, 0.75)
"""Object extent (diameter of its bounding disc) as a fraction of the image side."""
MAX_SHIFT: float = 0.12
"""Maximum displacement of the object centre, as a fraction of the half side."""
MAX_ROTATION: float = math.pi / 4
"""Rotation angles are uniform in [-MAX_ROTATION, MAX_ROTATION]."""
TEXTURE_AMPLITUDE: float = 0.06
"""Peak amplitude of the background texture (intensity units in [0, 1])."""
SHADING_AMPLITUDE: float = 0.04
"""Peak amplitude of the linear shading on the object."""
PIXEL_NOISE_STD: float = 0.015
"""Standard deviation of the i.i.d. pixel noise."""
SUPERSAMPLE: int = 4
"""Rendering resolution factor used for anti-aliasing."""

CLASS_SEED: int = 20260
"""Seeds the outlines of the generated classes (fixed: every split and data seed shares them)."""
FOURIER_ORDERS: tuple[int, ...] = (2, 3, 4, 5, 6)
"""Harmonics of a generated outline's radius; amplitudes uniform in [0, FOURIER_AMPLITUDE / m**0.5]."""
FOURIER_AMPLITUDE: float = 0.45
MAX_CLASSES: int = 1000
PALETTE_SEED: int = 4321
"""Seeds the fixed colours of ``palette`` mode."""

_LUMA = torch.tensor([0.299, 0.587, 0.114])
_CHUNK = 512  # images rendered at once at supersampled resolution

Mask = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------
# Shape indicator functions on the canonical frame (shape inside unit disc).
# ---------------------------------------------------------------------------


def _polygon(u: torch.Tensor, v: torch.Tensor, sides: int, radius: float, phase: float) -> torch.Tensor:
    """Regular polygon with circumradius ``radius``; ``phase`` sets the first edge normal."""
    apothem = radius * math.cos(math.pi / sides)
    inside = torch.ones_like(u, dtype=torch.bool)
    for k in range(sides):
        a = phase + 2.0 * math.pi * k / sides
        inside &= (u * math.cos(a) + v * math.sin(a)) <= apothem
    return inside


def _circle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u * u + v * v <= 0.92**2


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) <= 0.68


def _triangle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Centroid at the origin; circumradius 1.1, slightly beyond the unit disc,
    # to give the triangle a visual weight comparable to the other shapes.
    return _polygon(u, v + 0.1, 3, 1.1, math.pi / 2)


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    return ((au <= 0.28) & (av <= 0.92)) | ((av <= 0.28) & (au <= 0.92))


def _star(u: torch.Tensor, v: torch.Tensor, points: int = 5) -> torch.Tensor:
    r = torch.sqrt(u * u + v * v)
    period = 2.0 * math.pi / points
    a = torch.remainder(torch.atan2(v, u) + math.pi / 2, period) / period
    tip = 1.0 - 2.0 * torch.minimum(a, 1.0 - a)  # 1 at a tip, 0 at a notch
    return r <= 0.42 + (1.0 - 0.42) * tip


def _ring(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r2 = u * u + v * v
    return (r2 <= 0.95**2) & (r2 >= 0.55**2)


def _diamond(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Elongated rhombus, so that no rotation maps it onto the square.
    return u.abs() / 0.55 + v.abs() / 1.0 <= 1.0


def _hexagon(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return _polygon(u, v, 6, 0.95, 0.0)


def _crescent(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    outer = u * u + v * v <= 0.95**2
    bite = (u - 0.45) ** 2 + v * v <= 0.78**2
    return outer & ~bite


def _arrow(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    shaft = (u >= -0.95) & (u <= 0.15) & (v.abs() <= 0.2)
    head = (u >= 0.05) & (v.abs() <= 0.62 * (0.95 - u) / 0.9)
    return shaft | head


_SHAPES: dict[str, Mask] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "star": _star,
    "ring": _ring,
    "diamond": _diamond,
    "hexagon": _hexagon,
    "crescent": _crescent,
    "arrow": _arrow,
}
assert tuple(_SHAPES) == SHAPE_CLASSES


def _fourier_outline(cls: int) -> Mask:
    """Generated class ``cls``: a star-convex outline, radius a random Fourier series of the angle,
    scaled so that its largest radius is 0.95 (inside the unit disc)."""
    g = torch.Generator().manual_seed(CLASS_SEED + cls)
    orders = torch.tensor(FOURIER_ORDERS, dtype=torch.float32)
    amp = torch.rand(len(FOURIER_ORDERS), generator=g) * FOURIER_AMPLITUDE / orders.sqrt()
    phase = torch.rand(len(FOURIER_ORDERS), generator=g) * 2.0 * math.pi
    t = torch.linspace(0.0, 2.0 * math.pi, 721)
    radius = 1.0 + (amp[:, None] * torch.cos(orders[:, None] * t - phase[:, None])).sum(0)
    scale = 0.95 / float(radius.max())

    def mask(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        theta = torch.atan2(v, u)
        r = torch.ones_like(theta)
        for m, a, p in zip(FOURIER_ORDERS, amp.tolist(), phase.tolist()):
            r += a * torch.cos(m * theta - p)
        return u * u + v * v <= (scale * r) ** 2

    return mask


def shape_classes(num_classes: int = len(SHAPE_CLASSES)) -> tuple[str, ...]:
    """Class names: the first ``num_classes`` named shapes, then ``outline10``, ``outline11``, ..."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes={num_classes} is out of range; allowed: 2 to {MAX_CLASSES}")
    named = SHAPE_CLASSES[:num_classes]
    return named + tuple(f"outline{c}" for c in range(len(named), num_classes))


def _mask_of(cls: int) -> Mask:
    return _SHAPES[SHAPE_CLASSES[cls]] if cls < len(SHAPE_CLASSES) else _fourier_outline(cls)


# ---------------------------------------------------------------------------
# Colours and textures.
# ---------------------------------------------------------------------------


def _colour_with_luma(luma: torch.Tensor, direction: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """RGB colours [N,3] with exact luminance ``luma`` [N].

    ``direction`` [N,3] is projected to zero luminance and scaled by
    ``saturation`` [N] times the largest factor keeping the colour in [0,1]^3.
    """
    luma_w = _LUMA.to(direction)
    d = direction - (direction @ luma_w)[:, None] / luma_w.sum()
    d = d / d.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    y = luma[:, None]
    # Largest t with 0 <= y + t*d <= 1 for every channel.
    up = torch.where(d > 0, (1.0 - y) / d.clamp_min(1e-6), torch.full_like(d, math.inf))
    down = torch.where(d < 0, y / (-d).clamp_min(1e-6), torch.full_like(d, math.inf))
    t_max = torch.minimum(up, down).amin(dim=1)
    return (y + (saturation * t_max)[:, None] * d).clamp(0.0, 1.0)


def _sample_lumas(n: int, contrast: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Background and object luminances with |difference| >= contrast."""
    bg = torch.rand(n, generator=g)
    # Feasible object luminances: [0, bg - c] U [bg + c, 1]; pick uniformly.
    below = (bg - contrast).clamp_min(0.0)
    above = (1.0 - bg - contrast).clamp_min(0.0)
    total = below + above
    # If contrast > 0.5 some backgrounds admit nothing; move them to an extreme.
    empty = total <= 0
    bg = torch.where(empty & (bg < 0.5), torch.zeros_like(bg), bg)
    bg = torch.where(empty & (bg >= 0.5), torch.ones_like(bg), bg)
    below = (bg - contrast).clamp_min(0.0)
    above = (1.0 - bg - contrast).clamp_min(0.0)
    total = (below + above).clamp_min(1e-6)
    x = torch.rand(n, generator=g) * total
    obj = torch.where(x < below, x, bg + contrast + (x - below))
    return bg, obj.clamp(0.0, 1.0)


def _palette_colours(n: int, palette: int, contrast: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Background and object colours [N,3] from ``palette`` fixed colours (lumas spread evenly over
    [0.1, 0.9], random chroma): a uniformly drawn ordered pair whose lumas differ by >= contrast."""
    pg = torch.Generator().manual_seed(PALETTE_SEED + palette)
    luma = torch.linspace(0.1, 0.9, palette)[torch.randperm(palette, generator=pg)]
    colours = _colour_with_luma(
        luma, torch.randn(palette, 3, generator=pg), 0.5 + 0.5 * torch.rand(palette, generator=pg)
    )
    bg_i, obj_i = torch.meshgrid(torch.arange(palette), torch.arange(palette), indexing="ij")
    ok = (luma[bg_i] - luma[obj_i]).abs() >= contrast - 1e-6
    pairs = torch.stack([bg_i[ok], obj_i[ok]], dim=1)
    if pairs.shape[0] == 0:
        raise ValueError(f"palette={palette} has no two colours whose luminances differ by contrast={contrast}")
    pick = pairs[torch.randint(pairs.shape[0], (n,), generator=g)]
    return colours[pick[:, 0]], colours[pick[:, 1]]


def _unit_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1], as (x [1,1,S], y [1,S,1])."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    return c.view(1, 1, size), c.view(1, size, 1)


# ---------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------


def generate_shapes(
    num_images: int,
    image_size: int = 32,
    seed: int = 0,
    contrast: float = 0.4,
    num_classes: int = len(SHAPE_CLASSES),
    palette: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate the procedural shapes data set.

    Args:
        num_images: number of images N.
        image_size: side H = W of the square images, in pixels.
        seed: random seed; the same arguments give bit-identical output.
        contrast: guaranteed minimum luminance difference (in [0, 1] intensity
            units) between the object colour and the mean background colour.
            Above 0.5, backgrounds that admit no such object luminance are
            moved to black or white.
        num_classes: the ten named shapes (10), the first of them (< 10), or
            the ten and generated outlines (> 10); see :func:`shape_classes`.
        palette: 0 (default): colours from a continuum; K > 0: background and
            object colours from K fixed colours.

    Returns:
        ``(images, labels)``: ``images`` is uint8 ``[N, 3, H, W]``, ``labels``
        is int64 ``[N]`` indexing :func:`shape_classes`; classes are balanced.
    """
    if num_images < 0:
        raise ValueError("num_images must be non-negative")
    if image_size < 4:
        raise ValueError("image_size must be at least 4")
    if not 0.0 <= contrast <= 1.0:
        raise ValueError("contrast must lie in [0, 1]")
    names = shape_classes(num_classes)
    if palette < 0 or palette == 1:
        raise ValueError(f"palette={palette}: 0 (free colours) or at least 2 colours")

    n, s = num_images, image_size
    g = torch.Generator().manual_seed(seed)
    # All random draws happen up front, in a fixed order, so the output does
    # not depend on how rendering is chunked.
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
    angle = (torch.rand(n, generator=g) * 2.0 - 1.0) * MAX_ROTATION
    lo, hi = SIZE_RANGE
    scale = lo + (hi - lo) * torch.rand(n, generator=g)  # radius in half-side units
    shift = (torch.rand(n, 2, generator=g) * 2.0 - 1.0) * MAX_SHIFT

    if palette:
        bg_rgb, obj_rgb = _palette_colours(n, palette, contrast, g)
    else:
        bg_luma, obj_luma = _sample_lumas(n, contrast, g)
        bg_rgb = _colour_with_luma(bg_luma, torch.randn(n, 3, generator=g), torch.rand(n, generator=g))
        obj_rgb = _colour_with_luma(obj_luma, torch.randn(n, 3, generator=g), torch.rand(n, generator=g))

    tex_weights = torch.rand(n, 3, generator=g)
    tex_weights = tex_weights / tex_weights.sum(dim=1, keepdim=True)
    tex_colour = torch.rand(n, 3, generator=g) * 2.0 - 1.0
    tex_colour = tex_colour / tex_colour.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    grad_angle = torch.rand(n, generator=g) * 2.0 * math.pi
    stripe_angle = torch.rand(n, generator=g) * math.pi
    stripe_freq = 1.5 + 3.0 * torch.rand(n, generator=g)  # cycles per image side
    stripe_phase = torch.rand(n, generator=g) * 2.0 * math.pi
    coarse_noise = torch.rand(n, 1, 4, 4, generator=g) * 2.0 - 1.0
    shade_angle = torch.rand(n, generator=g) * 2.0 * math.pi
    pixel_noise = torch.randn(n, 3, s, s, generator=g) * PIXEL_NOISE_STD

    # --- coverage maps (anti-aliased), rendered per class in chunks ---------
    ss = s * SUPERSAMPLE
    gx, gy = _unit_grid(ss)
    coverage = torch.empty(n, 1, s, s)
    for cls in range(len(names)):
        mask_fn = _mask_of(cls)
        idx_all = (labels == cls).nonzero().flatten()
        for start in range(0, idx_all.numel(), _CHUNK):
            idx = idx_all[start : start + _CHUNK]
            cos = torch.cos(angle[idx]).view(-1, 1, 1)
            sin = torch.sin(angle[idx]).view(-1, 1, 1)
            inv = (1.0 / scale[idx]).view(-1, 1, 1)
            x = gx - shift[idx, 0].view(-1, 1, 1)
            y = gy - shift[idx, 1].view(-1, 1, 1)
            u = (cos * x + sin * y) * inv
            v = (cos * y - sin * x) * inv
            hit = mask_fn(u, v).to(torch.float32).unsqueeze(1)
            coverage[idx] = F.avg_pool2d(hit, SUPERSAMPLE)

    # --- background texture and object shading at output resolution --------
    x, y = _unit_grid(s)  # [1,1,S], [1,S,1]

    def _directional(theta: torch.Tensor) -> torch.Tensor:
        return torch.cos(theta).view(-1, 1, 1) * x + torch.sin(theta).view(-1, 1, 1) * y

    gradient = _directional(grad_angle) / math.sqrt(2.0)  # in [-1, 1]
    stripes = torch.sin(math.pi * stripe_freq.view(-1, 1, 1) * _directional(stripe_angle) + stripe_phase.view(-1, 1, 1))
    noise = F.interpolate(coarse_noise, size=(s, s), mode="bilinear", align_corners=False).squeeze(1)
    pattern = (
        tex_weights[:, 0, None, None] * gradient
        + tex_weights[:, 1, None, None] * stripes
        + tex_weights[:, 2, None, None] * noise
    )  # [N,S,S], within [-1, 1]
    background = bg_rgb[:, :, None, None] + TEXTURE_AMPLITUDE * tex_colour[:, :, None, None] * pattern[:, None]
    shading = SHADING_AMPLITUDE * _directional(shade_angle) / math.sqrt(2.0)
    foreground = obj_rgb[:, :, None, None] + shading[:, None]

    image = background + coverage * (foreground - background) + pixel_noise
    images = (image.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return images, labels.to(torch.int64)
