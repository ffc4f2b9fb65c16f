"""Backbones: any timm model by name as a pooled feature extractor, plus a small-image stem."""

from __future__ import annotations

from typing import Any

import timm
from torch import nn


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
    if name not in timm.list_models() and not timm.is_model(name):
        raise ValueError(f"backbone.name={name!r} is not a timm model (see timm.list_models())")
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
