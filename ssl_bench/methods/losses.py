"""Losses as pure functions of tensors (no module state), tested against hand-computed values."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    normalize: bool = True,
    z1_all: torch.Tensor | None = None,
    z2_all: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020, eq. 1) averaged over all 2N anchors.

    ``z1[i]`` and ``z2[i]`` are two views of sample ``i``. Every other view in the batch is a
    negative. ``normalize=False`` uses the raw dot product (SimCLR Table 5, "no l2 norm").

    Distributed: pass the embeddings gathered from every rank (with gradients) as ``z1_all`` /
    ``z2_all`` and this rank's position in them as ``offset``; the local anchors are then
    contrasted against the global batch, so negatives = global batch.
    """
    if normalize:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        z1_all = None if z1_all is None else F.normalize(z1_all, dim=1)
        z2_all = None if z2_all is None else F.normalize(z2_all, dim=1)
    if z1_all is None or z2_all is None:
        z1_all, z2_all, offset = z1, z2, 0
    n, n_all = z1.shape[0], z1_all.shape[0]
    anchors = torch.cat([z1, z2])  # [2n, d]
    candidates = torch.cat([z1_all, z2_all])  # [2N, d]
    logits = anchors @ candidates.T / temperature  # [2n, 2N]
    idx = torch.arange(n, device=z1.device) + offset
    self_idx = torch.cat([idx, idx + n_all])
    pos_idx = torch.cat([idx + n_all, idx])
    rows = torch.arange(2 * n, device=z1.device)
    logits = logits.index_put((rows, self_idx), torch.tensor(float("-inf"), dtype=logits.dtype, device=z1.device))
    return F.cross_entropy(logits, pos_idx)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -cos(p, z), averaged over the batch (Chen & He 2021, eq. 1).

    The caller decides whether ``z`` is detached (stop-gradient): this function never detaches.
    """
    return -F.cosine_similarity(p, z, dim=-1).mean()


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's normalised MSE ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z), averaged (Grill et al. 2020, eq. 2)."""
    return (2 - 2 * F.cosine_similarity(p, z, dim=-1)).mean()
