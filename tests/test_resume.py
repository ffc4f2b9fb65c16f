"""Resuming an interrupted run (``resume=auto``) ends where the uninterrupted run ends: same final
loss and evaluation, one record holding every epoch once, the random-init evaluation kept."""

import json

import pytest
import torch

from ssl_bench.config import ConfigError
from ssl_bench.train import run
from tests.conftest import isolate_wandb, make_cfg

EPOCHS = ["trainer.max_epochs=4", "trainer.checkpoint=true", "trainer.deterministic=true", "trainer.num_threads=1"]


class Preempted(RuntimeError):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    mp = pytest.MonkeyPatch()
    try:
        full = run(make_cfg(*EPOCHS), tmp_path_factory.mktemp("full"), [], "full")

        from ssl_bench.methods.simclr import SimCLR

        def preempt_at_epoch_2(self):
            if self.current_epoch == 2:
                raise Preempted("job preempted")

        out = tmp_path_factory.mktemp("resumed")
        mp.setattr(SimCLR, "on_train_epoch_start", preempt_at_epoch_2, raising=False)
        with pytest.raises(Preempted):
            run(make_cfg(*EPOCHS, "resume=auto"), out, [], "resumed")  # no checkpoint yet: a fresh start
        interrupted = json.loads((out / "record.json").read_text())
        interrupted["_ckpt_epoch"] = torch.load(
            out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
        )["epoch"]
        mp.undo()
        resumed = run(make_cfg(*EPOCHS, "resume=auto"), out, ["resume=auto"], "resumed")
        yield full, interrupted, resumed, out
    finally:
        mp.undo()
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def test_interrupted_run_left_a_checkpoint_after_epoch_2(runs):
    interrupted = runs[1]
    assert interrupted["status"] == "failed" and interrupted["resumed_from"] is None
    assert interrupted["checkpoint"]["epoch"] == 1 and interrupted["checkpoint"]["path"] == "checkpoints/last.ckpt"
    assert [e["epoch"] for e in interrupted["epochs"]] == [0, 1]
    assert interrupted["_ckpt_epoch"] == 1  # the end of the second epoch (0-based)


def test_resumed_run_ends_where_the_uninterrupted_run_ends(runs):
    full, _, resumed, _ = runs
    assert resumed["status"] == "finished"
    assert [e["epoch"] for e in resumed["epochs"]] == [0, 1, 2, 3]
    for a, b in zip(full["epochs"], resumed["epochs"]):
        assert a["step"] == b["step"]
        for key in ("train/loss", "val/knn_acc", "val/online_probe_acc", "val/z_std", "val/rankme"):
            assert b[key] == a[key], (a["epoch"], key)
    assert set(resumed["final"]) == set(full["final"])
    for key, value in full["final"].items():
        assert resumed["final"][key] == value, key
    assert resumed["best"] == full["best"]


def test_resumed_record_continues_the_interrupted_one(runs):
    _, interrupted, resumed, out = runs
    ckpt = out / "checkpoints" / "last.ckpt"
    assert resumed["resumed_from"] == str(ckpt)
    assert resumed["started_at"] == interrupted["started_at"]
    assert resumed["init"] == interrupted["init"] and resumed["init"]  # not evaluated again
    assert resumed["epochs"][:2] == interrupted["epochs"] and resumed["wandb"] is None
    assert resumed["error"] is None and resumed["checkpoint"]["path"] == "checkpoints/last.ckpt"
    assert resumed["checkpoint"]["epoch"] == 3 and resumed["run_id"] == interrupted["run_id"]
    assert [a["status"] for a in resumed["attempts"]] == ["failed"] and resumed["attempt"] == 2
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"] == 3


def test_resume_values_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="resume="):
        make_cfg(f"resume={tmp_path}/missing.ckpt")
    assert make_cfg("resume=auto").resume == "auto" and make_cfg().resume is None


def test_resume_continues_the_same_wandb_run(tmp_path, monkeypatch):
    isolate_wandb(monkeypatch, tmp_path / "home")
    from ssl_bench.methods.simclr import SimCLR

    def preempt_at_epoch_1(self):
        if self.current_epoch == 1:
            raise Preempted("job preempted")

    overrides = [
        "logger=wandb",
        "trainer.max_epochs=2",
        "trainer.checkpoint=true",
        "eval.initial=false",
        "eval.final=false",
        "resume=auto",
    ]
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(SimCLR, "on_train_epoch_start", preempt_at_epoch_1, raising=False)
        with pytest.raises(Preempted):
            run(make_cfg(*overrides), out, [], "wb")
    first = json.loads((out / "record.json").read_text())
    assert first["status"] == "failed" and first["wandb"]["id"]
    resumed = run(make_cfg(*overrides), out, [], "wb")
    assert resumed["status"] == "finished" and resumed["wandb"]["id"] == first["wandb"]["id"]
    assert [e["epoch"] for e in resumed["epochs"]] == [0, 1]
