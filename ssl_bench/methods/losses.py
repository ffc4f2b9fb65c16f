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


def info_nce(q: torch.Tensor, k: torch.Tensor, temperature: float = 0.2, offset: int = 0) -> torch.Tensor:
    """MoCo v3's contrastive loss ``ctr(q, k)`` (Chen, Xie & He 2021, Algorithm 1): queries ``q`` [n, d]
    against keys ``k`` [N, d] (the keys of every rank under DDP, this rank's at rows ``offset..offset+n``),
    both l2-normalised, cross-entropy with the positive on the matching key, scaled by ``2 * temperature``
    as the authors' code does (it makes the loss's gradient scale independent of the temperature)."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = q @ k.T / temperature
    labels = torch.arange(q.shape[0], device=q.device) + offset
    return F.cross_entropy(logits, labels) * (2 * temperature)


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambda_offdiag: float = 5e-3) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021, eq. 1 and Algorithm 1): the cross-correlation matrix of the two
    views' embeddings, each dimension standardised over the batch (BN without affine, biased variance),
    pulled to the identity: sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2.

    Under DDP pass the embeddings of the global batch (gathered with gradients): the paper's
    correlation and its standardisation are over the global batch."""
    n = z1.shape[0]
    # (z - mean) / sqrt(biased var + 1e-5) per dimension: batch_norm's fused kernel computes exactly that
    z1 = F.batch_norm(z1, None, None, training=True, eps=1e-5)
    z2 = F.batch_norm(z2, None, None, training=True, eps=1e-5)
    c = z1.T @ z2 / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambda_offdiag * _off_diagonal(c).pow(2).sum()


def vicreg_terms(
    z1: torch.Tensor,
    z2: torch.Tensor,
    z1_all: torch.Tensor | None = None,
    z2_all: torch.Tensor | None = None,
    var_target: float = 1.0,
    eps: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """VICReg's three terms (Bardes, Ponce & LeCun 2022, eqs. 1-6, as the authors' code computes them):
    invariance = MSE(z1, z2) on this rank's pairs; variance = mean_j relu(gamma - sqrt(Var(z_j) + eps)),
    averaged over the two branches; covariance = sum of squared off-diagonal covariances / d, summed over
    the two branches. Variance and covariance use the global batch (``z*_all``, gathered with gradients)
    when given."""
    invariance = F.mse_loss(z1, z2)
    x = z1 if z1_all is None else z1_all
    y = z2 if z2_all is None else z2_all
    n, d = x.shape
    x, y = x - x.mean(0), y - y.mean(0)
    std_x, std_y = torch.sqrt(x.var(0) + eps), torch.sqrt(y.var(0) + eps)
    variance = F.relu(var_target - std_x).mean() / 2 + F.relu(var_target - std_y).mean() / 2
    cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
    covariance = _off_diagonal(cov_x).pow(2).sum() / d + _off_diagonal(cov_y).pow(2).sum() / d
    return invariance, variance, covariance


def dino_loss(
    student: list[torch.Tensor],
    teacher: list[torch.Tensor],
    center: torch.Tensor,
    student_temp: float = 0.1,
    teacher_temp: float = 0.04,
) -> torch.Tensor:
    """DINO (Caron et al. 2021, Algorithm 1): H(P_t, P_s) = -sum softmax((t - c) / tau_t) log_softmax(s / tau_s),
    averaged over every (teacher global view, student view) pair of different views. ``student`` holds the
    logits of every view (globals first), ``teacher`` those of the global views; ``center`` is subtracted
    from the teacher's logits (pass zeros to switch centering off). The teacher gets no gradient."""
    targets = [F.softmax((t.detach() - center) / teacher_temp, dim=-1) for t in teacher]
    logps = [F.log_softmax(s / student_temp, dim=-1) for s in student]
    total, pairs = student[0].new_zeros(()), 0
    for i, target in enumerate(targets):
        for j, logp in enumerate(logps):
            if i == j:
                continue
            total = total + (-(target * logp).sum(-1)).mean()
            pairs += 1
    return total / pairs
