"""Multi-crop for the two-view methods: how ``augment.local_crops`` small views enter each loss.

Multi-crop comes from SwAV (Caron et al. 2020) and DINO (Caron et al. 2021); both pair it the same
way, and that is the pairing used here: a small view is never a target, it is compared with every
global view. For a method whose loss compares a prediction with a target (BYOL, SimSiam, MoCo v3)
each small view's prediction is scored against each global view's target; for a method whose loss
is symmetric in its two embeddings (SimCLR, Barlow Twins, VICReg) each small view is paired with
each global view. The two-view terms come first, so without small views the loss is the method's own,
bit for bit; with them the terms are averaged and scaled back to the two-view loss's size (its
number of terms for a sum, 1 for a mean), as DINO averages its cross-view terms. The paper of each
of these methods trains on two views only: this carries SwAV's and DINO's pairing over to their losses,
it is not a setting their papers report.

The small views go through ``SSLMethod.local_embeddings`` (the method's own ``embed``, one forward for
all). DINO pairs its crops itself (``ssl_bench/methods/dino.py``); written here because no well-kept
library exposes the pairing on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def split_views(views: Sequence[torch.Tensor], n_local: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(global views, small views): the last ``n_local`` views are multi-crop's small ones."""
    cut = len(views) - n_local
    return list(views[:cut]), list(views[cut:])


def target_pairs(n_local: int, symmetric: bool = True) -> list[tuple[int, int]]:
    """(view, target) index pairs of a prediction-vs-target loss: view 0 against target 1 and, when
    symmetric, view 1 against target 0 (the two-view terms, in that order); then each small view
    (2, 3, ...) against each of those targets."""
    targets = [1, 0] if symmetric else [1]
    pairs = [(1 - t, t) for t in targets]
    return pairs + [(2 + j, t) for j in range(n_local) for t in sorted(targets)]


def view_pairs(n_local: int) -> list[tuple[int, int]]:
    """Unordered pairs of a symmetric loss: the two global views, then each global with each small view."""
    return [(0, 1)] + [(g, 2 + j) for j in range(n_local) for g in (0, 1)]


def combine(
    term: Callable[[int, int], torch.Tensor], pairs: Sequence[tuple[int, int]], n_base: int, scale: float
) -> torch.Tensor:
    """``sum_k w * term(pair_k)`` with ``w = scale / len(pairs)`` once small views add pairs, else
    ``scale / n_base``: the two-view loss is ``scale`` times the mean of its ``n_base`` terms (BYOL's sum:
    scale 2 over 2 terms, SimSiam's mean: scale 1), and stays that with small views."""
    w = scale / (n_base if len(pairs) == n_base else len(pairs))
    total = w * term(*pairs[0])
    for pair in pairs[1:]:
        total = total + w * term(*pair)
    return total
