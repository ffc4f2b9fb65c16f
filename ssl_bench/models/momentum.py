"""Momentum (EMA) target networks: the update rule and BYOL's tau schedule."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_target(online: nn.Module) -> nn.Module:
    """A frozen deep copy of ``online`` that only ``update_momentum`` changes."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- tau * target + (1 - tau) * online, for every parameter (one fused op)."""
    t_params = [p for p in target.parameters()]
    o_params = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(t_params, o_params, 1.0 - tau)


def tau_at(step: int, total_steps: int, tau_base: float, schedule: str = "cosine") -> float:
    """BYOL's target decay: tau_k = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2.

    Starts at ``tau_base`` (k = 0) and reaches 1 at k = K. ``constant`` keeps ``tau_base``.
    """
    if schedule == "constant":
        return tau_base
    if schedule != "cosine":
        raise ValueError(f"unknown tau schedule {schedule!r}; allowed: cosine, constant")
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * k / max(total_steps, 1)) + 1.0) / 2.0


class MomentumTargets:
    """Lightning hooks for a method whose targets follow its online networks by EMA (BYOL, MoCo v3, DINO).

    The method lists its ``(online, target)`` pairs in ``momentum_pairs`` and has ``method.tau_base`` and
    ``method.tau_schedule``; the targets move once per optimizer step (under gradient accumulation Lightning
    also steps after an epoch's last, partial accumulation, so optimizer steps are compared, not batch
    indices), and ``train/tau`` is logged. Mix in before ``SSLMethod``."""

    tau: float
    _ema_step: int = 0

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        raise NotImplementedError

    def on_train_start(self) -> None:
        self._ema_step = self.global_step  # optimizer steps the targets have followed (a resume restores it)

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        pairs = self.momentum_pairs()
        if not pairs or self.global_step == self._ema_step:
            return  # no target, or no optimizer step happened
        self._ema_step = self.global_step
        total = int(self.trainer.estimated_stepping_batches)
        self.tau = tau_at(self.global_step, total, self.mcfg.tau_base, self.mcfg.tau_schedule)
        for online, target in pairs:
            update_momentum(online, target, self.tau)
        self.log("train/tau", self.tau, on_step=True, on_epoch=False)
