import pytest
import torch

from ssl_bench.methods import METHODS
from ssl_bench.models.heads import MLP


def _build(cfg):
    torch.manual_seed(0)
    return METHODS[cfg.method.name](cfg, num_classes=10)


def _views(n=16):
    return [torch.randn(n, 3, 32, 32), torch.randn(n, 3, 32, 32)]


def _input_grads(model):
    x1, x2 = (v.requires_grad_(True) for v in _views())
    model.step([x1, x2]).loss.backward()
    return x1.grad, x2.grad


def test_simsiam_stop_gradient_blocks_the_target_branch(cfg_factory):
    """Asymmetric loss D(p1, sg(z2)): view 2 is only a target, so no gradient reaches it."""
    g1, g2 = _input_grads(_build(cfg_factory("method=simsiam", "method.symmetric=false")))
    assert g1 is not None and torch.count_nonzero(g1) > 0
    assert g2 is None


def test_simsiam_without_stop_gradient_lets_gradient_through(cfg_factory):
    g1, g2 = _input_grads(_build(cfg_factory("method=simsiam", "method.symmetric=false", "method.stop_grad=false")))
    assert torch.count_nonzero(g1) > 0 and torch.count_nonzero(g2) > 0


def test_byol_asymmetric_target_view_gets_no_gradient(cfg_factory):
    g1, g2 = _input_grads(_build(cfg_factory("method=byol", "method.symmetric=false")))
    assert torch.count_nonzero(g1) > 0 and g2 is None


def test_byol_target_gets_no_gradient_and_follows_ema(cfg_factory):
    model = _build(cfg_factory("method=byol", "method.tau_schedule=constant", "method.tau_base=0.5"))
    out = model.step(_views())
    out.loss.backward()
    assert all(p.grad is None for p in model.target_backbone.parameters())
    assert all(p.grad is None for p in model.target_projector.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    from ssl_bench.models.momentum import update_momentum

    online = next(model.backbone.parameters()).detach().clone()
    target = next(model.target_backbone.parameters()).detach().clone()
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1.0)
    update_momentum(model.backbone, model.target_backbone, 0.5)
    assert torch.allclose(next(model.target_backbone.parameters()), 0.5 * target + 0.5 * (online + 1.0))


def test_predictor_modes(cfg_factory):
    none = _build(cfg_factory("method=simsiam", "method.predictor=none"))
    assert isinstance(none.predictor, torch.nn.Identity)
    frozen = _build(cfg_factory("method=byol", "method.predictor=frozen_random"))
    assert all(not p.requires_grad for p in frozen.predictor.parameters())
    groups = _build(cfg_factory("method=simsiam")).param_groups()
    assert groups[1]["fixed_lr"] is True and all(n.startswith("predictor.") for n, _ in groups[1]["named"])


def test_simsiam_bn_placement():
    """Projector: BN after every layer incl. the output; predictor: BN on the hidden layer only."""
    proj = MLP(32, "mlp", 2, 64, 16, hidden_bn=True, last_bn=True)
    pred = MLP(16, "mlp", 2, 8, 16, hidden_bn=True, last_bn=False)
    assert isinstance(proj[-1], torch.nn.BatchNorm1d) and not proj[-1].affine
    assert isinstance(pred[-1], torch.nn.Linear) and isinstance(pred[1], torch.nn.BatchNorm1d)
    assert isinstance(MLP(32, "linear", out_dim=8)[0], torch.nn.Linear)
    assert isinstance(MLP(32, "none")[0], torch.nn.Identity)
    assert len([m for m in MLP(32, "mlp", 3, 64, 8) if isinstance(m, torch.nn.Linear)]) == 3


def test_simclr_projector_none_uses_backbone_features(cfg_factory):
    model = _build(cfg_factory("method=simclr", "method.projector.type=none"))
    out = model.step(_views())
    assert out.embedding.shape[1] == model.feat_dim


def test_channels_last_changes_layout_not_results(cfg_factory):
    cfg = cfg_factory("method=simclr")
    views = _views()
    model = _build(cfg)
    model.eval()
    with torch.no_grad():
        ref = model.step(views).loss
        feats = model.backbone(views[0])
        model._channels_last = True
        model.to(memory_format=torch.channels_last)
        cl_views = [model._layout(v) for v in views]
        assert cl_views[0].is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(model.step(cl_views).loss, ref, atol=1e-4)
        assert torch.allclose(model.backbone(cl_views[0]), feats, atol=1e-4)


@pytest.mark.slow
def test_compiled_backbone_matches_eager(cfg_factory):
    model = _build(cfg_factory("method=simclr"))
    model.eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        eager = model.backbone(x)
        model.backbone.compile()
        compiled = model.backbone(x)
    assert torch.allclose(eager, compiled, atol=1e-4)
    assert all("_orig_mod" not in k for k in model.state_dict())


def test_dino_records_its_output_entropy_and_calls_both_of_its_collapses(cfg_factory):
    """The uniform collapse (no sharpening) that spread and rank miss, and the one-dimension one (no
    centering), from the entropy of softmax(z / student_temp) as a share of log K (DINO Fig. 7)."""
    from ssl_bench.methods.dino import DINO
    from ssl_bench.methods.registry import REGISTRY

    small = ("backbone.model_kwargs.widths=[8,16,16,32]", *REGISTRY["dino"].smoke)
    model = DINO(cfg_factory("method=dino", *small, tiny=False), num_classes=10)
    k = model.mcfg.out_dim
    g = torch.Generator().manual_seed(0)
    healthy = torch.randn(256, k, generator=g) * 0.5
    uniform = torch.randn(256, 1, generator=g).expand(256, k) * 3  # a per-image shift: softmax uniform
    dominant = torch.zeros(256, k)
    dominant[:, 3] = 2.0  # one dimension wins every image
    h = model.output_metrics(healthy)
    assert h["mean_output_entropy"] > 0.2 and h["output_entropy"] < 0.99
    assert model.final_status({**h, "z_std_ratio": 0.9, "z_rank": 30.0}) == "finished"
    u = model.output_metrics(uniform)
    assert u["output_entropy"] == pytest.approx(1.0) and u["mean_output_entropy"] == pytest.approx(1.0)
    assert model.final_status({**u, "z_std_ratio": 0.9, "z_rank": 30.0}) == "collapsed"  # spread and rank look fine
    d = model.output_metrics(dominant)
    assert d["mean_output_entropy"] < 0.2
    assert model.final_status({**d, "z_std_ratio": 0.9, "z_rank": 30.0}) == "collapsed"
    assert model.output_metrics(torch.zeros(4, k))["output_entropy"] == pytest.approx(1.0)
