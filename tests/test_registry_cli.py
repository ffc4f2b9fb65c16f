"""Every registered method through the commands a user types, in this process: ``ssl-bench`` composes it
and trains 2 steps before a Ctrl-C, ``resume=auto`` continues from ``last.ckpt`` for 2 more, the run exports its weights
(``backbone.pt``, or ``hf_export/`` for the masked LM) and ``ssl-bench-eval`` evaluates an image run from
its folder. Parametrised over ``REGISTRY``: a new method is covered by its registry entry alone."""

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from ssl_bench import app
from ssl_bench.eval import app as eval_app
from ssl_bench.eval.export import export_is_current
from ssl_bench.methods.registry import REGISTRY, methods_table
from ssl_bench.tracking.record import load_record
from tests.conftest import TINY, make_cfg

# TINY's data, backbone and trainer sizes; the heads come from each method's registry entry
IMAGE = [o for o in TINY if not o.startswith("method.")] + ["eval.initial=false", "eval.final=false"]
TEXT = ["trainer.enable_progress_bar=false", "logger=none", "eval.initial=false", "eval.final=false"]
STEPS = ["trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.checkpoint=true", "trainer.num_threads=1"]


def _command(main, argv: list[str]) -> int:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", argv)
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_method_composes_trains_resumes_exports_and_evaluates(name, tmp_path, monkeypatch, capsys):
    spec = REGISTRY[name]
    monkeypatch.chdir(tmp_path)
    base = [f"method={name}", *(IMAGE if spec.modality == "image" else TEXT), *spec.smoke, *STEPS]
    if spec.modality == "text":
        base.append(f"data.tokenizer_cache={tmp_path / 'tok'}")
    run_dir = tmp_path / "run"

    def ssl_bench(*extra: str) -> int:
        return _command(app.main, ["ssl-bench", *base, *extra, f"hydra.run.dir={run_dir}"])

    def interrupt_at_epoch_1(self):
        if self.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after the first epoch's 2 steps and its checkpoint

    with monkeypatch.context() as mp:
        mp.setattr(spec.load(), "on_train_epoch_start", interrupt_at_epoch_1, raising=False)
        assert ssl_bench() == 130
    first = load_record(run_dir)
    assert first["status"] == "interrupted" and first["method"] == name
    assert first["checkpoint"]["step"] == 2 and first["checkpoint"]["path"] == "checkpoints/last.ckpt"

    assert ssl_bench("resume=auto") == 0
    resumed = load_record(run_dir)
    assert resumed["run_id"] == first["run_id"] and resumed["attempt"] == 2
    assert resumed["status"] == "finished" and resumed["checkpoint"]["step"] == 4
    assert [e["epoch"] for e in resumed["epochs"]] == [0, 1]
    assert all(torch.isfinite(torch.tensor(e["train/loss"])) for e in resumed["epochs"])

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 4
    exported = Path(resumed["export"])
    assert exported.exists()
    if spec.modality == "text":
        assert (exported / "config.json").exists()
        code = _command(eval_app.main, ["ssl-bench-eval", f"source={run_dir}"])
        assert code == 2 and "masked" in capsys.readouterr().err  # image backbones only, said in one line
        return
    assert export_is_current(run_dir, ckpt)  # backbone.pt names the last checkpoint's weights

    assert _command(eval_app.main, ["ssl-bench-eval", f"source={run_dir}", "linear.epochs=2", "knn.k=5"]) == 0
    (path,) = run_dir.glob("eval/*/record.json")
    evaluated = json.loads(path.read_text())
    assert evaluated["status"] == "finished" and evaluated["pretrain"]["method"] == name
    assert evaluated["pretrain"]["checkpoint"] == str(ckpt.resolve())  # the weights the resumed run ended with
    assert 0.0 <= evaluated["final"]["knn_acc"] <= 1.0 and evaluated["final"]["n_eval"] == 64


def test_readme_methods_table_is_the_registry(repo_root):
    readme = (repo_root / "README.md").read_text()
    start, end = "<!-- methods-table:start -->\n", "\n<!-- methods-table:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == methods_table()


@pytest.mark.parametrize("name", [n for n, s in sorted(REGISTRY.items()) if s.recipe])
def test_every_registered_recipe_composes_to_its_method(name):
    spec = REGISTRY[name]
    cfg = make_cfg(f"recipe={spec.recipe}", tiny=False)
    assert cfg.method.name == name and cfg.data.name == "cifar10" and cfg.trainer.max_epochs >= 800
    assert str(cfg.trainer.accelerator) != "cpu"  # a published recipe is a GPU run
