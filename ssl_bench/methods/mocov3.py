"""MoCo v3 (Chen, Xie & He 2021): a query encoder with a predictor contrasts a momentum key encoder.

The symmetrised InfoNCE of the paper's Algorithm 1, ``ctr(q1, k2) + ctr(q2, k1)``, each term scaled by
``2 * temperature`` as in the authors' code; the keys of every rank are the negatives (gathered without
gradient: the key encoder gets none). The key encoder follows the query encoder (backbone + projector)
by the EMA schedule BYOL uses (``method.tau_base``, ``method.tau_schedule``). ``momentum_encoder=false``
takes the keys from the query encoder itself, without gradient (the paper's momentum m = 0).
"""

from __future__ import annotations

import torch

from ssl_bench.distributed import gather, world
from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import info_nce
from ssl_bench.methods.multicrop import combine, target_pairs
from ssl_bench.methods.simsiam import build_predictor
from ssl_bench.models.heads import MLP
from ssl_bench.models.momentum import MomentumTargets, make_target


class MoCoV3(MomentumTargets, SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)
        self.predictor = build_predictor(self.mcfg.predictor, self.projector.out_dim, self.mcfg.predictor_head)
        if self.mcfg.momentum_encoder:
            self.target_backbone = make_target(self.backbone)
            self.target_projector = make_target(self.projector)
        self.tau = self.mcfg.tau_base

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(features))

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        """``ctr(q1, k2) + ctr(q2, k1)``; small views (multi-crop) are queries against each global
        view's keys as well (``multicrop.py``)."""
        (x1, x2, *_), local = self.split_views(views)
        f1, f2 = self.backbone(x1), self.backbone(x2)  # one forward per view, as the authors' code
        z1, z2 = self.projector(f1), self.projector(f2)
        q = {0: self.predictor(z1), 1: self.predictor(z2)}
        q.update(enumerate(self.local_embeddings(local), start=2))
        with torch.no_grad():
            if self.mcfg.momentum_encoder:
                k1 = self.target_projector(self.target_backbone(x1))
                k2 = self.target_projector(self.target_backbone(x2))
            else:  # m = 0: the key encoder is the query encoder of this step
                k1, k2 = z1.detach(), z2.detach()
        offset = 0
        if self.mcfg.gather_distributed and world()[1] > 1:
            k1, k2 = gather(k1), gather(k2)  # no gradient flows into keys
            offset = world()[0] * q[0].shape[0]
        k, t = {0: k1, 1: k2}, self.mcfg.temperature
        loss = combine(lambda v, i: info_nce(q[v], k[i], t, offset), target_pairs(len(local)), 2, 2.0)
        return StepOutput(loss, f1, q[0])

    def momentum_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        if not self.mcfg.momentum_encoder:
            return []
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]
