"""Offline linear probe on frozen, pre-extracted features."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

OPTIMIZERS = ("sgd", "adamw")


def fit_linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    epochs: int = 100,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
    batch_size: int = 1024,
    seed: int = 0,
    optimizer: str = "sgd",
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Train a linear classifier on standardised features and return top-1 / top-5 test accuracy
    (fractions in [0, 1]; top-5 is top-``num_classes`` when there are fewer than 5 classes).

    ``optimizer``: ``sgd`` (momentum 0.9) or ``adamw``; the lr follows a cosine schedule to 0.
    ``on_epoch(epoch, mean_train_loss)`` is called after every epoch (progress bars, loggers).
    Features are extracted once by the caller.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    gen = torch.Generator().manual_seed(seed)
    mean, std = train_x.mean(0, keepdim=True), train_x.std(0, keepdim=True).clamp(min=1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    clf = nn.Linear(train_x.shape[1], num_classes).to(train_x.device)
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, -(-train_x.shape[0] // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    for epoch in range(epochs):
        perm = torch.randperm(train_x.shape[0], generator=gen).to(train_x.device)
        total = torch.zeros((), device=train_x.device)
        for idx in perm.split(batch_size):
            loss = F.cross_entropy(clf(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * idx.numel()
        if on_epoch is not None:
            on_epoch(epoch, total.item() / train_x.shape[0])
    with torch.no_grad():
        logits = clf(test_x)
        top5 = logits.topk(min(5, num_classes), dim=1).indices
        return {
            "top1": (top5[:, 0] == test_y).float().mean().item(),
            "top5": (top5 == test_y[:, None]).any(1).float().mean().item(),
        }
