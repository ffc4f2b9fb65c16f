import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ssl_bench.optim import build_optimizer, build_scheduler, scaled_lr, split_decay, warmup_cosine


def _cfg(**kw):
    base = dict(
        name="sgd",
        weight_decay=0.1,
        momentum=0.9,
        betas=[0.9, 0.999],
        eps=1e-8,
        trust_coeff=1e-3,
        scheduler="cosine",
        warmup_epochs=0,
        min_lr_ratio=0.0,
        exclude_bias_norm=True,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_lr_scaling_counts_devices_nodes_and_accumulation():
    assert scaled_lr(0.03, 512) == pytest.approx(0.06)
    assert scaled_lr(0.03, 128, world_size=4, accumulate=2) == pytest.approx(0.12)  # global 1024
    assert scaled_lr(0.3, 64, world_size=4, rule="sqrt") == pytest.approx(0.3)  # sqrt(256/256)
    assert scaled_lr(0.3, 1024, rule="sqrt") == pytest.approx(0.6)
    assert scaled_lr(0.1, 4096, rule="none") == 0.1
    with pytest.raises(ValueError):
        scaled_lr(0.1, 256, rule="cubic")


def test_split_decay_excludes_biases_and_norms():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    decay, no_decay = split_decay(model.named_parameters(), exclude_bias_norm=True)
    assert [p.shape for p in decay] == [torch.Size([4, 4])]
    assert len(no_decay) == 3
    decay, no_decay = split_decay(model.named_parameters(), exclude_bias_norm=False)
    assert len(decay) == 4 and not no_decay


def test_lars_excluded_group_is_plain_sgd_and_weights_are_adapted():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(8, 8))
    b = nn.Parameter(torch.randn(8))
    w_ref, b_ref = w.detach().clone(), b.detach().clone()
    opt = build_optimizer(
        [{"params": [w]}, {"params": [b], "weight_decay": 0.0}],
        _cfg(name="lars", weight_decay=1e-2, momentum=0.0),
        lr=0.5,
    )
    gw, gb = torch.randn(8, 8), torch.randn(8)
    w.grad, b.grad = gw.clone(), gb.clone()
    opt.step()
    # bias: excluded from adaptation and decay -> exactly b - lr * g
    assert torch.allclose(b.detach(), b_ref - 0.5 * gb)
    # weight: decayed, and the step scaled by the trust ratio eta |w| / (|g| + wd |w|) (You et al. 2017)
    trust = 1e-3 * w_ref.norm() / (gw.norm() + 1e-2 * w_ref.norm())
    assert torch.allclose(w.detach(), w_ref - 0.5 * trust * (gw + 1e-2 * w_ref), atol=1e-6)


def test_warmup_then_cosine():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine(80, 100, 0, schedule="constant") == 1.0


def test_fixed_lr_group_is_not_decayed():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = build_optimizer([{"params": [a]}, {"params": [b], "fixed_lr": True}], _cfg(), lr=1.0)
    sched = build_scheduler(opt, _cfg(), total_steps=10, steps_per_epoch=5)
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert opt.param_groups[1]["lr"] == 1.0
