"""Multi-crop (``augment.local_crops``) for every image method: the augmentation makes the small views,
each loss pairs them as SwAV / DINO do (a small view is never a target; it meets every global view), and
without small views every loss is the method's own two-view loss (its tests in test_methods.py,
test_losses.py and test_distributed.py still hold). The pairing is checked against a re-implementation
here, from the method's own heads and the pure loss functions."""

from __future__ import annotations

import pytest
import torch

from ssl_bench.config import ConfigError, validate
from ssl_bench.methods import METHODS
from ssl_bench.methods.losses import barlow_twins_loss, byol_loss, info_nce, negative_cosine, nt_xent, vicreg_terms
from ssl_bench.methods.multicrop import target_pairs, view_pairs
from ssl_bench.methods.registry import REGISTRY, image_methods

N_LOCAL = 2


def _model(cfg_factory, name: str, *extra: str):
    cfg = cfg_factory(f"method={name}", f"augment.local_crops={N_LOCAL}", *extra)
    torch.manual_seed(0)
    model = METHODS[name](cfg, num_classes=10)
    return model.eval()  # BN on running statistics: a view's output does not depend on its batch-mates


def _views(n: int = 8) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randn(n, 3, 32, 32, generator=g) for _ in range(2)] + [
        torch.randn(n, 3, 16, 16, generator=g) for _ in range(N_LOCAL)
    ]


def _mean(terms: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(terms).mean()


def test_the_pairs_are_the_two_view_terms_first_then_every_small_view_with_every_global():
    assert target_pairs(0) == [(0, 1), (1, 0)] and target_pairs(0, symmetric=False) == [(0, 1)]
    assert target_pairs(2) == [(0, 1), (1, 0), (2, 0), (2, 1), (3, 0), (3, 1)]  # (view, target): never 2 or 3
    assert target_pairs(1, symmetric=False) == [(0, 1), (2, 1)]
    assert view_pairs(0) == [(0, 1)] and view_pairs(2) == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3)]


def _online(model, x):
    return model.predictor(model.projector(model.backbone(x)))


def _target(model, x):
    return model.target_projector(model.target_backbone(x))


def _expected(model, name: str, views: list[torch.Tensor]) -> torch.Tensor:
    """The pairing written out: prediction-vs-target methods score every non-target view against each
    global target (sum-scaled methods keep their two-term scale), symmetric ones average every pair."""
    m = model.mcfg
    with torch.no_grad():
        if name == "byol":
            p, t = [_online(model, v) for v in views], [_target(model, v) for v in views[:2]]
            return 2 * _mean([byol_loss(p[v], t[k]) for v in range(4) for k in (0, 1) if v != k])
        if name == "simsiam":
            p, z = [_online(model, v) for v in views], [model.projector(model.backbone(v)) for v in views[:2]]
            return _mean([negative_cosine(p[v], z[k]) for v in range(4) for k in (0, 1) if v != k])
        if name == "mocov3":
            q, k = [_online(model, v) for v in views], [_target(model, v) for v in views[:2]]
            return 2 * _mean([info_nce(q[v], k[i], m.temperature) for v in range(4) for i in (0, 1) if v != i])
        z = [model.projector(model.backbone(v)) for v in views]
        pairs = [(a, b) for b in range(4) for a in range(b) if a < 2]  # every pair with a global view
        if name == "simclr":
            return _mean([nt_xent(z[a], z[b], m.temperature, m.normalize) for a, b in pairs])
        if name == "barlow_twins":
            return _mean([m.scale_loss * barlow_twins_loss(z[a], z[b], m.lambda_offdiag) for a, b in pairs])
        assert name == "vicreg"
        terms = [vicreg_terms(z[a], z[b], var_target=m.var_target, eps=m.var_eps) for a, b in pairs]
        return _mean([m.sim_weight * i + m.var_weight * v + m.cov_weight * c for i, v, c in terms])


@pytest.mark.parametrize("name", [m for m in image_methods() if m != "dino"])  # DINO: test_losses.py
def test_each_loss_pairs_the_small_views_as_swav_and_dino_do(cfg_factory, name):
    model = _model(cfg_factory, name)
    views = _views()
    with torch.no_grad():
        got = model.step(views).loss
    assert got == pytest.approx(float(_expected(model, name, views)), rel=1e-5)


@pytest.mark.parametrize("name", image_methods())
def test_the_small_views_train_the_online_network(cfg_factory, name):
    """Every small view gets a gradient (each is an online input), through the method's real augmentation:
    two global views at the image size, then the small ones at 96/224 of it."""
    extra = () if name != "dino" else ("method.out_dim=64", "method.head.hidden_dim=64")
    cfg = cfg_factory(f"method={name}", f"augment.local_crops={N_LOCAL}", *extra, tiny=name != "dino")
    torch.manual_seed(0)
    model = METHODS[name](cfg, num_classes=10).train()
    views = model.augment(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8))
    assert [v.shape[-1] for v in views] == [32, 32, 14, 14]
    views = [v.detach().requires_grad_(True) for v in views]
    model.step(views).loss.backward()
    assert all(v.grad is not None and torch.count_nonzero(v.grad) > 0 for v in views[2:])


def test_every_image_method_accepts_local_crops_and_the_text_method_refuses_them(cfg_factory):
    assert all(REGISTRY[m].multicrop for m in image_methods())
    cfg = cfg_factory("method=mlm", tiny=False)
    cfg.augment.local_crops = 2
    with pytest.raises(ConfigError, match="augment.local_crops=2: method=mlm"):
        validate(cfg)


def test_local_crops_need_the_batched_augmentation(cfg_factory):
    """The small views are cut from whole images on the batch; a loader that crops per image cannot."""
    with pytest.raises(ConfigError, match="needs the batched augmentation on whole images"):
        cfg_factory("method=byol", "augment.local_crops=2", "augment.backend=torchvision")


def test_a_multi_crop_run_through_the_cli(tmp_path, monkeypatch):
    """``ssl-bench method=byol augment.local_crops=2``: trains (2 steps), evaluates, records the setting."""
    from ssl_bench import app
    from ssl_bench.tracking.record import load_record
    from tests.test_registry_cli import IMAGE, STEPS, _command

    monkeypatch.chdir(tmp_path)
    argv = ["ssl-bench", "method=byol", "augment.local_crops=2", *IMAGE, *REGISTRY["byol"].smoke, *STEPS]
    threads = torch.get_num_threads()
    try:
        assert _command(app.main, [*argv, "eval.final=true", f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    finally:
        torch.set_num_threads(threads)  # the run set one thread for this process
    rec = load_record(tmp_path / "run")
    assert rec["status"] in ("finished", "collapsed") and rec["config"]["augment"]["local_crops"] == 2
    assert rec["checkpoint"]["step"] == 4 and all(torch.isfinite(torch.tensor(e["train/loss"])) for e in rec["epochs"])
    assert 0.0 <= rec["final"]["knn_acc"] <= 1.0
