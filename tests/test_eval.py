import math

import torch

from ssl_bench.eval.knn import knn_accuracy, knn_predict
from ssl_bench.eval.linear import fit_linear_probe
from ssl_bench.eval.metrics import normalized_std, normalized_std_ratio, rankme


def test_weighted_knn_votes():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    scores = knn_predict(torch.tensor([[1.0, 0.05]]), bank, labels, num_classes=2, k=2, temperature=0.1)
    assert scores[0, 1] == 0 and scores[0, 0] > 0  # both nearest neighbours are class 0
    q = torch.tensor([[0.1, 1.0], [1.0, 0.0]])
    assert knn_accuracy(q, torch.tensor([1, 0]), bank, labels, 2, k=1) == 1.0


def test_linear_probe_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 32, generator=g) * 3
    y = torch.arange(1000) % 5
    x = centers[y] + torch.randn(1000, 32, generator=g)
    res = fit_linear_probe(x[:800], y[:800], x[800:], y[800:], 5, epochs=30)
    assert res["top1"] > 0.99 and res["top5"] == 1.0


def test_collapse_std_and_rankme():
    z = torch.randn(4096, 64)
    assert math.isclose(normalized_std(z), 1 / math.sqrt(64), rel_tol=0.05)
    assert math.isclose(normalized_std_ratio(z), 1.0, rel_tol=0.05)
    collapsed = torch.ones(512, 64) + 1e-6 * torch.randn(512, 64)
    assert normalized_std(collapsed) < 1e-4
    assert rankme(z) > 55
    assert rankme(torch.randn(512, 1) @ torch.randn(1, 64)) < 1.5


def test_collapse_status_catches_constant_and_rank_one_outputs(cfg_factory):
    """Collapsed = constant output (spread ~0) or output on a line (effective rank ~1, the SimSiam
    without predictor case where the projector's output BN keeps the spread up)."""
    from ssl_bench.methods import METHODS

    model = METHODS["simsiam"](cfg_factory("method=simsiam"), num_classes=10)
    healthy = {"z_std_ratio": 0.98, "z_rank": 6.4}
    assert model.final_status(healthy) == "finished"
    assert model.final_status({**healthy, "z_std_ratio": 0.006}) == "collapsed"
    line = torch.randn(500, 1) * torch.randn(1, 64) + 0.01 * torch.randn(500, 64)  # rank one plus noise
    spread = torch.randn(500, 64)
    assert rankme(line) < 2 < rankme(spread)
    assert model.final_status({"z_std_ratio": 0.39, "z_rank": rankme(line)}) == "collapsed"
    assert model.final_status({"z_std_ratio": 0.39, "z_rank": rankme(spread)}) == "finished"
