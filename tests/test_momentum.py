import math

import pytest
import torch
from torch import nn

from ssl_bench.models.momentum import make_target, tau_at, update_momentum


def test_ema_arithmetic():
    online = nn.Linear(2, 1)
    target = make_target(online)
    with torch.no_grad():
        online.weight.fill_(1.0)
        online.bias.fill_(2.0)
        target.weight.fill_(0.0)
        target.bias.fill_(0.0)
    update_momentum(online, target, tau=0.9)
    assert torch.allclose(target.weight, torch.full_like(target.weight, 0.1))
    assert torch.allclose(target.bias, torch.tensor([0.2]))
    update_momentum(online, target, tau=0.9)  # 0.9 * 0.1 + 0.1 * 1
    assert torch.allclose(target.weight, torch.full_like(target.weight, 0.19))
    assert all(not p.requires_grad for p in target.parameters())


def test_tau_one_freezes_and_zero_copies():
    online, target = nn.Linear(3, 3), nn.Linear(3, 3)
    before = target.weight.clone()
    update_momentum(online, target, tau=1.0)
    assert torch.equal(target.weight, before)
    update_momentum(online, target, tau=0.0)
    assert torch.equal(target.weight, online.weight)


def test_cosine_tau_schedule_end_points():
    assert tau_at(0, 100, 0.996) == pytest.approx(0.996)
    assert tau_at(100, 100, 0.996) == pytest.approx(1.0)
    assert tau_at(50, 100, 0.99) == pytest.approx(1 - 0.01 * 0.5)
    assert tau_at(150, 100, 0.99) == pytest.approx(1.0)  # clamped past the end
    values = [tau_at(k, 100, 0.9) for k in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:]))  # monotone towards 1
    assert tau_at(70, 100, 0.99, "constant") == 0.99
    assert tau_at(30, 100, 0.9) == pytest.approx(1 - 0.1 * (math.cos(math.pi * 0.3) + 1) / 2)
