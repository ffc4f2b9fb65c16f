"""Short real fits on the embedded data: every method lowers its loss; SimSiam without
stop-gradient collapses (status ``collapsed``) where the default does not."""

import pytest

from ssl_bench.train import run
from tests.conftest import make_cfg

FIT = ["data.train_size=512", "trainer.max_epochs=4", "eval.initial=false", "optim=adamw",
       "optim.base_lr=2e-3"]


@pytest.mark.parametrize("method", ["simclr", "byol", "simsiam"])
def test_short_fit_lowers_the_loss(method, tmp_path):
    record = run(make_cfg(f"method={method}", *FIT), tmp_path, [], method)
    losses = [e["train/loss"] for e in record["epochs"]]
    assert record["status"] == "finished", record["error"]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05, losses


def test_simsiam_without_stop_gradient_collapses(tmp_path):
    budget = ["data.train_size=512", "data.batch_size=32", "trainer.max_epochs=6", "eval.initial=false",
              "optim=adamw", "optim.base_lr=5e-3"]
    collapsed = run(make_cfg("method=simsiam", "method.stop_grad=false", *budget), tmp_path / "nosg", [], "nosg")
    assert collapsed["status"] == "collapsed"
    assert collapsed["final"]["z_std_ratio"] < 0.1
    healthy = run(make_cfg("method=simsiam", *budget), tmp_path / "sg", [], "sg")
    assert healthy["status"] == "finished" and healthy["final"]["z_std_ratio"] > 0.5
    assert collapsed["epochs"][-1]["train/loss"] < healthy["epochs"][-1]["train/loss"] - 0.1   # trivially minimised
