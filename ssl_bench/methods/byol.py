"""BYOL (Grill et al. 2020): online network + predictor regress an EMA target network."""

from __future__ import annotations

import torch

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import byol_loss
from ssl_bench.methods.multicrop import combine, target_pairs
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
        """The paper's symmetrised loss L + L~ (``symmetric``); small views (multi-crop) predict each
        global view's target as well (``multicrop.py``)."""
        (x1, x2, *_), local = self.split_views(views)
        symmetric = self.mcfg.symmetric
        f1 = self.backbone(x1)
        p = {0: self.predictor(self.projector(f1))}
        t = {}
        with torch.no_grad():
            t[1] = self.target_projector(self.target_backbone(x2))
        if symmetric:
            p[1] = self.predictor(self.projector(self.backbone(x2)))
            with torch.no_grad():
                t[0] = self.target_projector(self.target_backbone(x1))
        p.update(enumerate(self.local_embeddings(local), start=2))
        n_base = 2 if symmetric else 1
        loss = combine(lambda v, k: byol_loss(p[v], t[k]), target_pairs(len(local), symmetric), n_base, n_base)
        return StepOutput(loss, f1, p[0])

    def momentum_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]
