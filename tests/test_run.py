"""End-to-end runs on tiny settings: records, W&B offline files read back by wandb's own reader,
statuses (finished / diverged / failed) and the W&B run closed after a failure."""

import json

import pytest

from ssl_bench.train import run
from tests.conftest import isolate_wandb, make_cfg, wandb_leet


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    isolate_wandb(monkeypatch, tmp_path / "home")


def _leet(run_dir: str) -> dict:
    return json.loads(wandb_leet(run_dir, "--summary"))


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    isolate_wandb(mp, tmp_path_factory.mktemp("home"))
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg(
        "logger=wandb", "trainer.max_epochs=2", "trainer.checkpoint=true", "logger.tags=[unit]", "logger.group=g1"
    )
    record = run(cfg, out, ["logger=wandb", "trainer.max_epochs=2"], "unit-run")
    yield record, out
    mp.undo()


def test_record_holds_what_it_should(wandb_run):
    record, out = wandb_run
    on_disk = json.loads((out / "record.json").read_text())
    assert on_disk == json.loads(json.dumps(record, default=str))
    assert on_disk["status"] == "finished"
    assert on_disk["overrides"] == ["logger=wandb", "trainer.max_epochs=2"]
    assert on_disk["config"]["method"]["name"] == "simclr" and on_disk["seed"] == 0
    assert set(on_disk["versions"]) >= {"python", "torch", "pytorch-lightning", "hydra-core", "timm", "wandb"}
    assert "revision" in on_disk["git"]
    assert [e["epoch"] for e in on_disk["epochs"]] == [0, 1]
    for key in ("val/knn_acc", "val/online_probe_acc", "val/z_std", "val/rankme", "train/loss", "train/img_per_s"):
        assert key in on_disk["epochs"][-1], key
    for part in ("init", "final"):
        assert set(on_disk[part]) >= {"knn_acc", "linear_acc", "rankme", "z_std"}
    assert on_disk["best"]["val/knn_acc"] == max(e["val/knn_acc"] for e in on_disk["epochs"])
    assert on_disk["timings"]["img_per_s"] > 0 and on_disk["timings"]["wall_s"] > 0
    entry = on_disk["checkpoint"]
    assert entry["path"] == "checkpoints/last.ckpt" and (out / entry["path"]).is_file()
    assert entry["epoch"] == 1 and entry["step"] == on_disk["epochs"][-1]["step"] == on_disk["evaluated_at"]["step"]
    assert on_disk["run_id"] == entry["run_id"] and on_disk["attempt"] == 1 and on_disk["attempts"] == []
    assert on_disk["wandb"]["mode"] == "offline"
    text = (out / "record.json").read_text().lower()
    assert "api_key" not in text and "netrc" not in text


def test_offline_wandb_run_read_back_with_wandbs_reader(wandb_run):
    record, out = wandb_run
    info = _leet(record["wandb"]["dir"])
    assert info["state"] == "finished" and info["run_id"] == record["wandb"]["id"]
    assert info["project"] == "ssl-bench" and info["tags"] == ["unit"]
    assert info["config"]["method"]["temperature"] == record["config"]["method"]["temperature"]
    assert info["config"]["data"]["train_size"] == 256
    summary = info["summary"]
    assert summary["final/knn_acc"] == pytest.approx(record["final"]["knn_acc"])
    assert summary["best/val/knn_acc"] == pytest.approx(record["best"]["val/knn_acc"])
    assert summary["init/knn_acc"] == pytest.approx(record["init"]["knn_acc"])
    assert summary["status"] == "finished"
    assert "val/knn_acc" in summary and "train/loss_epoch" in summary


def test_exploding_lr_ends_as_diverged(tmp_path):
    cfg = make_cfg("optim.base_lr=1e30", "trainer.max_epochs=3", "eval.initial=false")
    record = run(cfg, tmp_path, [], "diverge")
    assert record["status"] == "diverged"
    assert "loss is nan" in record["error"]["message"] or "loss is inf" in record["error"]["message"]
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "diverged"


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import torch

    from ssl_bench.methods.simclr import SimCLR

    original = SimCLR.step

    def nan_after_first_epoch(self, views):
        out = original(self, views)
        if self.global_step >= 6:  # 4 steps per epoch: epoch 1, third step
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(SimCLR, "step", nan_after_first_epoch)
    cfg = make_cfg("trainer.max_epochs=3", "trainer.checkpoint=true", "eval.initial=false")
    record = run(cfg, tmp_path, [], "nan")
    assert record["status"] == "diverged" and "at step 6" in record["error"]["message"]
    assert [e["epoch"] for e in record["epochs"]] == [0]
    assert record["checkpoint"]["epoch"] == 0 and record["final"] == {}
    ckpt = torch.load(tmp_path / record["checkpoint"]["path"], map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_failure_is_recorded_and_wandb_run_closed(offline_env, tmp_path, monkeypatch):
    from ssl_bench.methods.simclr import SimCLR

    def broken(self, views):
        raise RuntimeError("boom in step")

    monkeypatch.setattr(SimCLR, "step", broken)
    cfg = make_cfg("logger=wandb", "eval.initial=false")
    with pytest.raises(RuntimeError, match="boom in step"):
        run(cfg, tmp_path, [], "broken")
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and record["error"]["message"] == "boom in step"
    info = _leet(record["wandb"]["dir"])
    assert info["state"] != "running" and info["exit_code"] == 1


def test_csv_and_none_loggers(tmp_path):
    rec = run(make_cfg("logger=csv", "eval.initial=false", "eval.final=false"), tmp_path / "csv", [], "csv")
    assert rec["status"] == "finished" and rec["wandb"] is None
    assert (tmp_path / "csv" / "csv" / "metrics.csv").is_file()
    rec = run(make_cfg("logger=none", "eval.initial=false", "eval.final=false"), tmp_path / "none", [], "none")
    assert rec["status"] == "finished" and (tmp_path / "none" / "record.json").is_file()
