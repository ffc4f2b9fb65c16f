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
