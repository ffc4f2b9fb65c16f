"""A checkpoint -> the method it was trained with, rebuilt from the config saved in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ssl_bench.errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded as an ssl-bench method (one line)."""

    kind = "error"


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], DictConfig]:
    """The checkpoint (tensors and plain containers only) and the pretraining config saved in it."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which, in one line
        raise CheckpointError(f"source: cannot read checkpoint {path}: {str(err).splitlines()[0]}") from None
    cfg = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if not isinstance(cfg, dict) or "method" not in cfg:
        raise CheckpointError(f"source: {path} is not an ssl-bench checkpoint (no config in its hyperparameters)")
    return ckpt, OmegaConf.create(cfg)


def build_image_method(ckpt: dict[str, Any], pcfg: DictConfig) -> Any:
    """The pretraining image method rebuilt from its config, weights loaded, frozen (eval mode, no grad)."""
    from ssl_bench.methods import REGISTRY, image_methods

    name = pcfg.method.name
    spec = REGISTRY.get(name)
    if spec is None or spec.modality != "image":
        kind = f"a {spec.modality} run (method={name})" if spec is not None else f"method={name!r}"
        raise CheckpointError(
            f"source is {kind}: ssl-bench-eval evaluates image methods "
            f"({', '.join(image_methods())}); "
            "masked LMs report held-out perplexity in their own record"
        )
    pcfg = pcfg.copy()
    pcfg.backbone.pretrained = False  # the checkpoint has the weights: never download any
    model = spec.load()(pcfg, int(ckpt["hyper_parameters"]["num_classes"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval().requires_grad_(False)
    return model
