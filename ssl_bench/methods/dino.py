"""DINO (Caron et al. 2021): a student matches an EMA teacher's centred, sharpened output distribution.

Algorithm 1 of the paper: the teacher sees the global views, the student every view (the global ones and
``augment.local_crops`` small ones); the loss is the cross-entropy between the teacher's softmax of
``(t - center) / teacher_temp`` and the student's log-softmax of ``s / student_temp`` over every pair of
different views. The center is an EMA (``method.center_momentum``) of the teacher's batch mean over
every rank; the teacher temperature warms up linearly per epoch from ``warmup_teacher_temp`` to
``teacher_temp`` over ``warmup_teacher_temp_epochs``, as in the authors' code. The collapse switches:
``method.centering=false`` (no center) and ``method.sharpening=false`` (the teacher at the student's
temperature, no sharper than the student). Their collapses are the two ends of the output's entropy
(Fig. 7), which the shared spread and rank monitors do not see at the uniform end (a per-image shift
of the logits leaves the softmax uniform): ``output_entropy`` (the mean per-image entropy of
``softmax(z / student_temp)``) and ``mean_output_entropy`` (the entropy of the mean output), both as a
share of ``log(out_dim)``, are recorded with the evaluation, and the run is ``collapsed`` when the
first is above ``method.uniform_entropy`` or the second below ``method.dominant_entropy``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ssl_bench.distributed import world
from ssl_bench.methods.base import SSLMethod, StepOutput
from ssl_bench.methods.losses import dino_loss
from ssl_bench.models.momentum import MomentumTargets, make_target


class DINOHead(nn.Module):
    """An MLP (GELU, optional BN) to a bottleneck, l2-normalised, then a weight-normalised linear layer
    whose norm is fixed at 1 when ``norm_last_layer`` (the paper's head)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_layers: int = 3,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        use_bn: bool = False,
        norm_last_layer: bool = True,
    ):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i < num_layers - 1:
                layers += [nn.BatchNorm1d(d_out)] if use_bn else []
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        g = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            g.fill_(1.0)
        g.requires_grad_(not norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


def teacher_temperature(epoch: int, warmup: float, final: float, warmup_epochs: int) -> float:
    """The authors' schedule: ``linspace(warmup, final, warmup_epochs)`` indexed by epoch, then ``final``."""
    if epoch >= warmup_epochs:
        return final
    return warmup + (final - warmup) * epoch / max(warmup_epochs - 1, 1)


class DINO(MomentumTargets, SSLMethod):
    def build_heads(self) -> None:
        m = self.mcfg
        self.head = DINOHead(self.feat_dim, m.out_dim, **m.head)
        self.target_backbone = make_target(self.backbone)
        self.target_head = make_target(self.head)
        self.register_buffer("center", torch.zeros(1, m.out_dim))
        self.tau = m.tau_base

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.target_backbone), (self.head, self.target_head)]

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def temperatures(self) -> tuple[float, float]:
        """(student, teacher) temperature at the current epoch."""
        m = self.mcfg
        if not m.sharpening:
            return m.student_temp, m.student_temp
        return m.student_temp, teacher_temperature(
            self.current_epoch, m.warmup_teacher_temp, m.teacher_temp, int(m.warmup_teacher_temp_epochs)
        )

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        globals_, locals_ = self.split_views(views)
        n = globals_[0].shape[0]
        f = self.backbone(torch.cat(globals_))
        student = list(self.head(f).chunk(len(globals_)))
        student += self.local_embeddings(locals_)  # the small crops: one forward at their own resolution
        with torch.no_grad():
            t_out = self.target_head(self.target_backbone(torch.cat(globals_)))
        teacher = list(t_out.chunk(len(globals_)))
        s_temp, t_temp = self.temperatures()
        center = self.center if self.mcfg.centering else torch.zeros_like(self.center)
        loss = dino_loss(student, teacher, center, s_temp, t_temp)
        if self.mcfg.centering and self.training:
            self._update_center(t_out)
        return StepOutput(loss, f[:n], student[0])

    @torch.no_grad()
    def _update_center(self, t_out: torch.Tensor) -> None:
        total = t_out.sum(0, keepdim=True)
        count = torch.tensor([float(t_out.shape[0])], device=t_out.device)
        if world()[1] > 1:
            dist.all_reduce(total)
            dist.all_reduce(count)
        m = self.mcfg.center_momentum
        self.center.mul_(m).add_(total / count, alpha=1 - m)

    @torch.no_grad()
    def output_metrics(self, z: torch.Tensor) -> dict[str, float]:
        p = F.softmax(z.float() / self.mcfg.student_temp, dim=1)
        log_k = math.log(p.shape[1])
        per_image = -(p * p.clamp_min(1e-12).log()).sum(1).mean()
        mean = p.mean(0)
        of_mean = -(mean * mean.clamp_min(1e-12).log()).sum()
        return {"output_entropy": float(per_image / log_k), "mean_output_entropy": float(of_mean / log_k)}

    def final_status(self, final: dict[str, Any]) -> str:
        h, h_mean = final.get("output_entropy"), final.get("mean_output_entropy")
        uniform = h is not None and h > self.mcfg.uniform_entropy
        dominant = h_mean is not None and h_mean < self.mcfg.dominant_entropy
        return "collapsed" if uniform or dominant else super().final_status(final)

    def on_after_backward(self) -> None:
        if self.current_epoch < self.mcfg.freeze_last_layer_epochs:  # the paper keeps the last layer fixed
            for p in self.head.last_layer.parameters():
                p.grad = None
