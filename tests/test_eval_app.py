"""``ssl-bench-eval`` on a tiny pretraining run: the eval record and its link to the pretraining run,
the feature cache, the linear probe on separable features, the backbone export loaded without
ssl-bench, the W&B eval run in the pretraining run's group, and one-line input errors (exit 2)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ssl_bench.eval import app
from ssl_bench.eval.export import export_backbone, export_is_current
from ssl_bench.eval.linear import fit_linear_probe
from ssl_bench.methods import SimCLR
from ssl_bench.tracking.record import load_record
from ssl_bench.train import run
from tests.conftest import TINY, isolate_wandb, make_cfg, wandb_leet

torch.set_num_threads(1)

# TINY with a small timm ResNet instead of the convnet (its widths override is the convnet's)
RESNET_TINY = [o for o in TINY if not o.startswith("backbone.")] + [
    "backbone=resnet_tiny",
    "backbone.model_kwargs.channels=[8,16,16,32]",
    "trainer.checkpoint=true",
    "trainer.num_threads=1",
    "eval.initial=false",
    "eval.final=false",
]
FAST = ["linear.epochs=5", "knn.k=20", "num_threads=1"]


def _main(*overrides: str) -> None:
    """``ssl-bench-eval OVERRIDES`` in this process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", [app.PROG, *overrides])
        app.main()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A one-epoch SimCLR run on resnet_tiny, logged to W&B offline (no credentials) in group g-eval."""
    mp = pytest.MonkeyPatch()
    isolate_wandb(mp, tmp_path_factory.mktemp("home"))
    out = tmp_path_factory.mktemp("pretrain")
    record = run(make_cfg(*RESNET_TINY, "logger=wandb", "logger.group=g-eval", tiny=False), out, [], "tiny-pre")
    assert record["status"] == "finished" and record["wandb"]["group"] == "g-eval"
    yield out
    mp.undo()


@pytest.fixture(scope="module")
def evaluated(pretrained: Path) -> tuple[dict, Path]:
    """``ssl-bench-eval source=<run dir>`` with the default output folder and the W&B logger."""
    _main(f"source={pretrained}", "logger=wandb", *FAST)
    (path,) = pretrained.glob("eval/*/record.json")
    return json.loads(path.read_text()), path.parent


def test_eval_record_points_to_the_pretraining_run(pretrained, evaluated):
    record, out = evaluated
    pre = load_record(pretrained)
    assert out.parent == pretrained / "eval"
    assert record["job_type"] == "eval" and record["status"] == "finished" and record["error"] is None
    assert record["pretrain"] == {
        "run_dir": str(pretrained.resolve()),
        "record": str((pretrained / "record.json").resolve()),
        "checkpoint": str((pretrained / pre["checkpoint"]["path"]).resolve()),
        "run_id": pre["run_id"],
        "wandb_id": pre["wandb"]["id"],
        "name": "tiny-pre",
        "method": "simclr",
        "backbone": "resnet18",
    }
    final = record["final"]
    assert set(final) == {"linear_top1", "linear_top5", "knn_acc", "n_eval"}
    assert final["n_eval"] == 64  # the evaluation split's size
    assert all(0.0 <= final[k] <= 1.0 for k in ("linear_top1", "linear_top5", "knn_acc"))  # fractions
    assert final["linear_top5"] >= final["linear_top1"]
    assert record["config"]["data"]["train_size"] == 256  # the pretraining run's data config
    timings = record["timings"]
    assert timings["features_cached"] is False and timings["features_s"] > 0 and timings["wall_s"] > 0
    cache = Path(record["features"]["path"])
    assert cache.parent == (pretrained / "features").resolve() and cache.is_file()
    assert record["features"] == {"path": str(cache), "cached": False, "train": 256, "eval": 64, "dim": 32}


def test_second_call_hits_the_feature_cache(pretrained, evaluated, tmp_path):
    first, _ = evaluated
    _main(f"source={pretrained / 'record.json'}", "logger=none", f"hydra.run.dir={tmp_path}", *FAST)
    second = json.loads((tmp_path / "record.json").read_text())
    assert second["timings"]["features_cached"] is True
    assert second["features"]["path"] == first["features"]["path"]
    assert second["final"] == pytest.approx(first["final"])  # same features and seed, same probe
    assert second["wandb"] is None and second["pretrain"]["checkpoint"] == first["pretrain"]["checkpoint"]


def test_linear_probe_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(10, 64, generator=g) * 3
    y = torch.arange(2000) % 10
    x = centers[y] + torch.randn(2000, 64, generator=g)
    for optimizer, lr in (("sgd", 0.1), ("adamw", 0.01)):
        losses: list[float] = []
        res = fit_linear_probe(
            x[:1500],
            y[:1500],
            x[1500:],
            y[1500:],
            10,
            epochs=20,
            lr=lr,
            batch_size=256,
            optimizer=optimizer,
            on_epoch=lambda epoch, loss, out=losses: out.append(loss),
        )
        assert res["top1"] >= 0.99 and res["top5"] >= res["top1"], optimizer
        assert len(losses) == 20 and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="optimizer='lbfgs'"):
        fit_linear_probe(x, y, x, y, 10, epochs=1, optimizer="lbfgs")


def test_exported_backbone_loads_with_timm_alone(pretrained, evaluated, tmp_path):
    record, _ = evaluated
    assert record["export"] == str((pretrained / "backbone.pt").resolve())
    meta = json.loads((pretrained / "backbone.json").read_text())
    assert (meta["framework"], meta["name"], meta["stem"], meta["stem_stride"]) == ("timm", "resnet18", "small", 2)
    assert meta["model_kwargs"] == {"layers": [1, 1, 1, 1], "channels": [8, 16, 16, 32]}
    assert meta["num_features"] == 32 and meta["image_size"] == 32 and len(meta["how_to_load"]) == 4
    assert export_is_current(pretrained, record["pretrain"]["checkpoint"])
    state = torch.load(pretrained / "backbone.pt", map_location="cpu", weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.save(images, tmp_path / "images.pt")
    code = "\n".join(
        [
            *meta["how_to_load"],
            f"mean, std = {meta['mean']}, {meta['std']}",
            f"images = torch.load({str(tmp_path / 'images.pt')!r})",
            "with torch.no_grad():",
            "    " + meta["preprocess"],
            f"torch.save(features, {str(tmp_path / 'features.pt')!r})",
            "import sys; assert 'ssl_bench' not in sys.modules, 'ssl_bench was imported'",
        ]
    )
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", code], cwd=pretrained, env=env, check=True, timeout=120)

    ckpt = torch.load(record["pretrain"]["checkpoint"], map_location="cpu", weights_only=True)
    model = SimCLR(OmegaConf.create(ckpt["hyper_parameters"]["cfg"]), ckpt["hyper_parameters"]["num_classes"])
    model.load_state_dict(ckpt["state_dict"])
    with torch.no_grad():
        expected = model.eval()(images)
    assert torch.allclose(torch.load(tmp_path / "features.pt"), expected, rtol=1e-4, atol=1e-5)


def test_convnet_export_rebuilds_with_plain_torch(tmp_path, monkeypatch):
    model = SimCLR(make_cfg(), num_classes=10).eval()  # TINY: convnet of widths 8-16-16-32
    path = export_backbone(model, tmp_path)
    meta = json.loads((tmp_path / "backbone.json").read_text())
    assert path == tmp_path / "backbone.pt" and meta["framework"] == "torch" and meta["checkpoint"] is None
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec("\n".join(meta["how_to_load"]), namespace)  # the snippet imports torch only
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(namespace["model"](x), model.backbone(x), atol=1e-6)


def test_eval_run_is_in_the_pretraining_runs_wandb_group(pretrained, evaluated):
    record, _ = evaluated
    pre = load_record(pretrained)
    info = json.loads(wandb_leet(record["wandb"]["dir"], "--summary"))
    assert info["state"] == "finished" and info["exit_code"] == 0 and info["name"] == "eval-tiny-pre"
    assert info["project"] == pre["wandb"]["project"]
    assert info["config"]["pretrain"]["wandb_id"] == pre["wandb"]["id"]
    assert info["summary"]["final/linear_top1"] == pytest.approx(record["final"]["linear_top1"])
    assert info["summary"]["final/knn_acc"] == pytest.approx(record["final"]["knn_acc"])
    runs = [
        json.loads(line)["run"]
        for line in wandb_leet(record["wandb"]["dir"]).splitlines()
        if line.startswith("{") and json.loads(line).get("type") == "run"
    ]
    assert runs and runs[0]["job_type"] == "eval" and runs[0]["run_group"] == pre["wandb"]["group"] == "g-eval"


def test_bad_source_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "nope"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_bench.eval.app", f"source={missing}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"ssl-bench-eval: error: source={missing}: no such file or folder"]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "source: missing"),
        ("no_checkpoint", "no checkpoint in"),
        ("unknown_key", "unknown key 'linear.epoch'. Did you mean 'linear.epochs'?"),
        ("mlm", "a text run (method=mlm)"),
    ],
)
def test_input_errors_exit_2_with_one_line(case, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "record.json").write_text(json.dumps({"name": "r", "config": {}}))
    mlm = tmp_path / "mlm.ckpt"
    torch.save({"hyper_parameters": {"cfg": {"method": {"name": "mlm"}}}, "state_dict": {}}, mlm)
    args = {
        "missing": [],
        "no_checkpoint": [f"source={run_dir}"],
        "mlm": [f"source={mlm}"],
        "unknown_key": [f"source={mlm}", "+linear.epoch=3"],
    }[case]
    with pytest.raises(SystemExit) as exc:
        _main(*args, f"hydra.run.dir={tmp_path / 'out'}")
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ssl-bench-eval: error: ") and message in err[0], err
    assert not (tmp_path / "out" / "record.json").exists()
