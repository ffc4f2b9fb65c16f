"""SimSiam (Chen & He 2021): a siamese network whose only collapse guard is the stop-gradient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import negative_cosine
from ssl_bench.methods.multicrop import combine, target_pairs
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
        """The paper's symmetrised loss ``D(p1, z2) / 2 + D(p2, z1) / 2``; small views (multi-crop)
        predict each global view's z as well (``multicrop.py``)."""
        (x1, x2, *_), local = self.split_views(views)
        f1, f2 = self.backbone(x1), self.backbone(x2)
        z1, z2 = self.projector(f1), self.projector(f2)
        p = {0: self.predictor(z1), 1: self.predictor(z2)}
        p.update(enumerate(self.local_embeddings(local), start=2))
        if self.mcfg.stop_grad:
            z1, z2 = z1.detach(), z2.detach()
        z = {0: z1, 1: z2}
        symmetric = self.mcfg.symmetric
        pairs = target_pairs(len(local), symmetric)
        loss = combine(lambda v, k: negative_cosine(p[v], z[k]), pairs, 2 if symmetric else 1, 1.0)
        return StepOutput(loss, f1, p[0])
