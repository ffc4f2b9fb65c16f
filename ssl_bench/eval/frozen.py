"""Evaluation of a frozen backbone: features extracted once, then kNN, linear probe, RankMe and
the collapse monitor. Used on the random-init backbone before training (``init/*``) and on the
trained one after it (``test/*``), on the held-out test split.

Under torch.distributed each rank extracts the features of its shard of the images and the shards
are gathered; every rank then computes the same metrics from the same features (so their random
number generators stay in step for the training that follows)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from ssl_bench.distributed import gather, shard_range, world
from ssl_bench.eval.knn import knn_accuracy
from ssl_bench.eval.linear import fit_linear_probe
from ssl_bench.eval.metrics import normalized_std, rankme


@torch.no_grad()
def extract(
    model: Any, loader: DataLoader, device: torch.device, with_embedding: bool = False
) -> tuple[torch.Tensor, ...]:
    """(features, labels[, method embeddings]) of every image in ``loader``, model in eval mode."""
    was_training = model.training
    model.eval()
    feats, labels, embs = [], [], []
    for x, y in loader:
        f = model(x.to(device, non_blocking=True))
        feats.append(f.float())
        labels.append(y.to(device))
        if with_embedding:
            embs.append(model.embed(f).float())
    model.train(was_training)
    out = (torch.cat(feats), torch.cat(labels))
    return out + (torch.cat(embs),) if with_embedding else out


def shard(loader: DataLoader) -> DataLoader:
    """This rank's contiguous part of an evaluation loader (the loader itself in one process)."""
    if hasattr(loader, "sharded"):  # streamed data (ssl_bench.data.stream.Checked) splits itself
        return loader.sharded() if world()[1] > 1 else loader
    n = len(loader.dataset)  # type: ignore[arg-type]
    part = shard_range(n)
    if len(part) == n:
        return loader
    return DataLoader(
        Subset(loader.dataset, part),
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )


def evaluate_frozen(
    model: Any,
    bank_loader: DataLoader,
    query_loader: DataLoader,
    num_classes: int,
    eval_cfg: Any,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    original = next(model.parameters()).device
    model.to(device)
    try:
        bank, bank_y = (gather(t) for t in extract(model, shard(bank_loader), device))
        query, query_y, z = (gather(t) for t in extract(model, shard(query_loader), device, with_embedding=True))
    finally:
        model.to(original)
    linear = fit_linear_probe(
        bank,
        bank_y,
        query,
        query_y,
        num_classes,
        epochs=eval_cfg.linear_epochs,
        lr=eval_cfg.linear_lr,
        weight_decay=eval_cfg.linear_weight_decay,
        seed=seed,
    )
    z_std = normalized_std(z)
    output = model.output_metrics(z) if hasattr(model, "output_metrics") else {}  # a method's own monitors
    return {
        **output,
        "knn_acc": knn_accuracy(query, query_y, bank, bank_y, num_classes, eval_cfg.knn_k, eval_cfg.knn_t),
        "linear_acc": linear["top1"],
        "linear_top5": linear["top5"],
        "rankme": rankme(query),
        "z_std": z_std,
        "z_std_ratio": z_std * math.sqrt(z.shape[1]),
        "z_rank": rankme(z),  # effective rank of the online output: ~1 = collapsed to a line
        "n_eval": int(query.shape[0]),  # evaluation images: the accuracies' binomial error
    }
