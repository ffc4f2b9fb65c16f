"""SimSiam (Chen & He 2021): a siamese network whose only collapse guard is the stop-gradient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import negative_cosine
from ssl_bench.models.heads import MLP


def build_predictor(mode: str, dim: int, head: Mapping[str, Any]) -> nn.Module:
    """``mlp`` (trained), ``none`` (identity) or ``frozen_random`` (random init, never trained)."""
    if mode == "none":
        return nn.Identity()
    predictor = MLP(dim, **{**head, "out_dim": dim})
    if mode == "frozen_random":
        predictor.requires_grad_(False)
    elif mode != "mlp":
        raise ValueError(f"method.predictor={mode!r}; allowed: mlp, none, frozen_random")
    return predictor


class SimSiam(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)
        self.predictor = build_predictor(self.mcfg.predictor, self.projector.out_dim, self.mcfg.predictor_head)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        # The projector ends in BN, which keeps each dimension's variance at 1 even when the
        # network collapses (z becomes rank 1); the collapse shows at the predictor output.
        return self.predictor(self.projector(features))

    def param_groups(self) -> list[dict[str, Any]]:
        predictor = [(n, p) for n, p in self.named_parameters() if n.startswith("predictor.")]
        rest = [(n, p) for n, p in self.named_parameters() if not n.startswith(("predictor.", "probe."))]
        return [{"named": rest}, {"named": predictor, "fixed_lr": bool(self.mcfg.predictor_fixed_lr)}]

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        x1, x2 = views[:2]
        f1, f2 = self.backbone(x1), self.backbone(x2)
        z1, z2 = self.projector(f1), self.projector(f2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        if self.mcfg.stop_grad:
            z1, z2 = z1.detach(), z2.detach()
        if self.mcfg.symmetric:
            loss = 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)
        else:
            loss = negative_cosine(p1, z2)
        return StepOutput(loss, f1, p1)
