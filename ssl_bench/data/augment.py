"""Batched augmentation with per-sample random parameters, run on the training device.

Every op draws its parameters per image, as torchvision's per-image transforms do, but the
whole batch is transformed by a handful of tensor ops, so augmentation costs no per-image Python
and runs wherever the batch is (CPU or GPU). Ops, in SimCLR's order: random resized crop (+
horizontal flip, folded into the same resampling), colour jitter (brightness, contrast,
saturation, hue; applied with probability ``color_p``, in an order drawn once per batch),
grayscale, gaussian blur, solarize. Each parameter of ``conf/augment`` is a number or a list
with one number per view (BYOL's asymmetric views).

Colour jitter magnitudes are ``base * color_strength``: with SimCLR's bases (0.8, 0.8, 0.8,
0.2) strength ``s`` gives brightness/contrast/saturation 0.8 s and hue 0.2 s (SimCLR appendix A).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssl_bench.distributed import world

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ViewAug:
    """Parameters of one view's pipeline (already resolved from scalars / per-view lists)."""

    crop_min_scale: float = 0.2
    crop_max_scale: float = 1.0
    flip_p: float = 0.5
    color_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma_min: float = 0.1
    blur_sigma_max: float = 2.0
    solarize_p: float = 0.0

    @property
    def has_color(self) -> bool:
        return self.color_p > 0 and max(self.brightness, self.contrast, self.saturation, self.hue) > 0


def views_from_config(cfg: Mapping[str, Any], image_size: int | None = None) -> list[ViewAug]:
    """Resolve an ``augment`` config (scalars or per-view lists) into one ``ViewAug`` per view.

    Blur is dropped for images smaller than ``blur_min_size`` pixels (the papers use no blur on
    32 px CIFAR, and blur on 96 px STL-10 and ImageNet)."""
    n = int(cfg["num_views"])
    no_blur = image_size is not None and image_size < int(cfg.get("blur_min_size", 0) or 0)

    def at(key: str, i: int) -> float:
        value = cfg[key]
        return float(value[i] if isinstance(value, Sequence) and not isinstance(value, str) else value)

    views = []
    for i in range(n):
        s = at("color_strength", i)
        views.append(
            ViewAug(
                **{
                    f.name: at(f.name, i)
                    for f in fields(ViewAug)
                    if f.name not in ("brightness", "contrast", "saturation", "hue")
                },
                brightness=at("brightness", i) * s,
                contrast=at("contrast", i) * s,
                saturation=at("saturation", i) * s,
                hue=min(at("hue", i) * s, 0.5),
            )
        )
    if no_blur:
        views = [replace(v, blur_p=0.0) for v in views]
    return views


def local_views_from_config(cfg: Mapping[str, Any], image_size: int) -> tuple[list[ViewAug], int]:
    """Multi-crop's small views (``augment.local_crops``): view 0's pipeline with the local crop scales
    (``local_min_scale``..``local_max_scale``), at ``local_size`` pixels (0: DINO's 96/224 of the image)."""
    n = int(cfg.get("local_crops", 0) or 0)
    if n == 0:
        return [], 0
    size = int(cfg.get("local_size", 0) or 0) or local_size(image_size)
    first = views_from_config(cfg, image_size)[0]
    small = replace(first, crop_min_scale=float(cfg["local_min_scale"]), crop_max_scale=float(cfg["local_max_scale"]))
    return [small] * n, size


def local_size(image_size: int) -> int:
    """DINO's local crop side for an image side: 96 px at 224 (at least 8)."""
    return max(8, round(image_size * 96 / 224))


def _uniform(lo: float, hi: float, n: int, device: torch.device) -> torch.Tensor:
    """``n`` uniform draws in [lo, hi) for this rank's images. Under torch.distributed every rank draws
    for the whole global batch (its RNG is in the same state on every rank) and keeps the draws of its
    own images (the distributed sampler interleaves them: rank r holds positions r, r + world, ...),
    so each image of global batch k gets the same parameters whatever the number of ranks."""
    rank, size = world()
    u = torch.empty(n * size, device=device).uniform_(lo, hi)
    return u[rank::size] if size > 1 else u


def _rand(n: int, device: torch.device) -> torch.Tensor:
    return _uniform(0.0, 1.0, n, device)


def _bernoulli(p: float, n: int, device: torch.device) -> torch.Tensor:
    return _rand(n, device) < p


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def resized_crop_flip(
    x: torch.Tensor,
    out_size: int,
    min_scale: float,
    max_scale: float,
    flip_p: float,
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Random resized crop (area fraction in [min, max], log-uniform aspect ratio) + h-flip."""
    n, device = x.shape[0], x.device
    area = _uniform(min_scale, max_scale, n, device)
    log_r = _uniform(math.log(ratio[0]), math.log(ratio[1]), n, device)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)  # fractions of the image side
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (_rand(n, device) * (1 - w) + w / 2) * 2 - 1
    cy = (_rand(n, device) * (1 - h) + h / 2) * 2 - 1
    sign = torch.where(_bernoulli(flip_p, n, device), -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [n, x.shape[1], out_size, out_size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = delta / maxc.clamp(min=1e-8)
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r = torch.stack([v, q, p, p, t, v], 1).gather(1, i.unsqueeze(1))
    g = torch.stack([t, v, v, q, p, p], 1).gather(1, i.unsqueeze(1))
    b = torch.stack([p, p, t, v, v, q], 1).gather(1, i.unsqueeze(1))
    return torch.cat([r, g, b], 1)


def color_jitter(
    x: torch.Tensor, p: float, brightness: float, contrast: float, saturation: float, hue: float
) -> torch.Tensor:
    """torchvision-style colour jitter with per-image factors; images not drawn (1 - p) pass unchanged."""
    n, device = x.shape[0], x.device
    on = _bernoulli(p, n, device)

    def factor(m: float) -> torch.Tensor:
        f = _uniform(max(0.0, 1 - m), 1 + m, n, device)
        return torch.where(on, f, torch.ones_like(f)).view(n, 1, 1, 1)

    ops = []
    if brightness > 0:
        ops.append(lambda y, b=factor(brightness): (y * b).clamp(0, 1))
    if contrast > 0:
        ops.append(
            lambda y, c=factor(contrast): (
                (y - _gray(y).mean((2, 3), keepdim=True)) * c + _gray(y).mean((2, 3), keepdim=True)
            ).clamp(0, 1)
        )
    if saturation > 0:
        ops.append(lambda y, s=factor(saturation): ((y - _gray(y)) * s + _gray(y)).clamp(0, 1))
    if hue > 0:
        shift = torch.where(on, _uniform(-hue, hue, n, device), torch.zeros(n, device=device)).view(n, 1, 1)

        def hue_op(y: torch.Tensor) -> torch.Tensor:
            hsv = _rgb_to_hsv(y)
            hsv = torch.cat([((hsv[:, :1] + shift.unsqueeze(1)) % 1.0), hsv[:, 1:]], 1)
            return _hsv_to_rgb(hsv)

        ops.append(hue_op)
    for k in torch.randperm(len(ops)).tolist():
        x = ops[k](x)
    return x


def grayscale(x: torch.Tensor, p: float) -> torch.Tensor:
    on = _bernoulli(p, x.shape[0], x.device).view(-1, 1, 1, 1)
    return torch.where(on, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Separable gaussian blur, kernel ~10% of the image side (SimCLR), per-image sigma."""
    n, c, h, w = x.shape
    on = _bernoulli(p, n, x.device)
    sigma = _uniform(sigma_min, sigma_max, n, x.device)  # drawn either way: every rank draws alike
    if not bool(on.any()):
        return x
    k = blur_kernel(h)
    coords = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kern = torch.exp(-(coords.view(1, k) ** 2) / (2 * sigma.view(n, 1) ** 2))
    kern = kern / kern.sum(1, keepdim=True)
    delta = torch.zeros_like(kern)
    delta[:, k // 2] = 1.0
    kern = torch.where(on.view(n, 1), kern, delta).repeat_interleave(c, 0)  # [n*c, k]
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), kern.view(n * c, 1, 1, k), groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), kern.view(n * c, 1, k, 1), groups=n * c)
    return y.view(n, c, h, w)


def solarize(x: torch.Tensor, p: float, threshold: float = 0.5) -> torch.Tensor:
    on = _bernoulli(p, x.shape[0], x.device).view(-1, 1, 1, 1)
    return torch.where(on & (x >= threshold), 1.0 - x, x)


def flip(x: torch.Tensor, p: float) -> torch.Tensor:
    """Horizontal flip of each image with probability ``p`` (views the loader already cropped)."""
    on = _bernoulli(p, x.shape[0], x.device).view(-1, 1, 1, 1)
    return torch.where(on, x.flip(-1), x)


def apply_view(x: torch.Tensor, v: ViewAug, out_size: int, cropped: bool = False) -> torch.Tensor:
    """One view of a float batch in [0, 1]; returns a float batch in [0, 1]. ``cropped``: the loader
    already drew and applied the random resized crop (``data.storage=stream|shards``), so only the
    flip and the rest of the pipeline run here."""
    if cropped:
        x = flip(x, v.flip_p) if v.flip_p > 0 else x
    else:
        x = resized_crop_flip(x, out_size, v.crop_min_scale, v.crop_max_scale, v.flip_p)
    if v.has_color:
        x = color_jitter(x, v.color_p, v.brightness, v.contrast, v.saturation, v.hue)
    if v.grayscale_p > 0:
        x = grayscale(x, v.grayscale_p)
    if v.blur_p > 0:
        x = gaussian_blur(x, v.blur_p, v.blur_sigma_min, v.blur_sigma_max)
    if v.solarize_p > 0:
        x = solarize(x, v.solarize_p)
    return x


class Normalize(nn.Module):
    """uint8 or [0, 1] float images -> normalised float (the eval-time transform)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1), persistent=False)

    @staticmethod
    def to_float(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def forward(self, x: torch.Tensor, already_float: bool = False) -> torch.Tensor:
        x = x if already_float else self.to_float(x)
        return (x - self.mean) / self.std


class BatchAugment(nn.Module):
    """Turns a batch of images into ``len(views)`` normalised, independently augmented views.

    Input: uint8 images ``[B, C, H, W]`` (each view crops them here), or views already cropped by the
    loader, ``[B, V, C, size, size]`` (streamed data: the crop was drawn before decoding). ``local``:
    multi-crop's small views and their size, returned after the global ones (uint8 input only)."""

    def __init__(
        self,
        views: Sequence[ViewAug],
        out_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        local: tuple[Sequence[ViewAug], int] = ((), 0),
    ):
        super().__init__()
        self.views = list(views)
        self.out_size = out_size
        self.local_views, self.local_size = list(local[0]), local[1]
        self.normalize = Normalize(mean, std)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim == 5:
            if self.local_views:
                raise ValueError(
                    "augment.local_crops needs whole images; this loader cropped the views (data.storage=memory)"
                )
            if x.shape[1] != len(self.views):
                raise ValueError(
                    f"the loader cropped {x.shape[1]} views per image, the augmentation has "
                    f"{len(self.views)} (augment.num_views)"
                )
            return [
                self.normalize(
                    apply_view(Normalize.to_float(x[:, k]), v, self.out_size, cropped=True), already_float=True
                )
                for k, v in enumerate(self.views)
            ]
        x = Normalize.to_float(x)
        sized = [(v, self.out_size) for v in self.views] + [(v, self.local_size) for v in self.local_views]
        return [self.normalize(apply_view(x, v, size), already_float=True) for v, size in sized]


# --- the per-image path: torchvision transforms v2 --------------------------------------------------
def blur_kernel(size: int) -> int:
    """Gaussian blur kernel: about 10% of the image side, odd, at least 3 (SimCLR)."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def torchvision_view(v: ViewAug, out_size: int, mean: Sequence[float], std: Sequence[float]) -> Any:
    """The same view pipeline as ``apply_view``, as torchvision transforms v2 applied per image
    (uint8 ``[3, H, W]`` in, normalised float out); runs in DataLoader workers (``augment.backend=torchvision``)."""
    from torchvision.transforms import v2

    ops: list[Any] = [v2.RandomResizedCrop(out_size, scale=(v.crop_min_scale, v.crop_max_scale), antialias=True)]
    if v.flip_p > 0:
        ops.append(v2.RandomHorizontalFlip(v.flip_p))
    if v.has_color:
        ops.append(v2.RandomApply([v2.ColorJitter(v.brightness, v.contrast, v.saturation, v.hue)], p=v.color_p))
    if v.grayscale_p > 0:
        ops.append(v2.RandomGrayscale(v.grayscale_p))
    if v.blur_p > 0:
        ops.append(
            v2.RandomApply([v2.GaussianBlur(blur_kernel(out_size), (v.blur_sigma_min, v.blur_sigma_max))], p=v.blur_p)
        )
    if v.solarize_p > 0:
        ops.append(v2.RandomSolarize(threshold=128, p=v.solarize_p))  # uint8 images: 0.5 of the range
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)


class TorchvisionViews:
    """Picklable per-image transform: one image -> a list of normalised views."""

    def __init__(self, views: Sequence[ViewAug], out_size: int, mean: Sequence[float], std: Sequence[float]):
        self.pipelines = [torchvision_view(v, out_size, mean, std) for v in views]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [p(x) for p in self.pipelines]
