"""VICReg (Bardes, Ponce & LeCun 2022): invariance (MSE between the views' embeddings), variance (a
hinge on each dimension's standard deviation) and covariance (off-diagonal covariances pushed to zero).
As in the authors' code, invariance is over this rank's pairs and variance and covariance over the
batch gathered from every rank (with gradients)."""

from __future__ import annotations

import torch
from torch.distributed.nn.functional import all_gather

from ssl_bench.distributed import world
from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import vicreg_terms
from ssl_bench.models.heads import MLP


class VICReg(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        m = self.mcfg
        x1, x2 = views[:2]
        f1 = self.backbone(x1)
        z1, z2 = self.projector(f1), self.projector(self.backbone(x2))
        z1_all = z2_all = None
        if m.gather_distributed and world()[1] > 1:
            z1_all, z2_all = torch.cat(all_gather(z1)), torch.cat(all_gather(z2))  # keeps gradients
        inv, var, cov = vicreg_terms(z1, z2, z1_all, z2_all, m.var_target, m.var_eps)
        loss = m.sim_weight * inv + m.var_weight * var + m.cov_weight * cov
        return StepOutput(loss, f1, z1)
