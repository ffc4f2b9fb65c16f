"""SimCLR (Chen et al. 2020): two views, a projector, NT-Xent over the (global) batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import nt_xent
from ssl_bench.methods.multicrop import combine, view_pairs
from ssl_bench.models.heads import MLP


class SimCLR(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        """NT-Xent of the two views; small views (multi-crop) pair with each global view as well, each
        pair its own NT-Xent, averaged (``multicrop.py``)."""
        (x1, x2, *_), local = self.split_views(views)
        f = self.backbone(torch.cat([x1, x2]))  # both views in one batch, as SimCLR does
        z = [*self.projector(f).chunk(2), *self.local_embeddings(local)]
        z_all: list[torch.Tensor | None] = [None] * len(z)
        offset = 0
        if self.mcfg.gather_distributed and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            z_all = [torch.cat(all_gather(zi)) for zi in z]  # keeps gradients
            offset = dist.get_rank() * z[0].shape[0]
        m = self.mcfg

        def pair(a: int, b: int) -> torch.Tensor:
            return nt_xent(z[a], z[b], m.temperature, m.normalize, z_all[a], z_all[b], offset)

        loss = combine(pair, view_pairs(len(local)), 1, 1.0)
        return StepOutput(loss, f[: z[0].shape[0]], z[0])
