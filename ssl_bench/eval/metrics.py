"""Representation-health metrics: output std (collapse) and RankMe effective rank."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def normalized_std(z: torch.Tensor) -> float:
    """SimSiam's collapse monitor: mean over dimensions of the std of l2-normalised outputs.

    About ``1/sqrt(d)`` for healthy outputs spread over the sphere; 0 when every input maps to
    the same point (Chen & He 2021, Fig. 2 middle).
    """
    return F.normalize(z.float(), dim=1).std(dim=0).mean().item()


@torch.no_grad()
def normalized_std_ratio(z: torch.Tensor) -> float:
    """``normalized_std(z) * sqrt(d)``: 1 for healthy outputs, 0 for collapsed ones (dimension free)."""
    return normalized_std(z) * math.sqrt(z.shape[1])


@torch.no_grad()
def rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023): exp of the entropy of the normalised singular values."""
    s = torch.linalg.svdvals(z.float())
    p = s / s.sum() + eps
    return math.exp(-(p * p.log()).sum().item())
