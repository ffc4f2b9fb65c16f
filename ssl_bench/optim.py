"""Optimizers (SGD, LARS, AdamW), learning-rate scaling and the warmup + cosine / linear schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from timm.optim import Lars
from torch import nn


def scaled_lr(
    base_lr: float,
    batch_size: int,
    world_size: int = 1,
    accumulate: int = 1,
    rule: str = "linear",
    reference_batch: int = 256,
) -> float:
    """lr = base_lr * f(global_batch / reference), global batch = batch x devices x nodes x accumulation.

    ``rule``: ``linear`` (Goyal et al. 2017; SimCLR / BYOL / SimSiam), ``sqrt`` (SimCLR's
    alternative for LARS at small batches), ``none``.
    """
    ratio = batch_size * world_size * accumulate / reference_batch
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    if rule == "none":
        return base_lr
    raise ValueError(f"optim.lr_scaling={rule!r}; allowed: linear, sqrt, none")


def split_decay(
    named_params: Iterable[tuple[str, nn.Parameter]], exclude_bias_norm: bool
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, excluded): biases and norm weights (every 1-d parameter) are excluded when asked."""
    decay, no_decay = [], []
    for _, p in named_params:
        if not p.requires_grad:
            continue
        (no_decay if exclude_bias_norm and p.ndim <= 1 else decay).append(p)
    return decay, no_decay


def build_optimizer(groups: list[dict[str, Any]], cfg: Any, lr: float) -> torch.optim.Optimizer:
    """``groups``: dicts with ``params`` and optional ``lr`` (absolute), ``weight_decay``,
    ``fixed_lr``. LARS: a group with weight decay 0 is neither adapted nor decayed (biases /
    norms when ``exclude_bias_norm``), as in SimCLR and BYOL."""
    groups = [g for g in groups if len(g["params"]) > 0]
    for g in groups:
        g.setdefault("lr", lr)
        g.setdefault("weight_decay", cfg.weight_decay)
        g.setdefault("fixed_lr", False)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "lars":
        return Lars(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, trust_coeff=cfg.trust_coeff)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    raise ValueError(f"optim.name={cfg.name!r}; allowed: sgd, lars, adamw")


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.0, schedule: str = "cosine"
) -> float:
    """Multiplier of the peak lr at ``step``: linear warmup, then ``schedule``: ``cosine`` decay to
    ``min_ratio``, ``linear`` decay to ``min_ratio`` (BERT / RoBERTa), or ``constant``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return min_ratio + (1 - min_ratio) * (1 - progress)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    opt: torch.optim.Optimizer, cfg: Any, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LambdaLR; groups marked ``fixed_lr`` (e.g. SimSiam's predictor) keep their lr."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))

    def decayed(step: int) -> float:
        return warmup_cosine(step, total_steps, warmup, cfg.min_lr_ratio, cfg.scheduler)

    def fixed(step: int) -> float:
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, [fixed if g["fixed_lr"] else decayed for g in opt.param_groups])


def lightning_optimization(groups: list[dict[str, Any]], cfg: Any, batch_size: int, trainer: Any) -> dict[str, Any]:
    """What a LightningModule's ``configure_optimizers`` returns: the optimizer over ``groups``
    (the lr scaled by the global batch: batch x devices x nodes x accumulation) and the per-step
    warmup + decay schedule over the trainer's estimated optimizer steps."""
    lr = scaled_lr(
        cfg.base_lr,
        batch_size,
        trainer.world_size,
        trainer.accumulate_grad_batches,
        cfg.lr_scaling,
        cfg.reference_batch,
    )
    opt = build_optimizer(groups, cfg, lr)
    total = int(trainer.estimated_stepping_batches)
    steps_per_epoch = max(1, math.ceil(total / max(1, trainer.max_epochs)))
    return {
        "optimizer": opt,
        "lr_scheduler": {"scheduler": build_scheduler(opt, cfg, total, steps_per_epoch), "interval": "step"},
    }
