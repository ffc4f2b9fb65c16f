"""Backbone export: the pretrained backbone as files that load without ssl-bench.

``backbone.pt`` is a plain ``state_dict`` (parameter and buffer tensors only, on the CPU: it loads
with ``torch.load(..., weights_only=True)``). ``backbone.json`` says how to rebuild the network it
belongs to and how to feed it:

* a timm backbone: ``timm.create_model(name, num_classes=0, **model_kwargs)``, and for
  ``stem=small`` ``conv1`` replaced by a 3x3 conv and ``maxpool`` by ``nn.Identity()`` first;
* the local ``convnet``: an ``nn.Sequential`` of conv3x3-BN-ReLU blocks, written out in five lines
  of plain torch (its parameter names are the ``nn.Sequential`` indices, so they match).

``how_to_load`` is a snippet to paste, with the values of this run filled in; ``preprocess`` is the
input transform (images scaled to [0, 1], then normalised per channel with ``mean`` / ``std``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

BACKBONE_FILE = "backbone.pt"
BACKBONE_META = "backbone.json"
FORMAT_VERSION = 1
LOAD_LINE = "model.load_state_dict(torch.load('backbone.pt', map_location='cpu', weights_only=True)); model.eval()"


def checkpoint_stamp(path: str | Path) -> dict[str, Any]:
    """What identifies one version of a checkpoint file: absolute path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _kwargs_src(kwargs: dict[str, Any]) -> str:
    return "".join(f", {k}={v!r}" for k, v in kwargs.items())


def _timm_recipe(name: str, kwargs: dict[str, Any], backbone: nn.Module, stem: str, stride: int) -> list[str]:
    lines = ["import timm, torch", f"model = timm.create_model({name!r}, num_classes=0{_kwargs_src(kwargs)})"]
    if stem == "small":
        conv1 = backbone.conv1
        lines.append(
            f"model.conv1 = torch.nn.Conv2d({conv1.in_channels}, {conv1.out_channels}, 3, {stride}, 1, "
            "bias=False); model.maxpool = torch.nn.Identity()"
        )
    lines.append(LOAD_LINE)
    return lines


def _convnet_recipe(backbone: nn.Module) -> list[str]:
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    channels = [convs[0].in_channels] + [c.out_channels for c in convs]
    return [
        "import torch; from torch import nn",
        f"w = {channels}   # input channels, then one width per block",
        "block = lambda a, b: [nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]   # stride 2",
        "model = nn.Sequential(*sum((block(a, b) for a, b in zip(w, w[1:])), []), "
        "nn.AdaptiveAvgPool2d(1), nn.Flatten())",
        LOAD_LINE,
    ]


def backbone_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies of the backbone's parameters and persistent buffers (names as
    in the uncompiled module)."""
    return {
        k.replace("_orig_mod.", ""): v.detach().to("cpu", copy=True).contiguous()
        for k, v in backbone.state_dict().items()
    }


def export_backbone(model: Any, run_dir: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Write ``backbone.pt`` and ``backbone.json`` for an image method's backbone into ``run_dir``;
    returns the path of ``backbone.pt``. Overwrites an earlier export.

    ``model``: an image ``SSLMethod`` (it has ``.backbone`` and the run config ``.cfg``); a masked
    LM has no backbone and exports through ``hf_export/`` instead. ``checkpoint``: the checkpoint the
    weights came from, recorded in ``backbone.json`` (``null`` when exported from a live model).
    Call it on one process only (rank 0 under DDP).
    """
    backbone, cfg = getattr(model, "backbone", None), getattr(model, "cfg", None)
    if not isinstance(backbone, nn.Module) or cfg is None:
        raise TypeError(f"export_backbone needs an image method with .backbone and .cfg, got {type(model).__name__}")
    bcfg = OmegaConf.to_container(cfg.backbone, resolve=True)
    data = cfg.data
    name, kwargs = str(bcfg["name"]), dict(bcfg.get("model_kwargs") or {})
    stem, stride = str(bcfg.get("stem", "timm")), int(bcfg.get("stem_stride", 1))
    if name == "convnet":
        framework, recipe = "torch", _convnet_recipe(backbone)
    elif type(backbone).__module__.startswith("timm."):
        framework, recipe = "timm", _timm_recipe(name, kwargs, backbone, stem, stride)
    else:
        raise ValueError(f"no export recipe for backbone.name={name!r} ({type(backbone).__name__})")
    mean, std = [float(m) for m in data.mean], [float(s) for s in data.std]
    meta = {
        "format": FORMAT_VERSION,
        "file": BACKBONE_FILE,
        "framework": framework,
        "name": name,
        "model_kwargs": kwargs,
        "stem": stem,
        "stem_stride": stride,
        "num_features": int(backbone.num_features),
        "image_size": int(data.image_size),
        "mean": mean,
        "std": std,
        "method": str(cfg.method.name),
        "checkpoint": None if checkpoint is None else checkpoint_stamp(checkpoint),
        "how_to_load": recipe,
        "preprocess": "features = model((images.float() / 255 - torch.tensor(mean).view(1, -1, 1, 1)) "
        "/ torch.tensor(std).view(1, -1, 1, 1))   # images: uint8 [N, C, H, W]",
    }
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / BACKBONE_FILE
    tmp = out.with_suffix(".pt.tmp")
    torch.save(backbone_state_dict(backbone), tmp)
    os.replace(tmp, out)
    (run_dir / BACKBONE_META).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def export_is_current(run_dir: str | Path, checkpoint: str | Path) -> bool:
    """True when ``run_dir`` holds an export that needs no refresh for ``checkpoint``: one exported
    from that same checkpoint file, or from the live model at the end of pretraining."""
    meta_path = Path(run_dir) / BACKBONE_META
    if not meta_path.is_file() or not (Path(run_dir) / BACKBONE_FILE).is_file():
        return False
    try:
        stamp = json.loads(meta_path.read_text()).get("checkpoint")
    except (OSError, ValueError):
        return False
    return stamp is None or stamp == checkpoint_stamp(checkpoint)
