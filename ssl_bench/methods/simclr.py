"""SimCLR (Chen et al. 2020): two views, a projector, NT-Xent over the (global) batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import nt_xent
from ssl_bench.models.heads import MLP


class SimCLR(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        f = self.backbone(torch.cat(views[:2]))  # both views in one batch, as SimCLR does
        z1, z2 = self.projector(f).chunk(2)
        z1_all = z2_all = None
        offset = 0
        if self.mcfg.gather_distributed and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            z1_all, z2_all = torch.cat(all_gather(z1)), torch.cat(all_gather(z2))  # keeps gradients
            offset = dist.get_rank() * z1.shape[0]
        loss = nt_xent(z1, z2, self.mcfg.temperature, self.mcfg.normalize, z1_all, z2_all, offset)
        return StepOutput(loss, f[: z1.shape[0]], z1)
