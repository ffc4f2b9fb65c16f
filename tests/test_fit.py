"""Short real fits on the embedded data: every method lowers its loss; SimSiam without
stop-gradient collapses (status ``collapsed``) where the default does not."""

import pytest

from ssl_bench.train import run
from tests.conftest import make_cfg

FIT = ["data.train_size=512", "trainer.max_epochs=4", "eval.initial=false", "optim=adamw", "optim.base_lr=2e-3"]


@pytest.mark.parametrize("method", ["simclr", "byol", "simsiam"])
def test_short_fit_lowers_the_loss(method, tmp_path):
    record = run(make_cfg(f"method={method}", *FIT), tmp_path, [], method)
    losses = [e["train/loss"] for e in record["epochs"]]
    assert record["status"] == "finished", record["error"]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05, losses


def test_simsiam_without_stop_gradient_collapses(tmp_path):
    budget = [
        "data.train_size=512",
        "data.batch_size=32",
        "trainer.max_epochs=6",
        "eval.initial=false",
        "optim=adamw",
        "optim.base_lr=5e-3",
    ]
    collapsed = run(make_cfg("method=simsiam", "method.stop_grad=false", *budget), tmp_path / "nosg", [], "nosg")
    assert collapsed["status"] == "collapsed"
    assert collapsed["final"]["z_std_ratio"] < 0.1
    healthy = run(make_cfg("method=simsiam", *budget), tmp_path / "sg", [], "sg")
    assert healthy["status"] == "finished" and healthy["final"]["z_std_ratio"] > 0.5
    assert collapsed["epochs"][-1]["train/loss"] < healthy["epochs"][-1]["train/loss"] - 0.1  # trivially minimised


def test_torchvision_backend_fit_learns(tmp_path):
    """The per-image path (transforms v2 in the loader) trains the same method."""
    record = run(make_cfg("augment.backend=torchvision", *FIT), tmp_path, [], "tv")
    losses = [e["train/loss"] for e in record["epochs"]]
    assert record["status"] == "finished", record["error"]
    assert losses[-1] < losses[0] - 0.05, losses


def test_unlabelled_training_images_train_no_probe(cfg_factory):
    """Label -1 (unlabelled pretraining images, e.g. STL-10's) gives the online probe no loss and no gradient."""
    import torch

    from ssl_bench.methods import METHODS

    cfg = cfg_factory("method=simclr")
    model = METHODS["simclr"](cfg, num_classes=10)
    model.trainer = type("T", (), {"log_every_n_steps": 1000, "world_size": 1})()
    model.log = model.log_dict = lambda *a, **k: None
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    total = model.training_step((x, torch.full((8,), -1)), 1)
    total.backward()
    assert torch.isfinite(total) and model.probe.weight.grad.abs().sum() == 0
    model.zero_grad()
    model.training_step((x, torch.arange(8)), 1).backward()
    assert model.probe.weight.grad.abs().sum() > 0


def test_byol_target_follows_every_optimizer_step_under_accumulation(tmp_path, monkeypatch):
    """With accumulate_grad_batches=3 and 10 batches an epoch Lightning steps the optimizer 4 times an
    epoch (after batches 3, 6, 9 and the last, partial accumulation): the EMA target follows each step."""
    import ssl_bench.models.momentum as momentum

    calls: list[float] = []
    real = momentum.update_momentum

    def counting(online, target, tau):
        calls.append(tau)  # two calls per update: backbone, projector
        real(online, target, tau)

    monkeypatch.setattr(momentum, "update_momentum", counting)
    record = run(
        make_cfg(
            "method=byol",
            "data.train_size=320",
            "data.batch_size=32",
            "trainer.max_epochs=2",
            "trainer.accumulate_grad_batches=3",
            "eval.initial=false",
            "eval.final=false",
        ),
        tmp_path,
        [],
        "byol-accum",
    )
    assert record["status"] == "finished", record["error"]
    assert record["epochs"][-1]["step"] == 8
    taus = calls[::2]
    assert calls[1::2] == taus and len(taus) == 8  # the old batch-index test skipped the partial steps: 6
    assert taus == sorted(taus) and taus[-1] == 1.0  # the cosine schedule, one value per optimizer step
