"""The shared base LightningModule: everything a method has in common.

It owns the backbone, the batched augmentation, optimizer / scheduler wiring (linear LR scaling
by global batch), the online linear probe, the kNN / collapse / RankMe monitors and logging. A
method subclass adds its heads (``build_heads``) and its loss (``step``), and nothing else.

Metric names (stable; docs/guides/evaluation.md, "Metrics"):
  train/loss, train/online_probe_acc, train/z_std, train/lr, train/img_per_s (+ train/tau, BYOL)
  val/knn_acc, val/online_probe_acc, val/z_std, val/rankme            (every eval.every_n_epochs)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ssl_bench.config import Eval
from ssl_bench.data.augment import BatchAugment, Normalize, local_views_from_config, views_from_config
from ssl_bench.distributed import gather
from ssl_bench.eval.export import export_backbone
from ssl_bench.eval.frozen import evaluate_frozen
from ssl_bench.eval.knn import knn_accuracy
from ssl_bench.eval.metrics import normalized_std, rankme
from ssl_bench.methods.multicrop import split_views
from ssl_bench.models.backbones import build_backbone
from ssl_bench.optim import lightning_optimization, split_decay

EVAL_DEFAULTS = Eval()  # the schema's defaults, for configs saved before a key existed


class DivergedError(RuntimeError):
    """The loss became NaN or infinite: the run ends with status ``diverged``."""


@dataclass
class StepOutput:
    loss: torch.Tensor
    features: torch.Tensor  # backbone features of the first view (feeds the online probe)
    embedding: torch.Tensor  # ``embed`` of the first view (feeds the collapse monitor)


class SSLMethod(pl.LightningModule):
    throughput_unit = "img"  # what one training-batch element is (train/<unit>_per_s)

    def __init__(self, cfg: DictConfig, num_classes: int):
        super().__init__()
        self.save_hyperparameters(
            {"cfg": OmegaConf.to_container(cfg, resolve=True), "num_classes": num_classes}, logger=False
        )
        self.cfg = cfg
        self.mcfg = cfg.method
        self.num_classes = num_classes
        self.backbone = build_backbone(**cfg.backbone)
        self.feat_dim: int = self.backbone.num_features
        size = cfg.data.image_size
        self.augment = BatchAugment(
            views_from_config(cfg.augment, size),
            size,
            cfg.data.mean,
            cfg.data.std,
            local=local_views_from_config(cfg.augment, size),
        )
        self._views_in_batch = cfg.augment.get("backend", "batched") == "torchvision"  # built per image by the loader
        self.normalize = Normalize(cfg.data.mean, cfg.data.std)
        self.probe = nn.Linear(self.feat_dim, num_classes)
        self.build_heads()
        self._val: dict[int, list[tuple[torch.Tensor, ...]]] = defaultdict(list)
        self.exported: str | None = None  # what on_fit_end wrote (the run record's ``export``)
        self._channels_last = bool(cfg.trainer.get("channels_last", False))

    @classmethod
    def from_config(cls, cfg: DictConfig, datamodule: Any) -> SSLMethod:
        """Build the method for a datamodule (the seam through which other modalities plug in)."""
        return cls(cfg, datamodule.num_classes)

    def evaluate(self, datamodule: Any) -> dict[str, float]:
        """Frozen-backbone evaluation on the test split: run before training (``init``) and after
        it (``final``)."""
        return evaluate_frozen(self, *datamodule.eval_loaders("test"), self.num_classes, self.cfg.eval, self.cfg.seed)

    def final_status(self, final: dict[str, float]) -> str:
        """``collapsed`` when the online output collapsed completely (its spread, ``z_std_ratio``, fell
        below ``eval.collapse_threshold``) or to a line (its effective rank, ``z_rank``, fell below
        ``eval.collapse_rank``: BN on SimSiam's projector output keeps the spread up when the network
        collapses without a predictor, but the output becomes rank one)."""
        e = self.cfg.eval
        ratio, rank = final.get("z_std_ratio"), final.get("z_rank")
        flat = ratio is not None and ratio < e.collapse_threshold
        line = rank is not None and rank < e.get("collapse_rank", EVAL_DEFAULTS.collapse_rank)
        return "collapsed" if flat or line else "finished"

    def output_metrics(self, z: torch.Tensor) -> dict[str, float]:
        """A method's own monitors of its output ``z`` on the test split (``embed`` of every image),
        recorded beside the shared ones; none by default."""
        return {}

    # --- what a method defines -------------------------------------------------------------------
    def build_heads(self) -> None:
        raise NotImplementedError

    def step(self, views: list[torch.Tensor]) -> StepOutput:
        """The method's loss on a list of augmented, normalised views."""
        raise NotImplementedError

    def split_views(self, views: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(global views, multi-crop's small views: the last ``augment.local_crops``); see ``multicrop.py``."""
        return split_views(views, int(self.cfg.augment.get("local_crops", 0) or 0))

    def local_embeddings(self, local: list[torch.Tensor]) -> list[torch.Tensor]:
        """The small views' ``embed`` outputs, one forward for all (they share a resolution)."""
        if not local:
            return []
        return list(self.embed(self.backbone(torch.cat(local))).chunk(len(local)))

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The online branch's output, the one the loss compares, whose spread the collapse
        monitor measures: the projector output here, the predictor output for BYOL / SimSiam."""
        return self.projector(features)

    def param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters besides the probe; override to give a group its own lr policy."""
        return [{"named": [(n, p) for n, p in self.named_parameters() if not n.startswith("probe.")]}]

    # --- forward / training ----------------------------------------------------------------------
    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last else x

    def setup(self, stage: str) -> None:
        if self._channels_last:  # before the strategy wraps the module (DDP's gradient buckets follow its layout)
            self.to(memory_format=torch.channels_last)

    def on_fit_start(self) -> None:
        if self.cfg.trainer.get("compile", False):
            self.backbone.compile()  # in place: parameter names and checkpoints stay unchanged

    def on_fit_end(self) -> None:
        """Export the backbone as a plain state_dict (``backbone.pt`` + ``backbone.json`` in the run
        folder), loadable with timm / torch without ssl-bench. A diverged fit raises before this."""
        if self.trainer.is_global_zero:
            self.exported = str(export_backbone(self, self.trainer.default_root_dir))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of raw (uint8 or [0, 1]) images, the representation being evaluated."""
        return self.backbone(self._layout(self.normalize(x)))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        views = x if self._views_in_batch else self.augment(x)
        out = self.step([self._layout(v) for v in views])
        if not torch.isfinite(out.loss):
            raise DivergedError(
                f"loss is {out.loss.item()} at step {self.global_step} (epoch {self.current_epoch}); "
                "lower optim.base_lr or add warmup (optim.warmup_epochs)"
            )
        logits = self.probe(out.features.detach())
        labelled = y >= 0  # -1: unlabelled images (e.g. STL-10 unlabeled) train no probe
        n_lab = labelled.sum().clamp(min=1)
        probe_loss = F.cross_entropy(logits, y, ignore_index=-1, reduction="sum") / n_lab
        n, sync = y.shape[0], self.trainer.world_size > 1  # several ranks: values averaged over them
        self.log(
            "train/loss", out.loss.detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=sync
        )
        if batch_idx % self.trainer.log_every_n_steps == 0:  # monitors: sampled, each self.log has a cost
            z = F.normalize(out.embedding.detach().float(), dim=1)
            acc = ((logits.argmax(1) == y) & labelled).sum() / n_lab
            self.log_dict(
                {"train/online_probe_acc": acc, "train/z_std": z.std(0).mean()},
                on_step=True,
                on_epoch=True,
                batch_size=n,
                sync_dist=sync,
            )
        return out.loss + probe_loss

    # --- monitors ----------------------------------------------------------------------------------
    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        x, y = batch
        feats = self(x)
        if dataloader_idx == 0:  # kNN bank: unaugmented training images
            self._val[0].append((feats, y))
        else:  # held-out queries
            self._val[1].append((feats, y, self.embed(feats), self.probe(feats)))

    def on_validation_epoch_end(self) -> None:
        parts = {k: [torch.cat(t) for t in zip(*v)] for k, v in self._val.items()}
        self._val.clear()
        if self.trainer.sanity_checking or 0 not in parts or 1 not in parts:
            return
        bank, bank_y = parts[0]
        feats, y, z, logits = parts[1]
        if self.trainer.world_size > 1:  # each rank scored its shard: all of them, in order, on every rank
            bank, bank_y, feats, y, z, logits = (gather(t) for t in (bank, bank_y, feats, y, z, logits))
        e = self.cfg.eval
        self.log_dict(
            {
                "val/knn_acc": knn_accuracy(feats, y, bank, bank_y, self.num_classes, e.knn_k, e.knn_t),
                "val/online_probe_acc": (logits.argmax(1) == y).float().mean().item(),
                "val/z_std": normalized_std(z),
                "val/rankme": rankme(feats),
            },
            sync_dist=self.trainer.world_size > 1,  # the same values on every rank: the mean is the value
        )

    # --- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        groups: list[dict[str, Any]] = []
        for spec in self.param_groups():
            decay, no_decay = split_decay(spec.pop("named"), o.exclude_bias_norm)
            groups.append({"params": decay, **spec})
            groups.append({"params": no_decay, **spec, "weight_decay": 0.0})
        groups.append({"params": list(self.probe.parameters()), "lr": self.cfg.eval.probe_lr, "weight_decay": 0.0})
        return lightning_optimization(groups, o, self.cfg.data.batch_size, self.trainer)
