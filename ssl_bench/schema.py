"""Field helpers of the typed config schemas (the allowed range lives next to the default), and the
head schema every image method shares. No torch, no Hydra: the method registry and ``config`` both
import it before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def choice(default: Any, *allowed: Any) -> Any:
    return field(default=default, metadata={"choices": allowed})


def num(default: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "lo_open": lo_open})


def per_view(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A number, or a list with one number per view (asymmetric views, as in BYOL)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "per_view": True})


@dataclass
class Head:
    """A projector / predictor MLP (``ssl_bench.models.heads.MLP``)."""

    type: str = choice("mlp", "none", "linear", "mlp")
    num_layers: int = num(2, lo=2)
    hidden_dim: int = num(2048, lo=1)
    out_dim: int = num(128, lo=1)
    hidden_bn: bool = True
    last_bn: bool = False
    last_bn_affine: bool = False
