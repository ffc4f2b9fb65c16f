"""BYOL (Grill et al. 2020): online network + predictor regress an EMA target network."""

from __future__ import annotations

import torch

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import byol_loss
from ssl_bench.methods.simsiam import build_predictor
from ssl_bench.models.heads import MLP
from ssl_bench.models.momentum import MomentumTargets, make_target


class BYOL(MomentumTargets, SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)
        self.predictor = build_predictor(self.mcfg.predictor, self.projector.out_dim, self.mcfg.predictor_head)
        self.target_backbone = make_target(self.backbone)
        self.target_projector = make_target(self.projector)
        self.tau = self.mcfg.tau_base

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(features))

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        x1, x2 = views[:2]
        f1 = self.backbone(x1)
        z1 = self.projector(f1)
        with torch.no_grad():
            t2 = self.target_projector(self.target_backbone(x2))
        p1 = self.predictor(z1)
        loss = byol_loss(p1, t2)
        if self.mcfg.symmetric:  # the paper's symmetrised loss: L + L~
            p2 = self.predictor(self.projector(self.backbone(x2)))
            with torch.no_grad():
                t1 = self.target_projector(self.target_backbone(x1))
            loss = loss + byol_loss(p2, t1)
        return StepOutput(loss, f1, p1)

    def momentum_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]
