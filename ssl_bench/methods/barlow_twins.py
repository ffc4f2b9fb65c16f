"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of the two views' embeddings, pulled to the
identity. Under DDP the embeddings of every rank are gathered with their gradients, so the per-dimension
standardisation and the correlation are over the global batch, as in the paper."""

from __future__ import annotations

import torch
from torch.distributed.nn.functional import all_gather

from ssl_bench.distributed import world
from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import barlow_twins_loss
from ssl_bench.methods.multicrop import combine, view_pairs
from ssl_bench.models.heads import MLP


class BarlowTwins(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        """The two views' cross-correlation loss; small views (multi-crop) pair with each global view
        as well, averaged (``multicrop.py``)."""
        (x1, x2, *_), local = self.split_views(views)
        f1 = self.backbone(x1)
        z = [self.projector(f1), self.projector(self.backbone(x2))]
        z += self.local_embeddings(local)
        if self.mcfg.gather_distributed and world()[1] > 1:
            z = [torch.cat(all_gather(zi)) for zi in z]  # keeps gradients
        m = self.mcfg
        loss = combine(
            lambda a, b: m.scale_loss * barlow_twins_loss(z[a], z[b], m.lambda_offdiag), view_pairs(len(local)), 1, 1.0
        )
        return StepOutput(loss, f1, z[0][: f1.shape[0]])
