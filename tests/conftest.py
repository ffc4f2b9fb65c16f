import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ssl_bench.config import config_dir, validate

os.environ.setdefault("WANDB_SILENT", "true")

# A tiny, fast setting for unit-level runs on CPU.
TINY = [
    "backbone.model_kwargs.widths=[8,16,16,32]",
    "data.train_size=256",
    "data.val_size=64",
    "data.test_size=64",
    "data.batch_size=64",
    "method.projector.hidden_dim=64",
    "method.projector.out_dim=32",
    "eval.linear_epochs=5",
    "eval.knn_k=20",
    "eval.every_n_epochs=1",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.checkpoint=false",
    "logger=none",
]


def make_cfg(*overrides: str, tiny: bool = True) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=(TINY if tiny else []) + list(overrides))
    validate(cfg)
    return cfg


@pytest.fixture
def cfg_factory():
    return make_cfg


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


WANDB_CREDENTIALS = ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL")


def isolate_wandb(mp: pytest.MonkeyPatch, home: Path) -> None:
    """No W&B credentials anywhere (environment, netrc, config dir): the logger must go offline by
    itself, without a prompt."""
    for var in WANDB_CREDENTIALS:
        mp.delenv(var, raising=False)
    mp.setenv("HOME", str(home))
    mp.setenv("NETRC", str(home / ".netrc"))
    mp.setenv("WANDB_CONFIG_DIR", str(home / ".config" / "wandb"))


def wandb_leet(run_dir: str | Path, *flags: str) -> str:
    """``wandb leet inspect --json FLAGS RUN_DIR``: an offline run read back by wandb's own reader."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))
    return subprocess.run(
        [exe, "leet", "inspect", "--json", *flags, str(run_dir)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
