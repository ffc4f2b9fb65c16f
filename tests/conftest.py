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
    "data.train_size=256", "data.val_size=64", "data.test_size=64", "data.batch_size=64",
    "method.projector.hidden_dim=64", "method.projector.out_dim=32",
    "eval.linear_epochs=5", "eval.knn_k=20", "eval.every_n_epochs=1",
    "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.checkpoint=false",
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
