"""Projection and prediction heads as small configurable MLPs.

One ``MLP`` covers every head the image methods ablate: ``type`` none / linear / mlp, depth,
hidden and output width, BN after hidden layers and optionally on the output (SimSiam puts BN
on the projector output; its predictor has BN on the hidden layer only; BYOL has none on the
output).
"""

from __future__ import annotations

from torch import nn


class MLP(nn.Sequential):
    """Linear(-BN)-ReLU blocks followed by a last Linear (and optional output BN)."""

    def __init__(
        self,
        in_dim: int,
        type: str = "mlp",
        num_layers: int = 2,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        hidden_bn: bool = True,
        last_bn: bool = False,
        last_bn_affine: bool = False,
    ):
        if type not in ("none", "linear", "mlp"):
            raise ValueError(f"head type {type!r}; allowed: none, linear, mlp")
        layers: list[nn.Module] = []
        if type == "none":
            layers.append(nn.Identity())
            out_dim = in_dim
        else:
            depth = 1 if type == "linear" else num_layers
            dims = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
            for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
                last = i == depth - 1
                use_bn = last_bn if last else hidden_bn
                layers.append(nn.Linear(d_in, d_out, bias=not use_bn))
                if use_bn:
                    layers.append(nn.BatchNorm1d(d_out, affine=last_bn_affine if last else True))
                if not last:
                    layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_dim = out_dim
