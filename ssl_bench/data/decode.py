"""Decoding only what the crop needs: random-resized-crop views straight from an image file.

``random_crops`` draws each view's crop first (torchvision's ``RandomResizedCrop.get_params``, so the
crop distribution is torchvision's: area fraction uniform in the view's ``(crop_min_scale,
crop_max_scale)``, log-uniform aspect ratio in (3/4, 4/3), ten tries, then a centre crop), then decodes
the JPEG at the smallest DCT scale (1/2, 1/4, 1/8: Pillow's ``Image.draft``, i.e. libjpeg-turbo's scaled
decoding) that still leaves every crop at least ``size`` pixels on each side, and resizes each crop to
``size`` x ``size`` (Pillow's antialiased bilinear ``resize`` with a ``box``: crop and resize in one pass).
The file is decoded once for all of its views. Flip, colour, blur and solarize then run batched on the
training device (``BatchAugment`` on pre-cropped views).

``decode_views`` is the GPU variant (``data.decode=device``): loader workers only read the bytes and the
image size from the header (``read_for_device``) and draw the crops; the batch is decoded by
``torchvision.io.decode_jpeg`` on the device (nvJPEG, batched), and each image's views are cut and resized
there by one ``torchvision.ops.roi_align`` call (adaptive sampling: an area average when shrinking).

Why by hand: torchvision's and Pillow's transforms decode the whole image before cropping; no well-kept
library draws the crop first and decodes at the scale it allows (NVIDIA DALI does, as a vendor install).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

RATIO = (3 / 4, 4 / 3)


def crop_params(
    height: int, width: int, scale: Sequence[float], ratio: Sequence[float] = RATIO
) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of a random resized crop of a ``height`` x ``width`` image:
    torchvision's own sampler (``RandomResizedCrop.get_params``, torch's global generator)."""
    from torchvision.transforms import RandomResizedCrop

    shape_only = torch.empty(()).expand(1, height, width)  # get_params reads the size only
    return RandomResizedCrop.get_params(shape_only, list(scale), list(ratio))


def draft_request(width: int, height: int, boxes: Sequence[tuple[int, int, int, int]], size: int) -> tuple[int, int]:
    """The image size to ask ``Image.draft`` for: Pillow then picks the largest DCT scale 1/s with
    ``s <= width // request``, which keeps every crop at least ``size`` pixels wide and high."""
    min_h = min(b[2] for b in boxes)
    min_w = min(b[3] for b in boxes)
    return max(1, math.ceil(width * size / min_w)), max(1, math.ceil(height * size / min_h))


def random_crops(
    src: str | Path | BinaryIO,
    scales: Sequence[Sequence[float]],
    size: int,
    ratio: Sequence[float] = RATIO,
    draft: bool = True,
) -> torch.Tensor:
    """One image -> uint8 ``[len(scales), 3, size, size]``: one random resized crop per view
    (``scales[i]`` = view i's area range), decoded at the reduced scale the crops allow."""
    return crops(src, lambda h, w: [crop_params(h, w, s, ratio) for s in scales], size, draft)


def crops(src: str | Path | BinaryIO, boxes_for: Any, size: int, draft: bool = True) -> torch.Tensor:
    """The crops ``boxes_for(height, width)`` (a list of (top, left, h, w)) of one image, each resized to
    ``size``, decoding a JPEG at the smallest DCT scale that keeps every crop >= ``size`` per side
    (``draft=False``: always at full size)."""
    from PIL import Image

    with Image.open(src) as im:
        width, height = im.size
        boxes = boxes_for(height, width)
        if draft and im.format == "JPEG":
            im.draft("RGB", draft_request(width, height, boxes, size))
        rgb = im.convert("RGB")
    fx, fy = rgb.width / width, rgb.height / height
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (top, left, h, w) in enumerate(boxes):
        box = (left * fx, top * fy, (left + w) * fx, (top + h) * fy)
        out[k] = np.asarray(rgb.resize((size, size), Image.BILINEAR, box=box))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def full_image(src: str | Path | BinaryIO) -> torch.Tensor:
    """The whole image as uint8 ``[3, H, W]`` (the per-image torchvision path crops it itself)."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    with Image.open(src) as im:
        return TF.pil_to_tensor(im.convert("RGB"))


# --- decoding on the training device (data.decode=device) ------------------------------------------------
def read_for_device(
    src: str | Path | BinaryIO | bytes, scales: Sequence[Sequence[float]], ratio: Sequence[float] = RATIO
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a loader worker does for ``data.decode=device``: the file's bytes (uint8 1-d) and one crop box
    per view (int64 ``[V, 4]``: top, left, height, width), drawn from the size in the header."""
    from PIL import Image

    if isinstance(src, (str, Path)):
        data = Path(src).read_bytes()
    elif isinstance(src, bytes):
        data = src
    else:
        data = src.read()
    with Image.open(io.BytesIO(data)) as im:  # parses the header only
        width, height = im.size
    boxes = torch.tensor([crop_params(height, width, s, ratio) for s in scales], dtype=torch.int64)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8), boxes


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    if data.numel() > 2 and int(data[0]) == 0xFF and int(data[1]) == 0xD8:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    return decode_image(data, mode=ImageReadMode.RGB).to(device)  # PNG and others: on the CPU


def decode_batch(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | str]:
    """Decode encoded images on ``device`` (JPEGs batched through ``decode_jpeg``; others on the CPU,
    then moved). An entry that cannot be decoded comes back as its error message."""
    from torchvision.io import ImageReadMode, decode_jpeg

    jpeg = [k for k, d in enumerate(data) if d.numel() > 2 and int(d[0]) == 0xFF and int(d[1]) == 0xD8]
    out: list[torch.Tensor | str] = [""] * len(data)
    if jpeg:
        try:
            for k, img in zip(jpeg, decode_jpeg([data[k] for k in jpeg], mode=ImageReadMode.RGB, device=device)):
                out[k] = img
        except RuntimeError:  # one bad file fails the batched call: find it image by image
            jpeg = []
    for k, d in enumerate(data):
        if isinstance(out[k], torch.Tensor):
            continue
        try:
            out[k] = _decode_one(d, device)
        except RuntimeError as err:
            out[k] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'cannot decode'}"
    return out


def crop_resize(img: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[3, H, W]`` + boxes ``[V, 4]`` (top, left, height, width) -> uint8 ``[V, 3, size, size]``,
    on the image's device: ``roi_align`` with adaptive sampling (bins averaged when shrinking)."""
    from torchvision.ops import roi_align

    b = boxes.to(img.device, torch.float32)
    rois = torch.stack([b[:, 1], b[:, 0], b[:, 1] + b[:, 3], b[:, 0] + b[:, 2]], 1)  # x1, y1, x2, y2
    views = roi_align(
        img.unsqueeze(0).float(), [rois], output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True
    )
    return views.round_().clamp_(0, 255).to(torch.uint8)


def decode_views(
    data: list[torch.Tensor], boxes: torch.Tensor, size: int, device: str | torch.device
) -> tuple[torch.Tensor, list[str]]:
    """A batch of encoded images and their crop boxes ``[B, V, 4]`` -> uint8 views ``[B, V, 3, size, size]``
    on ``device``, and one error message per image ("" = decoded; a failed one's views are zeros)."""
    device = torch.device(device)
    imgs = decode_batch(data, device)
    out = torch.zeros(len(data), boxes.shape[1], 3, size, size, dtype=torch.uint8, device=device)
    errors = []
    for k, img in enumerate(imgs):
        if isinstance(img, str):
            errors.append(img)
            continue
        out[k] = crop_resize(img, boxes[k], size)
        errors.append("")
    return out, errors


def require_cuda() -> None:
    """``data.decode=device`` decodes on a CUDA GPU; say so in one line when there is none."""
    from ssl_bench.data.images import DataUnavailable

    if not torch.cuda.is_available():
        raise DataUnavailable(
            "data.decode=device decodes JPEGs on a CUDA GPU (torchvision.io.decode_jpeg) and no "
            "GPU is visible (torch.cuda.is_available() is False); use data.decode=cpu"
        )
