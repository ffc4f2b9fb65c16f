"""Backbones: any timm model by name as a pooled feature extractor, plus a small-image stem,
and ``convnet``, a plain CNN small enough to pretrain on two CPU cores in a minute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import timm
import torch
from torch import nn


class ConvNet(nn.Sequential):
    """conv3x3(stride 2)-BN-ReLU blocks, then global average pooling; ``num_features`` wide.

    The CPU default: at 32 px, 4 blocks of widths 32-64-128-256 run fwd+bwd about 6x faster
    than a one-block-per-stage ResNet of the same widths on 2 cores.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), in_chans: int = 3):
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_chans, *widths[:-1]], widths):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        super().__init__(*layers)
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


LOCAL_MODELS = {"convnet": ConvNet}


def build_backbone(
    name: str,
    pretrained: bool = False,
    stem: str = "timm",
    stem_stride: int = 1,
    model_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """``timm.create_model(name, num_classes=0)``: returns pooled features, ``.num_features`` wide.

    ``stem="small"`` swaps a ResNet-style stem (``conv1`` + ``maxpool``) for one 3x3 conv of
    stride ``stem_stride`` and no max-pool, as the CIFAR versions of the papers do (stride 1).
    ``model_kwargs`` go to the timm constructor (e.g. ``layers`` / ``channels`` for a small ResNet).
    """
    if name in LOCAL_MODELS:
        if stem != "timm" or pretrained:
            raise ValueError(f"backbone.name={name!r} has no stem options and no pretrained weights")
        return LOCAL_MODELS[name](**dict(model_kwargs or {}))
    if not timm.is_model(name):
        raise ValueError(
            f"backbone.name={name!r} is neither a timm model (see timm.list_models()) nor one of {sorted(LOCAL_MODELS)}"
        )
    model = timm.create_model(name, pretrained=pretrained, num_classes=0, **dict(model_kwargs or {}))
    if stem == "small":
        conv1 = getattr(model, "conv1", None)
        if not isinstance(conv1, nn.Conv2d) or not hasattr(model, "maxpool"):
            raise ValueError(
                f"backbone.stem=small needs a ResNet-style model with conv1 and maxpool; {name!r} has none"
            )
        model.conv1 = nn.Conv2d(conv1.in_channels, conv1.out_channels, 3, stem_stride, 1, bias=False)
        model.maxpool = nn.Identity()
    elif stem != "timm":
        raise ValueError(f"backbone.stem={stem!r}; allowed: timm, small")
    return model
