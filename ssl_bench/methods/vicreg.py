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
from ssl_bench.methods.multicrop import combine, view_pairs
from ssl_bench.models.heads import MLP


class VICReg(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        """The weighted three terms of the two views; small views (multi-crop) pair with each global
        view as well, averaged (``multicrop.py``)."""
        m = self.mcfg
        (x1, x2, *_), local = self.split_views(views)
        f1 = self.backbone(x1)
        z = [self.projector(f1), self.projector(self.backbone(x2))]
        z += self.local_embeddings(local)
        z_all: list[torch.Tensor | None] = [None] * len(z)
        if m.gather_distributed and world()[1] > 1:
            z_all = [torch.cat(all_gather(zi)) for zi in z]  # keeps gradients

        def pair(a: int, b: int) -> torch.Tensor:
            inv, var, cov = vicreg_terms(z[a], z[b], z_all[a], z_all[b], m.var_target, m.var_eps)
            return m.sim_weight * inv + m.var_weight * var + m.cov_weight * cov

        loss = combine(pair, view_pairs(len(local)), 1, 1.0)
        return StepOutput(loss, f1, z[0])
