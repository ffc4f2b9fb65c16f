"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of the two views' embeddings, pulled to the
identity. Under DDP the embeddings of every rank are gathered with their gradients, so the per-dimension
standardisation and the correlation are over the global batch, as in the paper."""

from __future__ import annotations

import torch
from torch.distributed.nn.functional import all_gather

from ssl_bench.distributed import world
from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import barlow_twins_loss
from ssl_bench.models.heads import MLP


class BarlowTwins(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        x1, x2 = views[:2]
        f1 = self.backbone(x1)
        z1, z2 = self.projector(f1), self.projector(self.backbone(x2))
        if self.mcfg.gather_distributed and world()[1] > 1:
            z1, z2 = torch.cat(all_gather(z1)), torch.cat(all_gather(z2))  # keeps gradients
        loss = self.mcfg.scale_loss * barlow_twins_loss(z1, z2, self.mcfg.lambda_offdiag)
        return StepOutput(loss, f1, z1[: f1.shape[0]])
