"""Weighted kNN classifier on frozen features (Wu et al. 2018; the monitor solo-learn and DINO use)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores [Q, C]: cosine similarity on l2-normalised features, top-k neighbours each
    voting ``exp(sim / T)`` for its label."""
    query, bank = F.normalize(query.float(), dim=1), F.normalize(bank.float(), dim=1)
    k = min(k, bank.shape[0])
    scores = []
    for q in query.split(chunk):
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(q.shape[0], num_classes, device=q.device)
        votes.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def knn_accuracy(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> float:
    pred = knn_predict(query, bank, bank_labels, num_classes, k, temperature).argmax(1)
    return (pred == query_labels).float().mean().item()
