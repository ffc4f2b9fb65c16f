"""BERT / RoBERTa masking as pure functions of id tensors, and the batch collator.

``mask_tokens`` selects each regular token with probability ``mask_prob`` (special tokens and
padding never), then replaces a selected token by ``<mask>`` with probability
``mask_token_prob``, by a uniformly random regular token with probability
``random_token_prob``, and leaves it unchanged otherwise. ``labels`` hold the original id at
selected positions and ``IGNORE`` elsewhere.

Dynamic masking (RoBERTa): a fresh mask each time a sequence is seen (``MaskingCollator``).
Static masking (BERT): ``static_copies`` masks per sequence, fixed for the whole run; epoch e
uses copy ``e % static_copies`` (``StaticMasks``), so each copy is seen equally often, as when
BERT duplicated its data ``static_copies`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssl_bench.distributed import world
from ssl_bench.text.tokenizer import MASK, NUM_SPECIAL, PAD

IGNORE = -100


@dataclass(frozen=True)
class MaskSpec:
    vocab_size: int
    mask_prob: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    mask_id: int = MASK
    num_special: int = NUM_SPECIAL  # ids below are special tokens (padding included): never selected

    def __post_init__(self) -> None:
        if (
            not 0 <= self.mask_prob <= 1
            or self.mask_token_prob < 0
            or self.random_token_prob < 0
            or self.mask_token_prob + self.random_token_prob > 1
        ):
            raise ValueError(f"invalid masking probabilities: {self}")


def mask_tokens(
    input_ids: torch.Tensor, spec: MaskSpec, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted ids, labels) for a [..., L] id tensor; the input is not modified."""
    selectable = input_ids >= spec.num_special
    u_select = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    u_action = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    random_ids = torch.randint(
        spec.num_special,
        spec.vocab_size,
        input_ids.shape,
        generator=generator,
        device=input_ids.device,
        dtype=input_ids.dtype,
    )
    selected = selectable & (u_select < spec.mask_prob)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE))
    to_mask = selected & (u_action < spec.mask_token_prob)
    to_random = (
        selected & (u_action >= spec.mask_token_prob) & (u_action < spec.mask_token_prob + spec.random_token_prob)
    )
    corrupted = torch.where(to_mask, torch.full_like(input_ids, spec.mask_id), input_ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels


def attention_mask(input_ids: torch.Tensor, pad_id: int = PAD) -> torch.Tensor:
    """1 at real tokens, 0 at padding."""
    return (input_ids != pad_id).long()


def masked_batch(
    input_ids: torch.Tensor, spec: MaskSpec, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(corrupted ids, attention mask, labels): what the model trains on."""
    corrupted, labels = mask_tokens(input_ids, spec, generator)
    return corrupted, attention_mask(input_ids), labels


class MaskingCollator:
    """Dynamic masking of a batch of packed sequences ([B, L] ids, or a list of [L] rows)."""

    def __init__(self, spec: MaskSpec, generator: torch.Generator | None = None):
        self.spec, self.generator = spec, generator

    def __call__(self, batch: torch.Tensor | list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = batch if isinstance(batch, torch.Tensor) else torch.stack(list(batch))
        rank, size = world()
        if size == 1:
            return masked_batch(ids, self.spec, self.generator)
        # every rank draws the masks of the whole global batch (same RNG state on every rank) and keeps
        # the rows of its own sequences (interleaved by the distributed sampler: rank r holds rows r,
        # r + world, ...), so a sequence gets the same mask whatever the number of ranks
        out = masked_batch(ids.repeat_interleave(size, 0), self.spec, self.generator)
        return tuple(t[rank::size] for t in out)  # type: ignore[return-value]


class StaticMasks:
    """``copies`` fixed masks of a [N, L] id tensor: copy c is drawn once from a generator seeded
    by (seed, c), so it is the same in every epoch, every worker and every rerun."""

    def __init__(self, input_ids: torch.Tensor, spec: MaskSpec, copies: int, seed: int):
        self.input_ids, self.spec, self.copies, self.seed = input_ids, spec, copies, seed
        self._cached: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def copy(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted ids, labels) [N, L] of copy ``c`` (0 <= c < copies)."""
        if self._cached is None or self._cached[0] != c:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + c)
            self._cached = (c, *mask_tokens(self.input_ids, self.spec, g))
        return self._cached[1], self._cached[2]

    def for_epoch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.copy(epoch % self.copies)
