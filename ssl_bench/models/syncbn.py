"""BatchNorm over the global batch on any device: ``torch.nn.SyncBatchNorm`` on GPUs, and on CPU
processes (gloo) a BatchNorm whose batch statistics are summed over the ranks.

SimCLR's results depend on BN statistics of the whole batch (the paper's "global BN"), and a
multi-process run should train the network a single process at the same global batch trains.
``torch.nn.SyncBatchNorm`` refuses CPU modules ("SyncBatchNorm layers only work with GPU modules"),
so the CPU case is written here: per channel the ranks add up count, sum and sum of squares with a
differentiable all-reduce (its backward adds up the gradients, as SyncBatchNorm's does): first count
and sum (the mean), then the squared deviations from it (the variance, in two passes as
``nn.BatchNorm`` computes it, so one process and N processes agree to float rounding); every rank
normalises with the global mean and (biased) variance and updates the running statistics with the
unbiased one.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from pytorch_lightning.plugins.layer_sync import LayerSync, TorchSyncBatchNorm
from torch import nn
from torch.distributed.nn.functional import all_reduce
from torch.nn.modules.batchnorm import _BatchNorm


class GlobalBatchNorm(_BatchNorm):
    """A BatchNorm (any number of dims) with batch statistics over every rank in training."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {input.dim()}-d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch = self.training or not self.track_running_stats
        if not use_batch or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        xf, c = x.float(), x.shape[1]
        count = torch.full((1,), xf.numel() / c, dtype=torch.float32, device=x.device)
        first = all_reduce(torch.cat([count, xf.sum(dims)]))  # two passes, as BatchNorm computes:
        n, mean = first[0], first[1:] / first[0]  # the mean, then the squared deviations
        shape = [1, c] + [1] * (x.dim() - 2)
        centred = xf - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n
        if self.training and self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp(min=1))
                self.num_batches_tracked.add_(1)
        y = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def _swap(module: nn.Module, to_global: bool) -> nn.Module:
    """A copy of ``module``'s BN layers as ``GlobalBatchNorm`` (or back), sharing parameters and buffers."""
    kind = nn.modules.batchnorm._BatchNorm
    out = module
    if (to_global and isinstance(module, kind) and not isinstance(module, GlobalBatchNorm)) or (
        not to_global and isinstance(module, GlobalBatchNorm)
    ):
        cls = GlobalBatchNorm if to_global else _RegularBatchNorm
        out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _swap(child, to_global))
    return out


class _RegularBatchNorm(_BatchNorm):
    def _check_input_dim(self, input: torch.Tensor) -> None:
        return


class GlobalBatchNormSync(LayerSync):
    """Lightning's ``LayerSync`` plugin for CPU processes (GPU: ``TorchSyncBatchNorm``)."""

    def apply(self, model: nn.Module) -> nn.Module:
        return _swap(model, True)

    def revert(self, model: nn.Module) -> nn.Module:
        return _swap(model, False)


def layer_sync(gpu: bool) -> LayerSync:
    return TorchSyncBatchNorm() if gpu else GlobalBatchNormSync()
