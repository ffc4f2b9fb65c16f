"""BYOL (Grill et al. 2020): online network + predictor regress an EMA target network."""

from __future__ import annotations

from typing import Any

import torch

from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import byol_loss
from ssl_bench.methods.simsiam import build_predictor
from ssl_bench.models.heads import MLP
from ssl_bench.models.momentum import make_target, tau_at, update_momentum


class BYOL(SSLMethod):
    def build_heads(self) -> None:
        self.projector = MLP(self.feat_dim, **self.mcfg.projector)
        self.predictor = build_predictor(self.mcfg.predictor, self.projector.out_dim, self.mcfg.predictor_head)
        self.target_backbone = make_target(self.backbone)
        self.target_projector = make_target(self.projector)
        self.tau = self.mcfg.tau_base
        self._ema_step = 0

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

    def on_train_start(self) -> None:
        self._ema_step = self.global_step  # optimizer steps the target has followed (a resume restores it)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # One EMA update per optimizer step. Under gradient accumulation Lightning also steps after
        # the last, partial accumulation of an epoch, so compare optimizer steps, not batch indices.
        if self.global_step == self._ema_step:
            return  # no optimizer step happened
        self._ema_step = self.global_step
        total = int(self.trainer.estimated_stepping_batches)
        self.tau = tau_at(self.global_step, total, self.mcfg.tau_base, self.mcfg.tau_schedule)
        update_momentum(self.backbone, self.target_backbone, self.tau)
        update_momentum(self.projector, self.target_projector, self.tau)
        self.log("train/tau", self.tau, on_step=True, on_epoch=False)
